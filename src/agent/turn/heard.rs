//! Which words of the agent's reply the caller actually heard.
//!
//! Each piece of the reply is synthesised, pushed into the pacer and followed by a mark; a fired
//! mark means the piece was played in full. When the caller barges in, the pacer is cleared and
//! reports how many samples it dropped: everything pushed but not dropped was played. Within
//! the one piece that was cut mid-way, heard words are estimated in proportion to the audio
//! played, rounded down, so the history never claims a word the caller did not hear.

/// One synthesised piece of the reply as far as playout is concerned.
#[derive(Debug, Clone, PartialEq)]
pub struct SpokenPiece<'a> {
    /// The words, or `None` when synthesis failed part-way (its audio plays but its text is
    /// not claimed).
    pub text: Option<&'a str>,
    /// Samples pushed into the pacer.
    pub samples: usize,
    /// Its mark fired: played to the end.
    pub played: bool,
}

/// The heard text of `pieces` (in playout order) given that `played_unmarked` samples of the
/// pieces whose marks have not fired were played.
pub fn heard_text(pieces: &[SpokenPiece<'_>], mut played_unmarked: usize) -> String {
    let mut heard: Vec<&str> = Vec::new();
    for piece in pieces {
        let text = piece.text.unwrap_or("");
        if piece.played {
            heard.extend(text.split_whitespace());
            continue;
        }
        if piece.samples == 0 {
            continue;
        }
        let played = played_unmarked.min(piece.samples);
        played_unmarked -= played;
        let words: Vec<&str> = text.split_whitespace().collect();
        let count = words.len() * played / piece.samples;
        heard.extend(&words[..count]);
        if played < piece.samples {
            break; // playout stopped inside this piece
        }
    }
    heard.join(" ")
}

/// A model of the pacer's queue, for when no exact count is available: the pacer plays one
/// frame per session tick, so every `Tick` the machine sees takes one frame off the queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlayoutClock {
    queued: usize,
}

impl PlayoutClock {
    /// Records `samples` pushed into the pacer.
    pub fn push(&mut self, samples: usize) {
        self.queued += samples;
    }

    /// One frame of `frame` samples was played.
    pub fn tick(&mut self, frame: usize) {
        self.queued = self.queued.saturating_sub(frame);
    }

    /// Samples pushed but not yet played.
    pub fn queued(&self) -> usize {
        self.queued
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(text: &str, samples: usize, played: bool) -> SpokenPiece<'_> {
        SpokenPiece {
            text: Some(text),
            samples,
            played,
        }
    }

    #[test]
    fn played_pieces_are_heard_in_full_and_the_cut_piece_in_proportion() {
        let pieces = [
            piece("Sure, I can help.", 16000, true),
            piece("We have Monday at nine or Tuesday at ten.", 32000, false),
            piece("Which one works?", 16000, false),
        ];
        // Half of the second piece played, nothing of the third.
        assert_eq!(
            heard_text(&pieces, 16000),
            "Sure, I can help. We have Monday at"
        );
        assert_eq!(heard_text(&pieces, 0), "Sure, I can help.");
        assert_eq!(
            heard_text(&pieces, 48000),
            "Sure, I can help. We have Monday at nine or Tuesday at ten. Which one works?"
        );
    }

    #[test]
    fn words_are_rounded_down() {
        let pieces = [piece("one two three", 3000, false)];
        assert_eq!(heard_text(&pieces, 999), "");
        assert_eq!(heard_text(&pieces, 1000), "one");
        assert_eq!(heard_text(&pieces, 2999), "one two");
    }

    #[test]
    fn failed_pieces_take_playout_time_but_claim_no_words() {
        let pieces = [
            SpokenPiece {
                text: None,
                samples: 8000,
                played: false,
            },
            piece("after the glitch", 3000, false),
        ];
        assert_eq!(heard_text(&pieces, 8000), "");
        assert_eq!(heard_text(&pieces, 11000), "after the glitch");
    }

    #[test]
    fn clock_plays_a_frame_per_tick() {
        let mut clock = PlayoutClock::default();
        clock.push(480);
        clock.tick(320);
        assert_eq!(clock.queued(), 160);
        clock.tick(320);
        clock.tick(320);
        assert_eq!(clock.queued(), 0);
        clock.push(320);
        assert_eq!(clock.queued(), 320);
    }
}
