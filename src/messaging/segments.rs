//! How many SMS segments a body takes. A body that fits GSM-7 (the basic table, extension
//! characters costing two septets) is 160 septets in one segment, or 153 per segment once split
//! (the rest carries the concatenation header); anything else goes as UCS-2: 70 UTF-16 units, or
//! 67 per segment. A split never cuts an escape pair or a surrogate pair.

/// GSM 03.38 basic character set (the escape code excluded).
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                          ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// GSM 03.38 extension table: each is sent as escape + character, two septets.
const GSM7_EXTENSION: &str = "^{}\\[~]|€\u{000C}";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

/// The encoding a body is sent in and the number of segments it takes (0 for an empty body).
pub fn count(body: &str) -> (Encoding, u32) {
    match gsm7_units(body) {
        Some(units) => (Encoding::Gsm7, pack(&units, 160, 153)),
        None => {
            let units: Vec<u32> = body.chars().map(|c| c.len_utf16() as u32).collect();
            (Encoding::Ucs2, pack(&units, 70, 67))
        }
    }
}

/// Septets per character, or `None` when a character is outside GSM-7.
fn gsm7_units(body: &str) -> Option<Vec<u32>> {
    body.chars()
        .map(|c| {
            if GSM7_BASIC.contains(c) {
                Some(1)
            } else if GSM7_EXTENSION.contains(c) {
                Some(2)
            } else {
                None
            }
        })
        .collect()
}

/// Segments for characters of `units` each: one if all fit `single`, else packed greedily into
/// segments of `split` without cutting a character.
fn pack(units: &[u32], single: u32, split: u32) -> u32 {
    let total: u32 = units.iter().sum();
    if total == 0 {
        return 0;
    }
    if total <= single {
        return 1;
    }
    let (mut segments, mut used) = (1, 0);
    for &u in units {
        if used + u > split {
            segments += 1;
            used = 0;
        }
        used += u;
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm7_fits_160_then_splits_at_153() {
        assert_eq!(count(""), (Encoding::Gsm7, 0));
        assert_eq!(count(&"a".repeat(160)), (Encoding::Gsm7, 1));
        assert_eq!(count(&"a".repeat(161)), (Encoding::Gsm7, 2));
        assert_eq!(count(&"a".repeat(306)), (Encoding::Gsm7, 2));
        assert_eq!(count(&"a".repeat(307)), (Encoding::Gsm7, 3));
        assert_eq!(count("Hello @ £5, Ñoñò! ¿Qué?").0, Encoding::Gsm7);
    }

    #[test]
    fn extension_characters_count_double() {
        assert_eq!(count(&"€".repeat(80)), (Encoding::Gsm7, 1));
        assert_eq!(count(&"€".repeat(81)), (Encoding::Gsm7, 2));
        // 306 septets would be two segments of 153, but the pair after the first 152 septets
        // moves whole to the second segment, and the last pair to a third.
        let body = format!("{}{}", "a".repeat(152), "[".repeat(77));
        assert_eq!(count(&body), (Encoding::Gsm7, 3));
    }

    #[test]
    fn anything_else_is_ucs2_70_then_67() {
        assert_eq!(count(&"é".repeat(200)).0, Encoding::Gsm7, "é is in GSM-7");
        assert_eq!(count(&"ç".repeat(70)), (Encoding::Ucs2, 1), "only Ç is");
        assert_eq!(count(&"ç".repeat(71)), (Encoding::Ucs2, 2));
        assert_eq!(count(&"ж".repeat(134)), (Encoding::Ucs2, 2));
        assert_eq!(count(&"ж".repeat(135)), (Encoding::Ucs2, 3));
        // One emoji turns the whole body UCS-2 and takes two UTF-16 units.
        assert_eq!(count(&format!("{}😀", "a".repeat(68))), (Encoding::Ucs2, 1));
        assert_eq!(count(&format!("{}😀", "a".repeat(69))), (Encoding::Ucs2, 2));
        // 66 units then a surrogate pair: the pair is not cut.
        let body = format!("{}{}", "a".repeat(66), "😀".repeat(3));
        assert_eq!(count(&body), (Encoding::Ucs2, 2));
    }
}
