//! Background level tracking by minimum statistics: the quietest 100 ms block of the last
//! ~1.6 s. Steady noise (hiss, pink noise, hold music) sets the floor; speech, which dips
//! between syllables, rises well above it. A level that has held within a few dB for 300 ms
//! is taken as the floor at once, so a noise that starts abruptly stops counting as speech
//! after 300 ms instead of after the whole window (speech never holds that still).

/// Frames per block over which one minimum is kept.
const BLOCK_FRAMES: u32 = 5;
/// Blocks remembered: the window is BLOCKS × BLOCK_FRAMES × 20 ms.
const BLOCKS: usize = 16;
/// Frames a level must hold steady for before it becomes the floor (300 ms).
const STEADY_FRAMES: usize = 15;
/// How far (dB) the levels of a steady stretch may spread, ignoring the `STEADY_TRIM`
/// highest and lowest (noise with strong low frequencies jumps a few dB now and then).
const STEADY_SPREAD_DB: f32 = 3.5;
const STEADY_TRIM: usize = 2;

/// Tracks the noise floor of a stream of frame energies (in dB).
#[derive(Debug, Clone)]
pub struct NoiseFloor {
    block_minima: [f32; BLOCKS],
    filled: usize,
    next: usize,
    current_min: f32,
    current_frames: u32,
    recent: [f32; STEADY_FRAMES],
    recent_next: usize,
    recent_filled: usize,
}

impl Default for NoiseFloor {
    fn default() -> Self {
        NoiseFloor {
            block_minima: [f32::INFINITY; BLOCKS],
            filled: 0,
            next: 0,
            current_min: f32::INFINITY,
            current_frames: 0,
            recent: [0.0; STEADY_FRAMES],
            recent_next: 0,
            recent_filled: 0,
        }
    }
}

impl NoiseFloor {
    /// Adds one frame's energy and returns the floor including it.
    pub fn update(&mut self, energy_db: f32) -> f32 {
        self.recent[self.recent_next] = energy_db;
        self.recent_next = (self.recent_next + 1) % STEADY_FRAMES;
        self.recent_filled = (self.recent_filled + 1).min(STEADY_FRAMES);
        if let Some(steady) = self.steady_level() {
            // Restart the window at the steady level: it is the background now.
            self.block_minima = [steady; BLOCKS];
            self.filled = BLOCKS;
            self.current_min = steady;
        }
        self.current_min = self.current_min.min(energy_db);
        self.current_frames += 1;
        let floor = self.floor();
        if self.current_frames == BLOCK_FRAMES {
            self.block_minima[self.next] = self.current_min;
            self.next = (self.next + 1) % BLOCKS;
            self.filled = (self.filled + 1).min(BLOCKS);
            self.current_min = f32::INFINITY;
            self.current_frames = 0;
        }
        floor
    }

    /// The (trimmed) lowest level of the last 300 ms if the trimmed levels lie within
    /// `STEADY_SPREAD_DB` of each other and above the current floor.
    fn steady_level(&self) -> Option<f32> {
        if self.recent_filled < STEADY_FRAMES {
            return None;
        }
        let mut sorted = self.recent;
        sorted.sort_unstable_by(f32::total_cmp);
        let lo = sorted[STEADY_TRIM];
        let hi = sorted[STEADY_FRAMES - 1 - STEADY_TRIM];
        (hi - lo <= STEADY_SPREAD_DB && lo > self.floor()).then_some(lo)
    }

    /// The current floor: the smallest block minimum in the window.
    pub fn floor(&self) -> f32 {
        self.block_minima[..self.filled]
            .iter()
            .fold(self.current_min, |a, &b| a.min(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_is_the_quietest_block_of_the_window() {
        let mut floor = NoiseFloor::default();
        for _ in 0..100 {
            floor.update(-40.0);
        }
        // One second of speech-like swings does not lift the floor.
        for i in 0..50 {
            let level = if (i / 3) % 2 == 0 { -10.0 } else { -25.0 };
            assert_eq!(floor.update(level), -40.0);
        }
        // Once the quiet stretch has left the window, the quietest remaining block rules.
        for i in 0..(BLOCKS as u32 * BLOCK_FRAMES) {
            let level = if (i / 3) % 2 == 0 { -10.0 } else { -25.0 };
            floor.update(level);
        }
        assert_eq!(floor.floor(), -25.0);
    }

    #[test]
    fn a_level_that_holds_steady_for_300_ms_becomes_the_floor() {
        let mut floor = NoiseFloor::default();
        for _ in 0..100 {
            floor.update(-70.0);
        }
        // Steady apart from two outliers either way.
        let levels = [
            -30.0, -31.5, -29.0, -30.5, -22.0, -30.0, -31.0, -40.0, -29.5, -30.0, -30.5, -20.0,
            -31.0, -41.0,
        ];
        for level in levels {
            assert_eq!(floor.update(level), -70.0);
        }
        assert_eq!(floor.update(-30.0), -31.5);
    }

    #[test]
    fn fluctuating_levels_do_not_lift_the_floor() {
        let mut floor = NoiseFloor::default();
        for _ in 0..50 {
            floor.update(-70.0);
        }
        // Syllables: 10 dB swings every 60 ms.
        for i in 0..60 {
            let level = if (i / 3) % 2 == 0 { -20.0 } else { -32.0 };
            assert_eq!(floor.update(level), -70.0);
        }
    }

    #[test]
    fn floor_drops_at_once_when_it_gets_quieter() {
        let mut floor = NoiseFloor::default();
        for _ in 0..100 {
            floor.update(-30.0);
        }
        assert_eq!(floor.update(-60.0), -60.0);
    }
}
