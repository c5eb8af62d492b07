//! Word error rate of the offline recogniser (Whisper base, as a call runs it) on callers that
//! are not our own voice: espeak-ng voices and rates over an 8 kHz μ-law line with noise.
//!
//! ```text
//! python3 fixtures/wer/make_wer_audio.py target/wer-audio
//! cargo run --example wer -- target/wer-audio/manifest.tsv [--verbose] [--no-vocabulary]
//! ```
//!
//! The recogniser is primed with the vocabulary of the agent of `fixtures/calls/espeak_checkup`
//! (Bright Smile Dental), as a call to that agent would be; `--no-vocabulary` leaves it out.
//!
//! Each clip goes through a recognition stream the way a call's audio does (speech start, 20 ms
//! frames, speech end, the final). Both sides are normalised the same way before scoring:
//! lowercase, numbers said as words in digits (`boltcall::agent::numerals`), punctuation
//! dropped, every digit a word of its own ("415-555" and "four one five five five five" match).

use std::collections::BTreeMap;
use std::path::PathBuf;

use boltcall::agent::numerals::digits_for_numbers;
use boltcall::agent::vocabulary::call_vocabulary;
use boltcall::providers::llm::KnowledgeDoc;
use boltcall::providers::models;
use boltcall::providers::stt::vocabulary::Vocabulary;
use boltcall::providers::stt::whisper::WhisperStt;
use boltcall::providers::stt::{SpeechToText, SttEvent, SttInput};
use boltcall::replay::caller_audio::load_frames;
use boltcall::replay::scenario::Scenario;

/// The words WER counts: see the module comment.
fn words(text: &str) -> Vec<String> {
    let text = digits_for_numbers(text).to_lowercase();
    let mut out = Vec::new();
    for word in text.split(|c: char| c.is_whitespace() || c == '-' || c == ':') {
        let word: String = word.chars().filter(|c| c.is_alphanumeric()).collect();
        if word.chars().all(|c| c.is_ascii_digit()) {
            out.extend(word.chars().map(String::from));
        } else {
            out.push(word);
        }
    }
    out
}

/// Word-level edit distance: substitutions + deletions + insertions.
fn edits(reference: &[String], hypothesis: &[String]) -> usize {
    let mut row: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, h) in hypothesis.iter().enumerate() {
            let substitution = diagonal + usize::from(r != h);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[hypothesis.len()]
}

/// The vocabulary a call to the fixture agent is primed with.
fn agent_vocabulary() -> anyhow::Result<Vocabulary> {
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/calls/espeak_checkup");
    let agent = Scenario::load(&fixture)?.agent;
    let knowledge: Vec<KnowledgeDoc> = agent
        .knowledge
        .into_iter()
        .map(|d| KnowledgeDoc {
            title: d.title,
            text: d.text,
        })
        .collect();
    Ok(call_vocabulary(
        &agent.name,
        agent.greeting.as_deref(),
        agent.prompt.as_deref(),
        &knowledge,
    ))
}

async fn recognise(
    stt: &WhisperStt,
    vocabulary: &Vocabulary,
    clip: &std::path::Path,
) -> anyhow::Result<String> {
    let frames = load_frames(clip)?;
    let mut stream = stt.open_for(vocabulary);
    stream.input.send(SttInput::SpeechStart).await?;
    for frame in frames {
        stream.input.send(SttInput::Audio(frame)).await?;
    }
    stream.input.send(SttInput::SpeechEnd).await?;
    while let Some(event) = stream.events.recv().await {
        match event {
            SttEvent::Partial { .. } => {}
            SttEvent::Final { text } => return Ok(text),
            SttEvent::Error { message } => anyhow::bail!(message),
        }
    }
    anyhow::bail!("stream ended without a final")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let verbose = args.iter().any(|a| a == "--verbose");
    let vocabulary = if args.iter().any(|a| a == "--no-vocabulary") {
        Vocabulary::default()
    } else {
        agent_vocabulary()?
    };
    if verbose {
        println!("vocabulary: {:?}", vocabulary.terms());
    }
    let manifest = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .ok_or_else(|| anyhow::anyhow!("usage: wer MANIFEST.tsv [--verbose] [--no-vocabulary]"))?;
    let data_dir = std::env::var_os("BOLTCALL_DATA_DIR")
        .map_or_else(|| PathBuf::from("./data"), PathBuf::from);
    let paths = models::ensure_installed(&data_dir).await?;
    let stt = WhisperStt::load(&paths.whisper)?;

    // voice → (edits, reference words)
    let mut scores: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for line in std::fs::read_to_string(&manifest)?.lines() {
        let mut fields = line.splitn(3, '\t');
        let (Some(voice), Some(clip), Some(reference)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let heard = recognise(&stt, &vocabulary, clip.as_ref()).await?;
        let (r, h) = (words(reference), words(&heard));
        let e = edits(&r, &h);
        if verbose {
            println!("{voice}\t{e}/{}\t{heard}", r.len());
        }
        let score = scores.entry(voice.to_string()).or_default();
        score.0 += e;
        score.1 += r.len();
    }
    let (mut all_edits, mut all_words) = (0, 0);
    println!("voice\tWER\t(edits/words)");
    for (voice, (e, n)) in &scores {
        println!("{voice}\t{:.1} %\t({e}/{n})", 100.0 * *e as f64 / *n as f64);
        all_edits += e;
        all_words += n;
    }
    println!(
        "all\t{:.1} %\t({all_edits}/{all_words})",
        100.0 * all_edits as f64 / all_words.max(1) as f64
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_are_normalised_alike() {
        assert_eq!(
            words("My number is four one five, 555-98."),
            ["my", "number", "is", "4", "1", "5", "5", "5", "5", "9", "8"]
        );
        assert_eq!(words("at ten thirty?"), words("At 10:30"));
    }

    #[test]
    fn edits_count_substitutions_insertions_and_deletions() {
        let w = |s: &str| words(s);
        assert_eq!(edits(&w("a b c"), &w("a b c")), 0);
        assert_eq!(edits(&w("a b c"), &w("a x c")), 1);
        assert_eq!(edits(&w("a b c"), &w("a c")), 1);
        assert_eq!(edits(&w("a b c"), &w("a b c d e")), 2);
        assert_eq!(edits(&w("a b"), &w("")), 2);
    }
}
