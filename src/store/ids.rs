//! Resource ids: a prefix (`agent_`, `call_`, …) and 20 random base62 characters.

use rand::Rng;
use rand::distr::Alphanumeric;

pub fn new_id(prefix: &str) -> String {
    random_token(prefix, 20)
}

/// `prefix` followed by `len` random base62 characters from the thread's CSPRNG.
pub(crate) fn random_token(prefix: &str, len: usize) -> String {
    let mut out = String::with_capacity(prefix.len() + len);
    out.push_str(prefix);
    out.extend(
        rand::rng()
            .sample_iter(Alphanumeric)
            .take(len)
            .map(char::from),
    );
    out
}
