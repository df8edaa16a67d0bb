//! SIP message model, parser and serialiser (RFC 3261 §7, §25).
//!
//! The parser is deliberately tolerant where RFC 4475 says a robust element
//! should be (folded header lines, compact header names, any case in header
//! names, odd whitespace around colons and separators, LF-only line ends,
//! comma-separated multi-value headers) and strict where accepting would be
//! wrong (bad Content-Length, bad start line, non-numeric CSeq). It never
//! panics: every malformed input is a [`ParseError`], and the endpoint turns
//! errors on requests into a `400`/`505` where enough of the message is
//! readable to build a response, or drops the datagram otherwise.

use std::fmt;

/// Largest message accepted (bytes). UDP datagrams are smaller than this;
/// for stream transports this bounds the buffer a peer can make us hold.
pub const MAX_MESSAGE_SIZE: usize = 65_535;

/// Why a byte buffer is not a SIP message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Nothing but whitespace.
    #[error("empty message")]
    Empty,
    /// Larger than [`MAX_MESSAGE_SIZE`].
    #[error("message too large")]
    TooLarge,
    /// No blank line ends the header section.
    #[error("header section not terminated")]
    Incomplete,
    /// The request or status line is not valid.
    #[error("bad start line")]
    BadStartLine,
    /// The SIP version is not `SIP/2.0` (answered with 505).
    #[error("unsupported SIP version {0}")]
    BadVersion(String),
    /// A header line without a name or colon.
    #[error("bad header line")]
    BadHeader,
    /// Content-Length is not a number, or promises more bytes than present.
    #[error("bad Content-Length")]
    BadContentLength,
}

/// A SIP method. Unknown extension methods are kept by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// INVITE
    Invite,
    /// ACK
    Ack,
    /// BYE
    Bye,
    /// CANCEL
    Cancel,
    /// OPTIONS
    Options,
    /// REGISTER
    Register,
    /// INFO (RFC 6086)
    Info,
    /// UPDATE (RFC 3311)
    Update,
    /// PRACK (RFC 3262)
    Prack,
    /// SUBSCRIBE
    Subscribe,
    /// NOTIFY
    Notify,
    /// REFER
    Refer,
    /// MESSAGE
    Message,
    /// Any other token.
    Other(String),
}

impl Method {
    /// Parses a method token (case-sensitive, as RFC 3261 requires).
    pub fn parse(s: &str) -> Option<Self> {
        if s.is_empty() || !s.bytes().all(is_token_char) {
            return None;
        }
        Some(match s {
            "INVITE" => Self::Invite,
            "ACK" => Self::Ack,
            "BYE" => Self::Bye,
            "CANCEL" => Self::Cancel,
            "OPTIONS" => Self::Options,
            "REGISTER" => Self::Register,
            "INFO" => Self::Info,
            "UPDATE" => Self::Update,
            "PRACK" => Self::Prack,
            "SUBSCRIBE" => Self::Subscribe,
            "NOTIFY" => Self::Notify,
            "REFER" => Self::Refer,
            "MESSAGE" => Self::Message,
            other => Self::Other(other.to_owned()),
        })
    }

    /// The method's token.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Invite => "INVITE",
            Self::Ack => "ACK",
            Self::Bye => "BYE",
            Self::Cancel => "CANCEL",
            Self::Options => "OPTIONS",
            Self::Register => "REGISTER",
            Self::Info => "INFO",
            Self::Update => "UPDATE",
            Self::Prack => "PRACK",
            Self::Subscribe => "SUBSCRIBE",
            Self::Notify => "NOTIFY",
            Self::Refer => "REFER",
            Self::Message => "MESSAGE",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// One header field: canonical name and raw (unfolded, trimmed) value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Canonical name (compact forms expanded, known names in their usual case).
    pub name: String,
    /// The value with folding removed and surrounding whitespace trimmed.
    pub value: String,
}

/// An ordered list of header fields. Lookups are case-insensitive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<Header>);

/// Headers whose values are comma-separated lists (RFC 3261 §7.3.1) and are
/// split by [`Headers::values`]. Others (e.g. `WWW-Authenticate`, `Date`)
/// contain commas that are not separators.
const LIST_HEADERS: &[&str] = &[
    "Via",
    "Contact",
    "Route",
    "Record-Route",
    "Allow",
    "Supported",
    "Require",
    "Proxy-Require",
    "Unsupported",
    "Accept",
    "Accept-Encoding",
    "Accept-Language",
    "Allow-Events",
    "Content-Encoding",
];

impl Headers {
    /// Appends a header.
    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.0.push(Header {
            name: canonical_name(name),
            value: value.into(),
        });
    }

    /// First value of the named header (whole field value, not split).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// Whether the named header is present.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// All values of the named header. List headers are split at top-level
    /// commas, so `Via: a, b` and two `Via` lines give the same result.
    pub fn values(&self, name: &str) -> Vec<String> {
        let split = LIST_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name));
        let mut out = Vec::new();
        for h in self.0.iter().filter(|h| h.name.eq_ignore_ascii_case(name)) {
            if split {
                out.extend(
                    split_list(&h.value)
                        .into_iter()
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned),
                );
            } else {
                out.push(h.value.clone());
            }
        }
        out
    }

    /// Removes every header with this name.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|h| !h.name.eq_ignore_ascii_case(name));
    }

    /// Replaces (or adds) a single-valued header.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        if let Some(h) = self
            .0
            .iter_mut()
            .find(|h| h.name.eq_ignore_ascii_case(name))
        {
            h.value = value;
            let n = h.name.clone();
            let mut seen = false;
            self.0.retain(|h| {
                if h.name == n {
                    let keep = !seen;
                    seen = true;
                    keep
                } else {
                    true
                }
            });
        } else {
            self.push(name, value);
        }
    }

    /// Iterates over the fields in order.
    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }
}

/// Splits a header value at commas that are outside quotes and `<…>`.
pub fn split_list(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth_angle = false;
    let mut in_quote = false;
    let mut escaped = false;
    let mut start = 0;
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quote => escaped = true,
            '"' => in_quote = !in_quote,
            '<' if !in_quote => depth_angle = true,
            '>' if !in_quote => depth_angle = false,
            ',' if !in_quote && !depth_angle => {
                out.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(value[start..].trim());
    out
}

/// Expands compact forms and gives known header names their usual spelling.
pub fn canonical_name(name: &str) -> String {
    const KNOWN: &[&str] = &[
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Alert-Info",
        "Allow",
        "Allow-Events",
        "Authentication-Info",
        "Authorization",
        "Call-ID",
        "Call-Info",
        "Contact",
        "Content-Disposition",
        "Content-Encoding",
        "Content-Language",
        "Content-Length",
        "Content-Type",
        "CSeq",
        "Date",
        "Event",
        "Expires",
        "From",
        "Max-Forwards",
        "Min-Expires",
        "Min-SE",
        "Organization",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Require",
        "Reason",
        "Record-Route",
        "Require",
        "Retry-After",
        "Route",
        "Server",
        "Session-Expires",
        "Subject",
        "Supported",
        "Timestamp",
        "To",
        "Unsupported",
        "User-Agent",
        "Via",
        "Warning",
        "WWW-Authenticate",
    ];
    let compact = match name {
        "i" | "I" => Some("Call-ID"),
        "m" | "M" => Some("Contact"),
        "e" | "E" => Some("Content-Encoding"),
        "l" | "L" => Some("Content-Length"),
        "c" | "C" => Some("Content-Type"),
        "f" | "F" => Some("From"),
        "s" | "S" => Some("Subject"),
        "k" | "K" => Some("Supported"),
        "t" | "T" => Some("To"),
        "v" | "V" => Some("Via"),
        "o" | "O" => Some("Event"),
        "u" | "U" => Some("Allow-Events"),
        "x" | "X" => Some("Session-Expires"),
        "r" | "R" => Some("Refer-To"),
        "b" | "B" => Some("Referred-By"),
        _ => None,
    };
    if let Some(c) = compact {
        return c.to_owned();
    }
    KNOWN
        .iter()
        .find(|k| k.eq_ignore_ascii_case(name))
        .map_or_else(|| name.to_owned(), |k| (*k).to_owned())
}

/// A SIP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The Request-URI as written.
    pub uri: String,
    /// Header fields in order (Content-Length is not kept: it is the body's
    /// length, and serialising always writes it).
    pub headers: Headers,
    /// The body (exactly Content-Length bytes).
    pub body: Vec<u8>,
}

/// A SIP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code (100–699).
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// Header fields in order.
    pub headers: Headers,
    /// The body.
    pub body: Vec<u8>,
}

/// A parsed SIP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

impl Message {
    /// The message's headers.
    pub fn headers(&self) -> &Headers {
        match self {
            Self::Request(r) => &r.headers,
            Self::Response(r) => &r.headers,
        }
    }
}

/// Returns the length of the first complete message in a stream buffer
/// (TCP/TLS framing by Content-Length, RFC 3261 §18.3), `Ok(None)` if more
/// bytes are needed. Leading CRLF keep-alives count towards the length.
pub fn frame_length(buf: &[u8]) -> Result<Option<usize>, ParseError> {
    let lead = buf
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count();
    let rest = &buf[lead..];
    let Some((head_end, body_start)) = find_header_end(rest) else {
        if rest.len() > MAX_MESSAGE_SIZE {
            return Err(ParseError::TooLarge);
        }
        return Ok(None);
    };
    let head = String::from_utf8_lossy(&rest[..head_end]);
    let mut len = None;
    for line in unfold(&head).into_iter().skip(1) {
        if let Some((n, v)) = line.split_once(':')
            && canonical_name(n.trim()) == "Content-Length"
        {
            len = Some(
                v.trim()
                    .parse::<usize>()
                    .map_err(|_| ParseError::BadContentLength)?,
            );
        }
    }
    // Stream transports require Content-Length (§18.3); absent means empty.
    let total = lead + body_start + len.unwrap_or(0);
    if total > MAX_MESSAGE_SIZE + lead {
        return Err(ParseError::TooLarge);
    }
    Ok((buf.len() >= total).then_some(total))
}

fn find_header_end(buf: &[u8]) -> Option<(usize, usize)> {
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

/// Splits the header section into logical lines, joining folded lines
/// (continuations starting with space or tab) with a single space.
fn unfold(head: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for raw in head.split('\n') {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if raw.starts_with([' ', '\t'])
            && let Some(last) = lines.last_mut()
        {
            let cont = raw.trim();
            if !cont.is_empty() {
                if !last.ends_with(' ') {
                    last.push(' ');
                }
                last.push_str(cont);
            }
            continue;
        }
        lines.push(raw.to_owned());
    }
    lines
}

impl Message {
    /// Parses one message from a datagram (or a frame cut by
    /// [`frame_length`]). The body is exactly Content-Length bytes; bytes
    /// beyond it are ignored (RFC 3261 §18.3), fewer is an error. Without
    /// Content-Length the rest of the datagram is the body.
    pub fn parse(buf: &[u8]) -> Result<Self, ParseError> {
        if buf.len() > MAX_MESSAGE_SIZE {
            return Err(ParseError::TooLarge);
        }
        let lead = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
        let buf = &buf[lead..];
        if buf.is_empty() {
            return Err(ParseError::Empty);
        }
        let (head_end, body_start) = find_header_end(buf).ok_or(ParseError::Incomplete)?;
        let head = String::from_utf8_lossy(&buf[..head_end]);
        let mut lines = unfold(&head).into_iter();
        let start = lines.next().ok_or(ParseError::BadStartLine)?;
        let mut headers = Headers::default();
        for line in lines {
            if line.is_empty() {
                continue;
            }
            let (name, value) = line.split_once(':').ok_or(ParseError::BadHeader)?;
            let name = name.trim_end_matches([' ', '\t']);
            if name.is_empty() || !name.bytes().all(is_token_char) {
                return Err(ParseError::BadHeader);
            }
            headers.push(name, value.trim_matches([' ', '\t']));
        }
        let available = &buf[body_start..];
        let content_length = headers.get("Content-Length").map(str::to_owned);
        // The body's length is authoritative from here on; the serialiser
        // always writes a matching Content-Length.
        headers.remove("Content-Length");
        let body = match content_length.as_deref() {
            Some(v) => {
                let n: usize = v.parse().map_err(|_| ParseError::BadContentLength)?;
                if n > available.len() {
                    return Err(ParseError::BadContentLength);
                }
                available[..n].to_vec()
            }
            None => available.to_vec(),
        };
        if let Some(rest) = start.strip_prefix("SIP/") {
            // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
            let (ver, rest) = rest.split_once(' ').ok_or(ParseError::BadStartLine)?;
            if ver != "2.0" {
                return Err(ParseError::BadVersion(format!("SIP/{ver}")));
            }
            let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
            if code.len() != 3 {
                return Err(ParseError::BadStartLine);
            }
            let status: u16 = code.parse().map_err(|_| ParseError::BadStartLine)?;
            if !(100..=699).contains(&status) {
                return Err(ParseError::BadStartLine);
            }
            return Ok(Self::Response(Response {
                status,
                reason: reason.to_owned(),
                headers,
                body,
            }));
        }
        // Request-Line = Method SP Request-URI SP SIP-Version (single spaces).
        let mut parts = start.split(' ');
        let (Some(m), Some(uri), Some(ver), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ParseError::BadStartLine);
        };
        let method = Method::parse(m).ok_or(ParseError::BadStartLine)?;
        if uri.is_empty() || !uri.contains(':') {
            return Err(ParseError::BadStartLine);
        }
        if !ver.eq_ignore_ascii_case("SIP/2.0") {
            if ver.starts_with("SIP/") {
                return Err(ParseError::BadVersion(ver.to_owned()));
            }
            return Err(ParseError::BadStartLine);
        }
        Ok(Self::Request(Request {
            method,
            uri: uri.to_owned(),
            headers,
            body,
        }))
    }

    /// Serialises the message; Content-Length is always written and always
    /// matches the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Self::Request(r) => r.to_bytes(),
            Self::Response(r) => r.to_bytes(),
        }
    }
}

fn write_rest(out: &mut Vec<u8>, headers: &Headers, body: &[u8]) {
    for h in headers.iter() {
        if h.name == "Content-Length" {
            continue;
        }
        out.extend_from_slice(h.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: Method, uri: impl Into<String>) -> Self {
        Self {
            method,
            uri: uri.into(),
            headers: Headers::default(),
            body: Vec::new(),
        }
    }

    /// Wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512 + self.body.len());
        out.extend_from_slice(format!("{} {} SIP/2.0\r\n", self.method, self.uri).as_bytes());
        write_rest(&mut out, &self.headers, &self.body);
        out
    }

    /// The top Via, parsed.
    pub fn top_via(&self) -> Option<Via> {
        self.headers
            .values("Via")
            .first()
            .and_then(|v| Via::parse(v))
    }

    /// The CSeq header, parsed.
    pub fn cseq(&self) -> Option<CSeq> {
        self.headers.get("CSeq").and_then(CSeq::parse)
    }

    /// The Call-ID.
    pub fn call_id(&self) -> Option<&str> {
        self.headers.get("Call-ID")
    }

    /// The From header, parsed.
    pub fn from(&self) -> Option<NameAddr> {
        self.headers.get("From").and_then(NameAddr::parse)
    }

    /// The To header, parsed.
    pub fn to(&self) -> Option<NameAddr> {
        self.headers.get("To").and_then(NameAddr::parse)
    }

    /// Builds a response as RFC 3261 §8.2.6 says: Via, From, To, Call-ID and
    /// CSeq copied; a To tag added when given and absent; Record-Route copied
    /// for dialog-creating responses by the caller.
    pub fn response(&self, status: u16, reason: &str, to_tag: Option<&str>) -> Response {
        let mut headers = Headers::default();
        for h in self.headers.iter() {
            if matches!(h.name.as_str(), "Via" | "From" | "Call-ID" | "CSeq") {
                headers.0.push(h.clone());
            } else if h.name == "To" {
                let mut v = h.value.clone();
                if let Some(tag) = to_tag
                    && status > 100
                    && NameAddr::parse(&v).is_some_and(|n| n.tag().is_none())
                {
                    v.push_str(";tag=");
                    v.push_str(tag);
                }
                headers.0.push(Header {
                    name: "To".into(),
                    value: v,
                });
            }
        }
        if status == 100
            && let Some(ts) = self.headers.get("Timestamp")
        {
            headers.push("Timestamp", ts);
        }
        Response {
            status,
            reason: reason.to_owned(),
            headers,
            body: Vec::new(),
        }
    }
}

impl Response {
    /// Wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512 + self.body.len());
        out.extend_from_slice(format!("SIP/2.0 {} {}\r\n", self.status, self.reason).as_bytes());
        write_rest(&mut out, &self.headers, &self.body);
        out
    }

    /// The CSeq header, parsed.
    pub fn cseq(&self) -> Option<CSeq> {
        self.headers.get("CSeq").and_then(CSeq::parse)
    }

    /// The top Via, parsed.
    pub fn top_via(&self) -> Option<Via> {
        self.headers
            .values("Via")
            .first()
            .and_then(|v| Via::parse(v))
    }

    /// The To header, parsed.
    pub fn to(&self) -> Option<NameAddr> {
        self.headers.get("To").and_then(NameAddr::parse)
    }
}

/// The standard reason phrase for a status code.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        _ => "Unknown",
    }
}

/// Splits `;name=value` parameters (quotes respected). Names are lower-cased.
pub fn parse_params(s: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut in_quote = false;
    let mut start = 0;
    let mut pieces = Vec::new();
    for (i, c) in s.char_indices() {
        match c {
            '"' => in_quote = !in_quote,
            ';' if !in_quote => {
                pieces.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    pieces.push(&s[start..]);
    for p in pieces {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        match p.split_once('=') {
            Some((n, v)) => out.push((
                n.trim().to_ascii_lowercase(),
                Some(v.trim().trim_matches('"').to_owned()),
            )),
            None => out.push((p.to_ascii_lowercase(), None)),
        }
    }
    out
}

fn param<'a>(params: &'a [(String, Option<String>)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v.as_deref())
}

/// A parsed Via value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport token, upper case (UDP, TCP, TLS, …).
    pub transport: String,
    /// sent-by host.
    pub host: String,
    /// sent-by port, if written.
    pub port: Option<u16>,
    /// Parameters (lower-cased names).
    pub params: Vec<(String, Option<String>)>,
}

impl Via {
    /// Parses one Via value (`SIP / 2.0 / UDP host:port;params`).
    pub fn parse(v: &str) -> Option<Self> {
        let (proto, rest) = v
            .split_once([' ', '\t'])
            .map_or_else(|| (v, ""), |(a, b)| (a, b));
        // Tolerate whitespace inside the protocol triple ("SIP / 2.0 / UDP").
        let compact: String;
        let (proto, rest) = if proto.matches('/').count() == 2 {
            (proto, rest)
        } else {
            let mut slashes = 0;
            let mut end = 0;
            for (i, c) in v.char_indices() {
                if c == '/' {
                    slashes += 1;
                }
                if slashes == 2 && c.is_ascii_alphabetic() {
                    end = i;
                    break;
                }
            }
            if slashes < 2 {
                return None;
            }
            let tail = &v[end..];
            let t_end = tail
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(tail.len());
            compact = v[..end + t_end].split_whitespace().collect();
            (compact.as_str(), &tail[t_end..])
        };
        let mut it = proto.split('/');
        let (Some(name), Some(ver), Some(transport)) = (it.next(), it.next(), it.next()) else {
            return None;
        };
        if !name.trim().eq_ignore_ascii_case("SIP") || ver.trim() != "2.0" {
            return None;
        }
        let rest = rest.trim();
        let (sent_by, params) = rest.split_once(';').unwrap_or((rest, ""));
        let sent_by = sent_by.trim();
        let (host, port) = split_host_port(sent_by)?;
        Some(Self {
            transport: transport.trim().to_ascii_uppercase(),
            host,
            port,
            params: parse_params(params),
        })
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&str> {
        param(&self.params, "branch")
    }

    /// The received parameter.
    pub fn received(&self) -> Option<&str> {
        param(&self.params, "received")
    }

    /// `host[:port]` as written.
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.clone(),
        }
    }
}

/// Splits `host[:port]`, handling `[v6]:port`.
pub fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    if s.is_empty() {
        return None;
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.trim().parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((format!("[{h}]"), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) => Some((h.trim().to_owned(), Some(p.trim().parse().ok()?))),
        None => Some((s.to_owned(), None)),
    }
}

/// A CSeq value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// Sequence number (< 2^31 per RFC 3261).
    pub seq: u32,
    /// Method.
    pub method: Method,
}

impl CSeq {
    /// Parses `number method`.
    pub fn parse(v: &str) -> Option<Self> {
        let mut it = v.split_whitespace();
        let seq: u32 = it.next()?.parse().ok()?;
        if seq >= 1 << 31 {
            return None;
        }
        let method = Method::parse(it.next()?)?;
        if it.next().is_some() {
            return None;
        }
        Some(Self { seq, method })
    }
}

/// A name-addr or addr-spec with header parameters (From, To, Contact).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name without quotes, if any.
    pub display: Option<String>,
    /// The URI.
    pub uri: Uri,
    /// Header parameters (tag, expires, q, …), lower-cased names.
    pub params: Vec<(String, Option<String>)>,
}

impl NameAddr {
    /// Parses `"Name" <uri>;params`, `Name <uri>;params` or `uri;params`.
    pub fn parse(v: &str) -> Option<Self> {
        let v = v.trim();
        if let Some(lt) = find_unquoted(v, '<') {
            let gt = v[lt..].find('>')? + lt;
            let display = v[..lt].trim();
            let display = if display.is_empty() {
                None
            } else {
                Some(unquote(display))
            };
            let uri = Uri::parse(&v[lt + 1..gt])?;
            let params = parse_params(&v[gt + 1..]);
            Some(Self {
                display,
                uri,
                params,
            })
        } else {
            // addr-spec: parameters after the URI belong to the header.
            let (u, p) = v.split_once(';').unwrap_or((v, ""));
            Some(Self {
                display: None,
                uri: Uri::parse(u.trim())?,
                params: parse_params(p),
            })
        }
    }

    /// The tag parameter.
    pub fn tag(&self) -> Option<&str> {
        param(&self.params, "tag")
    }

    /// A named header parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        param(&self.params, name)
    }
}

fn find_unquoted(s: &str, needle: char) -> Option<usize> {
    let mut in_quote = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quote => escaped = true,
            '"' => in_quote = !in_quote,
            c if c == needle && !in_quote => return Some(i),
            _ => {}
        }
    }
    None
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    if let Some(inner) = s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        let mut out = String::with_capacity(inner.len());
        let mut esc = false;
        for c in inner.chars() {
            if esc {
                out.push(c);
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else {
                out.push(c);
            }
        }
        out
    } else {
        s.to_owned()
    }
}

/// A SIP/SIPS URI (RFC 3261 §19.1), enough of it to route and compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    /// `sip`, `sips` or `tel` (lower case).
    pub scheme: String,
    /// User part, percent-decoded.
    pub user: Option<String>,
    /// Host (lower case).
    pub host: String,
    /// Port, if written.
    pub port: Option<u16>,
    /// URI parameters (`;transport=tcp`, …).
    pub params: Vec<(String, Option<String>)>,
}

impl Uri {
    /// Parses a URI; `None` for schemes other than sip/sips/tel or bad syntax.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let (scheme, rest) = s.split_once(':')?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme == "tel" {
            let (num, params) = rest.split_once(';').unwrap_or((rest, ""));
            return Some(Self {
                scheme,
                user: Some(percent_decode(num)),
                host: String::new(),
                port: None,
                params: parse_params(params),
            });
        }
        if scheme != "sip" && scheme != "sips" {
            return None;
        }
        let (userinfo, hostpart) = match rest.rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        // URI headers (`?name=value`) follow the host part.
        let hostpart = hostpart.split_once('?').map_or(hostpart, |(a, _)| a);
        let (hostport, params) = hostpart.split_once(';').unwrap_or((hostpart, ""));
        let (host, port) = split_host_port(hostport)?;
        if host.is_empty() || host.contains(char::is_whitespace) {
            return None;
        }
        let user = userinfo.map(|u| percent_decode(u.split_once(':').map_or(u, |(a, _)| a)));
        Some(Self {
            scheme,
            user,
            host: host.to_ascii_lowercase(),
            port,
            params: parse_params(params),
        })
    }

    /// A URI parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        param(&self.params, name)
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.scheme)?;
        if self.scheme == "tel" {
            return write!(f, "{}", self.user.as_deref().unwrap_or(""));
        }
        if let Some(u) = &self.user {
            for b in u.bytes() {
                if b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&b) {
                    write!(f, "{}", b as char)?;
                } else {
                    write!(f, "%{b:02X}")?;
                }
            }
            f.write_str("@")?;
        }
        f.write_str(&self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        for (n, v) in &self.params {
            match v {
                Some(v) => write!(f, ";{n}={v}")?,
                None => write!(f, ";{n}")?,
            }
        }
        Ok(())
    }
}

/// Decodes `%XX` escapes; invalid escapes are kept literally.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hexval(b[i + 1]), hexval(b[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hexval(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Checks what RFC 3261 §8.2 requires of a request before a UAS acts on it.
/// Returns the status to answer with when it is not acceptable.
pub fn validate_request(req: &Request) -> Result<(), (u16, &'static str)> {
    let bad = |why: &'static str| Err((400, why));
    if req.top_via().is_none() {
        return bad("Missing or bad Via");
    }
    if req.call_id().is_none_or(str::is_empty) {
        return bad("Missing Call-ID");
    }
    if req.from().is_none() {
        return bad("Missing or bad From");
    }
    if req.to().is_none() {
        return bad("Missing or bad To");
    }
    let Some(cseq) = req.cseq() else {
        return bad("Missing or bad CSeq");
    };
    if cseq.method != req.method {
        return bad("CSeq method does not match");
    }
    if req.headers.values("Call-ID").len() > 1
        || req.headers.values("CSeq").len() > 1
        || req.headers.values("From").len() > 1
        || req.headers.values("To").len() > 1
    {
        return bad("Duplicate header");
    }
    if let Some(mf) = req.headers.get("Max-Forwards") {
        match mf.parse::<u8>() {
            Ok(0) if req.method != Method::Options => return Err((483, "Too Many Hops")),
            Ok(_) => {}
            Err(_) => return bad("Bad Max-Forwards"),
        }
    }
    if let Some(e) = req.headers.get("Expires")
        && e.parse::<u32>().is_err()
    {
        return bad("Bad Expires");
    }
    let scheme_ok = req.uri.split_once(':').is_some_and(|(s, _)| {
        ["sip", "sips", "tel"]
            .iter()
            .any(|k| k.eq_ignore_ascii_case(s))
    });
    if !scheme_ok {
        return Err((416, "Unsupported URI Scheme"));
    }
    if Uri::parse(&req.uri).is_none() {
        return bad("Bad Request-URI");
    }
    Ok(())
}

/// Builds an error response for a request that did not parse (bad
/// version, bad header, bad Content-Length), salvaging the headers a
/// response needs (RFC 3261 §8.2.6). `None` when the input is not a request
/// or those headers cannot be found: such input is dropped.
pub fn error_response_for_unparsable(buf: &[u8], status: u16, reason: &str) -> Option<Vec<u8>> {
    let lead = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
    let buf = buf.get(lead..)?;
    let head_end = find_header_end(buf).map_or(buf.len(), |(e, _)| e);
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let mut lines = unfold(&head).into_iter();
    let start = lines.next()?;
    if start.starts_with("SIP/") || start.split(' ').count() < 3 {
        return None;
    }
    let mut headers = Headers::default();
    for line in lines {
        let Some((n, v)) = line.split_once(':') else {
            continue;
        };
        let name = canonical_name(n.trim());
        if matches!(name.as_str(), "Via" | "From" | "To" | "Call-ID" | "CSeq") {
            headers.push(&name, v.trim());
        }
    }
    for required in ["Via", "From", "To", "Call-ID", "CSeq"] {
        if !headers.has(required) {
            return None;
        }
    }
    let resp = Response {
        status,
        reason: reason.to_owned(),
        headers,
        body: Vec::new(),
    };
    Some(resp.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\n";

    #[test]
    fn parses_and_round_trips_a_request() {
        let m = Message::parse(INVITE.as_bytes()).unwrap();
        let Message::Request(r) = &m else { panic!() };
        assert_eq!(r.method, Method::Invite);
        assert_eq!(r.uri, "sip:bob@biloxi.example.com");
        assert_eq!(r.body, b"v=0\n");
        assert_eq!(r.cseq().unwrap().seq, 314159);
        assert_eq!(r.from().unwrap().tag(), Some("1928301774"));
        assert_eq!(r.top_via().unwrap().branch(), Some("z9hG4bK776asdhds"));
        assert!(validate_request(r).is_ok());
        let again = Message::parse(&m.to_bytes()).unwrap();
        assert_eq!(again, m);
    }

    #[test]
    fn folded_compact_and_odd_whitespace_headers() {
        let msg = "OPTIONS sip:user@example.com SIP/2.0\r\n\
v  :  SIP/2.0/UDP host1.example.com;branch=z9hG4bK1\r\n\
t:\r\n  <sip:user@example.com>\r\n\
f  :   \"Caller, The\" <sip:caller@example.com>\r\n\t ;tag=98asjd8\r\n\
i:\tcall1@host\r\n\
cSeQ  : \r\n   8   \r\n  OPTIONS\r\n\
l: 0\r\n\
\r\n";
        let Message::Request(r) = Message::parse(msg.as_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(r.to().unwrap().uri.user.as_deref(), Some("user"));
        let from = r.from().unwrap();
        assert_eq!(from.display.as_deref(), Some("Caller, The"));
        assert_eq!(from.tag(), Some("98asjd8"));
        assert_eq!(r.call_id(), Some("call1@host"));
        assert_eq!(r.cseq().unwrap().seq, 8);
        assert!(validate_request(&r).is_ok());
    }

    #[test]
    fn multiple_values_split_outside_quotes_and_angles() {
        let msg = "REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP a.example.com;branch=z9hG4bKa, SIP/2.0/UDP b.example.com;branch=z9hG4bKb\r\n\
Via: SIP/2.0/TCP c.example.com;branch=z9hG4bKc\r\n\
To: <sip:u@example.com>\r\nFrom: <sip:u@example.com>;tag=1\r\nCall-ID: x\r\nCSeq: 1 REGISTER\r\n\
Contact: \"A, B\" <sip:u@1.2.3.4;x=a,b>;expires=60, <sip:u@5.6.7.8>\r\n\r\n";
        let Message::Request(r) = Message::parse(msg.as_bytes()).unwrap() else {
            panic!()
        };
        let vias = r.headers.values("via");
        assert_eq!(vias.len(), 3);
        assert_eq!(Via::parse(&vias[2]).unwrap().transport, "TCP");
        let contacts = r.headers.values("Contact");
        assert_eq!(contacts.len(), 2);
        assert_eq!(
            NameAddr::parse(&contacts[0]).unwrap().param("expires"),
            Some("60")
        );
    }

    #[test]
    fn escapes_in_uris_are_decoded() {
        let u = Uri::parse("sip:sips%3Auser%40example.com@example.net;transport=tcp").unwrap();
        assert_eq!(u.user.as_deref(), Some("sips:user@example.com"));
        assert_eq!(u.host, "example.net");
        assert_eq!(u.param("transport"), Some("tcp"));
        let v6 = Uri::parse("sip:[2001:db8::10]:5070").unwrap();
        assert_eq!(v6.host, "[2001:db8::10]");
        assert_eq!(v6.port, Some(5070));
    }

    #[test]
    fn malformed_inputs_are_errors_not_panics() {
        let cases: &[&[u8]] = &[
            b"",
            b"\r\n\r\n",
            b"INVITE\r\n\r\n",
            b"INVITE sip:a@b SIP/2.0",
            b"INVITE  sip:a@b SIP/2.0\r\n\r\n",
            b"INVITE sip:a@b SIP/7.0\r\n\r\n",
            b"SIP/2.0 2000 OK\r\n\r\n",
            b"SIP/2.0 abc OK\r\n\r\n",
            b"INVITE sip:a@b SIP/2.0\r\nNoColon\r\n\r\n",
            b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 99\r\n\r\nshort",
            b"INVITE sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n",
            b"\xff\xfe\xfd\r\n\r\n",
        ];
        for c in cases {
            assert!(
                Message::parse(c).is_err(),
                "{:?}",
                String::from_utf8_lossy(c)
            );
        }
        assert_eq!(
            Message::parse(b"INVITE sip:a@b SIP/7.0\r\n\r\n"),
            Err(ParseError::BadVersion("SIP/7.0".into()))
        );
    }

    #[test]
    fn validation_finds_missing_and_inconsistent_headers() {
        let base = |cseq: &str| {
            format!(
                "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:a@b>\r\n\
From: <sip:c@d>;tag=1\r\nCall-ID: 1\r\nCSeq: {cseq}\r\n\r\n"
            )
        };
        let parse = |s: String| match Message::parse(s.as_bytes()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => panic!(),
        };
        assert!(validate_request(&parse(base("1 INVITE"))).is_ok());
        assert_eq!(validate_request(&parse(base("1 BYE"))).unwrap_err().0, 400);
        assert_eq!(
            validate_request(&parse(base("x INVITE"))).unwrap_err().0,
            400
        );
        assert_eq!(
            validate_request(&parse(base("4294967296 INVITE")))
                .unwrap_err()
                .0,
            400
        );
        let mut r = parse(base("1 INVITE"));
        r.headers.push("Max-Forwards", "0");
        assert_eq!(validate_request(&r).unwrap_err().0, 483);
        let mut r = parse(base("1 INVITE"));
        r.uri = "http://example.com".into();
        assert_eq!(validate_request(&r).unwrap_err().0, 416);
    }

    #[test]
    fn response_copies_dialog_headers_and_adds_tag() {
        let Message::Request(r) = Message::parse(INVITE.as_bytes()).unwrap() else {
            panic!()
        };
        let resp = r.response(180, "Ringing", Some("abc"));
        assert_eq!(resp.to().unwrap().tag(), Some("abc"));
        assert_eq!(resp.cseq().unwrap().method, Method::Invite);
        let Message::Response(p) = Message::parse(&resp.to_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(p.status, 180);
        assert_eq!(p.headers.get("Call-ID"), r.call_id());
    }

    #[test]
    fn stream_framing_uses_content_length() {
        let one = INVITE.as_bytes();
        let mut two = one.to_vec();
        two.extend_from_slice(one);
        assert_eq!(frame_length(&two).unwrap(), Some(one.len()));
        assert_eq!(frame_length(&one[..one.len() - 1]).unwrap(), None);
        let mut ka = b"\r\n\r\n".to_vec();
        ka.extend_from_slice(one);
        assert_eq!(frame_length(&ka).unwrap(), Some(one.len() + 4));
    }
}
