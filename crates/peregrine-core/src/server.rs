//! Binding endpoints, accepting connections, and stopping gracefully.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::runtime::Handle;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::body::MinDataRate;
use crate::connection::{self, Builders, ConnectionContext, ConnectionInfo, ConnectionSettings};
use crate::endpoint::{BindHost, Endpoint, Scheme};
use crate::error::{Error, ErrorCode};
use crate::guard::{GuardSettings, Rejection};
use crate::handler::Handler;
use crate::stats::{ConnectionCount, ServerStats, StatsSnapshot};
use crate::tls::{self, Tls, TlsInfo, TlsOptions};
use crate::transport::{self, AcceptedStream, Listener, Transport};

/// Server limits. Each field's default is Kestrel's; docs/limits.md is the reference.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body in bytes; `None` for no limit. Default 30,000,000.
    pub max_request_body_size: Option<u64>,
    /// Bytes hyper may buffer while reading a request head. Default 1 MiB.
    pub max_request_buffer_size: usize,
    /// Bytes of a streamed response buffered before writes push back. Default 64 KiB.
    pub max_response_buffer_size: usize,
    /// Open connections at most; more are closed at accept. `None` (default): no limit.
    pub max_concurrent_connections: Option<u64>,
    /// Upgraded (HTTP/1.1 101) connections at most, counted apart from
    /// `max_concurrent_connections`; past it an upgrade is refused. `None` (default): no limit.
    pub max_concurrent_upgraded_connections: Option<u64>,
    /// Longest request line in bytes; longer gets 414. Default 8192.
    pub max_request_line_size: usize,
    /// Most header fields in a request; more gets 431. Default 100.
    pub max_request_header_count: usize,
    /// Largest header section in bytes; larger gets 431. Default 32768.
    pub max_request_headers_total_size: usize,
    /// How long an idle keep-alive connection stays open. Default 130 s.
    pub keep_alive_timeout: Duration,
    /// How long a request head may take to arrive once it started; then 408. Default 30 s.
    pub request_headers_timeout: Duration,
    /// Slowest acceptable request body; reading fails with BodyTooSlow (408) below it.
    /// Default 240 bytes/s after a 5 s grace period; `None` turns it off.
    pub min_request_body_data_rate: Option<MinDataRate>,
    /// Slowest acceptable reader while writes wait; below it the connection is aborted.
    /// Default 240 bytes/s after a 5 s grace period; `None` turns it off.
    pub min_response_data_rate: Option<MinDataRate>,
    pub http2: Http2Limits,
}

/// HTTP/2 settings, with Kestrel's defaults (Http2Limits.cs).
#[derive(Debug, Clone)]
pub struct Http2Limits {
    /// SETTINGS_MAX_CONCURRENT_STREAMS. Default 100.
    pub max_streams_per_connection: u32,
    /// SETTINGS_HEADER_TABLE_SIZE (HPACK dynamic table), bytes. Default 4096.
    pub header_table_size: u32,
    /// SETTINGS_MAX_FRAME_SIZE, bytes, 16,384 to 16,777,215. Default 16,384.
    pub max_frame_size: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE: the decoded request header block, bytes. Default 32 KiB.
    pub max_request_header_field_size: u32,
    /// Connection receive window, bytes. Default 1 MiB.
    pub initial_connection_window_size: u32,
    /// Per-stream receive window, bytes. Default 768 KiB.
    pub initial_stream_window_size: u32,
    /// Send a PING after this long; `None` (the default) sends none.
    pub keep_alive_ping_delay: Option<Duration>,
    /// Close the connection when a PING is not answered within this. Default 20 s.
    pub keep_alive_ping_timeout: Duration,
}

impl Default for Http2Limits {
    fn default() -> Self {
        Http2Limits {
            max_streams_per_connection: 100,
            header_table_size: 4096,
            max_frame_size: 16 * 1024,
            max_request_header_field_size: 32 * 1024,
            initial_connection_window_size: 1024 * 1024,
            initial_stream_window_size: 768 * 1024,
            keep_alive_ping_delay: None,
            keep_alive_ping_timeout: Duration::from_secs(20),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_body_size: Some(30_000_000),
            max_request_buffer_size: 1024 * 1024,
            max_response_buffer_size: 64 * 1024,
            max_concurrent_connections: None,
            max_concurrent_upgraded_connections: None,
            max_request_line_size: 8192,
            max_request_header_count: 100,
            max_request_headers_total_size: 32 * 1024,
            keep_alive_timeout: Duration::from_secs(130),
            request_headers_timeout: Duration::from_secs(30),
            min_request_body_data_rate: Some(MinDataRate {
                bytes_per_second: 240.0,
                grace_period: Duration::from_secs(5),
            }),
            min_response_data_rate: Some(MinDataRate {
                bytes_per_second: 240.0,
                grace_period: Duration::from_secs(5),
            }),
            http2: Http2Limits::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub endpoints: Vec<Endpoint>,
    pub limits: Limits,
    /// Adds `Server: Peregrine` to responses that do not set it. Default true.
    pub add_server_header: bool,
    /// Certificates and client-certificate policy for the https endpoints.
    pub tls: Option<TlsOptions>,
    /// Endpoints' own certificates, by position in `endpoints`: an https endpoint with
    /// `Some` serves them instead of `tls`, and `reload_tls` leaves it alone. Missing
    /// entries are `None`.
    pub endpoint_tls: Vec<Option<TlsOptions>>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            endpoints: Vec::new(),
            limits: Limits::default(),
            add_server_header: true,
            tls: None,
            endpoint_tls: Vec::new(),
        }
    }
}

pub struct Server;

impl Server {
    /// Binds every endpoint and starts accepting on `runtime`. Fails without leaving
    /// anything bound if any endpoint cannot be bound.
    pub fn start<H: Handler>(
        options: ServerOptions,
        handler: Arc<H>,
        runtime: &Handle,
    ) -> Result<RunningServer, Error> {
        if options.endpoints.is_empty() {
            return Err(Error::new(
                ErrorCode::NoEndpoints,
                "no endpoints to listen on: give at least one URL",
            ));
        }
        let _enter = runtime.enter();
        let tls = start_tls(&options)?;
        let endpoint_tls = endpoints_tls(&options, &tls)?;
        let mut bound: Vec<(Listener, &Endpoint, Option<Arc<Tls>>)> = Vec::new();
        for (endpoint, tls) in options.endpoints.iter().zip(endpoint_tls) {
            if let BindHost::Unix(path) = &endpoint.host {
                let socket = transport::bind_unix(path)
                    .map_err(|e| bind_error(endpoint, &format!("unix:{}", path.display()), e))?;
                bound.push((Listener::Unix(socket), endpoint, tls));
                continue;
            }
            let mut port = endpoint.port;
            for (i, mut addr) in endpoint.candidate_addresses().into_iter().enumerate() {
                addr.set_port(port);
                match transport::bind_tcp(addr) {
                    Ok(listener) => {
                        port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
                        bound.push((Listener::Tcp(listener), endpoint, tls.clone()));
                    }
                    // `localhost` binds IPv6 too when the machine has it, like Kestrel.
                    Err(e) if i > 0 && e.kind() == io::ErrorKind::AddrNotAvailable => {}
                    Err(e) => return Err(bind_error(endpoint, &addr.to_string(), e)),
                }
            }
        }

        let shutdown = CancellationToken::new();
        let abort = CancellationToken::new();
        let tracker = TaskTracker::new();
        let stats = Arc::new(ServerStats::default());
        let mut urls = Vec::new();
        for (listener, endpoint, tls) in bound {
            let url = listener
                .url(endpoint.scheme)
                .map_err(|e| bind_error(endpoint, &endpoint.url, e))?;
            urls.push(url);
            let settings = Arc::new(ConnectionSettings {
                scheme: endpoint.scheme,
                protocols: endpoint.protocols,
                limits: options.limits.clone(),
                add_server_header: options.add_server_header,
                stats: stats.clone(),
                guard: Arc::new(GuardSettings::from_limits(&options.limits)),
            });
            tracker.spawn(accept_loop(
                listener,
                settings,
                tls,
                handler.clone(),
                shutdown.clone(),
                abort.clone(),
                tracker.clone(),
            ));
        }
        Ok(RunningServer {
            urls,
            stats,
            tls,
            tls_endpoints: https_endpoints(&default_tls_endpoints(&options)),
            shutdown,
            abort,
            tracker,
        })
    }
}

/// The https endpoints' URLs, for error messages.
fn https_endpoints(endpoints: &[Endpoint]) -> String {
    let urls: Vec<String> = endpoints
        .iter()
        .filter(|e| e.scheme == Scheme::Https)
        .map(|e| format!("\"{}\"", e.url))
        .collect();
    match urls.len() {
        1 => format!("endpoint {}", urls[0]),
        _ => format!("endpoints {}", urls.join(", ")),
    }
}

/// The https endpoints that serve the default certificates (`tls`), not their own.
fn default_tls_endpoints(options: &ServerOptions) -> Vec<Endpoint> {
    options
        .endpoints
        .iter()
        .enumerate()
        .filter(|(i, _)| matches!(options.endpoint_tls.get(*i), None | Some(None)))
        .map(|(_, e)| e.clone())
        .collect()
}

/// Loads the default certificates when an https endpoint has none of its own.
fn start_tls(options: &ServerOptions) -> Result<Option<Arc<Tls>>, Error> {
    let endpoints = default_tls_endpoints(options);
    if !endpoints.iter().any(|e| e.scheme == Scheme::Https) {
        return Ok(None);
    }
    let names = https_endpoints(&endpoints);
    let Some(tls) = &options.tls else {
        return Err(Error::new(
            ErrorCode::TlsNotConfigured,
            format!(
                "{names} is https, but no certificate was given: set the tls option (cert and key)"
            ),
        ));
    };
    Ok(Some(Arc::new(Tls::new(tls, &names)?)))
}

/// Each endpoint's TLS: its own certificates, the default ones, or none for http.
fn endpoints_tls(
    options: &ServerOptions,
    default: &Option<Arc<Tls>>,
) -> Result<Vec<Option<Arc<Tls>>>, Error> {
    let mut all = Vec::with_capacity(options.endpoints.len());
    for (i, endpoint) in options.endpoints.iter().enumerate() {
        let tls = match options.endpoint_tls.get(i) {
            _ if endpoint.scheme != Scheme::Https => None,
            Some(Some(own)) => Some(Arc::new(Tls::new(
                own,
                &format!("endpoint \"{}\"", endpoint.url),
            )?)),
            _ => default.clone(),
        };
        all.push(tls);
    }
    Ok(all)
}

fn bind_error(endpoint: &Endpoint, addr: &str, e: io::Error) -> Error {
    let code = match e.kind() {
        io::ErrorKind::AddrInUse => ErrorCode::AddressInUse,
        io::ErrorKind::AddrNotAvailable => ErrorCode::AddressNotAvailable,
        _ => ErrorCode::Bind,
    };
    Error::new(
        code,
        format!(
            "cannot listen on {addr} for endpoint \"{}\": {e}",
            endpoint.url
        ),
    )
}

async fn accept_loop<H: Handler>(
    listener: Listener,
    settings: Arc<ConnectionSettings>,
    tls: Option<Arc<Tls>>,
    handler: Arc<H>,
    shutdown: CancellationToken,
    abort: CancellationToken,
    tracker: TaskTracker,
) {
    let builders = Arc::new(Builders::new(&settings, handler.clone()));
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.cancelled() => break,
        };
        match accepted {
            Ok(connection) => {
                let Some(count) = settings
                    .stats
                    .try_open(settings.limits.max_concurrent_connections)
                else {
                    // Over maxConcurrentConnections: close at accept, and say so.
                    settings.stats.rejected(Rejection::ConnectionLimit);
                    let mut info = ConnectionInfo::new(
                        connection::next_connection_id(),
                        connection.remote,
                        connection.local,
                        settings.scheme,
                        None,
                    );
                    info.transport = connection.transport;
                    handler.rejected(Rejection::ConnectionLimit, &info);
                    drop(connection);
                    continue;
                };
                let accepted = Accepted { connection, count };
                let context = ConnectionContext {
                    builders: builders.clone(),
                    settings: settings.clone(),
                    handler: handler.clone(),
                    shutdown: shutdown.clone(),
                    abort: abort.clone(),
                };
                tracker.spawn(serve_accepted(accepted, tls.clone(), context));
            }
            // Out of file descriptors or similar: back off instead of spinning.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

struct Accepted {
    connection: AcceptedStream,
    /// Keeps the connection counted while it is served.
    count: ConnectionCount,
}

/// Runs the TLS handshake when the endpoint is https, then serves the connection.
/// Not an async fn, which would keep `accepted` in the connection's task: the task
/// holds only the serving future and the connection's count.
fn serve_accepted<H: Handler>(
    accepted: Accepted,
    tls: Option<Arc<Tls>>,
    context: ConnectionContext<H>,
) -> impl Future<Output = ()> + Send {
    let Accepted {
        connection:
            AcceptedStream {
                stream,
                remote,
                local,
                transport,
            },
        count,
    } = accepted;
    let peer = Peer {
        id: connection::next_connection_id(),
        remote,
        local,
        transport,
    };
    let serving = match tls {
        None => Either::Left(serve_as_connection(stream, None, peer, context)),
        // Boxed: rustls's state would otherwise sit in every connection task, TLS or
        // not, for the connection's whole life.
        Some(tls) => Either::Right(Box::pin(serve_tls(stream, tls, peer, context))),
    };
    Counted {
        serving,
        _count: count,
    }
}

pin_project! {
    /// A connection's task: counted while it is served.
    struct Counted<F> {
        #[pin]
        serving: F,
        _count: ConnectionCount,
    }
}

impl<F: Future<Output = ()>> Future for Counted<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.project().serving.poll(cx)
    }
}

/// Runs the TLS handshake, then serves the connection.
async fn serve_tls<H: Handler>(
    stream: transport::Stream,
    tls: Arc<Tls>,
    peer: Peer,
    context: ConnectionContext<H>,
) {
    // A handshake in progress when the server stops is simply dropped.
    let settings = &context.settings;
    let timeout = tls::handshake_timeout(settings.limits.request_headers_timeout);
    let handshake = tokio::select! {
        // Boxed: the handshake's state is not kept once the connection is served.
        h = Box::pin(tls.accept(stream, settings.protocols, timeout)) => h,
        _ = context.shutdown.cancelled() => return,
    };
    let (stream, tls_info) = match handshake {
        Ok(accepted) => accepted,
        Err(reason) => return handshake_refused(reason, peer, settings, &*context.handler),
    };
    serve_as_connection(stream, Some(tls_info), peer, context).await
}

/// Logs and counts a connection whose TLS handshake failed or timed out.
fn handshake_refused<H: Handler>(
    reason: Rejection,
    peer: Peer,
    settings: &ConnectionSettings,
    handler: &H,
) {
    settings.stats.rejected(reason);
    let mut info = ConnectionInfo::new(peer.id, peer.remote, peer.local, settings.scheme, None);
    info.transport = peer.transport;
    handler.rejected(reason, &info);
}

/// Who is on the other end of an accepted socket.
struct Peer {
    id: u64,
    remote: SocketAddr,
    local: SocketAddr,
    transport: Transport,
}

/// Serves a connection, plain or TLS, and reports when it has closed.
fn serve_as_connection<H, IO>(
    stream: IO,
    tls: Option<TlsInfo>,
    peer: Peer,
    context: ConnectionContext<H>,
) -> impl Future<Output = ()> + Send
where
    H: Handler,
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut info = ConnectionInfo::new(
        peer.id,
        peer.remote,
        peer.local,
        context.settings.scheme,
        tls,
    );
    info.transport = peer.transport;
    let info = Arc::new(info);
    let handler = context.handler.clone();
    // Boxed: setting up and detecting the protocol need more than serving. Made here,
    // not in the async block, whose captures would stay in the connection's task.
    let start = Box::pin(connection::start(stream, info.clone(), context));
    async move {
        if let Some(serving) = start.await {
            serving.await;
        }
        handler.connection_closed(&info);
    }
}

/// A started server. Dropping it does not stop it: call [`RunningServer::stop`].
pub struct RunningServer {
    urls: Vec<String>,
    stats: Arc<ServerStats>,
    tls: Option<Arc<Tls>>,
    tls_endpoints: String,
    shutdown: CancellationToken,
    abort: CancellationToken,
    tracker: TaskTracker,
}

impl RunningServer {
    /// Connections, requests and refusals so far.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// The addresses actually bound, with port 0 resolved.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// Replaces the TLS certificate set: handshakes from now on use `options`;
    /// connections already open keep the certificates they were served with. On error
    /// the current set stays in use.
    pub fn reload_tls(&self, options: &TlsOptions) -> Result<(), Error> {
        match &self.tls {
            Some(tls) => tls.reload(options, &self.tls_endpoints),
            None => Err(Error::new(
                ErrorCode::TlsNotConfigured,
                "this server has no https endpoint, so there is no TLS to reload",
            )),
        }
    }

    /// Stops accepting, lets in-flight requests finish for up to `timeout`, then aborts
    /// whatever remains. Resolves when every connection is closed.
    pub fn stop(&self, timeout: Duration) -> impl std::future::Future<Output = ()> + Send {
        self.shutdown.cancel();
        self.tracker.close();
        let tracker = self.tracker.clone();
        let abort = self.abort.clone();
        async move {
            if tokio::time::timeout(timeout, tracker.wait()).await.is_err() {
                abort.cancel();
                tracker.wait().await;
            }
        }
    }

    /// The number of open connections (plus one accept loop per listener while running).
    pub fn active_tasks(&self) -> usize {
        self.tracker.len()
    }
}
