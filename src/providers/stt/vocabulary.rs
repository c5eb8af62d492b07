//! Words a call is likely to hold that a recogniser would not guess: the business's name, its
//! staff and services, the titles of what the agent knows. Built per call from the agent (see
//! `agent::vocabulary`) and given to the recogniser as it opens; each engine uses it its own
//! way (a prompt for Whisper, key terms for Deepgram) or not at all.

/// Terms in priority order, each once (case aside).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vocabulary {
    terms: Vec<String>,
}

impl Vocabulary {
    /// Keeps the first of terms equal but for case and drops blank ones; order is priority.
    pub fn new(terms: impl IntoIterator<Item = String>) -> Self {
        let mut kept: Vec<String> = Vec::new();
        for term in terms {
            let term = term.split_whitespace().collect::<Vec<_>>().join(" ");
            if !term.is_empty() && !kept.iter().any(|k| k.eq_ignore_ascii_case(&term)) {
                kept.push(term);
            }
        }
        Vocabulary { terms: kept }
    }

    pub fn terms(&self) -> &[String] {
        &self.terms
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_keep_their_order_once_each() {
        let v = Vocabulary::new(
            [
                "Bright Smile",
                "  Sarah ",
                "bright smile",
                "",
                "Teeth\n whitening",
            ]
            .map(String::from),
        );
        assert_eq!(v.terms(), ["Bright Smile", "Sarah", "Teeth whitening"]);
        assert!(Vocabulary::new([String::new()]).is_empty());
    }
}
