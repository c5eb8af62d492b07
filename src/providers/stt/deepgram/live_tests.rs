use super::*;

const FRAME: usize = 320;

fn timing() -> Timing {
    Timing::default()
}

/// A stream that is connected, with its startup actions consumed.
fn connected() -> LiveStream {
    let mut s = LiveStream::new(timing());
    assert_eq!(s.poll_action(), Some(Action::Connect));
    s.connected(0);
    assert_eq!(s.poll_action(), None);
    s
}

fn drain(s: &mut LiveStream) -> Vec<Action> {
    std::iter::from_fn(|| s.poll_action()).collect()
}

fn events(actions: &[Action]) -> Vec<SttEvent> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Emit(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn controls(actions: &[Action]) -> Vec<&'static str> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(Outgoing::Control(c)) => Some(*c),
            _ => None,
        })
        .collect()
}

fn audio_bytes(actions: &[Action]) -> Vec<u8> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(Outgoing::Audio(b)) => Some(b.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// `frames` 20 ms frames of `value`, starting at `now`.
fn talk(s: &mut LiveStream, now: u64, frames: usize, value: i16) -> u64 {
    for i in 0..frames {
        s.audio(now + 20 * i as u64, &[value; FRAME]);
    }
    now + 20 * frames as u64
}

fn results(start: f64, duration: f64, text: &str, flags: &str) -> String {
    let flag = |name: &str| flags.split(',').any(|f| f == name);
    serde_json::json!({
        "type": "Results",
        "start": start,
        "duration": duration,
        "is_final": flag("is_final") || flag("speech_final") || flag("from_finalize"),
        "speech_final": flag("speech_final"),
        "from_finalize": flag("from_finalize"),
        "channel": {"alternatives": [{"transcript": text}]},
    })
    .to_string()
}

fn partial(text: &str) -> SttEvent {
    SttEvent::Partial { text: text.into() }
}

fn final_(text: &str) -> SttEvent {
    SttEvent::Final { text: text.into() }
}

#[test]
fn audio_streams_and_partials_grow_with_settled_words() {
    let mut s = connected();
    let now = talk(&mut s, 0, 50, 7);
    let sent = drain(&mut s);
    assert_eq!(audio_bytes(&sent), le_bytes(&[7; 50 * FRAME]));
    s.server_text(&results(0.0, 0.5, "book a", ""));
    s.server_text(&results(0.0, 0.8, "book a table", "is_final"));
    s.server_text(&results(0.8, 0.2, "for", ""));
    // The same hypothesis twice is one partial.
    s.server_text(&results(0.8, 0.2, "for", ""));
    assert_eq!(
        events(&drain(&mut s)),
        vec![
            partial("book a"),
            partial("book a table"),
            partial("book a table for")
        ]
    );
    s.speech_end(now);
    assert_eq!(controls(&drain(&mut s)), vec![messages::FINALIZE]);
    s.server_text(&results(0.8, 0.2, "for two", "from_finalize"));
    assert_eq!(
        events(&drain(&mut s)),
        vec![
            partial("book a table for two"),
            final_("book a table for two")
        ]
    );
    assert_eq!(s.next_deadline(), Some(now - 20 + timing().keepalive_ms));
}

#[test]
fn a_speech_final_before_our_end_of_speech_answers_it_at_once() {
    let mut s = connected();
    // 1 s of speech, then Deepgram's endpointing fires at 1.3 s.
    let now = talk(&mut s, 0, 65, 7);
    s.server_text(&results(0.0, 1.3, "hello there", "speech_final"));
    drain(&mut s);
    // Our VAD's end comes after its hangover.
    let now = talk(&mut s, now, 5, 0);
    s.speech_end(now);
    let actions = drain(&mut s);
    assert_eq!(events(&actions), vec![final_("hello there")]);
    assert!(controls(&actions).is_empty(), "no Finalize needed");
}

#[test]
fn a_speech_final_long_before_our_end_of_speech_does_not_answer_it() {
    let mut s = connected();
    let now = talk(&mut s, 0, 50, 7);
    s.server_text(&results(0.0, 1.0, "hello", "speech_final"));
    // The caller went on for two more seconds.
    let now = talk(&mut s, now, 100, 7);
    drain(&mut s);
    s.speech_end(now);
    let actions = drain(&mut s);
    assert!(events(&actions).is_empty());
    assert_eq!(controls(&actions), vec![messages::FINALIZE]);
    s.server_text(&results(1.0, 2.0, "how are you", "from_finalize"));
    assert_eq!(
        events(&drain(&mut s)).last(),
        Some(&final_("hello how are you"))
    );
}

#[test]
fn an_utterance_end_answers_a_waiting_end_of_speech() {
    let mut s = connected();
    let now = talk(&mut s, 0, 100, 7);
    s.speech_end(now);
    s.server_text(&results(0.0, 1.5, "yes please", "is_final"));
    drain(&mut s);
    s.server_text(r#"{"type":"UtteranceEnd","channel":[0,1],"last_word_end":1.2}"#);
    assert_eq!(events(&drain(&mut s)), vec![final_("yes please")]);
}

#[test]
fn a_final_result_reaching_past_our_end_of_speech_answers_it() {
    let mut s = connected();
    let now = talk(&mut s, 0, 50, 7);
    s.speech_end(now);
    drain(&mut s);
    s.server_text(&results(0.0, 1.0, "okay", "is_final"));
    assert_eq!(
        events(&drain(&mut s)),
        vec![partial("okay"), final_("okay")]
    );
}

#[test]
fn a_slow_server_gets_what_is_settled_and_late_words_go_with_the_next_final() {
    let mut s = connected();
    let now = talk(&mut s, 0, 100, 7);
    s.server_text(&results(0.0, 1.0, "I need", "is_final"));
    s.server_text(&results(1.0, 0.5, "an appoint", ""));
    s.speech_end(now);
    drain(&mut s);
    let deadline = now + timing().final_wait_ms;
    assert_eq!(s.next_deadline(), Some(deadline));
    s.handle_timeout(deadline - 1);
    assert!(events(&drain(&mut s)).is_empty());
    s.handle_timeout(deadline);
    // The interim is not settled: it is not in the final.
    assert_eq!(events(&drain(&mut s)), vec![final_("I need")]);
    // Its settled form arrives late: held, not lost, not a Final of its own.
    s.server_text(&results(1.0, 1.0, "an appointment", "from_finalize"));
    assert_eq!(events(&drain(&mut s)), vec![partial("an appointment")]);
    let now = talk(&mut s, now + 1000, 50, 7);
    s.speech_end(now);
    s.server_text(&results(2.0, 1.0, "tomorrow", "from_finalize"));
    assert_eq!(
        events(&drain(&mut s)).last(),
        Some(&final_("an appointment tomorrow"))
    );
}

#[test]
fn words_deepgram_ends_without_our_vad_wait_for_the_next_final() {
    let mut s = connected();
    let now = talk(&mut s, 0, 50, 7);
    s.server_text(&results(0.0, 1.0, "mm right", "speech_final"));
    s.server_text(r#"{"type":"UtteranceEnd","last_word_end":0.8}"#);
    assert_eq!(events(&drain(&mut s)), vec![partial("mm right")]);
    // Three seconds of silence, then the caller speaks again.
    let now = talk(&mut s, now, 150, 0);
    let now = talk(&mut s, now, 50, 7);
    s.speech_end(now);
    s.server_text(&results(4.0, 1.0, "so about Friday", "from_finalize"));
    let finals: Vec<_> = events(&drain(&mut s))
        .into_iter()
        .filter(|e| matches!(e, SttEvent::Final { .. }))
        .collect();
    assert_eq!(finals, vec![final_("mm right so about Friday")]);
}

#[test]
fn two_ends_of_speech_answered_together_get_one_final_each() {
    let mut s = connected();
    let now = talk(&mut s, 0, 25, 7);
    s.speech_end(now);
    let now = talk(&mut s, now, 25, 7);
    s.speech_end(now);
    drain(&mut s);
    s.server_text(&results(0.0, 1.0, "one two", "from_finalize"));
    let finals: Vec<_> = events(&drain(&mut s))
        .into_iter()
        .filter(|e| matches!(e, SttEvent::Final { .. }))
        .collect();
    assert_eq!(finals, vec![final_("one two"), final_("")]);
}

#[test]
fn a_dropped_connection_replays_unsettled_audio_on_the_next() {
    let mut s = connected();
    // 1 s of "hello" settled, then 1 s of "world" the server never settles.
    let now = talk(&mut s, 0, 50, 1);
    let now = talk(&mut s, now, 50, 2);
    s.server_text(&results(0.0, 1.0, "hello", "is_final"));
    s.server_text(&results(1.0, 0.6, "wor", ""));
    drain(&mut s);
    s.disconnected(now, "reset");
    // A young connection's drop is a failure: wait before reconnecting.
    let retry = now + timing().backoff_first_ms;
    assert_eq!(s.next_deadline(), Some(retry));
    // Audio while down is kept, not sent; so is the end of speech.
    let now = talk(&mut s, now, 10, 3);
    s.speech_end(now);
    assert!(audio_bytes(&drain(&mut s)).is_empty());
    s.handle_timeout(retry);
    assert_eq!(drain(&mut s), vec![Action::Connect]);
    s.connected(retry);
    let replay = drain(&mut s);
    let mut expected = le_bytes(&[2; 50 * FRAME]);
    expected.extend(le_bytes(&[3; 10 * FRAME]));
    assert_eq!(audio_bytes(&replay), expected);
    assert_eq!(controls(&replay), vec![messages::FINALIZE]);
    // Timestamps restart on the new connection.
    s.server_text(&results(0.0, 1.2, "world", "from_finalize"));
    assert_eq!(
        events(&drain(&mut s)),
        vec![partial("hello world"), final_("hello world")]
    );
}

#[test]
fn a_healthy_connection_that_drops_reconnects_at_once() {
    let mut s = connected();
    talk(&mut s, 0, 10, 1);
    drain(&mut s);
    s.disconnected(timing().stable_ms, "server restart");
    assert_eq!(drain(&mut s), vec![Action::Connect]);
}

#[test]
fn a_refused_key_is_one_error_and_the_end() {
    let mut s = LiveStream::new(timing());
    drain(&mut s);
    talk(&mut s, 0, 10, 1);
    s.speech_end(200);
    s.connect_failed(
        250,
        ConnectFailure::Fatal("Deepgram refused the key (HTTP 401)".into()),
    );
    let actions = drain(&mut s);
    assert_eq!(
        actions,
        vec![
            Action::Emit(SttEvent::Error {
                message: "Deepgram refused the key (HTTP 401)".into()
            }),
            Action::Finish
        ]
    );
    assert_eq!(s.next_deadline(), None);
    s.audio(300, &[1; FRAME]);
    s.handle_timeout(10_000);
    assert!(drain(&mut s).is_empty());
}

#[test]
fn failures_back_off_then_give_up() {
    let t = timing();
    let mut s = LiveStream::new(t.clone());
    let mut now = 0;
    let mut delays = Vec::new();
    loop {
        let actions = drain(&mut s);
        if actions.contains(&Action::Finish) {
            assert!(
                matches!(&events(&actions)[..], [SttEvent::Error { message }] if message.contains("unreachable"))
            );
            break;
        }
        assert_eq!(actions, vec![Action::Connect]);
        s.connect_failed(now, ConnectFailure::Retry("refused".into()));
        if let Some(at) = s.next_deadline() {
            delays.push(at - now);
            now = at;
            s.handle_timeout(now);
        }
    }
    assert_eq!(delays.len() as u32, t.max_failures);
    assert_eq!(&delays[..4], &[200, 400, 800, 1600]);
    assert!(delays.iter().all(|d| *d <= t.backoff_max_ms));
}

#[test]
fn keepalive_only_when_no_audio_flows() {
    let mut s = connected();
    let every = timing().keepalive_ms;
    let now = talk(&mut s, 0, 100, 0);
    drain(&mut s);
    assert_eq!(s.next_deadline(), Some(now - 20 + every));
    s.handle_timeout(now - 20 + every);
    assert_eq!(controls(&drain(&mut s)), vec![messages::KEEP_ALIVE]);
    assert_eq!(s.next_deadline(), Some(now - 20 + 2 * every));
}

#[test]
fn closing_flushes_and_waits_for_the_last_results() {
    let mut s = connected();
    let now = talk(&mut s, 0, 50, 7);
    s.speech_end(now);
    s.input_closed(now);
    assert_eq!(
        controls(&drain(&mut s)),
        vec![messages::FINALIZE, messages::CLOSE_STREAM]
    );
    s.server_text(&results(0.0, 1.0, "goodbye", "is_final"));
    s.disconnected(now + 100, "closed");
    let actions = drain(&mut s);
    assert_eq!(
        events(&actions),
        vec![partial("goodbye"), final_("goodbye")]
    );
    assert_eq!(actions.last(), Some(&Action::Finish));
}

#[test]
fn a_server_that_never_closes_is_left_after_the_close_wait() {
    let mut s = connected();
    s.input_closed(0);
    drain(&mut s);
    let until = timing().close_wait_ms;
    assert_eq!(s.next_deadline(), Some(until));
    s.handle_timeout(until);
    assert_eq!(drain(&mut s), vec![Action::Close, Action::Finish]);
}

#[test]
fn unknown_and_garbage_messages_change_nothing() {
    let mut s = connected();
    for text in [
        "garbage",
        "{}",
        r#"{"type":"SpeechStarted","channel":[0],"timestamp":0.2}"#,
        r#"{"type":"Metadata","request_id":"r"}"#,
        r#"{"type":"Results","start":"soon"}"#,
        r#"{"type":"Mystery","is_final":true}"#,
    ] {
        s.server_text(text);
    }
    assert!(drain(&mut s).is_empty());
}
