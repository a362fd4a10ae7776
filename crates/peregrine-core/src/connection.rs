//! One accepted connection: HTTP/1.1 or HTTP/2 through hyper, until it closes or the
//! server shuts it down.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderValue, CONNECTION, SERVER};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

use crate::body::{MinDataRate, RequestBody};
use crate::endpoint::{Protocols, Scheme};
use crate::guard::{EdgeObserver, EdgeState, GuardSettings, GuardedIo, MinWriteRate, Rejection};
use crate::handler::{Abort, Handler, Request, RequestHead, ResetStream, Response};
use crate::http1;
use crate::http2::{self, Http2Settings};
use crate::preface::{self, Detected, Rewind};
use crate::server::Limits;
use crate::stats::ServerStats;
use crate::tls::{Alpn, TlsInfo};
use crate::transport::Transport;
use crate::upgrade::{self, ConnectionUpgrades, UpgradeSlot};

/// What a request knows about the connection it arrived on (the connection feature).
#[derive(Debug)]
pub struct ConnectionInfo {
    /// Unique within the process, increasing.
    pub id: u64,
    pub remote: SocketAddr,
    pub local: SocketAddr,
    pub scheme: Scheme,
    /// What the TLS handshake negotiated; `None` in cleartext.
    /// Boxed: most connections are cleartext, and this is kept for each one.
    pub tls: Option<Box<TlsInfo>>,
    /// TCP, or a unix socket (then `remote` and `local` are placeholders).
    pub transport: Transport,
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
            tls: tls.map(Box::new),
            transport: Transport::Tcp,
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
    pub stats: Arc<ServerStats>,
    pub guard: Arc<GuardSettings>,
}

/// hyper connection builders for one listener. Which one serves a connection is
/// decided by ALPN over TLS, by the endpoint's `protocols`, or, in cleartext with both
/// protocols, by whether the client opens with the HTTP/2 preface (`preface.rs`).
pub(crate) struct Builders {
    pub http1: hyper::server::conn::http1::Builder,
    http2: Http2Settings,
    max_request_body_size: Option<u64>,
    pub keep_alive_timeout: Duration,
    protocols: Protocols,
    pub stats: Arc<ServerStats>,
    /// Logs and counts refusals; one for all the listener's connections.
    observer: Arc<dyn EdgeObserver>,
}

impl Builders {
    pub fn new<H: Handler>(settings: &ConnectionSettings, handler: Arc<H>) -> Builders {
        Builders {
            http1: http1::builder(settings.limits.max_request_buffer_size),
            http2: Http2Settings::new(
                &settings.limits.http2,
                settings.limits.max_request_body_size,
            ),
            protocols: settings.protocols,
            max_request_body_size: settings.limits.max_request_body_size,
            keep_alive_timeout: settings.limits.keep_alive_timeout,
            stats: settings.stats.clone(),
            observer: Arc::new(RejectionSink {
                stats: settings.stats.clone(),
                handler,
            }),
        }
    }
}

/// Why a request got no response.
#[derive(Debug)]
pub(crate) enum ServiceError {
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

/// What each connection of a listener is served with.
pub(crate) struct ConnectionContext<H> {
    pub builders: Arc<Builders>,
    pub settings: Arc<ConnectionSettings>,
    pub handler: Arc<H>,
    /// Asks the connection to finish its in-flight requests and close.
    pub shutdown: CancellationToken,
    /// Drops it (shutdownTimeout has passed).
    pub abort: CancellationToken,
}

/// A connection being served: finishes when the connection closes.
pub(crate) type Serving = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Prepares one connection: its edge, its service and, on a cleartext endpoint that
/// takes both protocols, which one the client speaks. Returns the future that serves
/// it (`None` if the connection ended first), which holds only what serving needs:
/// an idle connection keeps it for as long as it stays open. `shutdown` asks it to
/// finish in-flight requests and close.
pub(crate) async fn start<H, IO>(
    io: IO,
    info: Arc<ConnectionInfo>,
    context: ConnectionContext<H>,
) -> Option<Serving>
where
    H: Handler,
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ConnectionContext {
        builders,
        settings,
        handler,
        shutdown,
        abort,
    } = context;
    let alpn = Alpn::of(info.tls.as_deref());
    let edge_state = Arc::new(EdgeState::new(H::CONCURRENT_PIPELINING));
    let edge = Edge {
        settings: settings.guard.clone(),
        connection: info.clone(),
        observer: builders.observer.clone(),
        state: edge_state.clone(),
        min_response_data_rate: settings.limits.min_response_data_rate,
        upgrades: None,
    };
    let upgrades = ConnectionUpgrades::new(
        settings.stats.clone(),
        settings.limits.max_concurrent_upgraded_connections,
        edge.observer.clone(),
        info.clone(),
        abort.clone(),
    );
    let edge = Edge {
        upgrades: Some(upgrades.clone()),
        ..edge
    };
    // The application, as both protocols call it (with the request's HTTP/2 stream id;
    // HTTP/1.1 passes None). What needs no waiting is done before
    // the future is made, so that the future holds the request once: hyper and the
    // lookahead move it, and a kilobyte more of future is a kilobyte more to copy.
    let app = move |req: http::Request<RequestBody>, stream_id: Option<u32>| {
        let refusal = edge_state.refusal_for_next();
        let prepared = match refusal {
            Some(reason) => Err(reason),
            None => {
                settings.stats.request();
                let (mut parts, body) = req.into_parts();
                let asks_for_upgrade = upgrade::asks_for_upgrade(&parts);
                offer_upgrade(&mut parts, &upgrades);
                let body = body.with_min_data_rate(settings.limits.min_request_body_data_rate);
                let head = RequestHead {
                    parts,
                    connection: info.clone(),
                    stream_id,
                };
                Ok((Request { head, body }, asks_for_upgrade))
            }
        };
        let handler = handler.clone();
        let settings = settings.clone();
        async move {
            let (request, asks_for_upgrade) = match prepared {
                Ok(prepared) => prepared,
                Err(reason) => {
                    let mut response: Response = reason.response();
                    if settings.add_server_header {
                        response
                            .headers_mut()
                            .insert(SERVER, HeaderValue::from_static("Peregrine"));
                    }
                    return Ok(response);
                }
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
            if asks_for_upgrade && response.status() != http::StatusCode::SWITCHING_PROTOCOLS {
                // The guard stopped inspecting after the head, so the connection must
                // not carry another request.
                response
                    .headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
            }
            Ok::<_, ServiceError>(response)
        }
    };
    let detected = match (alpn, builders.protocols) {
        (Alpn::Http2, _) | (Alpn::None, Protocols::Http2) => Detected::Http2,
        (Alpn::Http1, _) | (Alpn::None, Protocols::Http1) => Detected::Http1,
        (Alpn::None, Protocols::Http1AndHttp2) => {
            // A client that sends nothing is idle: keepAliveTimeout applies.
            let detected = tokio::select! {
                d = preface::detect(io) => d,
                _ = shutdown.cancelled() => return None,
                _ = tokio::time::sleep(builders.keep_alive_timeout) => return None,
            };
            let (detected, io) = detected.ok()?;
            return Some(serve_as(detected, io, builders, edge, app, shutdown, abort));
        }
    };
    Some(serve_as(
        detected,
        Rewind::new(io, Vec::new()),
        builders,
        edge,
        app,
        shutdown,
        abort,
    ))
}

/// Puts an [`UpgradeSlot`] in an upgradable HTTP/1.1 request.
fn offer_upgrade(parts: &mut http::request::Parts, upgrades: &Arc<ConnectionUpgrades>) {
    if !upgrade::is_upgradable(parts) {
        return;
    }
    if let Some(on_upgrade) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() {
        parts
            .extensions
            .insert(UpgradeSlot::new(on_upgrade, upgrades.clone()));
    }
}

/// What the HTTP/1.1 edge guard needs for one connection.
struct Edge {
    settings: Arc<GuardSettings>,
    connection: Arc<ConnectionInfo>,
    observer: Arc<dyn EdgeObserver>,
    state: Arc<EdgeState>,
    min_response_data_rate: Option<MinDataRate>,
    /// Set once the connection's service exists: upgrades and their streams.
    upgrades: Option<Arc<ConnectionUpgrades>>,
}

/// Counts each refusal and tells the handler, which logs it.
struct RejectionSink<H> {
    stats: Arc<ServerStats>,
    handler: Arc<H>,
}

impl<H: Handler> EdgeObserver for RejectionSink<H> {
    fn rejected(&self, reason: Rejection, connection: &ConnectionInfo) {
        self.stats.rejected(reason);
        self.handler.rejected(reason, connection);
    }
}

fn serve_as<IO, A, Fut>(
    protocol: Detected,
    io: Rewind<IO>,
    builders: Arc<Builders>,
    edge: Edge,
    app: A,
    shutdown: CancellationToken,
    abort: CancellationToken,
) -> Serving
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    A: Fn(http::Request<RequestBody>, Option<u32>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response, ServiceError>> + Send + 'static,
{
    // Both protocols: a client that stops reading is cut off (minResponseDataRate).
    let io = MinWriteRate::new(
        io,
        edge.min_response_data_rate,
        Some((edge.observer.clone(), edge.connection.clone())),
    );
    match protocol {
        Detected::Http1 => {
            // HTTP/1.1 goes through the edge guard: hyper sees only validated bytes.
            // Boxed: hyper's connection is built again after each park, and moves it.
            let guard = Box::new(GuardedIo::new(
                io,
                edge.settings,
                edge.connection,
                edge.observer,
                edge.state.clone(),
            ));
            let service = http1::service(
                move |req| app(req, None),
                builders.max_request_body_size,
                edge.state,
            );
            let connection = http1::Http1Connection {
                builders,
                upgrades: edge.upgrades,
            };
            Box::pin(http1::serve(connection, guard, service, shutdown, abort))
        }
        Detected::Http2 => {
            let edge = http2::Http2Edge {
                observer: edge.observer,
                connection: edge.connection,
                min_response_data_rate: edge.min_response_data_rate,
            };
            Box::pin(
                async move { http2::serve(io, &builders.http2, edge, app, shutdown, abort).await },
            )
        }
    }
}
