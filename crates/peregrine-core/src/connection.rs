//! One accepted connection: HTTP/1.1 or HTTP/2 through hyper, until it closes or the
//! server shuts it down.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use http::header::{HeaderValue, SERVER};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper::service::HttpService;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

use crate::body::{RequestBody, ResponseBody};
use crate::endpoint::{Protocols, Scheme};
use crate::handler::{Abort, Handler, Request, RequestHead, ResetStream};
use crate::preface::{self, Detected, Rewind};
use crate::server::Limits;
use crate::tls::{Alpn, TlsInfo};

/// What a request knows about the connection it arrived on (the connection feature).
#[derive(Debug)]
pub struct ConnectionInfo {
    /// Unique within the process, increasing.
    pub id: u64,
    pub remote: SocketAddr,
    pub local: SocketAddr,
    pub scheme: Scheme,
    /// What the TLS handshake negotiated; `None` in cleartext.
    pub tls: Option<TlsInfo>,
    /// Set by the first [`ConnectionInfo::take_first_request`].
    first_request_taken: AtomicBool,
}

impl ConnectionInfo {
    pub fn new(
        id: u64,
        remote: SocketAddr,
        local: SocketAddr,
        scheme: Scheme,
        tls: Option<TlsInfo>,
    ) -> ConnectionInfo {
        ConnectionInfo {
            id,
            remote,
            local,
            scheme,
            tls,
            first_request_taken: AtomicBool::new(false),
        }
    }

    /// True exactly once per connection: a host that caches per-connection data (TLS
    /// details) sends it along with the first request only.
    pub fn take_first_request(&self) -> bool {
        !self.first_request_taken.swap(true, Ordering::Relaxed)
    }

    /// True once [`ConnectionInfo::take_first_request`] has been called.
    pub fn had_request(&self) -> bool {
        self.first_request_taken.load(Ordering::Relaxed)
    }
}

static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) fn next_connection_id() -> u64 {
    NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed)
}

/// Settings shared by every connection of one listener.
pub(crate) struct ConnectionSettings {
    pub scheme: Scheme,
    pub protocols: Protocols,
    pub limits: Limits,
    pub add_server_header: bool,
}

/// hyper connection builders for one listener. Which one serves a connection is
/// decided by ALPN over TLS, by the endpoint's `protocols`, or, in cleartext with both
/// protocols, by whether the client opens with the HTTP/2 preface (`preface.rs`).
pub(crate) struct Builders {
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
    protocols: Protocols,
}

impl Builders {
    pub fn new(settings: &ConnectionSettings) -> Builders {
        Builders {
            http1: http1_builder(settings),
            http2: http2_builder(settings),
            protocols: settings.protocols,
        }
    }
}

fn http1_builder(settings: &ConnectionSettings) -> http1::Builder {
    let mut http1 = http1::Builder::new();
    http1
        .keep_alive(true)
        .writev(true)
        // No pipeline_flush: with it hyper reports "can buffer" unconditionally, so a
        // client that reads slowly makes the server buffer a whole streamed response.
        .max_buf_size(settings.limits.max_request_buffer_size.max(8192));
    http1
}

fn http2_builder(settings: &ConnectionSettings) -> http2::Builder<TokioExecutor> {
    let h2 = &settings.limits.http2;
    let mut http2 = http2::Builder::new(TokioExecutor::new());
    http2
        .timer(TokioTimer::new())
        .max_concurrent_streams(h2.max_streams_per_connection)
        .header_table_size(h2.header_table_size)
        .max_frame_size(h2.max_frame_size)
        .max_header_list_size(h2.max_request_header_field_size)
        .initial_stream_window_size(h2.initial_stream_window_size)
        .initial_connection_window_size(h2.initial_connection_window_size);
    if let Some(delay) = h2.keep_alive_ping_delay {
        http2
            .keep_alive_interval(delay)
            .keep_alive_timeout(h2.keep_alive_ping_timeout);
    }
    http2
}

/// Why a request got no response.
#[derive(Debug)]
enum ServiceError {
    Abort(Abort),
    /// hyper resets an HTTP/2 stream with the code of an h2 error found among the
    /// service error's sources; HTTP/1.1 closes the connection.
    Reset(h2::Error),
}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServiceError::Abort(a) => a.fmt(f),
            ServiceError::Reset(e) => write!(f, "the application reset the stream: {e}"),
        }
    }
}

impl std::error::Error for ServiceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServiceError::Abort(_) => None,
            ServiceError::Reset(e) => Some(e),
        }
    }
}

/// Serves one connection. The returned future finishes when the connection closes;
/// `shutdown` asks it to finish in-flight requests and close.
pub(crate) async fn serve<H, IO>(
    io: IO,
    info: Arc<ConnectionInfo>,
    builders: Arc<Builders>,
    settings: Arc<ConnectionSettings>,
    handler: Arc<H>,
    shutdown: CancellationToken,
    abort: CancellationToken,
) where
    H: Handler,
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let alpn = Alpn::of(info.tls.as_ref());
    let service = service_fn(move |req: http::Request<Incoming>| {
        let handler = handler.clone();
        let info = info.clone();
        let settings = settings.clone();
        async move {
            let (parts, body) = req.into_parts();
            let request = Request {
                head: RequestHead {
                    parts,
                    connection: info,
                },
                body: RequestBody::incoming(body, settings.limits.max_request_body_size),
            };
            let mut response = handler.call(request).await.map_err(ServiceError::Abort)?;
            if let Some(ResetStream(code)) = response.extensions().get::<ResetStream>() {
                return Err(ServiceError::Reset(h2::Reason::from(*code).into()));
            }
            if settings.add_server_header {
                response
                    .headers_mut()
                    .entry(SERVER)
                    .or_insert(HeaderValue::from_static("Peregrine"));
            }
            Ok::<_, ServiceError>(response)
        }
    });
    let detected = match (alpn, builders.protocols) {
        (Alpn::Http2, _) | (Alpn::None, Protocols::Http2) => Detected::Http2,
        (Alpn::Http1, _) | (Alpn::None, Protocols::Http1) => Detected::Http1,
        (Alpn::None, Protocols::Http1AndHttp2) => {
            let detected = tokio::select! {
                d = preface::detect(io) => d,
                _ = shutdown.cancelled() => return,
            };
            match detected {
                Ok((detected, io)) => {
                    return serve_as(detected, io, &builders, service, shutdown, abort).await
                }
                Err(_) => return,
            }
        }
    };
    serve_as(
        detected,
        Rewind::new(io, Vec::new()),
        &builders,
        service,
        shutdown,
        abort,
    )
    .await;
}

async fn serve_as<IO, S>(
    protocol: Detected,
    io: Rewind<IO>,
    builders: &Builders,
    service: S,
    shutdown: CancellationToken,
    abort: CancellationToken,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: HttpService<Incoming, ResBody = ResponseBody> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let io = TokioIo::new(io);
    match protocol {
        Detected::Http1 => {
            let conn = builders.http1.serve_connection(io, service).with_upgrades();
            run(conn, |c| c.graceful_shutdown(), shutdown, abort).await;
        }
        Detected::Http2 => {
            let conn = builders.http2.serve_connection(io, service);
            run(conn, |c| c.graceful_shutdown(), shutdown, abort).await;
        }
    }
}

/// Drives a connection until it closes. On shutdown it asks it to finish in-flight
/// requests (HTTP/2: GOAWAY) and close; on abort it drops it.
async fn run<C: Future>(
    conn: C,
    graceful_shutdown: impl FnOnce(Pin<&mut C>),
    shutdown: CancellationToken,
    abort: CancellationToken,
) {
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = shutdown.cancelled() => {}
    }
    graceful_shutdown(conn.as_mut());
    // Connection errors (client resets, malformed requests) end the connection; hyper
    // has already answered what it could, so there is nothing more to do with them.
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = abort.cancelled() => {}
    }
}
