//! `Endpoint::parse`, the endpoint URLs users write (`http://localhost:5000`). What it
//! accepts must have the documented shape and round-trip: the canonical URL of an
//! endpoint, and the URL of each address it binds, parse back to the same thing. What it
//! refuses gets a stable code and a message that names the URL.

#![no_main]

use libfuzzer_sys::fuzz_target;
use peregrine_core::endpoint::{url_for, BindHost, MAX_UNIX_PATH_BYTES};
use peregrine_core::{Endpoint, ErrorCode, Protocols, Scheme};

fuzz_target!(|data: &[u8]| {
    let Ok(url) = std::str::from_utf8(data) else {
        return;
    };
    match Endpoint::parse(url) {
        Ok(endpoint) => check_accepted(url, &endpoint),
        Err(error) => {
            assert!(
                matches!(
                    error.code,
                    ErrorCode::InvalidUrl | ErrorCode::UnsupportedScheme
                ),
                "{:?}",
                error.code
            );
            assert!(error.message.contains(url), "the message names the URL");
        }
    }
});

fn check_accepted(url: &str, endpoint: &Endpoint) {
    assert_eq!(endpoint.url, url);
    assert_eq!(endpoint.protocols, Protocols::default());
    if let BindHost::Unix(path) = &endpoint.host {
        check_unix(url, path, endpoint);
        return;
    }
    let (scheme, rest) = url.split_once("://").expect("accepted a URL without ://");
    let expected = if scheme.eq_ignore_ascii_case("https") {
        Scheme::Https
    } else {
        assert!(scheme.eq_ignore_ascii_case("http"), "scheme {scheme:?}");
        Scheme::Http
    };
    assert_eq!(endpoint.scheme, expected);
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    assert!(!authority.contains('/'), "accepted a path");
    // The port, when written, is 1-5 decimal digits (as the node server's parser has it):
    // no sign, no spaces.
    let port_text = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => Some(&authority[i + 1..]),
        _ => None,
    };
    match port_text {
        Some(p) => {
            assert!(
                (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()),
                "accepted port {p:?}"
            );
            assert_eq!(p.parse::<u16>().ok(), Some(endpoint.port));
        }
        None => assert_eq!(
            endpoint.port,
            if expected == Scheme::Https { 443 } else { 80 }
        ),
    }

    let host = match &endpoint.host {
        BindHost::Localhost => "localhost".to_string(),
        BindHost::Any => "*".to_string(),
        BindHost::Ip(std::net::IpAddr::V4(ip)) => ip.to_string(),
        BindHost::Ip(std::net::IpAddr::V6(ip)) => format!("[{ip}]"),
        BindHost::Unix(_) => unreachable!("checked by check_unix"),
    };
    let canonical = format!("{}://{host}:{}", endpoint.scheme.as_str(), endpoint.port);
    let again = Endpoint::parse(&canonical).expect("the canonical URL parses");
    assert_eq!(
        (again.scheme, &again.host, again.port),
        (endpoint.scheme, &endpoint.host, endpoint.port),
        "{canonical} does not round-trip"
    );

    let addresses = endpoint.candidate_addresses();
    assert!(!addresses.is_empty());
    for addr in addresses {
        assert_eq!(addr.port(), endpoint.port);
        let bound = url_for(endpoint.scheme, addr);
        let again = Endpoint::parse(&bound).expect("a bound address's URL parses");
        assert!(
            again.candidate_addresses().contains(&addr),
            "{bound} does not bind {addr}"
        );
    }
}

/// A `unix:` endpoint names an absolute file path that fits `sun_path`, is served as
/// plain http, binds no TCP address, and round-trips through its canonical spelling.
fn check_unix(url: &str, path: &std::path::Path, endpoint: &Endpoint) {
    let text = path.to_str().expect("the path came from a str");
    assert!(
        url.len() >= 5 && url[..5].eq_ignore_ascii_case("unix:"),
        "{url}"
    );
    assert_eq!(&url[5..], text);
    assert!(text.starts_with('/') && !text.ends_with('/'), "{text:?}");
    assert!(
        !text.contains('\0') && text.len() <= MAX_UNIX_PATH_BYTES,
        "{text:?}"
    );
    assert_eq!((endpoint.scheme, endpoint.port), (Scheme::Http, 0));
    assert!(endpoint.candidate_addresses().is_empty());
    let again = Endpoint::parse(&format!("unix:{text}")).expect("the canonical URL parses");
    assert_eq!(again.host, endpoint.host);
}
