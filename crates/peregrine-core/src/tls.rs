//! TLS for `https` endpoints: certificates and keys from PEM, SNI, client certificates,
//! ALPN, and reloading the certificate set while the server runs.
//!
//! rustls does the protocol, with the `ring` crypto provider: it builds from crates.io
//! with nothing but a C compiler, where aws-lc-rs needs cmake (and more build time).
//! Only TLS 1.3 and 1.2 are offered, with ring's default suites (AEAD only, no CBC).
//! Nothing here touches OpenSSL: PEM goes through rustls-pki-types, certificate dates
//! through x509-parser.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::endpoint::Protocols;
use crate::error::{Error, ErrorCode};
use crate::guard::Rejection;

/// How long a client may take to complete the TLS handshake (Kestrel's default).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The handshake's time limit: [`HANDSHAKE_TIMEOUT`], or requestHeadersTimeout when that
/// is shorter. The handshake comes before the first request head, so a server that
/// gives heads little time gives handshakes no more.
pub(crate) fn handshake_timeout(request_headers_timeout: Duration) -> Duration {
    if request_headers_timeout.is_zero() {
        HANDSHAKE_TIMEOUT
    } else {
        HANDSHAKE_TIMEOUT.min(request_headers_timeout)
    }
}

/// Whether clients are asked for a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientCertificateMode {
    /// No certificate is asked for.
    #[default]
    None,
    /// A certificate is asked for; a client without one is still served, and one that
    /// presents a certificate not issued by `ca` is refused.
    Allow,
    /// A certificate issued by `ca` is required.
    Require,
}

impl ClientCertificateMode {
    pub fn parse(value: &str) -> Option<ClientCertificateMode> {
        match value {
            "none" => Some(ClientCertificateMode::None),
            "allow" => Some(ClientCertificateMode::Allow),
            "require" => Some(ClientCertificateMode::Require),
            _ => None,
        }
    }
}

/// A certificate chain (leaf first) and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct CertificatePem {
    pub cert: Vec<u8>,
    /// PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
    pub key: Vec<u8>,
}

/// The TLS options of a server; every https endpoint uses them.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// The certificate for clients whose SNI matches no `sni` entry, or who send none.
    pub default: Option<CertificatePem>,
    /// Certificates by host name: exact (`api.example.test`) or one-label wildcard
    /// (`*.example.test`, which matches `a.example.test` but not `example.test`).
    pub sni: Vec<(String, CertificatePem)>,
    pub client_certificate_mode: ClientCertificateMode,
    /// Trust roots (PEM) for client certificates.
    pub ca: Option<Vec<u8>>,
}

/// What a TLS connection negotiated (the TLS connection feature).
#[derive(Debug, Clone)]
pub struct TlsInfo {
    /// "TLSv1.3" or "TLSv1.2".
    pub protocol: &'static str,
    /// The IANA name, e.g. "TLS_AES_128_GCM_SHA256".
    pub cipher_suite: String,
    /// "h2" or "http/1.1"; `None` when the client offered no ALPN.
    pub alpn_protocol: Option<String>,
    /// The SNI host name the client sent.
    pub server_name: Option<String>,
    /// The client's certificate (DER), when it presented one.
    pub client_certificate: Option<Vec<u8>>,
}

impl TlsInfo {
    fn of(connection: &rustls::ServerConnection) -> TlsInfo {
        let protocol = match connection.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "TLSv1.3",
        };
        let cipher_suite = connection
            .negotiated_cipher_suite()
            .map(|s| {
                let suite = s.suite();
                match suite.as_str() {
                    // rustls marks TLS 1.3 suites "TLS13_"; IANA names them "TLS_".
                    Some(name) => name.replacen("TLS13_", "TLS_", 1),
                    None => format!("{suite:?}"),
                }
            })
            .unwrap_or_default();
        TlsInfo {
            protocol,
            cipher_suite,
            alpn_protocol: connection
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            server_name: connection.server_name().map(str::to_owned),
            client_certificate: connection
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|c| c.as_ref().to_vec()),
        }
    }
}

/// The negotiated application protocol, which decides how the connection is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alpn {
    Http1,
    Http2,
    /// Cleartext, or the client offered no ALPN: the endpoint's `protocols` decide.
    None,
}

impl Alpn {
    pub fn of(tls: Option<&TlsInfo>) -> Alpn {
        match tls.and_then(|t| t.alpn_protocol.as_deref()) {
            Some("h2") => Alpn::Http2,
            Some(_) => Alpn::Http1,
            None => Alpn::None,
        }
    }
}

/// The certificate set, chosen per handshake by SNI.
#[derive(Debug)]
struct CertificateSet {
    default: Option<Arc<CertifiedKey>>,
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// By the part after "*.".
    wildcard: HashMap<String, Arc<CertifiedKey>>,
}

impl ResolvesServerCert for CertificateSet {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = hello.server_name() {
            let name = name.to_ascii_lowercase();
            if let Some(key) = self.exact.get(&name) {
                return Some(key.clone());
            }
            if let Some((_, parent)) = name.split_once('.') {
                if let Some(key) = self.wildcard.get(parent) {
                    return Some(key.clone());
                }
            }
        }
        // None makes rustls abort the handshake with an alert.
        self.default.clone()
    }
}

/// One ServerConfig per `protocols` value: they differ only in ALPN.
struct Configs {
    http1: Arc<ServerConfig>,
    http2: Arc<ServerConfig>,
    both: Arc<ServerConfig>,
}

impl Configs {
    fn get(&self, protocols: Protocols) -> Arc<ServerConfig> {
        match protocols {
            Protocols::Http1 => self.http1.clone(),
            Protocols::Http2 => self.http2.clone(),
            Protocols::Http1AndHttp2 => self.both.clone(),
        }
    }
}

/// The TLS state of a running server. [`Tls::reload`] swaps the certificate set:
/// handshakes that start afterwards use the new one, open connections keep theirs.
pub struct Tls {
    current: RwLock<Arc<Configs>>,
}

impl Tls {
    /// Loads and checks every certificate and key. `endpoints` names the https
    /// endpoints in error messages.
    pub fn new(options: &TlsOptions, endpoints: &str) -> Result<Tls, Error> {
        Ok(Tls {
            current: RwLock::new(Arc::new(build(options, endpoints)?)),
        })
    }

    /// Replaces the certificate set. On error the old set stays in use.
    pub fn reload(&self, options: &TlsOptions, endpoints: &str) -> Result<(), Error> {
        let configs = Arc::new(build(options, endpoints)?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = configs;
        Ok(())
    }

    fn acceptor(&self, protocols: Protocols) -> TlsAcceptor {
        let configs = self.current.read().unwrap_or_else(|e| e.into_inner());
        TlsAcceptor::from(configs.get(protocols))
    }

    /// Runs the server side of the handshake, bounded by `timeout`. On failure the
    /// reason to log and count: rustls has already sent the client an alert if it could.
    pub(crate) async fn accept<IO>(
        &self,
        io: IO,
        protocols: Protocols,
        timeout: Duration,
    ) -> Result<(TlsStream<IO>, TlsInfo), Rejection>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let acceptor = self.acceptor(protocols);
        let stream = tokio::time::timeout(timeout, acceptor.accept(io))
            .await
            .map_err(|_| Rejection::TlsHandshakeTimeout)?
            .map_err(|_| Rejection::TlsHandshakeFailed)?;
        let info = TlsInfo::of(stream.get_ref().1);
        Ok((stream, info))
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_error(code: ErrorCode, endpoints: &str, problem: impl std::fmt::Display) -> Error {
    Error::new(code, format!("TLS for {endpoints}: {problem}"))
}

fn build(options: &TlsOptions, endpoints: &str) -> Result<Configs, Error> {
    let provider = provider();
    let mut set = CertificateSet {
        default: None,
        exact: HashMap::new(),
        wildcard: HashMap::new(),
    };
    if let Some(pem) = &options.default {
        set.default = Some(certified_key(
            pem, "tls.cert", "tls.key", &provider, endpoints,
        )?);
    }
    for (name, pem) in &options.sni {
        let label = format!("tls.sni[\"{name}\"]");
        let lower = name.to_ascii_lowercase();
        let (map, host) = match lower.strip_prefix("*.") {
            Some(parent) => (&mut set.wildcard, parent.to_string()),
            None => (&mut set.exact, lower.clone()),
        };
        if host.is_empty() || host.contains('*') || host.starts_with('.') || host.ends_with('.') {
            return Err(tls_error(
                ErrorCode::InvalidOption,
                endpoints,
                format!(
                    "{label} is not a host name: use \"api.example.test\" or \"*.example.test\""
                ),
            ));
        }
        let key = certified_key(
            pem,
            &format!("{label}.cert"),
            &format!("{label}.key"),
            &provider,
            endpoints,
        )?;
        map.insert(host, key);
    }
    if set.default.is_none() && set.exact.is_empty() && set.wildcard.is_empty() {
        return Err(tls_error(
            ErrorCode::TlsNotConfigured,
            endpoints,
            "no certificate: set tls.cert and tls.key, or tls.sni",
        ));
    }

    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| tls_error(ErrorCode::InvalidOption, endpoints, e))?;
    let builder = match options.client_certificate_mode {
        ClientCertificateMode::None => builder.with_no_client_auth(),
        mode => {
            let ca = options.ca.as_deref().ok_or_else(|| {
                tls_error(
                    ErrorCode::InvalidOption,
                    endpoints,
                    format!(
                        "tls.clientCertificateMode is \"{}\" but tls.ca is not set: give the PEM roots client certificates must chain to",
                        if mode == ClientCertificateMode::Allow { "allow" } else { "require" }
                    ),
                )
            })?;
            let roots = Arc::new(trust_roots(ca, endpoints)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider.clone());
            let verifier = if mode == ClientCertificateMode::Allow {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier.build().map_err(|e| {
                tls_error(ErrorCode::TlsInvalidCa, endpoints, format!("tls.ca: {e}"))
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder.with_cert_resolver(Arc::new(set));
    let with_alpn = |alpn: &[&[u8]]| {
        let mut c = config.clone();
        c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(c)
    };
    Ok(Configs {
        http1: with_alpn(&[b"http/1.1"]),
        http2: with_alpn(&[b"h2"]),
        both: with_alpn(&[b"h2", b"http/1.1"]),
    })
}

fn certified_key(
    pem: &CertificatePem,
    cert_label: &str,
    key_label: &str,
    provider: &CryptoProvider,
    endpoints: &str,
) -> Result<Arc<CertifiedKey>, Error> {
    let chain = certificates(&pem.cert, cert_label, endpoints)?;
    check_dates(&chain, cert_label, endpoints)?;
    let key = PrivateKeyDer::from_pem_slice(&pem.key).map_err(|e| {
        tls_error(
            ErrorCode::TlsInvalidKey,
            endpoints,
            format!("{key_label} is not a PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"),
        )
    })?;
    let key = provider.key_provider.load_private_key(key).map_err(|e| {
        tls_error(
            ErrorCode::TlsInvalidKey,
            endpoints,
            format!("{key_label} cannot be used: {e}"),
        )
    })?;
    let certified = CertifiedKey::new(chain, key);
    match certified.keys_match() {
        Ok(()) => Ok(Arc::new(certified)),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(Arc::new(certified))
        }
        Err(rustls::Error::InconsistentKeys(_)) => Err(tls_error(
            ErrorCode::TlsKeyMismatch,
            endpoints,
            format!("{key_label} is not the private key of the certificate in {cert_label}"),
        )),
        Err(e) => Err(tls_error(
            ErrorCode::TlsInvalidCertificate,
            endpoints,
            format!("{cert_label} cannot be parsed: {e}"),
        )),
    }
}

fn certificates(
    pem: &[u8],
    label: &str,
    endpoints: &str,
) -> Result<Vec<CertificateDer<'static>>, Error> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            tls_error(
                ErrorCode::TlsInvalidCertificate,
                endpoints,
                format!("{label} is not valid PEM: {e}"),
            )
        })?;
    if chain.is_empty() {
        return Err(tls_error(
            ErrorCode::TlsInvalidCertificate,
            endpoints,
            format!("{label} holds no \"BEGIN CERTIFICATE\" block"),
        ));
    }
    Ok(chain)
}

/// Refuses a chain with an expired certificate: clients would refuse it anyway, and
/// failing at start names the problem where a handshake error would not.
fn check_dates(chain: &[CertificateDer<'_>], label: &str, endpoints: &str) -> Result<(), Error> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    for (i, der) in chain.iter().enumerate() {
        let which = if i == 0 {
            label.to_string()
        } else {
            format!("certificate {} of the chain in {label}", i + 1)
        };
        let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| {
            tls_error(
                ErrorCode::TlsInvalidCertificate,
                endpoints,
                format!("{which} is not a valid X.509 certificate: {e}"),
            )
        })?;
        let not_after = cert.validity().not_after;
        if not_after.timestamp() < now {
            return Err(tls_error(
                ErrorCode::TlsCertificateExpired,
                endpoints,
                format!("{which} expired on {not_after}: renew it"),
            ));
        }
    }
    Ok(())
}

fn trust_roots(pem: &[u8], endpoints: &str) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            tls_error(
                ErrorCode::TlsInvalidCa,
                endpoints,
                format!("tls.ca is not valid PEM: {e}"),
            )
        })?;
    if certs.is_empty() {
        return Err(tls_error(
            ErrorCode::TlsInvalidCa,
            endpoints,
            "tls.ca holds no \"BEGIN CERTIFICATE\" block",
        ));
    }
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| tls_error(ErrorCode::TlsInvalidCa, endpoints, format!("tls.ca: {e}")))?;
    }
    Ok(roots)
}
