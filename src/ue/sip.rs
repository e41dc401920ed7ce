//! A small SIP message builder and parser for the test UE (RFC 3261 §7, §20, §25).
//!
//! Enough SIP for REGISTER / MESSAGE over UDP: the request line and status line, headers
//! looked up case-insensitively with their compact forms (RFC 3261 §7.3.3), comma-separated
//! header lists (with quoted strings and `<…>` kept whole), name-addr URIs and their
//! parameters, authentication parameters with quoted strings (RFC 2617 §1.2, §3.2.1) and a
//! body framed by Content-Length.
//!
//! ```text
//! REGISTER sip:ims.mnc001.mcc460.3gppnetwork.org SIP/2.0      request line
//! SIP/2.0 401 Unauthorized                                  status line
//! v: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK…             compact form of Via
//! ```
//!
//! Pure: no IO. Must not depend on anything outside `std`.

use std::fmt::Write as _;

use super::error::SipError;

/// The SIP version this module speaks.
pub const SIP_VERSION: &str = "SIP/2.0";

/// Compact header forms (RFC 3261 §7.3.3 and §20; RFC 3265, RFC 3515, RFC 3841, RFC 4028).
const COMPACT: &[(&str, &str)] = &[
    ("a", "Accept-Contact"),
    ("b", "Referred-By"),
    ("c", "Content-Type"),
    ("d", "Request-Disposition"),
    ("e", "Content-Encoding"),
    ("f", "From"),
    ("i", "Call-ID"),
    ("j", "Reject-Contact"),
    ("k", "Supported"),
    ("l", "Content-Length"),
    ("m", "Contact"),
    ("o", "Event"),
    ("r", "Refer-To"),
    ("s", "Subject"),
    ("t", "To"),
    ("u", "Allow-Events"),
    ("v", "Via"),
    ("x", "Session-Expires"),
];

/// The full name of a header name given in either form, e.g. `"i"` → `"Call-ID"`.
pub fn full_name(name: &str) -> &str {
    if name.len() == 1 {
        for (short, long) in COMPACT {
            if short.eq_ignore_ascii_case(name) {
                return long;
            }
        }
    }
    name
}

/// Whether two header names denote the same header (case-insensitive, compact forms
/// expanded).
pub fn same_header(a: &str, b: &str) -> bool {
    full_name(a).eq_ignore_ascii_case(full_name(b))
}

/// The first line of a SIP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// `METHOD Request-URI SIP/2.0` (RFC 3261 §7.1).
    Request {
        /// e.g. `REGISTER`.
        method: String,
        /// The Request-URI.
        uri: String,
    },
    /// `SIP/2.0 Status-Code Reason-Phrase` (RFC 3261 §7.2).
    Status {
        /// e.g. 401.
        code: u16,
        /// e.g. `Unauthorized`.
        reason: String,
    },
}

/// One header line, with the name as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The name as it appeared (or was added), e.g. `i` or `Call-ID`.
    pub name: String,
    /// The value, leading and trailing whitespace removed, folded lines joined.
    pub value: String,
}

/// A SIP request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Request line or status line.
    pub start: StartLine,
    /// Headers in order. Content-Length is recomputed by [`Message::to_bytes`].
    pub headers: Vec<Header>,
    /// The body (Content-Length octets).
    pub body: Vec<u8>,
}

impl Message {
    /// A request with no headers yet.
    pub fn request(method: &str, uri: &str) -> Self {
        Self {
            start: StartLine::Request {
                method: method.to_owned(),
                uri: uri.to_owned(),
            },
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A response to `req` (RFC 3261 §8.2.6.2): copies Via, From, To, Call-ID and CSeq, and
    /// adds `to_tag` to To when it has no tag yet.
    pub fn response_to(req: &Message, code: u16, reason: &str, to_tag: &str) -> Self {
        let mut resp = Self {
            start: StartLine::Status {
                code,
                reason: reason.to_owned(),
            },
            headers: Vec::new(),
            body: Vec::new(),
        };
        for h in &req.headers {
            let name = full_name(&h.name);
            if ["Via", "From", "Call-ID", "CSeq"]
                .iter()
                .any(|n| n.eq_ignore_ascii_case(name))
            {
                resp.headers.push(Header {
                    name: name.to_owned(),
                    value: h.value.clone(),
                });
            } else if name.eq_ignore_ascii_case("To") {
                let value = if param(&h.value, "tag").is_some() {
                    h.value.clone()
                } else {
                    format!("{};tag={to_tag}", h.value)
                };
                resp.headers.push(Header {
                    name: "To".to_owned(),
                    value,
                });
            }
        }
        resp
    }

    /// Adds a header (builder form).
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.push(name, value);
        self
    }

    /// Adds a header.
    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.headers.push(Header {
            name: name.to_owned(),
            value: value.into(),
        });
    }

    /// Sets the body and its Content-Type.
    pub fn with_body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.headers
            .retain(|h| !same_header(&h.name, "Content-Type"));
        self.push("Content-Type", content_type);
        self.body = body.into();
        self
    }

    /// The method of a request, or the method in CSeq for a response.
    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Status { .. } => self.cseq().map(|(_, m)| m),
        }
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Status { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    /// The reason phrase of a response (empty for a request).
    pub fn reason(&self) -> &str {
        match &self.start {
            StartLine::Status { reason, .. } => reason,
            StartLine::Request { .. } => "",
        }
    }

    /// The value of the first header called `name` (either form, any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| same_header(&h.name, name))
            .map(|h| h.value.as_str())
    }

    /// The values of every header called `name`, in order.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |h| same_header(&h.name, name))
            .map(|h| h.value.as_str())
    }

    /// Every element of every `name` header, split at commas outside quotes and `<…>`
    /// (RFC 3261 §7.3.1), trimmed.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.headers_named(name)
            .flat_map(split_list)
            .map(str::to_owned)
            .collect()
    }

    /// CSeq as (number, method).
    pub fn cseq(&self) -> Option<(u32, &str)> {
        let v = self.header("CSeq")?;
        let mut it = v.split_whitespace();
        let n = it.next()?.parse().ok()?;
        Some((n, it.next()?))
    }

    /// The branch parameter of the top Via.
    pub fn top_branch(&self) -> Option<&str> {
        let via = split_list(self.header("Via")?).into_iter().next()?;
        param(via, "branch")
    }

    /// Serialises the message, writing `Content-Length` with the body's length (any
    /// Content-Length header already present is replaced).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::new();
        match &self.start {
            StartLine::Request { method, uri } => {
                let _ = write!(out, "{method} {uri} {SIP_VERSION}\r\n");
            }
            StartLine::Status { code, reason } => {
                let _ = write!(out, "{SIP_VERSION} {code} {reason}\r\n");
            }
        }
        for h in &self.headers {
            if same_header(&h.name, "Content-Length") {
                continue;
            }
            let _ = write!(out, "{}: {}\r\n", h.name, h.value);
        }
        let _ = write!(out, "Content-Length: {}\r\n\r\n", self.body.len());
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }

    /// Parses one SIP message from a datagram (RFC 3261 §7, §18.3).
    ///
    /// Headers may use compact names and folded continuation lines; LF alone is accepted as a
    /// line end. The body is Content-Length octets; without Content-Length (allowed on UDP)
    /// it is the rest of the datagram. Octets beyond Content-Length are ignored.
    ///
    /// # Errors
    /// The [`SipError`] naming the first part found wrong.
    pub fn parse(data: &[u8]) -> Result<Self, SipError> {
        // Tolerate leading CRLFs (keep-alives, RFC 3261 §7.5).
        let start = data
            .iter()
            .position(|b| *b != b'\r' && *b != b'\n')
            .unwrap_or(data.len());
        let data = &data[start..];
        let (head_len, sep_len) = find_header_end(data).ok_or(SipError::NoHeaderEnd)?;
        let head = std::str::from_utf8(&data[..head_len]).map_err(|_| SipError::NotUtf8)?;
        let rest = &data[head_len + sep_len..];

        let mut lines: Vec<String> = Vec::new();
        for raw in head.split('\n') {
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if line.starts_with([' ', '\t']) && lines.len() > 1 {
                // Folded continuation of the previous header (RFC 3261 §7.3.1).
                let last = lines.last_mut().expect("len > 1");
                last.push(' ');
                last.push_str(line.trim());
            } else {
                lines.push(line.to_owned());
            }
        }
        let first = lines.first().cloned().unwrap_or_default();
        let start = parse_start_line(&first)?;
        let mut headers = Vec::new();
        for line in lines.iter().skip(1) {
            if line.is_empty() {
                continue;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| SipError::HeaderLine { line: line.clone() })?;
            headers.push(Header {
                name: name.trim().to_owned(),
                value: value.trim().to_owned(),
            });
        }
        let mut msg = Self {
            start,
            headers,
            body: Vec::new(),
        };
        msg.body = match msg.header("Content-Length") {
            Some(v) => {
                let declared: usize = v.trim().parse().map_err(|_| SipError::ContentLength {
                    value: v.to_owned(),
                })?;
                if rest.len() < declared {
                    return Err(SipError::Truncated {
                        declared,
                        got: rest.len(),
                    });
                }
                rest[..declared].to_vec()
            }
            None => rest.to_vec(),
        };
        Ok(msg)
    }
}

/// Where the header section ends: (length of the header section, length of the separator).
fn find_header_end(data: &[u8]) -> Option<(usize, usize)> {
    let crlf = data.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = data.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) if b < a => Some((b, 2)),
        (Some(a), _) => Some((a, 4)),
        (None, Some(b)) => Some((b, 2)),
        (None, None) => None,
    }
}

fn parse_start_line(line: &str) -> Result<StartLine, SipError> {
    let bad = || SipError::StartLine {
        line: line.to_owned(),
    };
    if let Some(rest) = line.strip_prefix("SIP/2.0 ") {
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        let code: u16 = code.parse().map_err(|_| bad())?;
        if !(100..=699).contains(&code) {
            return Err(bad());
        }
        return Ok(StartLine::Status {
            code,
            reason: reason.trim().to_owned(),
        });
    }
    let mut parts = line.split(' ');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(method), Some(uri), Some(SIP_VERSION), None)
            if !method.is_empty()
                && method
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !uri.is_empty() =>
        {
            Ok(StartLine::Request {
                method: method.to_owned(),
                uri: uri.to_owned(),
            })
        }
        _ => Err(bad()),
    }
}

/// Splits a header value at commas that are outside quoted strings and `<…>`, trimming each
/// element and dropping empty ones.
pub fn split_list(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut in_quote, mut in_angle, mut escaped) = (false, false, false);
    let mut from = 0;
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quote => escaped = true,
            '"' => in_quote = !in_quote,
            '<' if !in_quote => in_angle = true,
            '>' if !in_quote => in_angle = false,
            ',' if !in_quote && !in_angle => {
                out.push(value[from..i].trim());
                from = i + 1;
            }
            _ => {}
        }
    }
    out.push(value[from..].trim());
    out.retain(|s| !s.is_empty());
    out
}

/// The URI of a name-addr or addr-spec (RFC 3261 §20.10): the text between `<` and `>`, or
/// the value up to its first `;` when there are no angle brackets.
pub fn uri_of(value: &str) -> &str {
    match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if a < b => value[a + 1..b].trim(),
        _ => value.split(';').next().unwrap_or(value).trim(),
    }
}

/// A header parameter (`;name=value`, after the `>` of a name-addr), case-insensitive name.
/// A parameter without `=` gives `Some("")`.
pub fn param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    let after = match value.rfind('>') {
        Some(i) => &value[i + 1..],
        None => value,
    };
    after.split(';').skip(1).find_map(|p| {
        let (n, v) = p.split_once('=').unwrap_or((p, ""));
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"'))
    })
}

/// An authentication challenge or credentials header value (RFC 2617 §1.2, §3.2.1):
/// the scheme and its `name=value` parameters, names lower-cased, quoted strings unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthParams {
    /// The scheme, e.g. `Digest`.
    pub scheme: String,
    /// The parameters in order; names lower-cased.
    pub params: Vec<(String, String)>,
}

impl AuthParams {
    /// The value of parameter `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Parses `Digest realm="a", nonce="b", algorithm=AKAv1-MD5, qop="auth,auth-int"`.
    ///
    /// # Errors
    /// [`SipError::AuthParams`] for a missing scheme, a parameter without `=`, or an
    /// unterminated quoted string.
    pub fn parse(value: &str) -> Result<Self, SipError> {
        let err = |what| SipError::AuthParams {
            value: value.to_owned(),
            what,
        };
        let v = value.trim();
        let (scheme, mut rest) = match v.find([' ', '\t']) {
            Some(i) => (&v[..i], v[i..].trim_start()),
            None => (v, ""),
        };
        if scheme.is_empty() || scheme.contains('=') {
            return Err(err("no authentication scheme before the parameters"));
        }
        let mut params = Vec::new();
        loop {
            rest = rest.trim_start_matches([' ', '\t', ',', '\r', '\n']);
            if rest.is_empty() {
                break;
            }
            let eq = rest.find('=').ok_or_else(|| err("parameter without '='"))?;
            let name = rest[..eq].trim();
            if name.is_empty() || name.contains([',', ' ', '"']) {
                return Err(err("parameter without '='"));
            }
            rest = rest[eq + 1..].trim_start();
            let value;
            if let Some(q) = rest.strip_prefix('"') {
                let mut out = String::new();
                let mut chars = q.char_indices();
                let mut end = None;
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, e)) = chars.next() {
                                out.push(e);
                            }
                        }
                        '"' => {
                            end = Some(i);
                            break;
                        }
                        _ => out.push(c),
                    }
                }
                let end = end.ok_or_else(|| err("unterminated quoted string"))?;
                value = out;
                rest = &q[end + 1..];
            } else {
                let end = rest.find([',', ' ', '\t']).unwrap_or(rest.len());
                value = rest[..end].to_owned();
                rest = &rest[end..];
            }
            params.push((name.to_ascii_lowercase(), value));
        }
        Ok(Self {
            scheme: scheme.to_owned(),
            params,
        })
    }
}

/// Quotes a string for a quoted-string parameter (RFC 3261 §25.1), escaping `"` and `\`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}
