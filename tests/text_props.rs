//! Property tests: every text path fed by a caller (STT), an LLM or an operator (prompts,
//! knowledge bases) takes arbitrary Unicode without panicking. The generator leans on what
//! breaks byte arithmetic: multi-byte spaces, characters whose lowercase is longer ('İ'),
//! combining marks, emoji, and the punctuation the parsers look for.

use std::sync::Arc;

use boltcall::agent::dates::parse_when;
use boltcall::agent::knowledge::KnowledgeIndex;
use boltcall::agent::spoken::{digits_of, fuzzy_eq, number_at, stem, title_case, tokenize};
use boltcall::agent::tools::{ToolError, ToolRunner, ToolSpec};
use boltcall::agent::turn::{SentenceConfig, SentenceSplitter, ToolCallRecord};
use boltcall::analysis::{BusinessHours, CallFacts, Line, analyze};
use boltcall::providers::llm::offline::OfflineBrain;
use boltcall::providers::llm::{Brain, BrainContext, BrainEvent, KnowledgeDoc, Message, Role};
use chrono::{NaiveDate, TimeZone, Utc};
use futures::future::BoxFuture;
use proptest::prelude::*;
use serde_json::{Value, json};

/// Text that mixes arbitrary characters with the ones parsers special-case.
fn tricky_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        any::<char>().prop_map(String::from),
        prop::sample::select(vec![
            " ",
            "\u{a0}",
            "\u{2003}",
            "\u{3000}",
            "\n",
            ".",
            "!",
            "?",
            "…",
            ",",
            ":",
            ";",
            "'",
            "\"",
            "”",
            "’",
            "(",
            ")",
            "-",
            "@",
            "+",
            "#",
            "İ",
            "ı",
            "ß",
            "é",
            "e\u{301}",
            "😀",
            "Dr.",
            "a.m.",
            "p.m.",
            "10",
            "10.30",
            "9:45",
            "1,000",
            "twenty-one",
            "ten thirty",
            "tomorrow",
            "monday",
            "next",
            "at",
            "o'clock",
            "my number is",
            "five five five",
            "oh",
            "double",
            "dot com",
            " at gmail",
            "book",
            "appointment",
            "cancel",
            "bye",
            "yes",
            "no",
            "name is",
            "call me",
            "how much",
            "open",
            "hours",
            "?",
            "ǅ",
            "Σ",
        ])
        .prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

fn splitter() -> SentenceSplitter {
    SentenceSplitter::new(SentenceConfig::default())
}

/// Cuts `text` into deltas at the given char positions (as a streaming LLM would).
fn deltas(text: &str, cuts: &[usize]) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (chars.len() + 1)).collect();
    at.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for cut in at.into_iter().chain([chars.len()]) {
        out.push(chars[start..cut.max(start)].iter().collect());
        start = cut.max(start);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn sentence_splitter_keeps_every_word(text in tricky_text(), cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        let mut streaming = splitter();
        let mut pieces = Vec::new();
        for delta in deltas(&text, &cuts) {
            pieces.extend(streaming.push(&delta));
        }
        pieces.extend(streaming.finish());
        // Nothing is lost or invented: the pieces hold the text's letters and digits, in order.
        let letters = |s: &str| s.chars().filter(|c| c.is_alphanumeric()).collect::<String>();
        prop_assert_eq!(letters(&pieces.concat()), letters(&text));
        // Where the stream was cut does not matter.
        prop_assert_eq!(&pieces, &splitter().split_all(&text));
    }

    #[test]
    fn spoken_numbers_take_any_text(text in tricky_text()) {
        let tokens = tokenize(&text);
        for at in 0..=tokens.len() {
            let _ = number_at(&tokens, at);
        }
        for token in &tokens {
            let _ = digits_of(token);
            let _ = stem(token);
            let _ = fuzzy_eq(token, &text);
        }
        let words: Vec<&str> = text.split_whitespace().collect();
        let _ = title_case(&words);
    }

    #[test]
    fn dates_take_any_text(text in tricky_text(), expect_time in any::<bool>(), day in 0i64..3650) {
        let today = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + chrono::Duration::days(day);
        let tokens = tokenize(&text);
        let skip = vec![false; tokens.len()];
        let _ = parse_when(&tokens, &skip, today, expect_time);
    }

    #[test]
    fn knowledge_search_takes_any_text(doc in tricky_text(), title in tricky_text(), query in tricky_text()) {
        let index = KnowledgeIndex::build(&[KnowledgeDoc { title, text: doc }]);
        for hit in index.search(&query, 3) {
            prop_assert!(hit.score.is_finite());
        }
        let _ = index.answer(&query);
    }

    #[test]
    fn analysis_takes_any_transcript(lines in prop::collection::vec((any::<bool>(), tricky_text()), 0..6), args in tricky_text()) {
        let lines: Vec<Line<'_>> = lines
            .iter()
            .map(|(agent, text)| Line { role: if *agent { Role::Agent } else { Role::Caller }, text })
            .collect();
        let tool_calls = vec![ToolCallRecord {
            name: "capture_lead".into(),
            arguments: json!({ "name": args, "phone": args, "notes": args }),
            result: json!({ "id": "lead_1" }),
        }];
        let analysis = analyze(&CallFacts {
            lines: &lines,
            tool_calls: &tool_calls,
            local_start: None,
            business_hours: BusinessHours::default(),
        });
        prop_assert!(!analysis.sentiment.label.as_str().is_empty());
    }

    #[test]
    fn offline_brain_answers_any_words(
        said in prop::collection::vec(tricky_text(), 1..4),
        knowledge in tricky_text(),
        prompt in tricky_text(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let context = BrainContext {
                agent_name: prompt.chars().take(12).collect(),
                prompt,
                greeting: None,
                knowledge: vec![KnowledgeDoc { title: "Info".into(), text: knowledge }],
                caller_number: "+15551230000".into(),
                outbound_context: None,
                now: Utc.with_ymd_and_hms(2025, 3, 3, 15, 0, 0).unwrap(),
                llm: Default::default(),
            };
            let mut session = OfflineBrain.start(context, Arc::new(AnyTools));
            let mut history = Vec::new();
            for text in said {
                history.push(Message { role: Role::Caller, text });
                let mut reply = session.reply(&history);
                // A reply ends with `Done`: a panicking brain task would drop the sender first.
                let mut done = false;
                while let Some(event) = reply.recv().await {
                    if let BrainEvent::Text(text) = &event {
                        history.push(Message { role: Role::Agent, text: text.clone() });
                    }
                    done |= matches!(event, BrainEvent::Done);
                }
                assert!(done, "the reply ended without Done");
            }
        });
    }
}

/// Tools that accept whatever the brain asks for.
struct AnyTools;

impl ToolRunner for AnyTools {
    fn specs(&self) -> Vec<ToolSpec> {
        boltcall::agent::tools::arguments::call_tool_specs()
    }

    fn call<'a>(&'a self, name: &'a str, _args: Value) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move { Ok(json!({ "id": format!("{name}_1"), "status": "upcoming" })) })
    }
}
