//! Text → IPA through the `espeak-ng` command (a separate process keeps espeak-ng's GPL out of
//! our binary), then IPA → the voice's phoneme ids.

use std::collections::HashMap;
use std::process::Stdio;

use tokio::io::AsyncWriteExt;

use crate::providers::tts::TtsError;

/// IPA for `text` in espeak-ng voice `voice`. espeak-ng prints one line per clause and drops
/// punctuation: clauses are joined with commas and the sentence's own final mark is kept, so
/// the voice pauses and intones as it would on punctuated text.
pub async fn ipa(text: &str, voice: &str) -> Result<String, TtsError> {
    let lines = run_espeak(&["-q", "--ipa", "-v", voice, "--stdin"], text).await?;
    let lines = String::from_utf8_lossy(&lines);
    let clauses: Vec<&str> = lines
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut out = clauses.join(", ");
    let mark = text
        .trim_end()
        .chars()
        .last()
        .filter(|c| matches!(c, '?' | '!'))
        .unwrap_or('.');
    out.push(mark);
    Ok(strip_language_tags(&out))
}

/// espeak-ng marks words it reads in another language's voice with `(fr)` … `(en)`.
fn strip_language_tags(ipa: &str) -> String {
    let mut out = String::with_capacity(ipa.len());
    let mut in_tag = false;
    for c in ipa.chars() {
        match c {
            '(' => in_tag = true,
            ')' if in_tag => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// Runs espeak-ng with `text` on stdin (never as an argument: text may start with `-`).
pub async fn run_espeak(args: &[&str], text: &str) -> Result<Vec<u8>, TtsError> {
    let mut child = tokio::process::Command::new("espeak-ng")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| TtsError(format!("cannot run espeak-ng (is it installed?): {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .await
            .map_err(|e| TtsError(format!("writing to espeak-ng: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| TtsError(format!("espeak-ng: {e}")))?;
    if !out.status.success() {
        return Err(TtsError(format!(
            "espeak-ng failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out.stdout)
}

/// The voice's `phoneme_id_map`: IPA character → ids.
pub struct PhonemeIds {
    map: HashMap<char, Vec<i64>>,
    bos: i64,
    eos: i64,
    pad: i64,
}

impl PhonemeIds {
    pub fn new(map: HashMap<String, Vec<i64>>) -> Result<Self, TtsError> {
        let single = |key: &str| {
            map.get(key)
                .and_then(|ids| ids.first().copied())
                .ok_or_else(|| TtsError(format!("phoneme_id_map has no {key:?}")))
        };
        let (bos, eos, pad) = (single("^")?, single("$")?, single("_")?);
        let map = map
            .into_iter()
            .filter_map(|(k, v)| {
                let mut chars = k.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => Some((c, v)),
                    _ => None,
                }
            })
            .collect();
        Ok(PhonemeIds { map, bos, eos, pad })
    }

    /// `^ _`, each known IPA character's ids followed by `_`, then `$`. Characters the
    /// voice does not know are skipped.
    pub fn ids(&self, ipa: &str) -> Vec<i64> {
        let mut ids = vec![self.bos, self.pad];
        for c in ipa.chars() {
            if let Some(v) = self.map.get(&c) {
                ids.extend_from_slice(v);
                ids.push(self.pad);
            }
        }
        ids.push(self.eos);
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> PhonemeIds {
        let map = [
            ("_", 0),
            ("^", 1),
            ("$", 2),
            (" ", 3),
            ("h", 20),
            ("ə", 59),
            ("ˈ", 120),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), vec![v]))
        .collect();
        PhonemeIds::new(map).unwrap()
    }

    #[test]
    fn ids_interleave_padding_and_skip_unknown_characters() {
        assert_eq!(
            ids().ids("hˈə x"),
            vec![1, 0, 20, 0, 120, 0, 59, 0, 3, 0, 2]
        );
        assert_eq!(ids().ids(""), vec![1, 0, 2]);
    }

    #[test]
    fn a_map_without_markers_is_rejected() {
        let map = [("a".to_string(), vec![5])].into_iter().collect();
        assert!(PhonemeIds::new(map).is_err());
    }

    #[test]
    fn language_tags_are_removed() {
        assert_eq!(
            strip_language_tags("(fr)bɔ̃ʒuːɹ(en) wˈɜːld"),
            "bɔ̃ʒuːɹ wˈɜːld"
        );
    }

    #[tokio::test]
    async fn espeak_ipa_joins_clauses_and_keeps_the_question() {
        let ipa = ipa("Hello, world. -How are you?", "en-us").await.unwrap();
        assert!(ipa.starts_with("həlˈoʊ, wˈɜːld"), "{ipa}");
        assert!(ipa.ends_with('?'), "{ipa}");
    }
}
