//! GPT-2's byte-level BPE vocabulary writes every byte as a printable character; whisper.cpp
//! wants the raw bytes back.

use std::collections::HashMap;

/// The character GPT-2 uses for each byte value.
fn byte_chars() -> [char; 256] {
    let printable = |b: u32| {
        (u32::from(b'!')..=u32::from(b'~')).contains(&b)
            || (0xA1..=0xAC).contains(&b)
            || (0xAE..=0xFF).contains(&b)
    };
    let mut chars = ['\0'; 256];
    let mut shifted = 0u32;
    for b in 0..256u32 {
        let code = if printable(b) {
            b
        } else {
            shifted += 1;
            255 + shifted
        };
        // Every code is below 0x200, so always a valid scalar value.
        chars[b as usize] = char::from_u32(code).unwrap_or('\0');
    }
    chars
}

#[derive(Debug, thiserror::Error)]
#[error("token {index} ({token:?}) has a character outside GPT-2's byte alphabet")]
pub struct BadToken {
    pub index: usize,
    pub token: String,
}

/// Decodes tokens written in GPT-2's byte alphabet into their raw bytes.
pub struct ByteDecoder {
    bytes: HashMap<char, u8>,
}

impl Default for ByteDecoder {
    fn default() -> Self {
        let bytes = byte_chars()
            .iter()
            .enumerate()
            .map(|(b, c)| (*c, b as u8))
            .collect();
        ByteDecoder { bytes }
    }
}

impl ByteDecoder {
    pub fn decode(&self, index: usize, token: &str) -> Result<Vec<u8>, BadToken> {
        token
            .chars()
            .map(|c| self.bytes.get(&c).copied())
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| BadToken {
                index,
                token: token.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_has_a_distinct_character() {
        let chars = byte_chars();
        let distinct: std::collections::HashSet<char> = chars.iter().copied().collect();
        assert_eq!(distinct.len(), 256);
        assert_eq!(chars[usize::from(b'A')], 'A');
        // Space and newline are the famous shifted ones.
        assert_eq!(chars[usize::from(b' ')], 'Ġ');
        assert_eq!(chars[usize::from(b'\n')], 'Ċ');
    }

    #[test]
    fn decodes_tokens_and_rejects_foreign_characters() {
        let d = ByteDecoder::default();
        assert_eq!(d.decode(0, "Ġhello").unwrap(), b" hello");
        assert_eq!(d.decode(1, "ÃŃ").unwrap(), "í".as_bytes());
        let err = d.decode(7, "a\u{4e00}").unwrap_err();
        assert_eq!(err.index, 7);
    }
}
