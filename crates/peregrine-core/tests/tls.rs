//! TLS in the core, with rustls as the client and rcgen's certificates: SNI selection,
//! ALPN, client certificates, reload, and the start-up errors.

use std::sync::Arc;
use std::time::Duration;

use peregrine_core::tls::{CertificatePem, ClientCertificateMode, TlsOptions};
use peregrine_core::{
    Abort, Endpoint, ErrorCode, Handler, Protocols, Request, Response, ResponseBody, Server,
    ServerOptions,
};
use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Answers with what the connection's TLS details say.
struct Describe;

impl Handler for Describe {
    async fn call(&self, request: Request) -> Result<Response, Abort> {
        let tls = request.head.connection.tls.as_ref();
        let text = format!(
            "{} {} alpn={:?} sni={:?} client={}",
            tls.map_or("none", |t| t.protocol),
            tls.map_or("", |t| t.cipher_suite.as_str()),
            tls.and_then(|t| t.alpn_protocol.as_deref()),
            tls.and_then(|t| t.server_name.as_deref()),
            tls.is_some_and(|t| t.client_certificate.is_some()),
        );
        Ok(http::Response::new(ResponseBody::full(text)))
    }
}

struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

fn ca() -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let pem = params.clone().self_signed(&key).unwrap().pem();
    Ca { params, key, pem }
}

fn issue(ca: &Ca, names: &[&str], client: bool, expired: bool) -> CertificatePem {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    for name in names {
        params.subject_alt_names.push(match name.parse() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName((*name).try_into().unwrap()),
        });
    }
    if client {
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    }
    if expired {
        params.not_before = rcgen::date_time_ymd(2019, 1, 1);
        params.not_after = rcgen::date_time_ymd(2020, 1, 2);
    }
    let key = KeyPair::generate().unwrap();
    let issuer = ca.params.clone().self_signed(&ca.key).unwrap();
    let cert = params.signed_by(&key, &issuer, &ca.key).unwrap();
    CertificatePem {
        cert: cert.pem().into_bytes(),
        key: key.serialize_pem().into_bytes(),
    }
}

/// TLS options with one certificate for every name, and nothing else.
fn single_cert(cert: CertificatePem) -> TlsOptions {
    TlsOptions {
        default: Some(cert),
        ..TlsOptions::default()
    }
}

fn der(pem: &CertificatePem) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(&pem.cert).unwrap().to_vec()
}

fn start(
    tls: TlsOptions,
    protocols: Protocols,
) -> Result<(peregrine_core::RunningServer, u16), peregrine_core::Error> {
    let mut endpoint = Endpoint::parse("https://127.0.0.1:0").unwrap();
    endpoint.protocols = protocols;
    let server = Server::start(
        ServerOptions {
            endpoints: vec![endpoint],
            tls: Some(tls),
            ..ServerOptions::default()
        },
        Arc::new(Describe),
        &tokio::runtime::Handle::current(),
    )?;
    let port = port_of(&server.urls()[0]);
    Ok((server, port))
}

struct Client {
    roots: RootCertStore,
    alpn: Vec<Vec<u8>>,
    identity: Option<CertificatePem>,
}

impl Client {
    fn new(ca: &Ca) -> Client {
        let mut roots = RootCertStore::empty();
        use rustls::pki_types::pem::PemObject;
        roots
            .add(CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap())
            .unwrap();
        Client {
            roots,
            alpn: vec![b"http/1.1".to_vec()],
            identity: None,
        }
    }

    /// Connects with `sni` (an IP address sends none), sends a GET, and returns the
    /// server's leaf certificate and the response body.
    async fn get(&self, port: u16, sni: &str) -> std::io::Result<(Vec<u8>, String)> {
        let mut tls = self.connect(port, sni).await?;
        let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
        tls.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await?;
        let mut response = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut response))
            .await
            .expect("response in time")
            .or_else(|e| match e.kind() {
                // Some servers close without close_notify after Connection: close.
                std::io::ErrorKind::UnexpectedEof => Ok(0),
                _ => Err(e),
            })?;
        let text = String::from_utf8_lossy(&response).into_owned();
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        Ok((leaf, body))
    }

    /// A TLS connection, handshake done, with `sni` (an IP address sends none).
    async fn connect(
        &self,
        port: u16,
        sni: &str,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        use rustls::pki_types::pem::PemObject;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(self.roots.clone());
        let mut config = match &self.identity {
            None => builder.with_no_client_auth(),
            Some(id) => builder
                .with_client_auth_cert(
                    vec![CertificateDer::from_pem_slice(&id.cert).unwrap()],
                    PrivateKeyDer::from_pem_slice(&id.key).unwrap(),
                )
                .unwrap(),
        };
        config.alpn_protocols = self.alpn.clone();
        let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
        let name = ServerName::try_from(sni.to_string()).unwrap();
        TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
    }
}

#[tokio::test]
async fn selects_certificates_by_sni_with_wildcards_and_a_default() {
    let ca = ca();
    let default = issue(
        &ca,
        &["127.0.0.1", "other.test", "a.b.example.test"],
        false,
        false,
    );
    let api = issue(&ca, &["api.example.test"], false, false);
    let wildcard = issue(&ca, &["*.example.test"], false, false);
    let (server, port) = start(
        TlsOptions {
            default: Some(default.clone()),
            sni: vec![
                ("api.example.test".into(), api.clone()),
                ("*.example.test".into(), wildcard.clone()),
            ],
            ..TlsOptions::default()
        },
        Protocols::Http1AndHttp2,
    )
    .unwrap();
    let client = Client::new(&ca);
    assert_eq!(
        client.get(port, "api.example.test").await.unwrap().0,
        der(&api)
    );
    let (leaf, body) = client.get(port, "www.example.test").await.unwrap();
    assert_eq!(leaf, der(&wildcard));
    assert!(body.contains("sni=Some(\"www.example.test\")"), "{body}");
    assert!(body.starts_with("TLSv1.3 TLS_"), "{body}");
    assert_eq!(
        client.get(port, "a.b.example.test").await.unwrap().0,
        der(&default)
    );
    assert_eq!(
        client.get(port, "other.test").await.unwrap().0,
        der(&default)
    );
    let (leaf, body) = client.get(port, "127.0.0.1").await.unwrap();
    assert_eq!(leaf, der(&default));
    assert!(body.contains("sni=None"), "{body}");
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn without_a_default_an_unknown_name_gets_an_alert() {
    let ca = ca();
    let api = issue(&ca, &["api.example.test"], false, false);
    let (server, port) = start(
        TlsOptions {
            sni: vec![("api.example.test".into(), api)],
            ..TlsOptions::default()
        },
        Protocols::Http1AndHttp2,
    )
    .unwrap();
    let client = Client::new(&ca);
    assert!(client.get(port, "api.example.test").await.is_ok());
    assert!(client.get(port, "other.test").await.is_err());
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn alpn_follows_the_endpoint_protocols() {
    let ca = ca();
    let cert = issue(&ca, &["127.0.0.1"], false, false);
    let options = single_cert(cert);
    let (both, both_port) = start(options.clone(), Protocols::Http1AndHttp2).unwrap();
    let (h1, h1_port) = start(options, Protocols::Http1).unwrap();
    let mut client = Client::new(&ca);
    client.alpn = vec![b"http/1.1".to_vec()];
    let body = client.get(both_port, "127.0.0.1").await.unwrap().1;
    assert!(body.contains("alpn=Some(\"http/1.1\")"), "{body}");
    // A client that insists on h2 cannot talk to an http1 endpoint.
    client.alpn = vec![b"h2".to_vec()];
    assert!(client.get(h1_port, "127.0.0.1").await.is_err());
    both.stop(Duration::from_secs(1)).await;
    h1.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn client_certificates_are_required_or_allowed() {
    let ca = ca();
    let stranger_ca = self::ca();
    let server_cert = issue(&ca, &["127.0.0.1"], false, false);
    let client_cert = issue(&ca, &["client.test"], true, false);
    let stranger_cert = issue(&stranger_ca, &["stranger.test"], true, false);
    for mode in [ClientCertificateMode::Require, ClientCertificateMode::Allow] {
        let (server, port) = start(
            TlsOptions {
                default: Some(server_cert.clone()),
                client_certificate_mode: mode,
                ca: Some(ca.pem.clone().into_bytes()),
                ..TlsOptions::default()
            },
            Protocols::Http1AndHttp2,
        )
        .unwrap();
        let mut client = Client::new(&ca);
        let anonymous = client.get(port, "127.0.0.1").await;
        match mode {
            ClientCertificateMode::Require => assert!(anonymous.is_err(), "{anonymous:?}"),
            _ => assert!(anonymous.unwrap().1.ends_with("client=false")),
        }
        client.identity = Some(client_cert.clone());
        assert!(client
            .get(port, "127.0.0.1")
            .await
            .unwrap()
            .1
            .ends_with("client=true"));
        client.identity = Some(stranger_cert.clone());
        assert!(client.get(port, "127.0.0.1").await.is_err());
        server.stop(Duration::from_secs(1)).await;
    }
}

#[tokio::test]
async fn reload_swaps_the_certificate_for_new_connections() {
    let ca = ca();
    let first = issue(&ca, &["127.0.0.1"], false, false);
    let second = issue(&ca, &["127.0.0.1"], false, false);
    let (server, port) = start(single_cert(first.clone()), Protocols::Http1AndHttp2).unwrap();
    let client = Client::new(&ca);
    assert_eq!(client.get(port, "127.0.0.1").await.unwrap().0, der(&first));
    server.reload_tls(&single_cert(second.clone())).unwrap();
    assert_eq!(client.get(port, "127.0.0.1").await.unwrap().0, der(&second));
    // A bad set is refused and the current one stays.
    let error = server
        .reload_tls(&TlsOptions {
            default: Some(CertificatePem {
                cert: first.cert.clone(),
                key: second.key.clone(),
            }),
            ..TlsOptions::default()
        })
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::TlsKeyMismatch);
    assert_eq!(client.get(port, "127.0.0.1").await.unwrap().0, der(&second));
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn start_fails_with_a_code_naming_the_endpoint_and_the_problem() {
    let ca = ca();
    let good = issue(&ca, &["127.0.0.1"], false, false);
    let other = issue(&ca, &["127.0.0.1"], false, false);
    let expired = issue(&ca, &["127.0.0.1"], false, true);
    let cases = [
        (
            CertificatePem {
                cert: b"not pem".to_vec(),
                key: good.key.clone(),
            },
            ErrorCode::TlsInvalidCertificate,
            "tls.cert",
        ),
        (
            CertificatePem {
                cert: good.cert.clone(),
                key: b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_vec(),
            },
            ErrorCode::TlsInvalidKey,
            "tls.key",
        ),
        (
            CertificatePem {
                cert: good.cert.clone(),
                key: other.key.clone(),
            },
            ErrorCode::TlsKeyMismatch,
            "tls.key is not the private key",
        ),
        (expired, ErrorCode::TlsCertificateExpired, "expired"),
    ];
    for (pem, code, words) in cases {
        let error = start(single_cert(pem), Protocols::Http1AndHttp2)
            .err()
            .expect("start fails");
        assert_eq!(error.code, code, "{}", error.message);
        assert!(
            error.message.contains("https://127.0.0.1:0"),
            "{}",
            error.message
        );
        assert!(error.message.contains(words), "{}", error.message);
    }
    let error = Server::start(
        ServerOptions {
            endpoints: vec![Endpoint::parse("https://127.0.0.1:0").unwrap()],
            ..ServerOptions::default()
        },
        Arc::new(Describe),
        &tokio::runtime::Handle::current(),
    )
    .err()
    .expect("https without tls fails");
    assert_eq!(error.code, ErrorCode::TlsNotConfigured);
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn endpoints_with_their_own_certificates_keep_them_across_reloads() {
    let ca = ca();
    let default = issue(&ca, &["127.0.0.1"], false, false);
    let own = issue(&ca, &["127.0.0.1"], false, false);
    let reloaded = issue(&ca, &["127.0.0.1"], false, false);
    let endpoints = vec![
        Endpoint::parse("https://127.0.0.1:0").unwrap(),
        Endpoint::parse("https://127.0.0.1:0").unwrap(),
    ];
    let server = Server::start(
        ServerOptions {
            endpoints,
            tls: Some(single_cert(default.clone())),
            endpoint_tls: vec![None, Some(single_cert(own.clone()))],
            ..ServerOptions::default()
        },
        Arc::new(Describe),
        &tokio::runtime::Handle::current(),
    )
    .unwrap();
    let (shared, separate) = (port_of(&server.urls()[0]), port_of(&server.urls()[1]));
    let client = Client::new(&ca);
    assert_eq!(
        client.get(shared, "127.0.0.1").await.unwrap().0,
        der(&default)
    );
    assert_eq!(
        client.get(separate, "127.0.0.1").await.unwrap().0,
        der(&own)
    );
    server.reload_tls(&single_cert(reloaded.clone())).unwrap();
    assert_eq!(
        client.get(shared, "127.0.0.1").await.unwrap().0,
        der(&reloaded)
    );
    assert_eq!(
        client.get(separate, "127.0.0.1").await.unwrap().0,
        der(&own)
    );
    server.stop(Duration::from_secs(1)).await;

    // When every https endpoint has its own certificates, `tls` is not needed.
    let server = Server::start(
        ServerOptions {
            endpoints: vec![Endpoint::parse("https://127.0.0.1:0").unwrap()],
            endpoint_tls: vec![Some(single_cert(own.clone()))],
            ..ServerOptions::default()
        },
        Arc::new(Describe),
        &tokio::runtime::Handle::current(),
    )
    .unwrap();
    let port = port_of(&server.urls()[0]);
    assert_eq!(client.get(port, "127.0.0.1").await.unwrap().0, der(&own));
    server.stop(Duration::from_secs(1)).await;
}

/// An idle TLS keep-alive connection is parked like a cleartext one (its rustls state
/// stays, hyper's buffers go), and serves its next request.
#[tokio::test]
async fn a_parked_tls_connection_serves_its_next_request() {
    let ca = ca();
    let (server, port) = start(
        single_cert(issue(&ca, &["localhost"], false, false)),
        Protocols::Http1,
    )
    .unwrap();
    let mut tls = Client::new(&ca).connect(port, "localhost").await.unwrap();
    let mut received = Vec::new();
    for round in 0..2 {
        tls.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        received.clear();
        while !String::from_utf8_lossy(&received).contains("client=false") {
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut chunk))
                .await
                .expect("response in time")
                .unwrap();
            assert!(n > 0, "closed in round {round}");
            received.extend_from_slice(&chunk[..n]);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(server.stats().idle_connections, 1, "round {round}");
    }
    assert!(String::from_utf8_lossy(&received).starts_with("HTTP/1.1 200 OK\r\n"));
    server.stop(Duration::from_secs(1)).await;
}
