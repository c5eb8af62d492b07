//! A toy "speech" code the fake recognisers hear: a word is a run of 20 ms frames holding one
//! constant sample value (its index in `WORDS`), silence is zero.

pub const RATE: usize = 16_000;
pub const FRAME: usize = RATE / 50;
pub const WORDS: [&str; 6] = ["", "book", "a", "table", "for", "two"];

/// Frames of audio: each word `frames_per_word` frames long, words back to back.
pub fn say(words: &[&str], frames_per_word: usize) -> Vec<Vec<i16>> {
    words
        .iter()
        .flat_map(|w| {
            let value = WORDS.iter().position(|x| x == w).expect("known word") as i16;
            std::iter::repeat_n(vec![value; FRAME], frames_per_word)
        })
        .collect()
}

pub fn silence(frames: usize) -> Vec<Vec<i16>> {
    vec![vec![0; FRAME]; frames]
}

/// Tracks runs of frames and yields the words they spell.
#[derive(Default)]
pub struct Listener {
    run_value: i16,
    run_frames: usize,
    /// Words heard since the last reset, and where (in frames) the last one ended.
    pub words: Vec<&'static str>,
    pub last_word_end: usize,
    pub frames: usize,
    pub silent_frames: usize,
}

impl Listener {
    pub fn frame(&mut self, value: i16) {
        if value != self.run_value {
            self.close_run();
            self.run_value = value;
        }
        self.run_frames += 1;
        self.frames += 1;
        self.silent_frames = if value == 0 {
            self.silent_frames + 1
        } else {
            0
        };
    }

    /// Ends the word in progress, if any.
    pub fn close_run(&mut self) {
        if self.run_value != 0 && self.run_frames > 0 {
            let word = usize::try_from(self.run_value)
                .ok()
                .and_then(|i| WORDS.get(i))
                .copied()
                .unwrap_or("?");
            self.words.push(word);
            self.last_word_end = self.frames;
        }
        self.run_frames = 0;
    }

    /// The words so far, with the one in progress.
    pub fn hypothesis(&self) -> String {
        let mut words = self.words.clone();
        if self.run_value != 0 && self.run_frames > 0 {
            words.push(WORDS.get(self.run_value as usize).copied().unwrap_or("?"));
        }
        words.join(" ")
    }
}

/// All the words in `samples`.
pub fn recognise(samples: &[i16]) -> String {
    let mut listener = Listener::default();
    for frame in samples.chunks(FRAME) {
        listener.frame(frame[0]);
    }
    listener.close_run();
    listener.words.join(" ")
}
