use super::*;

fn sent(core: &mut MultiContext) -> Vec<Value> {
    std::iter::from_fn(|| core.poll_transmit())
        .map(|frame| serde_json::from_str(&frame).unwrap())
        .collect()
}

fn events(core: &mut MultiContext) -> Vec<(ContextId, ContextEvent)> {
    std::iter::from_fn(|| core.poll_event()).collect()
}

fn audio_message(context: &str, samples: &[i16]) -> String {
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    serde_json::json!({"audio": B64.encode(bytes), "isFinal": false, "contextId": context})
        .to_string()
}

#[test]
fn a_context_starts_flushes_and_closes() {
    let now = Instant::now();
    let mut core = MultiContext::new(now);
    core.open(7, "  Hello there.  ");
    let frames = sent(&mut core);
    assert_eq!(frames.len(), 3);
    assert_eq!(frames[0]["text"], " ");
    assert_eq!(frames[0]["context_id"], "ctx-7");
    assert!(frames[0]["voice_settings"]["stability"].is_number());
    assert_eq!(
        frames[1],
        serde_json::json!({"text": "Hello there. ", "context_id": "ctx-7", "flush": true})
    );
    assert_eq!(
        frames[2],
        serde_json::json!({"context_id": "ctx-7", "close_context": true})
    );
    assert!(core.poll_transmit().is_none());
}

#[test]
fn interleaved_audio_goes_to_its_context_until_final() {
    let now = Instant::now();
    let mut core = MultiContext::new(now);
    core.open(1, "One.");
    core.open(2, "Two.");
    sent(&mut core);
    core.handle_text(now, &audio_message("ctx-2", &[20, 21]));
    core.handle_text(now, &audio_message("ctx-1", &[10]));
    core.handle_text(now, r#"{"isFinal": true, "contextId": "ctx-1"}"#);
    core.handle_text(now, &audio_message("ctx-2", &[22]));
    core.handle_text(
        now,
        r#"{"audio": null, "isFinal": true, "contextId": "ctx-2"}"#,
    );
    assert_eq!(
        events(&mut core),
        vec![
            (2, ContextEvent::Audio(vec![20, 21])),
            (1, ContextEvent::Audio(vec![10])),
            (1, ContextEvent::Finished),
            (2, ContextEvent::Audio(vec![22])),
            (2, ContextEvent::Finished),
        ]
    );
    // Late audio for an ended context is ignored.
    core.handle_text(now, &audio_message("ctx-1", &[99]));
    assert!(events(&mut core).is_empty());
    assert!(!core.is_closed());
}

#[test]
fn a_sample_split_between_messages_is_joined() {
    let now = Instant::now();
    let mut core = MultiContext::new(now);
    core.open(1, "x");
    let bytes: Vec<u8> = [1000i16, -1000]
        .iter()
        .flat_map(|s| s.to_le_bytes())
        .collect();
    for part in [&bytes[..1], &bytes[1..3], &bytes[3..]] {
        let msg = serde_json::json!({"audio": B64.encode(part), "contextId": "ctx-1"});
        core.handle_text(now, &msg.to_string());
    }
    let audio: Vec<i16> = events(&mut core)
        .into_iter()
        .flat_map(|(_, e)| match e {
            ContextEvent::Audio(pcm) => pcm,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(audio, vec![1000, -1000]);
}

#[test]
fn cancelling_before_sending_drops_the_frames() {
    let now = Instant::now();
    let mut core = MultiContext::new(now);
    core.open(1, "One.");
    core.open(2, "Two.");
    core.cancel(now, 1);
    assert_eq!(events(&mut core), vec![(1, ContextEvent::Finished)]);
    let frames = sent(&mut core);
    assert_eq!(frames.len(), 3);
    assert!(frames.iter().all(|f| f["context_id"] == "ctx-2"));
}

#[test]
fn a_cancelled_context_discards_audio_until_its_final() {
    let now = Instant::now();
    let mut core = MultiContext::new(now);
    core.open(1, "One.");
    sent(&mut core);
    core.handle_text(now, &audio_message("ctx-1", &[1]));
    core.cancel(now, 1);
    core.handle_text(now, &audio_message("ctx-1", &[2]));
    core.handle_text(now, r#"{"isFinal": true, "contextId": "ctx-1"}"#);
    assert_eq!(
        events(&mut core),
        vec![
            (1, ContextEvent::Audio(vec![1])),
            (1, ContextEvent::Finished)
        ]
    );
}

#[test]
fn an_error_for_one_context_fails_only_that_one() {
    let now = Instant::now();
    let mut core = MultiContext::new(now);
    core.open(1, "One.");
    core.open(2, "Two.");
    sent(&mut core);
    core.handle_text(
        now,
        r#"{"error": "input_invalid", "message": "Text too long", "contextId": "ctx-1"}"#,
    );
    let got = events(&mut core);
    assert_eq!(got.len(), 1);
    let (context, ContextEvent::Failed(failure)) = &got[0] else {
        panic!("{got:?}")
    };
    assert_eq!(*context, 1);
    assert_eq!(failure.message, "elevenlabs: input_invalid: Text too long");
    assert_eq!(failure.retry_after, None);
    assert!(!core.is_closed());
}

#[test]
fn a_socket_wide_error_or_garbage_fails_every_context_and_closes() {
    let now = Instant::now();
    for bad in [
        r#"{"message": "Unusual activity detected", "error": "quota_exceeded", "code": 1008}"#,
        "this is not json",
        "[1, 2]",
    ] {
        let mut core = MultiContext::new(now);
        core.open(1, "One.");
        core.open(2, "Two.");
        core.handle_text(now, bad);
        let got = events(&mut core);
        assert_eq!(got.len(), 2, "{bad}");
        for (_, event) in got {
            let ContextEvent::Failed(failure) = event else {
                panic!("{event:?}")
            };
            assert!(failure.message.starts_with("elevenlabs: "), "{failure:?}");
        }
        assert!(core.is_closed());
        // Nothing more goes out on a socket that failed.
        assert!(core.poll_transmit().is_none());
    }
}

#[test]
fn losing_the_socket_fails_open_contexts_with_its_reason() {
    let now = Instant::now();
    let mut core = MultiContext::new(now);
    core.open(1, "One.");
    sent(&mut core);
    core.handle_text(now, &audio_message("ctx-1", &[5]));
    let lost = Failure::retryable("elevenlabs: connection lost: reset", Duration::ZERO);
    core.handle_closed(now, lost.clone());
    assert_eq!(
        events(&mut core),
        vec![
            (1, ContextEvent::Audio(vec![5])),
            (1, ContextEvent::Failed(lost))
        ]
    );
    core.open(2, "Two.");
    let got = events(&mut core);
    assert!(matches!(&got[..], [(2, ContextEvent::Failed(f))] if f.retry_after.is_some()));
}

#[test]
fn an_idle_socket_closes_before_the_server_times_it_out() {
    let start = Instant::now();
    let mut core = MultiContext::new(start);
    assert_eq!(core.poll_timeout(), Some(start + IDLE_CLOSE));
    assert!(IDLE_CLOSE < Duration::from_secs(INACTIVITY_TIMEOUT_SECS));

    // A context in flight keeps it open however long it takes.
    core.open(1, "One.");
    assert_eq!(core.poll_timeout(), None);
    assert!(!core.handle_timeout(start + IDLE_CLOSE * 2));

    let ended = start + Duration::from_secs(200);
    core.handle_text(ended, r#"{"isFinal": true, "contextId": "ctx-1"}"#);
    assert_eq!(core.poll_timeout(), Some(ended + IDLE_CLOSE));
    assert!(!core.handle_timeout(ended + IDLE_CLOSE - Duration::from_millis(1)));
    assert!(core.handle_timeout(ended + IDLE_CLOSE));
    assert!(core.is_closed());
}

#[test]
fn messages_without_a_known_context_are_ignored() {
    let now = Instant::now();
    let mut core = MultiContext::new(now);
    core.open(1, "One.");
    core.handle_text(now, r#"{"isFinal": true}"#);
    core.handle_text(now, &audio_message("someone-else", &[1]));
    core.handle_text(
        now,
        r#"{"normalizedAlignment": null, "contextId": "ctx-1"}"#,
    );
    assert!(events(&mut core).is_empty());
    assert!(!core.is_closed());
}
