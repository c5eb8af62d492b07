//! SIP messages: a small parser and serializer for the subset a trunk speaks (RFC 3261 §7).
//!
//! Header names are stored in their canonical long form (compact forms such as `v`, `i`, `f`
//! are expanded) so lookups never care how the peer spelled them.

use std::fmt::Write as _;

/// Datagrams and stream messages larger than this are refused.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// More headers than this is an attack, not a trunk.
const MAX_HEADERS: usize = 128;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("message is not UTF-8 in its head")]
    NotUtf8,
    #[error("message head is incomplete")]
    Incomplete,
    #[error("malformed start line")]
    StartLine,
    #[error("malformed header line")]
    Header,
    #[error("too many headers")]
    TooManyHeaders,
    #[error("message too large")]
    TooLarge,
    #[error("invalid Content-Length")]
    ContentLength,
    #[error("missing mandatory header {0}")]
    Missing(&'static str),
    #[error("invalid CSeq")]
    CSeq,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request { method: String, uri: String },
    Response { code: u16, reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipMessage {
    pub start: StartLine,
    /// (canonical name, value) in wire order; a comma-separated header stays one entry.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Expands compact header forms (RFC 3261 §7.3.3 and extensions) and canonicalises case.
fn canonical_name(name: &str) -> String {
    let known = [
        ("v", "Via"),
        ("via", "Via"),
        ("f", "From"),
        ("from", "From"),
        ("t", "To"),
        ("to", "To"),
        ("i", "Call-ID"),
        ("call-id", "Call-ID"),
        ("m", "Contact"),
        ("contact", "Contact"),
        ("l", "Content-Length"),
        ("content-length", "Content-Length"),
        ("c", "Content-Type"),
        ("content-type", "Content-Type"),
        ("k", "Supported"),
        ("supported", "Supported"),
        ("s", "Subject"),
        ("e", "Content-Encoding"),
        ("r", "Refer-To"),
        ("refer-to", "Refer-To"),
        ("o", "Event"),
        ("event", "Event"),
        ("cseq", "CSeq"),
        ("max-forwards", "Max-Forwards"),
        ("www-authenticate", "WWW-Authenticate"),
        ("authorization", "Authorization"),
        ("proxy-authenticate", "Proxy-Authenticate"),
        ("proxy-authorization", "Proxy-Authorization"),
        ("record-route", "Record-Route"),
        ("route", "Route"),
        ("subscription-state", "Subscription-State"),
    ];
    let lower = name.to_ascii_lowercase();
    for (k, v) in known {
        if k == lower {
            return v.to_string();
        }
    }
    name.to_string()
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

/// Where the head ends: the index just past the blank line, tolerating bare LF.
fn head_end(buf: &[u8]) -> Option<(usize, usize)> {
    // Returns (head length without the blank line, index of the body).
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            if buf.get(i + 1) == Some(&b'\n') {
                return Some((i, i + 2));
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                return Some((i, i + 3));
            }
        }
        i += 1;
    }
    None
}

impl SipMessage {
    /// Parses one UDP datagram. Without Content-Length the body is the rest of the datagram.
    pub fn parse(buf: &[u8]) -> Result<SipMessage, ParseError> {
        let msg = Self::parse_unchecked(buf)?;
        msg.check_mandatory()?;
        Ok(msg)
    }

    /// Parses the framing only, without requiring the mandatory headers, so a request that
    /// lacks them can still get its `400` where enough of it is there to answer.
    pub fn parse_unchecked(buf: &[u8]) -> Result<SipMessage, ParseError> {
        if buf.len() > MAX_MESSAGE_BYTES {
            return Err(ParseError::TooLarge);
        }
        let (head_len, body_at) = head_end(buf).ok_or(ParseError::Incomplete)?;
        let (start, headers) = parse_head(&buf[..head_len])?;
        let rest = &buf[body_at..];
        let body = match content_length(&headers)? {
            Some(n) if n > rest.len() => return Err(ParseError::ContentLength),
            Some(n) => rest[..n].to_vec(),
            None => rest.to_vec(),
        };
        Ok(SipMessage {
            start,
            headers,
            body,
        })
    }

    /// Parses one message from the front of a stream buffer (TCP). `Ok(None)` means more bytes
    /// are needed; on success returns the message and how many bytes it used.
    pub fn parse_stream(buf: &[u8]) -> Result<Option<(SipMessage, usize)>, ParseError> {
        let Some((head_len, body_at)) = head_end(buf) else {
            if buf.len() > MAX_MESSAGE_BYTES {
                return Err(ParseError::TooLarge);
            }
            return Ok(None);
        };
        let (start, headers) = parse_head(&buf[..head_len])?;
        // RFC 3261 §18.3: Content-Length is mandatory on streams.
        let n = content_length(&headers)?.ok_or(ParseError::Missing("Content-Length"))?;
        let end = body_at
            .checked_add(n)
            .filter(|&end| end <= MAX_MESSAGE_BYTES)
            .ok_or(ParseError::TooLarge)?;
        if buf.len() < end {
            return Ok(None);
        }
        let msg = SipMessage {
            start,
            headers,
            body: buf[body_at..end].to_vec(),
        };
        msg.check_mandatory()?;
        Ok(Some((msg, end)))
    }

    pub fn check_mandatory(&self) -> Result<(), ParseError> {
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
            if self.header(name).is_none() {
                return Err(ParseError::Missing(name));
            }
        }
        self.cseq().ok_or(ParseError::CSeq)?;
        Ok(())
    }

    pub fn request(method: &str, uri: &str) -> SipMessage {
        SipMessage {
            start: StartLine::Request {
                method: method.to_string(),
                uri: uri.to_string(),
            },
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A response to `req` copying Via, From, To, Call-ID and CSeq (RFC 3261 §8.2.6.2).
    pub fn response_to(req: &SipMessage, code: u16, reason: &str) -> SipMessage {
        let mut res = SipMessage {
            start: StartLine::Response {
                code,
                reason: reason.to_string(),
            },
            headers: Vec::new(),
            body: Vec::new(),
        };
        for (name, value) in &req.headers {
            if matches!(name.as_str(), "Via" | "From" | "To" | "Call-ID" | "CSeq") {
                res.headers.push((name.clone(), value.clone()));
            }
        }
        res
    }

    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    pub fn uri(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    /// The first header of this (canonical or compact) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = canonical_name(name);
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(&name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, splitting comma-separated lists (Via: a, b).
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        let name = canonical_name(name);
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(&name))
            .flat_map(|(_, v)| split_list(v))
            .collect()
    }

    pub fn set_header(&mut self, name: &str, value: impl Into<String>) {
        let name = canonical_name(name);
        let value = value.into();
        match self
            .headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(&name))
        {
            Some(slot) => slot.1 = value,
            None => self.headers.push((name, value)),
        }
    }

    pub fn add_header(&mut self, name: &str, value: impl Into<String>) {
        self.headers.push((canonical_name(name), value.into()));
    }

    pub fn remove_header(&mut self, name: &str) {
        let name = canonical_name(name);
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
    }

    pub fn call_id(&self) -> &str {
        self.header("Call-ID").unwrap_or_default()
    }

    /// (sequence number, method) from CSeq.
    pub fn cseq(&self) -> Option<(u32, &str)> {
        let value = self.header("CSeq")?;
        let mut parts = value.split_whitespace();
        let num = parts.next()?.parse().ok()?;
        let method = parts.next()?;
        is_token(method).then_some((num, method))
    }

    /// The branch parameter of the top Via.
    pub fn top_branch(&self) -> Option<&str> {
        let via = *self.header_values("Via").first()?;
        param(via, "branch")
    }

    pub fn with_body(mut self, content_type: &str, body: Vec<u8>) -> SipMessage {
        self.set_header("Content-Type", content_type);
        self.body = body;
        self
    }

    /// Wire form, with a correct Content-Length.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = String::with_capacity(512);
        match &self.start {
            StartLine::Request { method, uri } => {
                let _ = write!(head, "{method} {uri} SIP/2.0\r\n");
            }
            StartLine::Response { code, reason } => {
                let _ = write!(head, "SIP/2.0 {code} {reason}\r\n");
            }
        }
        for (name, value) in &self.headers {
            if name != "Content-Length" {
                let _ = write!(head, "{name}: {value}\r\n");
            }
        }
        let _ = write!(head, "Content-Length: {}\r\n\r\n", self.body.len());
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

fn parse_head(head: &[u8]) -> Result<(StartLine, Vec<(String, String)>), ParseError> {
    let text = std::str::from_utf8(head).map_err(|_| ParseError::NotUtf8)?;
    // Leading CRLFs before a message are allowed (RFC 3261 §7.5).
    let text = text.trim_start_matches(['\r', '\n']);
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let first = lines.next().ok_or(ParseError::StartLine)?;
    let start = parse_start_line(first)?;
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut has_length = false;
    for line in lines {
        if line.starts_with([' ', '\t']) {
            // Folded continuation of the previous header (RFC 3261 §7.3.1).
            let last = headers.last_mut().ok_or(ParseError::Header)?;
            if line.chars().any(|c| c.is_control() && c != '\t') {
                return Err(ParseError::Header);
            }
            // Folding is whitespace: an empty first line or an empty continuation adds none,
            // so the value reads (and re-serialises) the same as when written unfolded.
            let more = line.trim();
            if !more.is_empty() {
                if !last.1.is_empty() {
                    last.1.push(' ');
                }
                last.1.push_str(more);
            }
            continue;
        }
        let (name, value) = line.split_once(':').ok_or(ParseError::Header)?;
        let name = name.trim_end();
        // Control characters (a stray CR, NUL…) would let one header smuggle another.
        if !is_token(name) || value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(ParseError::Header);
        }
        let name = canonical_name(name);
        if name == "Content-Length" {
            // Two lengths could frame one stream two ways.
            if has_length {
                return Err(ParseError::ContentLength);
            }
            has_length = true;
        } else if headers.len() - usize::from(has_length) >= MAX_HEADERS {
            // Content-Length is not counted: serialising always writes one, so a message at
            // the limit must still parse once re-serialised.
            return Err(ParseError::TooManyHeaders);
        }
        headers.push((name, value.trim().to_string()));
    }
    Ok((start, headers))
}

fn parse_start_line(line: &str) -> Result<StartLine, ParseError> {
    if let Some(rest) = line.strip_prefix("SIP/2.0 ") {
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        let code: u16 = code.parse().map_err(|_| ParseError::StartLine)?;
        if !(100..700).contains(&code) {
            return Err(ParseError::StartLine);
        }
        return Ok(StartLine::Response {
            code,
            reason: reason.to_string(),
        });
    }
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::StartLine);
    };
    if !is_token(method) || uri.is_empty() || !version.eq_ignore_ascii_case("SIP/2.0") {
        return Err(ParseError::StartLine);
    }
    Ok(StartLine::Request {
        method: method.to_string(),
        uri: uri.to_string(),
    })
}

fn content_length(headers: &[(String, String)]) -> Result<Option<usize>, ParseError> {
    match headers.iter().find(|(n, _)| n == "Content-Length") {
        None => Ok(None),
        Some((_, v)) => v
            .trim()
            .parse::<usize>()
            .map(Some)
            .map_err(|_| ParseError::ContentLength),
    }
}

/// Splits a header list at commas outside quotes and angle brackets.
pub fn split_list(value: &str) -> impl Iterator<Item = &str> {
    let mut parts = Vec::new();
    let (mut quoted, mut angle, mut start) = (false, false, 0);
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                parts.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(value[start..].trim());
    parts.into_iter().filter(|p| !p.is_empty())
}

/// A `;name=value` parameter of a header value (outside any `<…>`), case-insensitive name.
pub fn param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    let tail = match value.rfind('>') {
        Some(i) => &value[i + 1..],
        None => value,
    };
    tail.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The URI of a name-addr (`"Bob" <sip:bob@host>;tag=x`) or addr-spec (`sip:bob@host;tag=x`).
pub fn addr_uri(value: &str) -> &str {
    if let (Some(a), Some(b)) = (value.find('<'), value.find('>'))
        && a < b
    {
        return &value[a + 1..b];
    }
    value.split(';').next().unwrap_or(value).trim()
}

/// The user part of a SIP URI (`sip:+15550001@host` → `+15550001`), without URI parameters.
pub fn uri_user(uri: &str) -> Option<&str> {
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))
        .or_else(|| uri.strip_prefix("tel:"))?;
    let user = match rest.split_once('@') {
        Some((user, _)) => user,
        None if uri.starts_with("tel:") => rest,
        None => return None,
    };
    let user = user.split([';', ':']).next().unwrap_or(user);
    (!user.is_empty()).then_some(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:+15550100@127.0.0.1 SIP/2.0\r\n\
v: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport, SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK0\r\n\
f: \"Alice\" <sip:+15550001@10.0.0.1>;tag=a1\r\n\
t: <sip:+15550100@127.0.0.1>\r\n\
i: abc@10.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Subject: folded\r\n  continued\r\n\
l: 4\r\n\
\r\n\
v=0\r\nextra";

    #[test]
    fn folding_onto_an_empty_value_or_with_an_empty_line_adds_no_whitespace() {
        let text = "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
                    From: <sip:c@d>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\
                    Subject:\r\n  late\r\nX-Note: one\r\n \r\n\r\n";
        let msg = SipMessage::parse(text.as_bytes()).unwrap();
        assert_eq!(msg.header("Subject"), Some("late"));
        assert_eq!(msg.header("X-Note"), Some("one"));
        // Found by `fuzz/sip_sdp_parse`: the folded value re-parsed differently.
        let again = SipMessage::parse(&msg.to_bytes()).unwrap();
        assert_eq!(again.header("Subject"), Some("late"));
    }

    #[test]
    fn a_message_at_the_header_limit_re_parses_and_a_second_length_is_refused() {
        let mut text = String::from(
            "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
             From: <sip:c@d>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n",
        );
        for i in 5..MAX_HEADERS {
            text.push_str(&format!("X-{i}: {i}\r\n"));
        }
        // At the limit without a Content-Length (UDP allows that); serialising adds one.
        let msg = SipMessage::parse(format!("{text}\r\n").as_bytes()).unwrap();
        assert_eq!(msg.headers.len(), MAX_HEADERS);
        assert!(SipMessage::parse(&msg.to_bytes()).is_ok());
        let over = format!("{text}X-Over: 1\r\n\r\n");
        assert!(matches!(
            SipMessage::parse(over.as_bytes()),
            Err(ParseError::TooManyHeaders)
        ));
        let twice = format!("{text}l: 0\r\nContent-Length: 5\r\n\r\n");
        assert!(matches!(
            SipMessage::parse(twice.as_bytes()),
            Err(ParseError::ContentLength)
        ));
    }

    #[test]
    fn parses_compact_forms_folding_and_via_lists() {
        let msg = SipMessage::parse(INVITE.as_bytes()).unwrap();
        assert_eq!(msg.method(), Some("INVITE"));
        assert_eq!(msg.call_id(), "abc@10.0.0.1");
        assert_eq!(msg.header_values("Via").len(), 2);
        assert_eq!(msg.top_branch(), Some("z9hG4bK1"));
        assert_eq!(msg.header("subject"), Some("folded continued"));
        assert_eq!(msg.body, b"v=0\r");
        assert_eq!(msg.cseq(), Some((1, "INVITE")));
        assert_eq!(param(msg.header("From").unwrap(), "tag"), Some("a1"));
        assert_eq!(
            uri_user(addr_uri(msg.header("To").unwrap())),
            Some("+15550100")
        );
    }

    #[test]
    fn serializes_and_reparses() {
        let msg = SipMessage::parse(INVITE.as_bytes()).unwrap();
        let again = SipMessage::parse(&msg.to_bytes()).unwrap();
        assert_eq!(msg, again);
        let res = SipMessage::response_to(&msg, 180, "Ringing");
        let parsed = SipMessage::parse(&res.to_bytes()).unwrap();
        assert_eq!(parsed.status(), Some(180));
        assert_eq!(parsed.header_values("Via").len(), 2);
    }

    #[test]
    fn stream_parsing_waits_for_the_body() {
        let bytes = INVITE.replace("l: 4", "l: 10");
        let bytes = bytes.as_bytes();
        let cut = bytes.len() - 3;
        assert_eq!(SipMessage::parse_stream(&bytes[..cut]).unwrap(), None);
        let (_, used) = SipMessage::parse_stream(bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
    }

    #[test]
    fn stream_content_length_past_the_limit_is_refused() {
        for length in ["65536", "18446744073709551615"] {
            let bytes = INVITE.replace("l: 4", &format!("l: {length}"));
            assert_eq!(
                SipMessage::parse_stream(bytes.as_bytes()),
                Err(ParseError::TooLarge),
                "{length}"
            );
        }
    }

    #[test]
    fn malformed_input_is_an_error() {
        for bad in [
            "INVITE sip:x SIP/2.0\r\n\r\n",
            "HELLO\r\n\r\n",
            "SIP/2.0 99 Low\r\nVia: x\r\n\r\n",
            "INVITE sip:x SIP/2.0\r\nVia: x\r\nFrom: a\r\nTo: b\r\nCall-ID: c\r\nCSeq: x\r\n\r\n",
            "INVITE sip:x SIP/2.0\r\nVia: x\r\nFrom: a\r\nTo: b\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 99\r\n\r\nshort",
        ] {
            assert!(SipMessage::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
