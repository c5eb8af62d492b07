//! Packet loss concealment for codecs without their own (G.711, L16): repeat the last good
//! frame, fading out, so a lost packet sounds like a stretched sound instead of a click,
//! and a longer gap decays to silence rather than buzzing.

use crate::frame::Frame;

/// Concealed frames over which the level falls from full to silence (60 ms).
const FADE_FRAMES: u32 = 3;

/// Remembers the last good frame and produces concealment frames from it.
#[derive(Debug, Clone)]
pub struct RepeatFade {
    last: Frame,
    run: u32,
}

impl RepeatFade {
    /// A concealer for frames at `rate`.
    pub fn new(rate: u32) -> Self {
        RepeatFade {
            last: Frame::silence(rate),
            run: 0,
        }
    }

    /// Records a frame that was received and decoded.
    pub fn good(&mut self, frame: &Frame) {
        self.last = *frame;
        self.run = 0;
    }

    /// A frame standing in for a lost one: the last good frame, fading linearly across
    /// the concealment run.
    pub fn conceal(&mut self) -> Frame {
        let mut out = self.last;
        let samples = out.samples_mut();
        let n = samples.len() as u32;
        let total = FADE_FRAMES * n;
        for (i, s) in samples.iter_mut().enumerate() {
            let pos = self.run * n + i as u32;
            let gain = total.saturating_sub(pos) as f32 / total as f32;
            *s = (f32::from(*s) * gain) as i16;
        }
        self.run = self.run.saturating_add(1);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_then_fades_to_silence() {
        let mut plc = RepeatFade::new(8_000);
        plc.good(&Frame::from_slice(8_000, &[1_000; 160]).unwrap());
        let first = plc.conceal();
        assert_eq!(first.samples()[0], 1_000);
        assert!(first.samples()[159] < 1_000 && first.samples()[159] > 600);
        let second = plc.conceal();
        assert!(second.samples()[0] < first.samples()[159]);
        plc.conceal();
        assert!(plc.conceal().samples().iter().all(|&s| s == 0));
        // A good frame restores full level.
        plc.good(&Frame::from_slice(8_000, &[500; 160]).unwrap());
        assert_eq!(plc.conceal().samples()[0], 500);
    }
}
