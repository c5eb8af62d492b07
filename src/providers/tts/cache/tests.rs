use std::sync::Mutex as StdMutex;

use tokio::sync::Semaphore;

use super::*;
use crate::providers::tts::VOICES;

/// An engine whose audio encodes its text, that counts its work, can be held back, and fails
/// the texts it is told to fail once.
struct FakeEngine {
    calls: AtomicU64,
    gate: Semaphore,
    fail_once: StdMutex<Vec<String>>,
}

impl FakeEngine {
    fn new(open: bool) -> Arc<Self> {
        Arc::new(FakeEngine {
            calls: AtomicU64::new(0),
            gate: Semaphore::new(if open { Semaphore::MAX_PERMITS } else { 0 }),
            fail_once: StdMutex::new(Vec::new()),
        })
    }
}

fn audio_of(text: &str) -> Vec<i16> {
    text.bytes().map(i16::from).collect()
}

impl TextToSpeech for Arc<FakeEngine> {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn synthesize(
        &self,
        text: String,
        _voice: &'static Voice,
    ) -> mpsc::Receiver<Result<Vec<i16>, TtsError>> {
        let (tx, rx) = mpsc::channel(4);
        let engine = self.clone();
        tokio::spawn(async move {
            let _permit = engine.gate.acquire().await.expect("gate open");
            engine.calls.fetch_add(1, Ordering::SeqCst);
            let failing = {
                let mut fail = engine.fail_once.lock().unwrap();
                let at = fail.iter().position(|t| *t == text);
                at.map(|i| fail.remove(i)).is_some()
            };
            let result = if failing {
                Err(TtsError("engine down".into()))
            } else {
                Ok(audio_of(&text))
            };
            let _ = tx.send(result).await;
        });
        rx
    }
}

async fn cached(engine: &Arc<FakeEngine>, dir: &std::path::Path, disk_bytes: u64) -> CachedTts {
    CachedTts::new(
        Arc::new(engine.clone()),
        SpeechCacheSettings {
            memory_bytes: 1 << 20,
            disk_bytes,
            dir: dir.to_path_buf(),
        },
    )
    .await
}

async fn speak(tts: &CachedTts, text: &str, voice: &'static Voice) -> Result<Vec<i16>, TtsError> {
    let mut rx = tts.synthesize(text.to_string(), voice);
    let mut audio = Vec::new();
    while let Some(chunk) = rx.recv().await {
        audio.extend(chunk?);
    }
    Ok(audio)
}

const GREETING: &str = "Thanks for calling Bright Smile Dental. How can I help you today?";

#[tokio::test]
async fn each_sentence_is_synthesised_once_and_then_served_from_memory() {
    let dir = tempfile::tempdir().unwrap();
    let engine = FakeEngine::new(true);
    let tts = cached(&engine, dir.path(), 0).await;
    let first = speak(&tts, GREETING, &VOICES[0]).await.unwrap();
    assert_eq!(
        first,
        [
            audio_of("Thanks for calling Bright Smile Dental."),
            audio_of("How can I help you today?")
        ]
        .concat()
    );
    assert_eq!(engine.calls.load(Ordering::SeqCst), 2);
    for _ in 0..3 {
        assert_eq!(speak(&tts, GREETING, &VOICES[0]).await.unwrap(), first);
    }
    // A reply that repeats one of those sentences reuses it too.
    speak(&tts, "How can I help you today? Bye.", &VOICES[0])
        .await
        .unwrap();
    assert_eq!(engine.calls.load(Ordering::SeqCst), 3);
    assert_eq!((tts.syntheses(), tts.hits()), (3, 7));
}

#[tokio::test]
async fn a_burst_of_calls_waits_for_one_synthesis() {
    let dir = tempfile::tempdir().unwrap();
    let engine = FakeEngine::new(false);
    let tts = cached(&engine, dir.path(), 0).await;
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let tts = tts.clone();
            tokio::spawn(async move { speak(&tts, "Hello there.", &VOICES[0]).await })
        })
        .collect();
    tokio::task::yield_now().await;
    engine.gate.add_permits(Semaphore::MAX_PERMITS / 2);
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap(), audio_of("Hello there."));
    }
    assert_eq!(engine.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn another_voice_is_another_entry() {
    let dir = tempfile::tempdir().unwrap();
    let engine = FakeEngine::new(true);
    let tts = cached(&engine, dir.path(), 0).await;
    speak(&tts, "Hello.", &VOICES[0]).await.unwrap();
    speak(&tts, "Hello.", &VOICES[1]).await.unwrap();
    speak(&tts, "Hello.", &VOICES[1]).await.unwrap();
    assert_eq!(engine.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_failed_synthesis_is_reported_and_not_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let engine = FakeEngine::new(true);
    engine.fail_once.lock().unwrap().push("Hello.".into());
    let tts = cached(&engine, dir.path(), 0).await;
    let err = speak(&tts, "Hello.", &VOICES[0]).await.unwrap_err();
    assert_eq!(err.0, "engine down");
    assert_eq!(
        speak(&tts, "Hello.", &VOICES[0]).await.unwrap(),
        audio_of("Hello.")
    );
    assert_eq!(engine.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_caller_hanging_up_does_not_fail_the_others_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let engine = FakeEngine::new(false);
    let tts = cached(&engine, dir.path(), 0).await;
    let first = tts.synthesize("Hello there.".into(), &VOICES[0]);
    tokio::task::yield_now().await;
    let second = {
        let tts = tts.clone();
        tokio::spawn(async move { speak(&tts, "Hello there.", &VOICES[0]).await })
    };
    tokio::task::yield_now().await;
    drop(first);
    engine.gate.add_permits(1);
    assert_eq!(second.await.unwrap().unwrap(), audio_of("Hello there."));
    assert_eq!(engine.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_disk_tier_serves_a_restarted_engine() {
    let dir = tempfile::tempdir().unwrap();
    let engine = FakeEngine::new(true);
    let before = cached(&engine, dir.path(), 1 << 20).await;
    speak(&before, GREETING, &VOICES[0]).await.unwrap();
    // Disk writes are in the background; wait until both files are there.
    while std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("pcm".as_ref()))
        .count()
        < 2
    {
        tokio::task::yield_now().await;
    }
    let after = cached(&engine, dir.path(), 1 << 20).await;
    let audio = speak(&after, GREETING, &VOICES[0]).await.unwrap();
    assert_eq!(
        audio.len(),
        GREETING.len() - 1,
        "both sentences, without the space"
    );
    assert_eq!(engine.calls.load(Ordering::SeqCst), 2);
    assert_eq!((after.syntheses(), after.hits()), (0, 2));
}

/// Sends a sentence in two halves, the second only once released.
struct HalvesEngine {
    release: tokio::sync::Notify,
}

impl TextToSpeech for Arc<HalvesEngine> {
    fn name(&self) -> &'static str {
        "halves"
    }

    fn synthesize(
        &self,
        text: String,
        _voice: &'static Voice,
    ) -> mpsc::Receiver<Result<Vec<i16>, TtsError>> {
        let (tx, rx) = mpsc::channel(4);
        let engine = self.clone();
        tokio::spawn(async move {
            let audio = audio_of(&text);
            let (first, second) = audio.split_at(audio.len() / 2);
            let _ = tx.send(Ok(first.to_vec())).await;
            engine.release.notified().await;
            let _ = tx.send(Ok(second.to_vec())).await;
        });
        rx
    }
}

#[tokio::test]
async fn a_miss_streams_the_engines_audio_as_it_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(HalvesEngine {
        release: tokio::sync::Notify::new(),
    });
    let tts = CachedTts::new(
        Arc::new(engine.clone()),
        SpeechCacheSettings {
            memory_bytes: 1 << 20,
            disk_bytes: 0,
            dir: dir.path().to_path_buf(),
        },
    )
    .await;
    let whole = audio_of("Hello there.");
    let mut first = tts.synthesize("Hello there.".into(), &VOICES[0]);
    let mut second = tts.synthesize("Hello there.".into(), &VOICES[0]);
    // Both callers hear the first half while the engine is still held on the second.
    for rx in [&mut first, &mut second] {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
            .await
            .expect("the first half arrives before the sentence is finished")
            .expect("open")
            .expect("audio");
        assert_eq!(chunk, whole[..whole.len() / 2]);
    }
    engine.release.notify_one();
    for rx in [&mut first, &mut second] {
        let mut rest = Vec::new();
        while let Some(chunk) = rx.recv().await {
            rest.extend(chunk.unwrap());
        }
        assert_eq!(rest, whole[whole.len() / 2..]);
    }
    assert_eq!(
        speak(&tts, "Hello there.", &VOICES[0]).await.unwrap(),
        whole
    );
    assert_eq!((tts.hits(), tts.syntheses()), (1, 1));
}
