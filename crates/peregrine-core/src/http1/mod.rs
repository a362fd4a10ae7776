//! HTTP/1.1 connections: hyper serves the requests, behind the edge guard. A
//! connection idle for a moment is parked: the guard ends hyper's connection
//! (`guard/park.rs`), which drops hyper's read and write buffers (8 KiB each) and its
//! state, and the connection waits for its next request holding only its socket, the
//! guard and this future. The next request's first bytes start a new hyper
//! connection over the same guard. keepAliveTimeout is measured across the park.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::Either;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::{service_fn, Service};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::body::{BoxError, RequestBody, ResponseBody};
use crate::connection::{Builders, ServiceError};
use crate::guard::{EdgeState, GuardedIo, PARK_AFTER};
use crate::handler::Response;
use crate::upgrade::ConnectionUpgrades;

mod lookahead;

/// Whether a `Connection` header value lists `token`, read as hyper reads it: a value
/// that is not visible ASCII lists nothing.
pub(crate) fn connection_has(value: &http::HeaderValue, token: &str) -> bool {
    value
        .to_str()
        .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// hyper's HTTP/1.1 builder for one listener.
pub(crate) fn builder(max_request_buffer_size: usize) -> http1::Builder {
    let mut http1 = http1::Builder::new();
    http1
        .keep_alive(true)
        .writev(true)
        // No pipeline_flush: with it hyper reports "can buffer" unconditionally, so a
        // client that reads slowly makes the server buffer a whole streamed response.
        .max_buf_size(max_request_buffer_size.max(8192))
        // The guard hands hyper a head only once it is complete (requestHeadersTimeout
        // is the guard's), and keepAliveTimeout runs while a connection is parked, so
        // hyper has nothing left to time.
        .header_read_timeout(None);
    http1
}

/// What one HTTP/1.1 connection is served with, besides its guard and service.
pub(crate) struct Http1Connection {
    /// hyper's builder, keepAliveTimeout and the counters.
    pub builders: Arc<Builders>,
    /// Set on connections that may be upgraded: serving ends when the upgraded stream
    /// has closed too.
    pub upgrades: Option<Arc<ConnectionUpgrades>>,
}

/// The connection's service: the app, with request bodies limited to `limit` and
/// response bodies counted as done in `state`.
pub(crate) fn service<A, Fut>(
    app: A,
    limit: Option<u64>,
    state: Arc<EdgeState>,
) -> impl Service<
    http::Request<Incoming>,
    Response = http::Response<Answered>,
    Error = ServiceError,
    Future: Send + 'static,
> + Send
       + 'static
where
    A: Fn(http::Request<RequestBody>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Response, ServiceError>> + Send + 'static,
{
    let lookahead = state
        .lookahead()
        .then(lookahead::SharedLookahead::<Fut>::default);
    service_fn(move |req: http::Request<Incoming>| {
        let req = req.map(|body| RequestBody::incoming(body, limit));
        let response = match &lookahead {
            Some(lookahead) => Either::Left(lookahead::serve(lookahead, &app, &state, req)),
            // Boxed, both ways: the app's future is hundreds of bytes (over a kilobyte
            // for some handlers), and hyper moves the service's future into its
            // connection, a memcpy per request.
            None => Either::Right(Box::pin(app(req))),
        };
        let state = state.clone();
        async move {
            let response = response.await?;
            Ok::<_, ServiceError>(response.map(|body| Answered { body, state }))
        }
    })
}

/// Serves an HTTP/1.1 connection through `guard` until it closes, is upgraded (and
/// the upgraded stream has closed), or the server stops (`shutdown`: in-flight
/// requests finish; `abort`: dropped). The parameters are used in place, not moved
/// into locals: this future is what an idle connection holds.
pub(crate) async fn serve<IO, S>(
    connection: Http1Connection,
    mut guard: Box<GuardedIo<IO>>,
    mut service: S,
    shutdown: CancellationToken,
    abort: CancellationToken,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<http::Request<Incoming>, Response = http::Response<Answered>, Error = ServiceError>
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let builders = &connection.builders;
    let park_after = PARK_AFTER.min(builders.keep_alive_timeout);
    guard.park_when_idle(park_after);
    // A connection parks once idle for at least `park_after` and less than twice
    // that, so it is closed `keep_alive_timeout - park_after` after parking: idle for
    // at least keepAliveTimeout, and less than `park_after` more.
    let parked_for = builders.keep_alive_timeout - park_after;
    // Armed the first time the connection parks, then moved on only when it fires:
    // no timer work per request.
    let keep_alive = tokio::time::sleep(parked_for);
    tokio::pin!(keep_alive);
    loop {
        // Boxed: a parked connection holds none of hyper's state.
        let mut conn = Box::pin(
            builders
                .http1
                .serve_connection(TokioIo::new(guard), service)
                .with_upgrades(),
        );
        tokio::select! {
            _ = conn.as_mut() => {}
            _ = shutdown.cancelled() => {
                conn.as_mut().graceful_shutdown();
                // Connection errors (client resets, malformed requests) end the
                // connection; hyper has already answered what it could.
                tokio::select! {
                    _ = conn.as_mut() => {}
                    _ = abort.cancelled() => {}
                }
                break;
            }
        }
        // `None`: upgraded, and the upgrade owns the stream now.
        let Some(parts) = Pin::into_inner(conn).into_parts() else {
            break;
        };
        guard = parts.io.into_inner();
        if !guard.is_parked() {
            break;
        }
        // hyper's read buffer, which must not outlive its connection.
        debug_assert!(parts.read_buf.is_empty(), "parked with bytes unread");
        drop(parts.read_buf);
        service = parts.service;
        let parked = builders.stats.park();
        crate::memory::parked();
        let parked_at = Instant::now();
        let next = loop {
            tokio::select! {
                next = poll_fn(|cx| guard.poll_next_request(cx)) => break next,
                _ = shutdown.cancelled() => return,
                () = keep_alive.as_mut() => {
                    let deadline = parked_at + parked_for;
                    if Instant::now() >= deadline {
                        return;
                    }
                    keep_alive.as_mut().reset(deadline);
                }
            }
        };
        drop(parked);
        if !matches!(next, Ok(true)) {
            // The client closed the connection, or the socket failed.
            return;
        }
    }
    // An upgraded stream outlives hyper's connection; the connection (and the
    // server's shutdown) waits for it, or for the abort at shutdownTimeout.
    if let Some(upgrades) = &connection.upgrades {
        upgrades.closed().await;
    }
}

/// A response body that tells the connection's guard when hyper is done with it: the
/// guard parks a connection only when it owes no response (`EdgeState::answered`).
pub(crate) struct Answered {
    body: ResponseBody,
    state: Arc<EdgeState>,
}

impl Drop for Answered {
    fn drop(&mut self) {
        self.state.answered();
    }
}

impl Body for Answered {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
