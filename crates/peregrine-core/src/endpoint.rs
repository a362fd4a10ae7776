//! Endpoint URLs, as users write them (`http://localhost:5000`, `http://*:8080`,
//! `http://[::1]:0`, `unix:/run/app.sock`), and the socket addresses they bind.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use crate::error::{Error, ErrorCode};

/// Why an IPv6 host with a zone ID is refused; the TypeScript parser says the same.
const ZONE_ID_REFUSED: &str =
    "IPv6 zone IDs (such as %eth0) are not supported: listen on [::] or on the interface's own address";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// Which HTTP versions an endpoint speaks. In cleartext, `Http1AndHttp2` serves h2c to
/// clients that open with the HTTP/2 connection preface and HTTP/1.1 to everyone else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocols {
    Http1,
    Http2,
    #[default]
    Http1AndHttp2,
}

impl Protocols {
    pub fn parse(value: &str) -> Option<Protocols> {
        match value {
            "http1" => Some(Protocols::Http1),
            "http2" => Some(Protocols::Http2),
            "http1AndHttp2" => Some(Protocols::Http1AndHttp2),
            _ => None,
        }
    }
}

/// The host part of an endpoint URL, which decides what gets bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindHost {
    /// `localhost`: both loopback addresses, like Kestrel.
    Localhost,
    /// `*`, `+` or `0.0.0.0` / `[::]`: every interface.
    Any,
    Ip(IpAddr),
    /// `unix:/absolute/path`: a unix domain socket, served as http.
    Unix(PathBuf),
}

/// The longest unix socket path: `sun_path` holds 108 bytes on Linux, with a NUL.
pub const MAX_UNIX_PATH_BYTES: usize = 107;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub url: String,
    pub scheme: Scheme,
    pub host: BindHost,
    pub port: u16,
    pub protocols: Protocols,
}

impl Endpoint {
    /// Parses `scheme://host[:port][/]`. Paths are not allowed: a server endpoint has none.
    pub fn parse(url: &str) -> Result<Endpoint, Error> {
        let invalid = |why: &str| {
            Error::new(
                ErrorCode::InvalidUrl,
                format!("endpoint URL \"{url}\" is invalid: {why}"),
            )
        };
        if let Some(path) = strip_prefix_ignore_case(url, "unix:") {
            return Ok(Endpoint {
                url: url.to_string(),
                scheme: Scheme::Http,
                host: BindHost::Unix(unix_path(path).map_err(invalid)?),
                port: 0,
                protocols: Protocols::default(),
            });
        }
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid("expected scheme://host:port"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => {
                return Err(Error::new(
                    ErrorCode::UnsupportedScheme,
                    format!("endpoint URL \"{url}\" has scheme \"{other}\"; use http or https"),
                ))
            }
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains('/') {
            return Err(invalid("a server endpoint cannot have a path"));
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| invalid("bad host or port"))?;
        let port = match port {
            // 1-5 digits, as the node server's parser takes them; u16's parser also takes
            // a leading `+` and any number of leading zeros.
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|_| p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| invalid("port must be 0-65535"))?,
            None if scheme == Scheme::Https => 443,
            None => 80,
        };
        let host = match host {
            "" => return Err(invalid("missing host")),
            "*" | "+" => BindHost::Any,
            h if h.eq_ignore_ascii_case("localhost") => BindHost::Localhost,
            // Link-local addresses with a scope (`[fe80::1%eth0]`): std does not parse
            // them, and the node server would; both refuse them, with this message.
            h if h.contains('%') => return Err(invalid(ZONE_ID_REFUSED)),
            h => match h.parse::<IpAddr>() {
                Ok(ip) if ip.is_unspecified() => BindHost::Any,
                Ok(ip) => BindHost::Ip(ip),
                Err(_) => {
                    return Err(invalid(
                        "host must be an IP address, localhost, * or + (names other than localhost are not resolved)",
                    ))
                }
            },
        };
        Ok(Endpoint {
            url: url.to_string(),
            scheme,
            host,
            port,
            protocols: Protocols::default(),
        })
    }

    /// The addresses to bind, in order. With `localhost`, IPv4 comes first so that port 0
    /// picks a port there and the IPv6 listener reuses it.
    pub fn candidate_addresses(&self) -> Vec<SocketAddr> {
        match &self.host {
            BindHost::Localhost => vec![
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.port),
                SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), self.port),
            ],
            BindHost::Any => vec![SocketAddr::new(
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                self.port,
            )],
            BindHost::Ip(ip) => vec![SocketAddr::new(*ip, self.port)],
            BindHost::Unix(_) => Vec::new(),
        }
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// Checks the path of a `unix:` endpoint; the same rules as the node server's parser.
fn unix_path(path: &str) -> Result<PathBuf, &'static str> {
    if !path.starts_with('/') {
        return Err("a unix socket path must be absolute, as in unix:/run/app.sock");
    }
    if path.ends_with('/') {
        return Err("a unix socket path must name a file, not a directory");
    }
    if path.contains('\0') {
        return Err("a unix socket path cannot contain NUL");
    }
    if path.len() > MAX_UNIX_PATH_BYTES {
        return Err("a unix socket path can be at most 107 bytes long");
    }
    Ok(PathBuf::from(path))
}

fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            a => Some((host, Some(a.strip_prefix(':')?))),
        };
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h, Some(p))),
        Some(_) => None,
        None => Some((authority, None)),
    }
}

/// The URL of a bound address, as reported back to the app (`app.urls`).
pub fn url_for(scheme: Scheme, addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("{}://{}:{}", scheme.as_str(), a.ip(), a.port()),
        SocketAddr::V6(a) => format!("{}://[{}]:{}", scheme.as_str(), a.ip(), a.port()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        let e = Endpoint::parse("http://127.0.0.1:0").unwrap();
        assert_eq!(e.host, BindHost::Ip("127.0.0.1".parse().unwrap()));
        assert_eq!(e.port, 0);
        let e = Endpoint::parse("http://localhost:5000/").unwrap();
        assert_eq!(e.host, BindHost::Localhost);
        assert_eq!(e.candidate_addresses().len(), 2);
        let e = Endpoint::parse("http://[::1]:8080").unwrap();
        assert_eq!(e.host, BindHost::Ip("::1".parse().unwrap()));
        assert_eq!(Endpoint::parse("http://*:80").unwrap().host, BindHost::Any);
        assert_eq!(Endpoint::parse("http://+:80").unwrap().host, BindHost::Any);
        assert_eq!(Endpoint::parse("https://127.0.0.1").unwrap().port, 443);
        assert_eq!(Endpoint::parse("HTTP://127.0.0.1").unwrap().port, 80);
    }

    #[test]
    fn refuses_ipv6_zone_ids_by_name() {
        for bad in ["http://[fe80::1%eth0]:80", "http://[fe80::1%25eth0]:80"] {
            let err = Endpoint::parse(bad).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidUrl);
            assert!(err.message.contains("zone ID"), "{}", err.message);
        }
    }

    #[test]
    fn rejects_bad_urls_with_stable_codes() {
        for bad in [
            "127.0.0.1:80",
            "http://",
            "http://127.0.0.1:99999",
            // Found by the endpoint_parse fuzz target.
            "http://localhost:+4000",
            "http://localhost:000080",
            "http://127.0.0.1:80/path",
            "http://example.com:80",
            "http://[::1",
        ] {
            let err = Endpoint::parse(bad).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidUrl, "{bad}");
            assert!(
                err.message.contains(bad),
                "message names the URL: {}",
                err.message
            );
        }
        assert_eq!(
            Endpoint::parse("ftp://127.0.0.1:21").unwrap_err().code,
            ErrorCode::UnsupportedScheme
        );
    }

    #[test]
    fn parses_unix_socket_paths() {
        let e = Endpoint::parse("unix:/tmp/app.sock").unwrap();
        assert_eq!(e.host, BindHost::Unix(PathBuf::from("/tmp/app.sock")));
        assert_eq!(e.scheme, Scheme::Http);
        assert!(e.candidate_addresses().is_empty());
        let long = format!("unix:/{}", "a".repeat(MAX_UNIX_PATH_BYTES));
        for bad in [
            "unix:",
            "unix:relative.sock",
            "unix:/tmp/",
            "unix:/a\0b",
            &long,
        ] {
            let err = Endpoint::parse(bad).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidUrl, "{bad:?}");
        }
    }

    #[test]
    fn formats_urls() {
        assert_eq!(
            url_for(Scheme::Http, "[::1]:80".parse().unwrap()),
            "http://[::1]:80"
        );
        assert_eq!(
            url_for(Scheme::Http, "127.0.0.1:5".parse().unwrap()),
            "http://127.0.0.1:5"
        );
    }
}
