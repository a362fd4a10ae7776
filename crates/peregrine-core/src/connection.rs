//! One accepted connection: HTTP/1.1 or HTTP/2 through hyper, until it closes or the
//! server shuts it down.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use http::header::{HeaderValue, SERVER};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::body::RequestBody;
use crate::endpoint::{Protocols, Scheme};
use crate::handler::{Abort, Handler, Request, RequestHead};
use crate::server::Limits;

/// What a request knows about the connection it arrived on (the connection feature).
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// Unique within the process, increasing.
    pub id: u64,
    pub remote: SocketAddr,
    pub local: SocketAddr,
    pub scheme: Scheme,
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

pub(crate) fn http_builder(settings: &ConnectionSettings) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .keep_alive(true)
        .writev(true)
        // Pipelined responses are flushed together rather than one write each.
        .pipeline_flush(true)
        .max_buf_size(settings.limits.max_request_buffer_size.max(8192));
    builder
        .http2()
        .max_concurrent_streams(100)
        .initial_stream_window_size(768 * 1024)
        .initial_connection_window_size(1024 * 1024);
    match settings.protocols {
        Protocols::Http1 => builder.http1_only(),
        Protocols::Http2 => builder.http2_only(),
        Protocols::Http1AndHttp2 => builder,
    }
}

/// Serves one connection. The returned future finishes when the connection closes;
/// `shutdown` asks it to finish in-flight requests and close.
pub(crate) async fn serve<H: Handler>(
    stream: TcpStream,
    info: Arc<ConnectionInfo>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    settings: Arc<ConnectionSettings>,
    handler: Arc<H>,
    shutdown: CancellationToken,
    abort: CancellationToken,
) {
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
            let mut response = handler.call(request).await?;
            if settings.add_server_header {
                response
                    .headers_mut()
                    .entry(SERVER)
                    .or_insert(HeaderValue::from_static("Peregrine"));
            }
            Ok::<_, Abort>(response)
        }
    });
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = shutdown.cancelled() => {}
    }
    conn.as_mut().graceful_shutdown();
    // Connection errors (client resets, malformed requests) end the connection; hyper
    // has already answered what it could, so there is nothing more to do with them.
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = abort.cancelled() => {}
    }
}
