//! Sans-IO core of one Deepgram live stream: fed the caller's audio, our VAD's ends of speech,
//! server messages, connection events and `now` (ms); yields frames to send and `SttEvent`s.
//!
//! Words: `is_final` results settle words of the current segment; `Partial` is the settled
//! words plus the current interim hypothesis. Each of our `SpeechEnd`s gets exactly one
//! `Final` (the session counts on it): it goes out once Deepgram has settled the audio up to
//! that end of speech — a final result reaching past it, a `from_finalize` answer to the
//! `Finalize` we send, or end-of-speech evidence (`speech_final`, `UtteranceEnd`) close enough
//! to it — or when the wait runs out, with what is settled by then. Words settled while no
//! `SpeechEnd` waits (Deepgram heard an utterance end our VAD did not) are held for the next
//! `Final`, so they are never lost and never counted twice.
//!
//! Connection: every sample is kept until a final result covers it; a new connection is fed
//! that audio first (Deepgram's timestamps restart at zero on it), so a dropped connection
//! loses no words. Reconnects back off; a handshake refusal (bad key) or too many failures in
//! a row end the stream with an `Error`.

use std::collections::VecDeque;

use super::messages::{self, Results, ServerMessage, UtteranceEnd};
use super::replay::{ReplayBuffer, le_bytes};
use crate::providers::stt::SttEvent;

const RATE: u64 = 16_000;
/// Slack for rounding in Deepgram's timestamps: one 20 ms frame.
const TOLERANCE: u64 = RATE / 50;
/// Replayed audio goes in messages of 250 ms.
const REPLAY_CHUNK: usize = (RATE / 4) as usize;

/// Timeouts and limits (tests shorten them).
#[derive(Debug, Clone)]
pub struct Timing {
    /// How long a `SpeechEnd` waits for Deepgram to settle its words.
    pub final_wait_ms: u64,
    /// Send `KeepAlive` after this long without audio (Deepgram closes after 10 s).
    pub keepalive_ms: u64,
    /// How long `CloseStream` waits for the server's last results.
    pub close_wait_ms: u64,
    /// First reconnect delay after a failure; doubles per failure up to `backoff_max_ms`.
    pub backoff_first_ms: u64,
    pub backoff_max_ms: u64,
    /// Failed connections in a row before the stream gives up.
    pub max_failures: u32,
    /// A connection that lived this long was healthy: its drop is not a failure.
    pub stable_ms: u64,
    /// Audio kept for replay at most.
    pub replay_limit_ms: u64,
    /// Deepgram's `utterance_end_ms`.
    pub utterance_end_ms: u64,
    /// Our VAD's hangover: its `SpeechEnd` comes this long after the last speech.
    pub vad_hangover_ms: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            final_wait_ms: 1000,
            keepalive_ms: 4000,
            close_wait_ms: 2000,
            backoff_first_ms: 200,
            backoff_max_ms: 5000,
            max_failures: 8,
            stable_ms: 3000,
            replay_limit_ms: 30_000,
            utterance_end_ms: 1000,
            vad_hangover_ms: u64::from(media::vad::VadConfig::default().hangover_ms),
        }
    }
}

/// A frame for the current connection.
#[derive(Debug, PartialEq)]
pub enum Outgoing {
    /// Linear16 little-endian audio (a binary frame).
    Audio(Vec<u8>),
    /// A control message (a text frame).
    Control(&'static str),
}

/// What the driver must do, in order.
#[derive(Debug, PartialEq)]
pub enum Action {
    /// Open a connection, then report `connected` or `connect_failed`.
    Connect,
    Send(Outgoing),
    /// Close the current connection.
    Close,
    Emit(SttEvent),
    /// The stream is over: drop the connection and the event sender.
    Finish,
}

/// Why a connection attempt failed.
#[derive(Debug)]
pub enum ConnectFailure {
    /// Retrying cannot help (the key or the request was refused).
    Fatal(String),
    Retry(String),
}

#[derive(Debug)]
enum Link {
    Connecting,
    /// `origin`: stream position of the connection's first audio (its timestamp zero).
    Up {
        since: u64,
        origin: u64,
    },
    Waiting {
        until: u64,
    },
    Done,
}

struct PendingFinal {
    /// Stream position of the `SpeechEnd`.
    at: u64,
    deadline: u64,
}

pub struct LiveStream {
    timing: Timing,
    link: Link,
    failures: u32,
    buffer: ReplayBuffer,
    /// Last audio or `KeepAlive` sent.
    last_activity: u64,
    settled: String,
    interim: String,
    last_partial: String,
    pending: VecDeque<PendingFinal>,
    /// Stream positions of the `Finalize`s sent on this connection and not yet answered.
    finalizes: VecDeque<u64>,
    /// The caller's words up to this stream position are settled.
    settled_through: u64,
    /// Input closed and `CloseStream` sent: finish by this time.
    closing: Option<u64>,
    actions: VecDeque<Action>,
}

impl LiveStream {
    pub fn new(timing: Timing) -> Self {
        let limit = (timing.replay_limit_ms * RATE / 1000) as usize;
        LiveStream {
            timing,
            link: Link::Connecting,
            failures: 0,
            buffer: ReplayBuffer::new(limit),
            last_activity: 0,
            settled: String::new(),
            interim: String::new(),
            last_partial: String::new(),
            pending: VecDeque::new(),
            finalizes: VecDeque::new(),
            settled_through: 0,
            closing: None,
            actions: VecDeque::from([Action::Connect]),
        }
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When `handle_timeout` is next due.
    pub fn next_deadline(&self) -> Option<u64> {
        let link = match self.link {
            Link::Waiting { until } => Some(until),
            Link::Up { .. } if self.closing.is_none() => {
                Some(self.last_activity + self.timing.keepalive_ms)
            }
            _ => None,
        };
        [self.pending.front().map(|p| p.deadline), link, self.closing]
            .into_iter()
            .flatten()
            .min()
    }

    /// 16 kHz caller audio.
    pub fn audio(&mut self, now: u64, pcm: &[i16]) {
        if self.is_done() {
            return;
        }
        self.buffer.push(pcm);
        if matches!(self.link, Link::Up { .. }) {
            self.send(Outgoing::Audio(le_bytes(pcm)));
            self.last_activity = now;
        }
    }

    /// Our VAD heard speech end: this segment's `Final` is due.
    pub fn speech_end(&mut self, now: u64) {
        if self.is_done() {
            return;
        }
        let at = self.buffer.end();
        self.pending.push_back(PendingFinal {
            at,
            deadline: now + self.timing.final_wait_ms,
        });
        if self.settled_through + TOLERANCE >= at {
            // Deepgram already heard this utterance end.
            self.answer_settled();
        } else if matches!(self.link, Link::Up { .. }) {
            self.finalize(at);
        }
    }

    /// The session dropped its input: flush, wait a little for the last results, finish.
    pub fn input_closed(&mut self, now: u64) {
        if self.is_done() {
            return;
        }
        if matches!(self.link, Link::Up { .. }) {
            self.send(Outgoing::Control(messages::CLOSE_STREAM));
            self.closing = Some(now + self.timing.close_wait_ms);
        } else {
            self.finish();
        }
    }

    pub fn connected(&mut self, now: u64) {
        if !matches!(self.link, Link::Connecting) {
            return;
        }
        let origin = self.buffer.start();
        self.link = Link::Up { since: now, origin };
        self.finalizes.clear();
        for chunk in self.buffer.chunks(REPLAY_CHUNK) {
            self.send(Outgoing::Audio(chunk));
        }
        self.last_activity = now;
        if !self.pending.is_empty() {
            self.finalize(self.buffer.end());
        }
    }

    pub fn connect_failed(&mut self, now: u64, failure: ConnectFailure) {
        if !matches!(self.link, Link::Connecting) {
            return;
        }
        match failure {
            ConnectFailure::Fatal(message) => self.fail(message),
            ConnectFailure::Retry(reason) => {
                self.failures += 1;
                self.reconnect(now, &reason);
            }
        }
    }

    /// The connection closed or broke.
    pub fn disconnected(&mut self, now: u64, reason: &str) {
        let Link::Up { since, .. } = self.link else {
            return;
        };
        if self.closing.is_some() {
            self.finish();
            return;
        }
        if now.saturating_sub(since) >= self.timing.stable_ms {
            self.failures = 0;
        } else {
            self.failures += 1;
        }
        self.reconnect(now, reason);
    }

    /// A text frame from the server.
    pub fn server_text(&mut self, text: &str) {
        let Link::Up { origin, .. } = self.link else {
            return;
        };
        match messages::parse(text) {
            Some(ServerMessage::Results(results)) => self.results(origin, &results),
            Some(ServerMessage::UtteranceEnd(end)) => self.utterance_end(origin, &end),
            Some(ServerMessage::Other) => {}
            None => {
                tracing::debug!(frame = %text.chars().take(200).collect::<String>(), "ignoring an unknown Deepgram message")
            }
        }
    }

    pub fn handle_timeout(&mut self, now: u64) {
        while self.pending.front().is_some_and(|p| p.deadline <= now) {
            tracing::debug!("Deepgram did not settle the segment in time; sending what is settled");
            self.pending.pop_front();
            self.emit_final();
        }
        if self.closing.is_some_and(|until| until <= now) {
            self.finish();
            return;
        }
        match self.link {
            Link::Waiting { until } if until <= now => {
                self.link = Link::Connecting;
                self.actions.push_back(Action::Connect);
            }
            Link::Up { .. }
                if self.closing.is_none()
                    && now >= self.last_activity + self.timing.keepalive_ms =>
            {
                self.send(Outgoing::Control(messages::KEEP_ALIVE));
                self.last_activity = now;
            }
            _ => {}
        }
    }

    fn results(&mut self, origin: u64, results: &Results) {
        let end = origin + seconds_to_samples(results.end());
        let text = results.transcript();
        if !(results.is_final || results.from_finalize) {
            self.interim = text.to_string();
            self.emit_partial();
            return;
        }
        if !text.is_empty() {
            if !self.settled.is_empty() {
                self.settled.push(' ');
            }
            self.settled.push_str(text);
        }
        self.interim.clear();
        self.buffer.settle_until(end);
        let mut through = end;
        if results.speech_final {
            // Deepgram heard silence after the last word; our VAD's end of speech comes a
            // hangover after the last speech.
            through += ms_to_samples(self.timing.vad_hangover_ms);
        }
        if results.from_finalize {
            // The flush covers all audio sent before the oldest unanswered `Finalize` (and
            // any later one the result reaches).
            through = through.max(self.finalizes.pop_front().unwrap_or(0));
            self.finalizes.retain(|&at| at > through + TOLERANCE);
        }
        self.settled_through = self.settled_through.max(through);
        self.emit_partial();
        self.answer_settled();
    }

    fn utterance_end(&mut self, origin: u64, end: &UtteranceEnd) {
        let Some(last_word_end) = end.last_word_end else {
            return;
        };
        // No word from the last word to `utterance_end_ms` after it.
        let through = origin
            + seconds_to_samples(last_word_end)
            + ms_to_samples(self.timing.utterance_end_ms + self.timing.vad_hangover_ms);
        self.settled_through = self.settled_through.max(through);
        self.answer_settled();
    }

    /// Sends the `Final` of every waiting segment whose words are all settled.
    fn answer_settled(&mut self) {
        while self
            .pending
            .front()
            .is_some_and(|p| self.settled_through + TOLERANCE >= p.at)
        {
            self.pending.pop_front();
            self.emit_final();
        }
    }

    fn emit_final(&mut self) {
        let text = std::mem::take(&mut self.settled);
        self.last_partial.clear();
        self.actions
            .push_back(Action::Emit(SttEvent::Final { text }));
    }

    fn emit_partial(&mut self) {
        let text = match (self.settled.is_empty(), self.interim.is_empty()) {
            (true, _) => self.interim.clone(),
            (_, true) => self.settled.clone(),
            _ => format!("{} {}", self.settled, self.interim),
        };
        if text.is_empty() || text == self.last_partial {
            return;
        }
        self.last_partial.clone_from(&text);
        self.actions
            .push_back(Action::Emit(SttEvent::Partial { text }));
    }

    fn finalize(&mut self, at: u64) {
        self.finalizes.push_back(at);
        self.send(Outgoing::Control(messages::FINALIZE));
    }

    fn reconnect(&mut self, now: u64, reason: &str) {
        // The interim hypothesis belonged to the lost connection; the replay redoes it.
        self.interim.clear();
        if self.failures > self.timing.max_failures {
            self.fail(format!(
                "Deepgram unreachable after {} attempts: {reason}",
                self.failures
            ));
            return;
        }
        let delay = match self.failures {
            0 => 0,
            n => (self.timing.backoff_first_ms << (n - 1).min(16)).min(self.timing.backoff_max_ms),
        };
        tracing::warn!(
            reason,
            retry_in_ms = delay,
            "Deepgram connection lost; reconnecting"
        );
        if delay == 0 {
            self.link = Link::Connecting;
            self.actions.push_back(Action::Connect);
        } else {
            self.link = Link::Waiting { until: now + delay };
        }
    }

    /// Ends the stream with an error: one for each waiting segment (the session counts them),
    /// and at least one so the reason is heard.
    fn fail(&mut self, message: String) {
        let errors = self.pending.len().max(1);
        self.pending.clear();
        for _ in 0..errors {
            self.actions.push_back(Action::Emit(SttEvent::Error {
                message: message.clone(),
            }));
        }
        self.stop();
    }

    /// Ends the stream normally: waiting segments get what is settled.
    fn finish(&mut self) {
        while self.pending.pop_front().is_some() {
            self.emit_final();
        }
        self.stop();
    }

    fn stop(&mut self) {
        if matches!(self.link, Link::Up { .. }) {
            self.actions.push_back(Action::Close);
        }
        self.link = Link::Done;
        self.closing = None;
        self.actions.push_back(Action::Finish);
    }

    fn is_done(&self) -> bool {
        matches!(self.link, Link::Done)
    }

    fn send(&mut self, frame: Outgoing) {
        self.actions.push_back(Action::Send(frame));
    }
}

fn seconds_to_samples(seconds: f64) -> u64 {
    (seconds.max(0.0) * RATE as f64).round() as u64
}

fn ms_to_samples(ms: u64) -> u64 {
    ms * RATE / 1000
}

#[cfg(test)]
#[path = "live_tests.rs"]
mod tests;
