//! What the offline brain reads about the business from the agent's prompt and knowledge base:
//! its name, where to transfer callers who ask for a person, and the services it books.

use crate::agent::spoken::{fuzzy_eq, stem, tokenize};
use crate::agent::tools::arguments::is_e164;
use crate::providers::llm::{BrainContext, KnowledgeDoc};

/// Appointment length when the knowledge base does not say.
pub const DEFAULT_DURATION_MINUTES: u32 = 30;

/// A bookable service, e.g. "Teeth whitening", 60 minutes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub minutes: u32,
}

#[derive(Debug, Clone)]
pub struct Business {
    /// "Bright Smile Dental", or the agent's name when the prompt names no business.
    pub name: String,
    pub transfer_target: Option<String>,
    pub services: Vec<Service>,
}

impl Business {
    pub fn from_context(context: &BrainContext) -> Self {
        Business {
            name: business_name(&context.prompt).unwrap_or_else(|| context.agent_name.clone()),
            transfer_target: transfer_target(&context.prompt),
            services: services(&context.prompt, &context.knowledge),
        }
    }

    /// The service the caller's words name, best match first: every content word of the
    /// service's name must appear (up to typos and plurals), or its last word ("whitening").
    pub fn find_service(&self, tokens: &[String], skip: &[bool]) -> Option<&Service> {
        let heard: Vec<&str> = tokens
            .iter()
            .enumerate()
            .filter(|(i, _)| !skip.get(*i).copied().unwrap_or(false))
            .map(|(_, t)| t.as_str())
            .collect();
        let mut best: Option<(&Service, usize)> = None;
        for service in &self.services {
            let words = tokenize(&service.name);
            let matched = words
                .iter()
                .filter(|w| heard.iter().any(|h| fuzzy_eq(h, w)))
                .count();
            let head_matched = words
                .last()
                .is_some_and(|w| heard.iter().any(|h| fuzzy_eq(h, w)));
            if (matched == words.len() || head_matched)
                && matched > 0
                && best.is_none_or(|(_, m)| matched > m)
            {
                best = Some((service, matched));
            }
        }
        best.map(|(s, _)| s)
    }
}

/// "…receptionist at Bright Smile Dental." → "Bright Smile Dental": the capitalised words after
/// "at", "for" or "from" in the prompt's first sentence that has them.
fn business_name(prompt: &str) -> Option<String> {
    let words: Vec<&str> = prompt.split_whitespace().collect();
    for (i, w) in words.iter().enumerate() {
        if !matches!(w.to_lowercase().as_str(), "at" | "for" | "from") {
            continue;
        }
        let mut name = Vec::new();
        for next in words.iter().skip(i + 1).take(6) {
            let clean = next.trim_end_matches(['.', ',', ';', ':', '!', '?']);
            let capitalised = clean
                .chars()
                .next()
                .is_some_and(|c| c.is_uppercase() || c.is_ascii_digit());
            let joiner = ["&", "and", "of", "the"].contains(&clean) && !name.is_empty();
            if !capitalised && !joiner {
                break;
            }
            name.push(clean);
            if clean.len() != next.len() {
                break;
            }
        }
        while name
            .last()
            .is_some_and(|w| ["&", "and", "of", "the"].contains(w))
        {
            name.pop();
        }
        if !name.is_empty() {
            return Some(name.join(" "));
        }
    }
    None
}

/// A number or SIP URI on a line of the prompt that talks about transferring or a person.
fn transfer_target(prompt: &str) -> Option<String> {
    prompt
        .split('\n')
        .flat_map(|line| line.split(". "))
        .filter(|line| {
            let lower = line.to_lowercase();
            [
                "transfer", "forward", "human", "person", "staff", "manager", "escalat",
            ]
            .iter()
            .any(|k| lower.contains(k))
        })
        .find_map(|line| {
            let sip = line
                .split_whitespace()
                .map(|w| w.trim_matches(|c: char| matches!(c, ',' | ';' | ')' | '(' | '"' | '\'')))
                .find(|w| (w.starts_with("sip:") || w.starts_with("sips:")) && w.contains('@'));
            sip.map(str::to_string).or_else(|| {
                // "+1 (415) 555-0100": a plus, then digits with spaces, dashes or brackets.
                let at = line.find('+')?;
                let digits: String = line[at + 1..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')'))
                    .filter(char::is_ascii_digit)
                    .collect();
                let number = format!("+{digits}");
                is_e164(&number).then_some(number)
            })
        })
}

/// Services from knowledge documents about services/treatments/prices (one list item or
/// "Name: details" line each) and from a "Services: a, b, c" line in the prompt.
fn services(prompt: &str, knowledge: &[KnowledgeDoc]) -> Vec<Service> {
    let mut found: Vec<Service> = Vec::new();
    let mut add = |name: &str, details: &str| {
        let name = name
            .trim()
            .trim_matches(|c: char| !c.is_alphanumeric())
            .to_string();
        let words = name.split_whitespace().count();
        if name.is_empty() || words > 5 || found.iter().any(|s| s.name.eq_ignore_ascii_case(&name))
        {
            return;
        }
        found.push(Service {
            minutes: duration_minutes(details).unwrap_or(DEFAULT_DURATION_MINUTES),
            name,
        });
    };
    for doc in knowledge {
        let title = tokenize(&doc.title);
        let about_services = title.iter().any(|t| {
            [
                "servic",
                "treatment",
                "pric",
                "menu",
                "offer",
                "procedur",
                "class",
                "packag",
            ]
            .contains(&stem(t).as_str())
        });
        if !about_services {
            continue;
        }
        for line in doc.text.lines() {
            let line = line.trim().trim_start_matches(['-', '*', '•']).trim();
            let cut = [line.find([':', '—', '–', '(', ',', '$']), line.find(" - ")]
                .into_iter()
                .flatten()
                .min();
            let (name, details) = match cut {
                Some(at) => (&line[..at], &line[at..]),
                None => (line, ""),
            };
            add(name, details);
        }
    }
    for line in prompt.lines() {
        // ASCII lowering keeps byte offsets valid for slicing `line`.
        let lower = line.to_ascii_lowercase();
        let Some(at) = ["services:", "we offer", "treatments:"]
            .iter()
            .find_map(|k| lower.find(k).map(|i| i + k.len()))
        else {
            continue;
        };
        for item in line[at..].split([',', ';']).flat_map(|s| s.split(" and ")) {
            add(item.trim_end_matches('.'), item);
        }
    }
    found
}

/// "45 minutes", "45 min", "1 hour", "an hour", "90-minute".
fn duration_minutes(details: &str) -> Option<u32> {
    let tokens = tokenize(&details.replace('-', " "));
    tokens.iter().enumerate().find_map(|(i, t)| {
        let unit = tokens.get(i + 1).map(String::as_str).unwrap_or("");
        let n: Option<u32> = if t == "an" || t == "one" {
            Some(1)
        } else {
            t.parse().ok()
        };
        let n = n?;
        match unit {
            "minutes" | "minute" | "min" | "mins" => Some(n),
            "hour" | "hours" | "hr" | "hrs" => Some(n * 60),
            _ => None,
        }
        .filter(|m| (5..=480).contains(m))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(prompt: &str, knowledge: Vec<KnowledgeDoc>) -> BrainContext {
        BrainContext {
            agent_name: "Sarah".into(),
            prompt: prompt.into(),
            greeting: None,
            knowledge,
            caller_number: "+14155550000".into(),
            outbound_context: None,
            now: chrono::Utc::now(),
            llm: Default::default(),
        }
    }

    #[test]
    fn reads_name_transfer_target_and_services() {
        let business = Business::from_context(&context(
            "You are the friendly receptionist at Bright Smile Dental. If a caller asks for a human, transfer them to +1 415-555-0100.\nServices: check-ups, emergency visits",
            vec![KnowledgeDoc {
                title: "Our services and prices".into(),
                text: "- Cleaning: $120, 45 minutes\n- Teeth whitening: $300 (1 hour)\n- Filling - from $150".into(),
            }],
        ));
        assert_eq!(business.name, "Bright Smile Dental");
        assert_eq!(business.transfer_target.as_deref(), Some("+14155550100"));
        let names: Vec<(&str, u32)> = business
            .services
            .iter()
            .map(|s| (s.name.as_str(), s.minutes))
            .collect();
        assert_eq!(
            names,
            [
                ("Cleaning", 45),
                ("Teeth whitening", 60),
                ("Filling", 30),
                ("check-ups", 30),
                ("emergency visits", 30)
            ]
        );
    }

    #[test]
    fn transfer_target_from_the_prompt() {
        let business = Business::from_context(&context(
            "Forward callers who want a person to +14155550100.",
            vec![],
        ));
        assert_eq!(business.transfer_target.as_deref(), Some("+14155550100"));
        assert_eq!(business.name, "Sarah");
        let business = Business::from_context(&context(
            "Escalations go to sip:desk@pbx.example.com",
            vec![],
        ));
        assert_eq!(
            business.transfer_target.as_deref(),
            Some("sip:desk@pbx.example.com")
        );
    }

    #[test]
    fn finds_the_service_the_caller_names() {
        let business = Business {
            name: "x".into(),
            transfer_target: None,
            services: vec![
                Service {
                    name: "Teeth cleaning".into(),
                    minutes: 45,
                },
                Service {
                    name: "Teeth whitening".into(),
                    minutes: 60,
                },
            ],
        };
        let find = |text: &str| {
            let tokens = tokenize(text);
            business.find_service(&tokens, &[]).map(|s| s.name.clone())
        };
        assert_eq!(
            find("i need my teeth cleaned").as_deref(),
            Some("Teeth cleaning")
        );
        assert_eq!(
            find("some whitenning please").as_deref(),
            Some("Teeth whitening")
        );
        assert_eq!(find("my teeth hurt"), None);
    }
}
