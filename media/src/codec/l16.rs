//! L16 (RFC 3551 §4.5.11): linear PCM16 in network byte order.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum L16Error {
    #[error("L16 payload has an odd length {0}")]
    OddLength(usize),
    #[error("output holds {output} samples but the input has {input}")]
    LengthMismatch { input: usize, output: usize },
}

/// Writes `pcm` big-endian into `out` (two bytes per sample).
pub fn encode(pcm: &[i16], out: &mut [u8]) -> Result<(), L16Error> {
    if out.len() != pcm.len() * 2 {
        return Err(L16Error::LengthMismatch {
            input: pcm.len(),
            output: out.len() / 2,
        });
    }
    for (o, s) in out.chunks_exact_mut(2).zip(pcm) {
        o.copy_from_slice(&s.to_be_bytes());
    }
    Ok(())
}

/// Reads a big-endian payload into `out` (one sample per two bytes).
pub fn decode(payload: &[u8], out: &mut [i16]) -> Result<(), L16Error> {
    if !payload.len().is_multiple_of(2) {
        return Err(L16Error::OddLength(payload.len()));
    }
    if out.len() != payload.len() / 2 {
        return Err(L16Error::LengthMismatch {
            input: payload.len() / 2,
            output: out.len(),
        });
    }
    for (o, b) in out.iter_mut().zip(payload.chunks_exact(2)) {
        *o = i16::from_be_bytes([b[0], b[1]]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_network_order() {
        let pcm = [0i16, 1, -1, i16::MAX, i16::MIN];
        let mut bytes = [0u8; 10];
        encode(&pcm, &mut bytes).unwrap();
        assert_eq!(&bytes[..4], &[0, 0, 0, 1]);
        let mut back = [0i16; 5];
        decode(&bytes, &mut back).unwrap();
        assert_eq!(back, pcm);
        assert_eq!(
            decode(&bytes[..3], &mut back[..1]),
            Err(L16Error::OddLength(3))
        );
        assert!(encode(&pcm, &mut bytes[..8]).is_err());
    }
}
