//! Knowledge-base search: the agent's documents split into passages, ranked with BM25.
//!
//! Passages are lines and sentences, small enough to say on the phone. An FAQ's "Q: …" line
//! travels with its "A: …" line so a question finds its answer. The document title is indexed
//! with each passage ("Opening hours" finds "Monday to Friday, 9 to 5") but never spoken.
//! Every word of a document lands in some passage: a long document is split, never cut.
//!
//! `Retriever` is what an LLM brain asks for passages; the BM25 index is its first
//! implementation, an embedding index can be another.

use std::collections::HashMap;

use futures::future::BoxFuture;

use super::spoken::{stem, tokenize};
use crate::providers::llm::KnowledgeDoc;

/// BM25 term-frequency saturation.
const K1: f32 = 1.2;
/// BM25 length normalisation.
const B: f32 = 0.75;
/// Passages longer than this many words are split into sentences.
const MAX_PASSAGE_WORDS: usize = 40;
/// A sentence longer than this many words (a run-on paragraph without full stops) is split
/// into pieces of this many words, so no passage is too long to quote or to put in a prompt.
const MAX_SENTENCE_WORDS: usize = 80;

/// Words too common to say anything about what the caller wants to know.
/// Conversational words ("sorry", "okay", "actually") are among them: a caller's "Sorry, what
/// are your opening hours?" must match as well as the question alone.
const STOPWORDS: &[&str] = &[
    "a", "about", "actually", "again", "also", "an", "and", "any", "are", "as", "at", "be", "can",
    "could", "did", "do", "does", "excuse", "for", "from", "get", "have", "hello", "hey", "hi",
    "how", "i", "i'd", "i'm", "if", "in", "is", "it", "it's", "just", "know", "like", "me", "my",
    "need", "of", "oh", "ok", "okay", "on", "or", "please", "so", "sorry", "tell", "thank",
    "thanks", "that", "the", "there", "this", "to", "um", "uh", "want", "wanted", "was", "we",
    "well", "what", "what's", "when", "where", "which", "who", "will", "with", "would", "you",
    "your", "yours", "you're", "our", "us",
];

/// Words a caller uses for what a knowledge base writes differently.
const RELATED: &[(&str, &[&str])] = &[
    ("open", &["hour", "clos"]),
    ("clos", &["hour", "open"]),
    ("hour", &["open"]),
    ("cost", &["pric", "fee", "$"]),
    ("much", &["pric", "cost", "fee"]),
    ("pric", &["cost", "fee"]),
    ("charg", &["pric", "cost", "fee"]),
    ("located", &["address", "locat"]),
    ("locat", &["address"]),
    ("address", &["locat"]),
    ("park", &["parking"]),
    ("pay", &["payment", "insurance", "card"]),
    ("weekend", &["saturday", "sunday"]),
];

/// One searchable piece of a document.
#[derive(Debug, Clone, PartialEq)]
pub struct Passage {
    pub title: String,
    /// What to say: the passage text (an FAQ's answer without its "A:").
    pub text: String,
    /// Indexed but not said: an FAQ answer's question.
    pub question: Option<String>,
}

/// A passage found for a query, as a prompt shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Retrieved {
    /// The document's title.
    pub title: String,
    /// The passage (an FAQ answer with its question).
    pub text: String,
}

/// Finds the passages of an agent's knowledge base that bear on a query.
pub trait Retriever: Send + Sync {
    /// The best passages for `query`, best first, at most `limit`. Asynchronous so an index
    /// behind a network call (embeddings) fits; an index that fails finds nothing.
    fn retrieve<'a>(&'a self, query: &'a str, limit: usize) -> BoxFuture<'a, Vec<Retrieved>>;
}

impl Retriever for KnowledgeIndex {
    fn retrieve<'a>(&'a self, query: &'a str, limit: usize) -> BoxFuture<'a, Vec<Retrieved>> {
        let found = self
            .search(query, limit)
            .into_iter()
            .map(|hit| Retrieved {
                title: hit.passage.title.clone(),
                text: match &hit.passage.question {
                    Some(q) => format!("Q: {q} A: {}", hit.passage.text),
                    None => hit.passage.text.clone(),
                },
            })
            .collect();
        Box::pin(std::future::ready(found))
    }
}

/// A passage and how well it matched.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit<'a> {
    pub passage: &'a Passage,
    pub score: f32,
    /// Share of the query's weight (by IDF) the passage matched, 0..=1.
    pub coverage: f32,
}

/// A BM25 index over an agent's knowledge base, built once per call.
#[derive(Debug, Default)]
pub struct KnowledgeIndex {
    passages: Vec<Passage>,
    /// term → (passage index, term frequency)
    postings: HashMap<String, Vec<(usize, u32)>>,
    lengths: Vec<u32>,
    average_length: f32,
}

impl KnowledgeIndex {
    pub fn build(docs: &[KnowledgeDoc]) -> Self {
        let mut index = KnowledgeIndex::default();
        for doc in docs {
            for (text, question) in split_passages(&doc.text) {
                let indexed = format!(
                    "{} {} {}",
                    doc.title,
                    question.as_deref().unwrap_or(""),
                    text
                );
                let terms: Vec<String> = terms_of(&indexed);
                if terms.is_empty() {
                    continue;
                }
                let id = index.passages.len();
                let mut counts: HashMap<String, u32> = HashMap::new();
                for term in &terms {
                    *counts.entry(term.clone()).or_default() += 1;
                }
                for (term, count) in counts {
                    index.postings.entry(term).or_default().push((id, count));
                }
                index
                    .lengths
                    .push(u32::try_from(terms.len()).unwrap_or(u32::MAX));
                index.passages.push(Passage {
                    title: doc.title.clone(),
                    text,
                    question,
                });
            }
        }
        let total: u64 = index.lengths.iter().map(|&l| u64::from(l)).sum();
        index.average_length = if index.lengths.is_empty() {
            0.0
        } else {
            total as f32 / index.lengths.len() as f32
        };
        index
    }

    pub fn is_empty(&self) -> bool {
        self.passages.is_empty()
    }

    pub fn passages(&self) -> &[Passage] {
        &self.passages
    }

    fn idf(&self, term: &str) -> f32 {
        let n = self.passages.len() as f32;
        let df = self.postings.get(term).map_or(0, Vec::len) as f32;
        (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
    }

    /// The best passages for `query`, best first, at most `limit`. Ties keep document order.
    pub fn search(&self, query: &str, limit: usize) -> Vec<Hit<'_>> {
        let groups: Vec<(String, Vec<String>)> = terms_of(query)
            .into_iter()
            .map(|term| {
                let related = RELATED
                    .iter()
                    .find(|(t, _)| *t == term)
                    .map(|(_, r)| r.iter().map(|s| s.to_string()).collect())
                    .unwrap_or_default();
                (term, related)
            })
            .collect();
        if groups.is_empty() || self.passages.is_empty() {
            return Vec::new();
        }
        let mut scores = vec![0.0f32; self.passages.len()];
        let mut covered = vec![0.0f32; self.passages.len()];
        let mut query_weight = 0.0f32;
        for (term, related) in &groups {
            let weight = self
                .idf(term)
                .max(related.iter().map(|r| self.idf(r)).fold(0.0, f32::max));
            query_weight += weight;
            // A group scores each passage by its best candidate: a related word only helps a
            // passage that lacks the caller's own word.
            let mut best = vec![0.0f32; self.passages.len()];
            let candidates =
                std::iter::once((term, 1.0f32)).chain(related.iter().map(|r| (r, 0.5)));
            for (candidate, boost) in candidates {
                let Some(postings) = self.postings.get(candidate) else {
                    continue;
                };
                let idf = self.idf(candidate);
                for &(id, tf) in postings {
                    let tf = tf as f32;
                    let norm = 1.0 - B + B * self.lengths[id] as f32 / self.average_length;
                    let score = boost * idf * tf * (K1 + 1.0) / (tf + K1 * norm);
                    best[id] = best[id].max(score);
                }
            }
            for (id, score) in best.iter().enumerate() {
                if *score > 0.0 {
                    scores[id] += score;
                    covered[id] += weight;
                }
            }
        }
        let mut hits: Vec<Hit<'_>> = self
            .passages
            .iter()
            .enumerate()
            .filter(|(id, _)| scores[*id] > 0.0)
            .map(|(id, passage)| Hit {
                passage,
                score: scores[id],
                coverage: if query_weight > 0.0 {
                    covered[id] / query_weight
                } else {
                    0.0
                },
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        hits.truncate(limit);
        hits
    }

    /// The passage that answers `query`, if one matches well enough to quote: it must cover
    /// at least half of what the question asks about (weighted by how rare each word is).
    pub fn answer(&self, query: &str) -> Option<&Passage> {
        self.search(query, 1)
            .into_iter()
            .next()
            .filter(|hit| hit.coverage >= 0.5)
            .map(|hit| hit.passage)
    }
}

/// Indexable terms: lowercase stems without stopwords. A "$" stands for prices.
fn terms_of(text: &str) -> Vec<String> {
    let mut terms: Vec<String> = tokenize(text)
        .iter()
        .filter(|t| !STOPWORDS.contains(&t.as_str()))
        .map(|t| stem(t))
        .collect();
    if text.contains('$') || text.contains('€') || text.contains('£') {
        terms.push("$".into());
    }
    terms
}

/// Splits a document into passages: one per line, FAQ questions joined to their answers,
/// long lines split into sentences. Markdown bullets and headings are dropped.
fn split_passages(text: &str) -> Vec<(String, Option<String>)> {
    let mut passages = Vec::new();
    let mut pending_question: Option<String> = None;
    for line in text.lines() {
        let line = line
            .trim()
            .trim_start_matches(['#', '-', '*', '•', '>'])
            .trim();
        if line.is_empty() {
            continue;
        }
        if let Some(q) = strip_label(line, &["q:", "question:"]) {
            pending_question = Some(q.to_string());
            continue;
        }
        if let Some(answer) = strip_label(line, &["a:", "answer:"]) {
            passages.push((answer.to_string(), pending_question.take()));
            continue;
        }
        if let Some(q) = pending_question.take() {
            passages.push((q, None));
        }
        if line.split_whitespace().count() > MAX_PASSAGE_WORDS {
            passages.extend(sentences(line).into_iter().map(|s| (s, None)));
        } else {
            passages.push((line.to_string(), None));
        }
    }
    if let Some(q) = pending_question {
        passages.push((q, None));
    }
    passages
}

fn strip_label<'a>(line: &'a str, labels: &[&str]) -> Option<&'a str> {
    labels.iter().find_map(|label| {
        let head = line.get(..label.len())?;
        head.eq_ignore_ascii_case(label)
            .then(|| line[label.len()..].trim())
    })
}

/// Sentences of a long line; a full stop inside a number ("$1.50") does not end one. A
/// run-on sentence is cut into pieces of `MAX_SENTENCE_WORDS` words.
fn sentences(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    for sentence in whole_sentences(line) {
        let words: Vec<&str> = sentence.split_whitespace().collect();
        if words.len() <= MAX_SENTENCE_WORDS {
            out.push(sentence);
        } else {
            out.extend(
                words
                    .chunks(MAX_SENTENCE_WORDS)
                    .map(|piece| piece.join(" ")),
            );
        }
    }
    out
}

fn whole_sentences(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = line.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        current.push(c);
        let next = chars.get(i + 1).copied();
        if matches!(c, '.' | '!' | '?') && next.is_none_or(char::is_whitespace) {
            out.push(current.trim().to_string());
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dental_kb() -> Vec<KnowledgeDoc> {
        vec![
            KnowledgeDoc {
                title: "Opening hours".into(),
                text: "We are open Monday to Friday, 8 AM to 6 PM.\nOn Saturdays we open 9 AM to 1 PM. We are closed on Sundays.".into(),
            },
            KnowledgeDoc {
                title: "Services and prices".into(),
                text: "- Cleaning: $120, 45 minutes\n- Teeth whitening: $300, 60 minutes\n- Filling: from $150, 30 minutes".into(),
            },
            KnowledgeDoc {
                title: "FAQ".into(),
                text: "Q: Do you take insurance?\nA: Yes, we accept most major dental insurance plans.\nQ: Is there parking?\nA: Free parking is available behind the building on Elm Street.".into(),
            },
        ]
    }

    #[test]
    fn opening_hours_question_finds_the_hours() {
        let index = KnowledgeIndex::build(&dental_kb());
        let answer = index
            .answer("what are your opening hours")
            .expect("an answer");
        assert_eq!(answer.text, "We are open Monday to Friday, 8 AM to 6 PM.");
        let answer = index
            .answer("what time do you close on saturday")
            .expect("an answer");
        assert!(answer.text.contains("Saturdays"), "{answer:?}");
    }

    #[test]
    fn faq_question_finds_its_answer_without_the_question() {
        let index = KnowledgeIndex::build(&dental_kb());
        let answer = index
            .answer("do you guys take my insurance")
            .expect("an answer");
        assert_eq!(
            answer.text,
            "Yes, we accept most major dental insurance plans."
        );
        let answer = index.answer("where can i park").expect("an answer");
        assert!(answer.text.starts_with("Free parking"));
    }

    #[test]
    fn prices_rank_the_named_service_first() {
        let index = KnowledgeIndex::build(&dental_kb());
        let hits = index.search("how much does teeth whitening cost", 3);
        assert_eq!(hits[0].passage.text, "Teeth whitening: $300, 60 minutes");
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    }

    #[test]
    fn unrelated_questions_find_nothing_to_quote() {
        let index = KnowledgeIndex::build(&dental_kb());
        assert_eq!(index.answer("do you sell car insurance for trucks"), None);
        assert_eq!(index.answer("banana helicopter"), None);
        assert_eq!(index.answer("the and of"), None);
        assert!(KnowledgeIndex::build(&[]).answer("opening hours").is_none());
    }

    #[test]
    fn rare_terms_outrank_common_ones() {
        let docs = vec![KnowledgeDoc {
            title: "Notes".into(),
            text: "The clinic is friendly.\nThe clinic has a clinic cat.\nThe clinic offers sedation dentistry.".into(),
        }];
        let index = KnowledgeIndex::build(&docs);
        let hits = index.search("clinic sedation", 3);
        assert_eq!(
            hits[0].passage.text,
            "The clinic offers sedation dentistry."
        );
    }

    #[test]
    fn long_paragraphs_are_split_into_sentences() {
        let long = "Our practice was founded in 1998 by Dr. Ana Ruiz. ".repeat(3)
            + "Emergency appointments cost $1.50 per minute of chair time and are available every day of the week.";
        let docs = vec![KnowledgeDoc {
            title: "About".into(),
            text: long,
        }];
        let index = KnowledgeIndex::build(&docs);
        let answer = index.answer("emergency appointments").expect("an answer");
        assert!(answer.text.starts_with("Emergency appointments cost $1.50"));
    }

    #[test]
    fn a_long_document_is_split_without_losing_a_word() {
        // A 30,000-character run-on text with no full stops, then one short fact at its end.
        let filler: Vec<String> = (0..3_000).map(|i| format!("w{i}")).collect();
        let text = format!(
            "{}\nValet parking costs twelve dollars on weekends.",
            filler.join(" ")
        );
        let docs = vec![KnowledgeDoc {
            title: "Handbook".into(),
            text: text.clone(),
        }];
        let index = KnowledgeIndex::build(&docs);
        let said: Vec<&str> = index
            .passages()
            .iter()
            .flat_map(|p| p.text.split_whitespace())
            .collect();
        let written: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(said, written);
        assert!(
            index
                .passages()
                .iter()
                .all(|p| p.text.split_whitespace().count() <= MAX_SENTENCE_WORDS)
        );
        let answer = index.answer("valet parking price").expect("an answer");
        assert_eq!(
            answer.text,
            "Valet parking costs twelve dollars on weekends."
        );
    }

    #[tokio::test]
    async fn the_index_retrieves_faq_answers_with_their_question() {
        let index = KnowledgeIndex::build(&dental_kb());
        let found = index.retrieve("do you take insurance", 2).await;
        assert_eq!(
            found[0],
            Retrieved {
                title: "FAQ".into(),
                text:
                    "Q: Do you take insurance? A: Yes, we accept most major dental insurance plans."
                        .into(),
            }
        );
        assert!(index.retrieve("banana helicopter", 2).await.is_empty());
    }
}
