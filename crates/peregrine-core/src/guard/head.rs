//! Strict validation of an HTTP/1.1 request head (RFC 9112 §2–§6), where hyper is
//! lenient or where the RFCs leave a choice. It sees the complete head, from the request
//! line to the empty line, and decides how the body is framed.

use super::rejection::Rejection;

/// How the request's body is delimited, which tells the guard where the next request
/// starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub framing: Framing,
    /// CONNECT or an Upgrade header: if the server agrees, the bytes that follow are not
    /// HTTP/1.1, so the guard stops inspecting.
    pub upgrade: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    pub max_request_line: usize,
    pub max_header_count: usize,
    pub max_headers_total: usize,
}

/// tchar (RFC 9110 §5.6.2).
pub fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
        | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

/// field-content bytes: VCHAR, obs-text, SP, HTAB (RFC 9110 §5.5).
pub fn is_field_value_byte(b: u8) -> bool {
    b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80
}

/// Bytes of an authority (host [":" port]) per RFC 3986: unreserved, pct-encoded,
/// sub-delims, ":", "[" and "]" (IP literals).
fn is_authority_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'%'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'['
                | b']'
        )
}

fn find_crlf(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\r\n")
}

/// RFC 9112 §2.2: a server SHOULD ignore empty lines received before the request line.
pub fn skip_leading_empty_lines(head: &[u8]) -> usize {
    let mut i = 0;
    while head.len() >= i + 2 && &head[i..i + 2] == b"\r\n" {
        i += 2;
    }
    i
}

enum TargetForm<'a> {
    Origin,
    Absolute { authority: &'a [u8], https: bool },
    Authority,
    Asterisk,
}

fn target_form(target: &[u8]) -> TargetForm<'_> {
    if target == b"*" {
        return TargetForm::Asterisk;
    }
    if target.first() == Some(&b'/') {
        return TargetForm::Origin;
    }
    let lower: Vec<u8> = target.iter().take(8).map(u8::to_ascii_lowercase).collect();
    let rest = if lower.starts_with(b"http://") {
        Some((&target[7..], false))
    } else if lower.starts_with(b"https://") {
        Some((&target[8..], true))
    } else {
        None
    };
    match rest {
        Some((rest, https)) => {
            let end = rest
                .iter()
                .position(|b| matches!(b, b'/' | b'?' | b'#'))
                .unwrap_or(rest.len());
            TargetForm::Absolute {
                authority: &rest[..end],
                https,
            }
        }
        None => TargetForm::Authority,
    }
}

/// Splits `host[:port]` into a lower-cased host and a port, the scheme's default when
/// absent, so that `EXAMPLE.com:80` and `example.com` compare equal over http.
fn normalize_authority(authority: &[u8], default_port: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let split = match authority.iter().rposition(|b| *b == b':') {
        // A colon inside an IPv6 literal is not a port separator.
        Some(i) if !authority[i..].contains(&b']') => i,
        _ => authority.len(),
    };
    let host = authority[..split].to_ascii_lowercase();
    let port = match authority.get(split + 1..) {
        Some(p) if !p.is_empty() => p.to_vec(),
        _ => default_port.to_vec(),
    };
    (host, port)
}

fn parse_version(version: &[u8]) -> Result<bool, Rejection> {
    match version {
        b"HTTP/1.1" => Ok(true),
        b"HTTP/1.0" => Ok(false),
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            Err(Rejection::UnsupportedVersion)
        }
        _ => Err(Rejection::MalformedRequestLine),
    }
}

fn parse_content_length(value: &[u8]) -> Result<u64, Rejection> {
    // 2^53 - 1 has 16 digits; anything longer is out of range for the JS side too.
    if value.is_empty() || value.len() > 16 || !value.iter().all(u8::is_ascii_digit) {
        return Err(Rejection::InvalidContentLength);
    }
    let n: u64 = std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(Rejection::InvalidContentLength)?;
    if n > (1u64 << 53) - 1 {
        return Err(Rejection::InvalidContentLength);
    }
    Ok(n)
}

fn trim_ows(mut value: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    value
}

/// Validates a complete head: `head` runs from the first byte to the final CRLF CRLF
/// inclusive, and contains no bare CR or LF (the scanner checked).
pub fn validate(head: &[u8], limits: &HeadLimits) -> Result<Head, Rejection> {
    let head = &head[skip_leading_empty_lines(head)..];
    let line_end = find_crlf(head).ok_or(Rejection::MalformedRequestLine)?;
    if line_end > limits.max_request_line {
        return Err(Rejection::RequestLineTooLong);
    }
    let request_line = &head[..line_end];
    let mut parts = request_line.split(|b| *b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Rejection::MalformedRequestLine);
    };
    if method.is_empty() || !method.iter().all(|b| is_tchar(*b)) {
        return Err(Rejection::MalformedRequestLine);
    }
    if target.is_empty() {
        return Err(Rejection::MalformedRequestLine);
    }
    // A fragment is never sent (RFC 9112 §3.2): `#` in a target is malformed.
    if !target
        .iter()
        .all(|b| (0x21..=0x7e).contains(b) && *b != b'#')
    {
        return Err(Rejection::InvalidTarget);
    }
    let http11 = parse_version(version)?;
    let form = target_form(target);
    let is_connect = method == b"CONNECT";
    match (&form, is_connect) {
        (TargetForm::Asterisk, _) if method != b"OPTIONS" => {
            return Err(Rejection::InvalidTargetForm)
        }
        (TargetForm::Authority, false) => return Err(Rejection::InvalidTargetForm),
        (TargetForm::Origin | TargetForm::Asterisk | TargetForm::Absolute { .. }, true) => {
            return Err(Rejection::InvalidTargetForm)
        }
        // Userinfo in an http(s) target is an error (RFC 9110 §4.2.4).
        (TargetForm::Absolute { authority, .. }, _)
            if authority.is_empty() || authority.contains(&b'@') =>
        {
            return Err(Rejection::InvalidTarget)
        }
        _ => {}
    }

    let mut hosts: Vec<&[u8]> = Vec::new();
    let mut content_lengths = 0usize;
    let mut content_length = None;
    let mut transfer_encodings: Vec<&[u8]> = Vec::new();
    let mut upgrade = is_connect;
    let mut count = 0usize;
    let fields = &head[line_end + 2..];
    if fields.len() > limits.max_headers_total + 2 {
        return Err(Rejection::HeadersTooLarge);
    }
    let mut rest = fields;
    loop {
        let end = find_crlf(rest).ok_or(Rejection::MalformedRequestLine)?;
        let line = &rest[..end];
        rest = &rest[end + 2..];
        if line.is_empty() {
            break;
        }
        if matches!(line[0], b' ' | b'\t') {
            return Err(Rejection::ObsoleteLineFolding);
        }
        count += 1;
        if count > limits.max_header_count {
            return Err(Rejection::TooManyHeaders);
        }
        let colon = line
            .iter()
            .position(|b| *b == b':')
            .ok_or(Rejection::InvalidHeaderName)?;
        let name = &line[..colon];
        if name.last().is_some_and(|b| matches!(b, b' ' | b'\t')) {
            return Err(Rejection::WhitespaceBeforeColon);
        }
        if name.is_empty() || !name.iter().all(|b| is_tchar(*b)) {
            return Err(Rejection::InvalidHeaderName);
        }
        let value = trim_ows(&line[colon + 1..]);
        if !value.iter().all(|b| is_field_value_byte(*b)) {
            return Err(Rejection::InvalidHeaderValue);
        }
        if name.eq_ignore_ascii_case(b"host") {
            hosts.push(value);
        } else if name.eq_ignore_ascii_case(b"content-length") {
            content_lengths += 1;
            content_length = Some(parse_content_length(value)?);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            transfer_encodings.push(value);
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            upgrade = true;
        }
    }

    match hosts.as_slice() {
        [] if http11 => return Err(Rejection::MissingOrDuplicateHost),
        [_, _, ..] => return Err(Rejection::MissingOrDuplicateHost),
        _ => {}
    }
    if let Some(host) = hosts.first() {
        // An http URI with an empty host is invalid (RFC 9110 §4.2.1).
        if host.is_empty() || !host.iter().all(|b| is_authority_byte(*b)) {
            return Err(Rejection::InvalidHost);
        }
        if let TargetForm::Absolute { authority, https } = form {
            let default_port: &[u8] = if https { b"443" } else { b"80" };
            if normalize_authority(authority, default_port)
                != normalize_authority(host, default_port)
            {
                return Err(Rejection::HostMismatch);
            }
        }
    }
    if content_lengths > 1 {
        return Err(Rejection::InvalidContentLength);
    }
    let framing = if !transfer_encodings.is_empty() {
        if content_lengths > 0 {
            return Err(Rejection::TransferEncodingWithContentLength);
        }
        if !http11 {
            return Err(Rejection::TransferEncodingInHttp10);
        }
        match transfer_encodings.as_slice() {
            [only] if only.eq_ignore_ascii_case(b"chunked") => Framing::Chunked,
            _ => return Err(Rejection::UnsupportedTransferEncoding),
        }
    } else {
        match content_length {
            Some(0) | None => Framing::None,
            Some(n) => Framing::Length(n),
        }
    };
    Ok(Head { framing, upgrade })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HeadLimits = HeadLimits {
        max_request_line: 8192,
        max_header_count: 100,
        max_headers_total: 32768,
    };

    fn check(head: &str) -> Result<Head, Rejection> {
        validate(head.as_bytes(), &LIMITS)
    }

    #[test]
    fn accepts_ordinary_requests() {
        let h = check("GET / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        assert_eq!(h.framing, Framing::None);
        let h = check("\r\nPOST /x HTTP/1.1\r\nHost: a:80\r\nContent-Length: 5\r\n\r\n").unwrap();
        assert_eq!(h.framing, Framing::Length(5));
        let h =
            check("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  Chunked \r\n\r\n").unwrap();
        assert_eq!(h.framing, Framing::Chunked);
        assert!(check("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").is_ok());
        assert!(check("GET http://a:8/p HTTP/1.1\r\nHost: A:8\r\n\r\n").is_ok());
        assert!(check("GET http://EXAMPLE.com:80/p HTTP/1.1\r\nHost: example.com\r\n\r\n").is_ok());
        assert!(check("GET https://[::1]/ HTTP/1.1\r\nHost: [::1]:443\r\n\r\n").is_ok());
        assert!(check("GET / HTTP/1.0\r\n\r\n").is_ok());
        assert!(
            check("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n")
                .unwrap()
                .upgrade
        );
        assert!(validate(
            b"GET / HTTP/1.1\r\nHost: a\r\nX: a\tb \x80\r\n\r\n",
            &LIMITS
        )
        .is_ok());
    }

    #[test]
    fn rejects_each_class_with_its_reason() {
        use Rejection::*;
        let cases: &[(&str, Rejection)] = &[
            ("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", MalformedRequestLine),
            ("GET / HTTP/1.2\r\nHost: a\r\n\r\n", UnsupportedVersion),
            ("GET / http/1.1\r\nHost: a\r\n\r\n", MalformedRequestLine),
            ("GET * HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTargetForm),
            ("GET a:80 HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTargetForm),
            ("CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTargetForm),
            ("GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget),
            ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", WhitespaceBeforeColon),
            ("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", ObsoleteLineFolding),
            ("GET / HTTP/1.1\r\nHost: a\r\nX@: 1\r\n\r\n", InvalidHeaderName),
            ("GET / HTTP/1.1\r\nHost: a\r\nnocolon\r\n\r\n", InvalidHeaderName),
            ("GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", InvalidHeaderValue),
            ("GET / HTTP/1.1\r\n\r\n", MissingOrDuplicateHost),
            ("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", MissingOrDuplicateHost),
            ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", InvalidHost),
            ("GET http://a/ HTTP/1.1\r\nHost: b\r\n\r\n", HostMismatch),
            ("GET http://a:81/ HTTP/1.1\r\nHost: a\r\n\r\n", HostMismatch),
            ("GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget),
            ("GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget),
            ("GET / HTTP/1.1\r\nHost:\r\n\r\n", InvalidHost),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", TransferEncodingWithContentLength),
            ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", TransferEncodingInHttp10),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", UnsupportedTransferEncoding),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", UnsupportedTransferEncoding),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", InvalidContentLength),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n", InvalidContentLength),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n", InvalidContentLength),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999\r\n\r\n", InvalidContentLength),
        ];
        for (head, reason) in cases {
            assert_eq!(check(head), Err(*reason), "{head:?}");
        }
    }

    #[test]
    fn enforces_size_limits() {
        let limits = HeadLimits {
            max_request_line: 20,
            max_header_count: 2,
            max_headers_total: 64,
        };
        let long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(30));
        assert_eq!(
            validate(long.as_bytes(), &limits),
            Err(Rejection::RequestLineTooLong)
        );
        let many = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
        assert_eq!(
            validate(many.as_bytes(), &limits),
            Err(Rejection::TooManyHeaders)
        );
        let big = format!(
            "GET / HTTP/1.1\r\nHost: a\r\nA: {}\r\n\r\n",
            "x".repeat(100)
        );
        assert_eq!(
            validate(big.as_bytes(), &limits),
            Err(Rejection::HeadersTooLarge)
        );
    }
}
