//! A recognizer for call tests: every speech segment the VAD closes is heard as one fixed text.

use boltcall::providers::stt::{SpeechToText, SttEvent, SttInput, SttStream};
use tokio::sync::mpsc;

pub struct ScriptedStt(pub &'static str);

impl SpeechToText for ScriptedStt {
    fn name(&self) -> &'static str {
        "scripted"
    }
    fn open(&self) -> SttStream {
        let (input, mut rx) = mpsc::channel(256);
        let (tx, events) = mpsc::channel(16);
        let heard = self.0;
        tokio::spawn(async move {
            while let Some(item) = rx.recv().await {
                if let SttInput::SpeechEnd = item {
                    let _ = tx.send(SttEvent::Final { text: heard.into() }).await;
                }
            }
        });
        SttStream { input, events }
    }
}
