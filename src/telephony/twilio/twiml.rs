//! TwiML answers to Twilio's voice webhook.

/// What the voice webhook tells Twilio to do with a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Connect the call's audio to our Media Streams WebSocket.
    Stream {
        /// `wss://…/carrier/twilio/stream`.
        url: String,
        /// Passed back to us in the stream's `start.customParameters`.
        parameters: Vec<(String, String)>,
    },
    /// Say why the call cannot be taken, then hang up.
    Reject { message: String },
}

impl Answer {
    pub fn to_xml(&self) -> String {
        let mut xml = String::from(r#"<?xml version="1.0" encoding="UTF-8"?><Response>"#);
        match self {
            Answer::Stream { url, parameters } => {
                xml.push_str(&format!(r#"<Connect><Stream url="{}">"#, escape(url)));
                for (name, value) in parameters {
                    xml.push_str(&format!(
                        r#"<Parameter name="{}" value="{}"/>"#,
                        escape(name),
                        escape(value)
                    ));
                }
                xml.push_str("</Stream></Connect>");
            }
            Answer::Reject { message } => {
                xml.push_str(&format!("<Say>{}</Say><Hangup/>", escape(message)));
            }
        }
        xml.push_str("</Response>");
        xml
    }
}

/// The stream URL for a public base URL: `http` becomes `ws`, `https` becomes `wss`.
pub fn stream_url(public_url: &str) -> String {
    let base = public_url.trim_end_matches('/');
    let ws = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_string()
    };
    format!("{ws}/carrier/twilio/stream")
}

/// The TwiML that transfers a live call: `<Dial>` the number, or `<Dial><Sip>` a `sip:` URI.
pub fn transfer(target: &str) -> String {
    let target_xml = if target.starts_with("sip:") || target.starts_with("sips:") {
        format!("<Sip>{}</Sip>", escape(target))
    } else {
        escape(target)
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Dial>{target_xml}</Dial></Response>"#
    )
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_answer_carries_url_and_escaped_parameters() {
        let xml = Answer::Stream {
            url: stream_url("https://calls.example.com/"),
            parameters: vec![("from".into(), "+1 <555> & co".into())],
        }
        .to_xml();
        assert!(
            xml.contains(
                r#"<Connect><Stream url="wss://calls.example.com/carrier/twilio/stream">"#
            )
        );
        assert!(xml.contains(r#"<Parameter name="from" value="+1 &lt;555&gt; &amp; co"/>"#));
        assert!(xml.ends_with("</Stream></Connect></Response>"));
    }

    #[test]
    fn plain_http_becomes_ws() {
        assert_eq!(
            stream_url("http://127.0.0.1:8080"),
            "ws://127.0.0.1:8080/carrier/twilio/stream"
        );
    }

    #[test]
    fn transfers_dial_numbers_and_sip_uris() {
        assert!(
            transfer("+15550009999").ends_with("<Response><Dial>+15550009999</Dial></Response>")
        );
        assert!(transfer("sip:desk@pbx.example.com?x=1&y=2").ends_with(
            "<Response><Dial><Sip>sip:desk@pbx.example.com?x=1&amp;y=2</Sip></Dial></Response>"
        ));
    }

    #[test]
    fn reject_says_and_hangs_up() {
        let xml = Answer::Reject {
            message: "Nobody answers this number.".into(),
        }
        .to_xml();
        assert!(xml.contains("<Say>Nobody answers this number.</Say><Hangup/></Response>"));
    }
}
