//! Post-call analysis: sentiment, summary, tags.
