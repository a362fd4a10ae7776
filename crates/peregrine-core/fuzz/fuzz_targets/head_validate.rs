//! `guard::head::validate`, the strict HTTP/1.1 head validator. The input is a request
//! head as it arrives on the wire. Whatever the validator accepts is re-checked here,
//! line by line, against the rules it enforces, and against httparse (hyper's parser):
//! the two must agree on where the head ends and on what frames the body.

#![no_main]

use libfuzzer_sys::fuzz_target;
use peregrine_core::guard::head::{
    is_field_value_byte, is_tchar, skip_leading_empty_lines, validate, Framing, Head, HeadLimits,
};

/// The defaults, and limits small enough that fuzzed heads reach them.
const LIMITS: [HeadLimits; 2] = [
    HeadLimits {
        max_request_line: 8192,
        max_header_count: 100,
        max_headers_total: 32768,
    },
    HeadLimits {
        max_request_line: 32,
        max_header_count: 4,
        max_headers_total: 96,
    },
];

fuzz_target!(|data: &[u8]| {
    for limits in &LIMITS {
        if let Ok(head) = validate(data, limits) {
            check_accepted(data, limits, head);
        }
    }
});

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
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

fn check_accepted(data: &[u8], limits: &HeadLimits, head: Head) {
    // The head runs to the first empty line; what follows is body or the next request.
    let start = skip_leading_empty_lines(data);
    let end = start
        + find(&data[start..], b"\r\n\r\n").expect("accepted a head without its empty line")
        + 4;
    assert_eq!(
        validate(&data[..end], limits),
        Ok(head),
        "bytes after the head changed the verdict"
    );
    let bytes = &data[..end];

    // CRLF only: no bare LF, no bare CR.
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' {
            assert!(i > 0 && bytes[i - 1] == b'\r', "accepted a bare LF at {i}");
        }
        if b == b'\r' {
            assert_eq!(bytes.get(i + 1), Some(&b'\n'), "accepted a bare CR at {i}");
        }
    }

    let lines: Vec<&[u8]> = bytes[start..end - 4]
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect();
    let request_line = lines[0];
    assert!(request_line.len() <= limits.max_request_line);
    let parts: Vec<&[u8]> = request_line.split(|b| *b == b' ').collect();
    let [method, target, version] = parts[..] else {
        panic!("accepted a request line without exactly three parts");
    };
    assert!(!method.is_empty() && method.iter().all(|b| is_tchar(*b)));
    assert!(!target.is_empty());
    assert!(target
        .iter()
        .all(|b| (0x21..=0x7e).contains(b) && *b != b'#'));
    let http11 = match version {
        b"HTTP/1.1" => true,
        b"HTTP/1.0" => false,
        _ => panic!("accepted version {version:?}"),
    };
    let is_connect = method == b"CONNECT";
    let origin = target[0] == b'/';
    if is_connect {
        assert!(!origin && target != b"*", "CONNECT needs authority-form");
    } else if target == b"*" {
        assert_eq!(method, b"OPTIONS", "only OPTIONS takes asterisk-form");
    } else if !origin {
        let lower = target.to_ascii_lowercase();
        assert!(
            lower.starts_with(b"http://") || lower.starts_with(b"https://"),
            "authority-form without CONNECT"
        );
    }

    let fields = &lines[1..];
    assert!(fields.len() <= limits.max_header_count);
    let fields_bytes = end - (start + request_line.len() + 2);
    assert!(fields_bytes <= limits.max_headers_total + 2);
    let (mut hosts, mut lengths, mut codings, mut upgrade) = (0, Vec::new(), Vec::new(), false);
    for line in fields {
        assert!(!matches!(line[0], b' ' | b'\t'), "accepted obs-fold");
        let colon = line.iter().position(|b| *b == b':').expect("no colon");
        let name = &line[..colon];
        // A token name also rules out whitespace before the colon.
        assert!(!name.is_empty() && name.iter().all(|b| is_tchar(*b)));
        let value = trim_ows(&line[colon + 1..]);
        assert!(value.iter().all(|b| is_field_value_byte(*b)));
        if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case(b"content-length") {
            lengths.push(value);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            codings.push(value);
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            upgrade = true;
        }
    }
    if http11 {
        assert_eq!(hosts, 1, "HTTP/1.1 needs exactly one Host");
    } else {
        assert!(hosts <= 1, "accepted two Hosts");
    }
    assert!(lengths.len() <= 1, "accepted two Content-Length fields");
    assert!(
        lengths.is_empty() || codings.is_empty(),
        "accepted both Transfer-Encoding and Content-Length"
    );
    let framing = match (&lengths[..], &codings[..]) {
        ([], []) => Framing::None,
        ([length], []) => {
            assert!(!length.is_empty() && length.iter().all(u8::is_ascii_digit));
            match std::str::from_utf8(length).unwrap().parse::<u64>().unwrap() {
                0 => Framing::None,
                n => Framing::Length(n),
            }
        }
        ([], [coding]) => {
            assert!(http11, "accepted Transfer-Encoding in HTTP/1.0");
            assert!(
                coding.eq_ignore_ascii_case(b"chunked"),
                "accepted {coding:?}"
            );
            Framing::Chunked
        }
        _ => panic!("accepted several Transfer-Encoding fields"),
    };
    assert_eq!(head.framing, framing);
    assert_eq!(head.upgrade, is_connect || upgrade);

    agrees_with_httparse(data, end, method, target, http11, fields.len(), framing);
}

/// hyper reads the same bytes with httparse: it must accept the head too (so every
/// refusal is the guard's, with its reason logged), see a head of the same length, the
/// same request line and fields, and frame the body the same way.
fn agrees_with_httparse(
    data: &[u8],
    end: usize,
    method: &[u8],
    target: &[u8],
    http11: bool,
    field_count: usize,
    framing: Framing,
) {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(data) {
        Ok(httparse::Status::Complete(n)) => assert_eq!(n, end, "hyper's head ends elsewhere"),
        Ok(httparse::Status::Partial) => panic!("hyper sees an incomplete head"),
        Err(e) => panic!("hyper refuses what the guard accepts: {e}"),
    }
    assert_eq!(request.method.map(str::as_bytes), Some(method));
    assert_eq!(request.path.map(str::as_bytes), Some(target));
    assert_eq!(request.version, Some(u8::from(http11)));
    assert_eq!(request.headers.len(), field_count);
    let value = |name: &str| {
        request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| trim_ows(h.value))
    };
    let theirs = match (value("transfer-encoding"), value("content-length")) {
        (Some(_), _) => Framing::Chunked,
        (None, Some(length)) => match std::str::from_utf8(length).unwrap().parse::<u64>() {
            Ok(0) => Framing::None,
            Ok(n) => Framing::Length(n),
            Err(_) => panic!("hyper cannot read Content-Length {length:?}"),
        },
        (None, None) => Framing::None,
    };
    assert_eq!(theirs, framing, "hyper frames the body differently");
}
