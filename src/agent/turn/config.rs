//! Tunables of the turn-taking machine. Every duration is in milliseconds of call time.

/// How the machine decides who holds the floor. `Default` gives settings that suit a phone
/// line with a streaming recogniser that sends partials.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnConfig {
    /// Spoken when the call is answered; `None` waits for the caller to speak first.
    pub greeting: Option<String>,
    /// Whether caller speech may cut the greeting short.
    pub greeting_interruptible: bool,
    /// Caller silence after speech before the turn may end, when the words say neither way.
    pub endpointing_ms: u64,
    /// The same once the recognised words form a whole turn (a question, a short answer, a
    /// closed sentence).
    pub endpointing_complete_ms: u64,
    /// The same when the words stop mid-sentence ("my number is…", "and", a filler).
    pub endpointing_incomplete_ms: u64,
    /// How long after speech end to wait for the recogniser's final before going on with the
    /// partial words heard so far.
    pub final_wait_ms: u64,
    /// Caller speech over the agent, as the VAD hears it, that pauses the agent's audio while
    /// the recogniser decides: an interruption stops the reply, a backchannel or noise resumes
    /// it from the start of the sentence it cut. The VAD reports speech ~100 ms after it
    /// starts, so the default stops playout within ~300 ms of the caller's first sound.
    pub barge_in_speech_ms: u64,
    /// Recognised non-backchannel words over the agent that interrupt it at once.
    pub barge_in_words: usize,
    /// Speech over the agent longer than this interrupts even when the words recognised so far
    /// are only backchannels (or none at all).
    pub backchannel_max_ms: u64,
    /// Words that acknowledge without taking the floor ("uh-huh", "yeah", …), lowercase.
    pub backchannels: Vec<String>,
    /// Silence (no caller speech, no agent speech) before the reprompt.
    pub idle_reprompt_ms: u64,
    pub idle_reprompt: String,
    /// Silence after the reprompt finished before hanging up.
    pub idle_hangup_ms: u64,
    pub idle_goodbye: String,
    /// The call is ended politely after this long.
    pub max_call_ms: u64,
    pub max_duration_goodbye: String,
    /// Said to calls still running when the engine shuts down, before hanging up.
    pub shutdown_goodbye: String,
    /// Said when the brain fails before it said anything.
    pub brain_error_line: String,
    /// The brain must send its first text within this long of the reply starting.
    pub brain_first_token_ms: u64,
    /// A reply or utterance that shows no progress (no text, audio or played mark) this long
    /// is abandoned, so a stalled provider cannot hold the call.
    pub stall_ms: u64,
    /// After the last DTMF digit, the digits are taken as the caller's turn.
    pub dtmf_endpoint_ms: u64,
    /// Samples per second of the audio the session reports (`TtsAudio`, `PlayoutCleared`).
    pub sample_rate: u32,
    /// Sentence splitting of the brain's streaming text.
    pub sentences: SentenceConfig,
}

/// How streaming reply text is cut into pieces for the speech synthesiser.
#[derive(Debug, Clone, PartialEq)]
pub struct SentenceConfig {
    /// A `,` `;` `:` ends a piece once it holds at least this many words.
    pub soft_break_words: usize,
    /// A piece is cut at a word boundary once it holds this many words without punctuation.
    pub max_words: usize,
}

impl Default for SentenceConfig {
    fn default() -> Self {
        SentenceConfig {
            soft_break_words: 8,
            max_words: 40,
        }
    }
}

/// Words that acknowledge the speaker without claiming the turn.
pub const DEFAULT_BACKCHANNELS: &[&str] = &[
    "uh-huh", "uh huh", "mhm", "mm-hmm", "mm hmm", "mm", "hmm", "yeah", "yep", "yes", "okay", "ok",
    "right", "sure", "alright", "got it", "i see", "aha", "uh", "um",
];

impl Default for TurnConfig {
    fn default() -> Self {
        TurnConfig {
            greeting: None,
            greeting_interruptible: true,
            endpointing_ms: 500,
            endpointing_complete_ms: 200,
            endpointing_incomplete_ms: 1200,
            final_wait_ms: 1500,
            barge_in_speech_ms: 160,
            barge_in_words: 1,
            backchannel_max_ms: 1200,
            backchannels: DEFAULT_BACKCHANNELS.iter().map(|w| w.to_string()).collect(),
            idle_reprompt_ms: 8000,
            idle_reprompt: "Are you still there?".into(),
            idle_hangup_ms: 20000,
            idle_goodbye: "I haven't heard anything, so I'll hang up now. Goodbye!".into(),
            max_call_ms: 30 * 60 * 1000,
            max_duration_goodbye: "I'm sorry, we've reached the time limit for this call. \
                                   Thank you for calling, goodbye!"
                .into(),
            shutdown_goodbye: "I'm sorry, I have to end the call now. Please call back \
                               later. Goodbye!"
                .into(),
            brain_error_line: "Sorry, I didn't quite catch that. Could you say it again?".into(),
            brain_first_token_ms: 8000,
            stall_ms: 10000,
            dtmf_endpoint_ms: 1500,
            sample_rate: media::INTERNAL_RATE,
            sentences: SentenceConfig::default(),
        }
    }
}
