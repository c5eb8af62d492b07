//! ITU-T G.711 μ-law and A-law companding, bit-exact with the ITU tables.
//!
//! Decoding goes through 256-entry tables built at compile time; encoding computes the
//! segment from the leading zeros, so neither direction branches much or allocates.

use thiserror::Error;

/// Slice lengths that do not line up.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("output holds {output} samples but input has {input}")]
pub struct LengthMismatch {
    pub input: usize,
    pub output: usize,
}

/// Which companding law a G.711 payload uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Law {
    /// PCMU (RTP payload type 0), North America and Japan; Twilio Media Streams.
    MuLaw,
    /// PCMA (RTP payload type 8), the rest of the world.
    ALaw,
}

impl Law {
    /// Encodes `pcm` into `out` (one byte per sample).
    pub fn encode(self, pcm: &[i16], out: &mut [u8]) -> Result<(), LengthMismatch> {
        match self {
            Law::MuLaw => encode_ulaw(pcm, out),
            Law::ALaw => encode_alaw(pcm, out),
        }
    }

    /// Decodes `bytes` into `out` (one sample per byte).
    pub fn decode(self, bytes: &[u8], out: &mut [i16]) -> Result<(), LengthMismatch> {
        match self {
            Law::MuLaw => decode_ulaw(bytes, out),
            Law::ALaw => decode_alaw(bytes, out),
        }
    }

    /// The code for digital silence (what a idle line carries).
    pub fn silence(self) -> u8 {
        match self {
            Law::MuLaw => 0xFF,
            Law::ALaw => 0xD5,
        }
    }
}

const ULAW_BIAS: i32 = 0x84;
/// Largest magnitude μ-law represents, in 14-bit units.
const ULAW_CLIP: i32 = 8159;

/// μ-law code for one 16-bit sample, rounded to G.711's 14-bit μ-law input first (as sox does).
pub fn ulaw_from_linear(sample: i16) -> u8 {
    let mut value = ((i32::from(sample) + 2) >> 2).min(0x1FFF);
    let mask: u8 = if value < 0 {
        value = -value;
        0x7F
    } else {
        0xFF
    };
    let biased = value.min(ULAW_CLIP) + (ULAW_BIAS >> 2);
    // biased is in 0x21..=0x2000: its top bit position gives the segment; the clip value
    // itself lands one past the last segment and takes the largest code.
    let segment = (31 - biased.leading_zeros() as i32 - 5).max(0);
    if segment >= 8 {
        return 0x7F ^ mask;
    }
    let mantissa = (biased >> (segment + 1)) & 0x0F;
    ((segment << 4) as u8 | mantissa as u8) ^ mask
}

/// 16-bit sample for one μ-law code.
pub const fn ulaw_to_linear(code: u8) -> i16 {
    let code = !code;
    let mut t = (((code & 0x0F) as i32) << 3) + ULAW_BIAS;
    t <<= (code & 0x70) >> 4;
    (if code & 0x80 != 0 {
        ULAW_BIAS - t
    } else {
        t - ULAW_BIAS
    }) as i16
}

/// A-law code for one 16-bit sample, rounded to G.711's 13-bit A-law input first (as sox does).
pub fn alaw_from_linear(sample: i16) -> u8 {
    let mut value = ((i32::from(sample) + 4) >> 3).min(0xFFF);
    let mask: u8 = if value >= 0 {
        0xD5
    } else {
        value = -value - 1;
        0x55
    };
    // value is in 0..=0xFFF: segment 0 covers 0..=0x1F, each further segment doubles.
    let segment = (32 - value.leading_zeros() as i32 - 5).max(0);
    let mantissa = if segment < 2 {
        (value >> 1) & 0x0F
    } else {
        (value >> segment) & 0x0F
    };
    ((segment << 4) as u8 | mantissa as u8) ^ mask
}

/// 16-bit sample for one A-law code.
pub const fn alaw_to_linear(code: u8) -> i16 {
    let code = code ^ 0x55;
    let mut t = ((code & 0x0F) as i32) << 4;
    let segment = (code & 0x70) >> 4;
    match segment {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= segment - 1;
        }
    }
    (if code & 0x80 != 0 { t } else { -t }) as i16
}

const fn table(alaw: bool) -> [i16; 256] {
    let mut out = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        out[i] = if alaw {
            alaw_to_linear(i as u8)
        } else {
            ulaw_to_linear(i as u8)
        };
        i += 1;
    }
    out
}

static ULAW_TABLE: [i16; 256] = table(false);
static ALAW_TABLE: [i16; 256] = table(true);

fn check(input: usize, output: usize) -> Result<(), LengthMismatch> {
    if input == output {
        Ok(())
    } else {
        Err(LengthMismatch { input, output })
    }
}

/// Encodes PCM16 into μ-law; `out` must be as long as `pcm`.
pub fn encode_ulaw(pcm: &[i16], out: &mut [u8]) -> Result<(), LengthMismatch> {
    check(pcm.len(), out.len())?;
    for (o, &s) in out.iter_mut().zip(pcm) {
        *o = ulaw_from_linear(s);
    }
    Ok(())
}

/// Decodes μ-law into PCM16; `out` must be as long as `bytes`.
pub fn decode_ulaw(bytes: &[u8], out: &mut [i16]) -> Result<(), LengthMismatch> {
    check(bytes.len(), out.len())?;
    for (o, &b) in out.iter_mut().zip(bytes) {
        *o = ULAW_TABLE[usize::from(b)];
    }
    Ok(())
}

/// Encodes PCM16 into A-law; `out` must be as long as `pcm`.
pub fn encode_alaw(pcm: &[i16], out: &mut [u8]) -> Result<(), LengthMismatch> {
    check(pcm.len(), out.len())?;
    for (o, &s) in out.iter_mut().zip(pcm) {
        *o = alaw_from_linear(s);
    }
    Ok(())
}

/// Decodes A-law into PCM16; `out` must be as long as `bytes`.
pub fn decode_alaw(bytes: &[u8], out: &mut [i16]) -> Result<(), LengthMismatch> {
    check(bytes.len(), out.len())?;
    for (o, &b) in out.iter_mut().zip(bytes) {
        *o = ALAW_TABLE[usize::from(b)];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/media/");

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{FIXTURES}{name}")).expect("fixture present")
    }

    fn every_sample() -> Vec<i16> {
        (i16::MIN..=i16::MAX).collect()
    }

    fn s16le(bytes: &[u8]) -> Vec<i16> {
        bytes
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect()
    }

    fn first_difference<T: PartialEq + Copy>(a: &[T], b: &[T]) -> Option<usize> {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).position(|(x, y)| x != y)
    }

    #[test]
    fn ulaw_encoding_matches_sox_for_every_sample() {
        let pcm = every_sample();
        let mut ours = vec![0u8; pcm.len()];
        encode_ulaw(&pcm, &mut ours).unwrap();
        let reference = fixture("g711_ramp.ulaw");
        assert_eq!(first_difference(&ours, &reference), None);
    }

    #[test]
    fn alaw_encoding_matches_sox_for_every_sample() {
        let pcm = every_sample();
        let mut ours = vec![0u8; pcm.len()];
        encode_alaw(&pcm, &mut ours).unwrap();
        let reference = fixture("g711_ramp.alaw");
        assert_eq!(first_difference(&ours, &reference), None);
    }

    #[test]
    fn decoding_matches_sox_for_every_code() {
        let codes: Vec<u8> = (0..=255).collect();
        for (law, name) in [
            (Law::MuLaw, "g711_ulaw_decoded.s16le"),
            (Law::ALaw, "g711_alaw_decoded.s16le"),
        ] {
            let mut ours = vec![0i16; 256];
            law.decode(&codes, &mut ours).unwrap();
            let reference = s16le(&fixture(name));
            assert_eq!(first_difference(&ours, &reference), None, "{law:?}");
        }
    }

    #[test]
    fn decode_then_encode_is_identity_on_codes() {
        for law in [Law::MuLaw, Law::ALaw] {
            for code in 0..=255u8 {
                let mut pcm = [0i16];
                law.decode(&[code], &mut pcm).unwrap();
                let mut back = [0u8];
                law.encode(&pcm, &mut back).unwrap();
                // μ-law has two zeros (0x7F and 0xFF); both decode to 0 and re-encode to 0xFF.
                if law == Law::MuLaw && code == 0x7F {
                    assert_eq!(back[0], 0xFF);
                } else {
                    assert_eq!(back[0], code, "{law:?} code {code:#x}");
                }
            }
        }
    }

    #[test]
    fn silence_codes_decode_to_zero() {
        for law in [Law::MuLaw, Law::ALaw] {
            let mut pcm = [1i16];
            law.decode(&[law.silence()], &mut pcm).unwrap();
            assert!(pcm[0].abs() <= 8, "{law:?}");
        }
    }

    #[test]
    fn zero_encodes_to_the_silence_code() {
        for law in [Law::MuLaw, Law::ALaw] {
            let mut code = [0u8; 4];
            law.encode(&[0; 4], &mut code).unwrap();
            assert_eq!(code, [law.silence(); 4], "{law:?}");
        }
    }

    #[test]
    fn mismatched_lengths_are_an_error() {
        let mut out = [0u8; 3];
        assert_eq!(
            encode_ulaw(&[0; 4], &mut out),
            Err(LengthMismatch {
                input: 4,
                output: 3
            })
        );
        let mut pcm = [0i16; 1];
        assert!(decode_alaw(&[0, 1], &mut pcm).is_err());
    }
}
