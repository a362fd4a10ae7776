//! HTTP/2 connections, served with the h2 crate directly rather than through hyper, so
//! that the server knows each request's stream id (the stream-id feature), can reset a
//! stream with any error code, and controls how the connection winds down.
//!
//! One task serves the connection: it accepts streams, sends keep-alive PINGs and
//! GOAWAY on shutdown, and drives every stream's future, in which the request goes to
//! the application and the response body is sent as the peer's flow-control windows
//! allow. Streams are not tasks of their own: a task per stream cost a spawn, and an
//! application answering from another thread woke each stream's task separately, and
//! each woken stream made h2 write its response in a system call of its own. In the
//! connection's task, one wake-up drives every stream answered meanwhile, and their
//! responses leave in one write (bench/README.md).

use std::cell::RefCell;
use std::convert::Infallible;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, Stream};
use h2::server::{Connection, SendResponse};
use h2::{Reason, SendStream};
use http::header::{
    HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, DATE, TE, TRANSFER_ENCODING, UPGRADE,
};
use http::{HeaderMap, Method, StatusCode};
use http_body::Body;
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::body::{BoxError, MinDataRate, RequestBody, ResponseBody};
use crate::connection::{ConnectionInfo, ServiceError};
use crate::guard::{EdgeObserver, H2FrameGuard, H2Watch, Rejection};
use crate::handler::Response;
use crate::server::Http2Limits;

/// The h2 settings of one listener (limits.http2).
pub(crate) struct Http2Settings {
    builder: h2::server::Builder,
    keep_alive: Option<(Duration, Duration)>,
    max_request_body_size: Option<u64>,
    /// Client resets of streams being served, per [`RESET_WINDOW`], before GOAWAY.
    max_client_resets: u32,
}

/// The window over which client resets are counted ([`ClientResets`]).
const RESET_WINDOW: Duration = Duration::from_secs(10);

impl Http2Settings {
    pub fn new(limits: &Http2Limits, max_request_body_size: Option<u64>) -> Http2Settings {
        let mut builder = h2::server::Builder::new();
        builder
            .max_concurrent_streams(limits.max_streams_per_connection)
            .header_table_size(limits.header_table_size)
            .max_frame_size(limits.max_frame_size)
            .max_header_list_size(limits.max_request_header_field_size)
            .initial_window_size(limits.initial_stream_window_size)
            .initial_connection_window_size(limits.initial_connection_window_size)
            // hyper's default. `send_data` reserves one chunk at a time, so h2 holds at
            // most one chunk per stream (a slice of the application's bytes) while the
            // client does not read.
            .max_send_buffer_size(400 * 1024)
            // Rapid reset (CVE-2023-44487) before the server accepts a stream: more than
            // 20 reset streams waiting to be accepted is GOAWAY(ENHANCE_YOUR_CALM).
            .max_pending_accept_reset_streams(20)
            // Streams the server resets because of the client (REFUSED_STREAM beyond
            // maxStreamsPerConnection, malformed requests): GOAWAY after 1024.
            .max_local_error_reset_streams(Some(1024));
        // h2's other limits stay at their defaults: a header block may span at most
        // max(5, 1.25 x maxRequestHeaderFieldSize / maxFrameSize) CONTINUATION frames, a
        // header list decoded beyond 4 x maxRequestHeaderFieldSize is GOAWAY, and small
        // DATA frames the application has not read may cost at most half the connection
        // window in framing (each GOAWAY(ENHANCE_YOUR_CALM)); docs/security.md.
        Http2Settings {
            builder,
            keep_alive: limits
                .keep_alive_ping_delay
                .map(|delay| (delay, limits.keep_alive_ping_timeout)),
            max_request_body_size,
            // Kestrel tracks twice the stream limit, at least 100; a budget of resets in
            // that spirit leaves room for clients that cancel now and then.
            max_client_resets: limits.max_streams_per_connection.saturating_mul(2).max(200),
        }
    }
}

/// Who hears about what the connection refuses, and how fast a client must take the
/// responses it is sent.
pub(crate) struct Http2Edge {
    pub observer: Arc<dyn EdgeObserver>,
    pub connection: Arc<ConnectionInfo>,
    pub min_response_data_rate: Option<MinDataRate>,
}

/// What every stream of a connection shares: the edge, and the frame watch's view of
/// the connection-level send window.
struct ConnectionEdge {
    edge: Http2Edge,
    watch: Arc<H2Watch>,
}

impl ConnectionEdge {
    fn report(&self, reason: Rejection) {
        self.edge.observer.rejected(reason, &self.edge.connection);
    }
}

/// Serves one HTTP/2 connection until it closes. `shutdown` sends GOAWAY and lets open
/// streams finish; `abort` drops the connection.
pub(crate) async fn serve<IO, A, Fut>(
    io: IO,
    settings: &Http2Settings,
    edge: Http2Edge,
    app: A,
    shutdown: CancellationToken,
    abort: CancellationToken,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    A: Fn(http::Request<RequestBody>, Option<u32>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response, ServiceError>> + Send + 'static,
{
    let watch = H2Watch::new(edge.min_response_data_rate);
    let io = H2FrameGuard::new(io, watch.clone());
    let edge = Arc::new(ConnectionEdge { edge, watch });
    let handshake = settings.builder.handshake::<_, Bytes>(io);
    let mut conn = tokio::select! {
        c = handshake => match c {
            Ok(c) => c,
            // Not HTTP/2 after all, or the client went away.
            Err(_) => return,
        },
        _ = shutdown.cancelled() => return,
        _ = abort.cancelled() => return,
    };
    let mut keep_alive = settings
        .keep_alive
        .and_then(|(delay, timeout)| Some(KeepAlive::new(conn.ping_pong()?, delay, timeout)));
    let resets = Arc::new(ClientResets::new(settings.max_client_resets));
    let mut streams = FuturesUnordered::new();
    // Made once rather than on every turn of the loop, where each would register with
    // its Notify and leave it again.
    let mut aborted = pin!(abort.cancelled());
    let mut shutdown_asked = pin!(shutdown.cancelled());
    let mut too_many_resets = pin!(resets.exceeded.notified());
    let mut violation = pin!(edge.watch.violation());
    let mut shutting_down = false;
    let mut calmed = false;
    let mut watched = false;
    loop {
        tokio::select! {
            // In this order: the defences come before `accept`, which a flood keeps
            // ready; `accept` takes every stream that has arrived before `drive` serves
            // them, so that their responses queue up together. Queued frames wake this
            // task, and the next `accept` writes them all at once.
            biased;
            _ = &mut aborted => break,
            _ = &mut too_many_resets, if !calmed => {
                calmed = true;
                conn.abrupt_shutdown(Reason::ENHANCE_YOUR_CALM);
            }
            // A SETTINGS or PING flood, or a connection window left at zero.
            reason = &mut violation, if !watched => {
                watched = true;
                edge.report(reason);
                conn.abrupt_shutdown(Reason::ENHANCE_YOUR_CALM);
            }
            next = conn.accept() => match next {
                Some(Ok((request, respond))) => {
                    let app = app.clone();
                    let limit = settings.max_request_body_size;
                    let stream = StreamContext { limit, resets: resets.clone(), edge: edge.clone() };
                    streams.push(serve_stream(request, respond, app, stream));
                }
                // The connection closed, or h2 failed it with a GOAWAY already sent.
                // Streams still here are dropped, which aborts their requests: with the
                // connection gone they cannot be answered.
                Some(Err(_)) | None => break,
            },
            never = drive(&mut streams) => match never {},
            _ = &mut shutdown_asked, if !shutting_down => {
                shutting_down = true;
                conn.graceful_shutdown();
            }
            expired = keep_alive_tick(&mut keep_alive) => {
                if expired {
                    keep_alive = None;
                    go_away(&mut conn);
                }
            }
        }
    }
}

/// Polls every stream that is ready until none is; never resolves. A stream that
/// finishes is simply gone from the set.
fn drive<S>(streams: &mut FuturesUnordered<S>) -> impl Future<Output = Infallible> + '_
where
    S: Future<Output = ()>,
{
    poll_fn(move |cx: &mut Context<'_>| {
        while let Poll::Ready(Some(())) = Pin::new(&mut *streams).poll_next(cx) {}
        Poll::Pending
    })
}

/// Counts the streams a client resets while the server is still serving them: the
/// application has the request, or the response is being sent (rapid reset,
/// CVE-2023-44487, in the form h2 does not catch). A reset frees the stream's slot
/// under maxStreamsPerConnection at once, while the application may work on for a
/// while, so a client that resets each stream as soon as its response starts would
/// otherwise keep any number of requests in the application. More than `limit` in
/// one [`RESET_WINDOW`] is GOAWAY(ENHANCE_YOUR_CALM).
struct ClientResets {
    /// Start of the current window, and resets counted in it.
    window: Mutex<(Instant, u32)>,
    limit: u32,
    exceeded: Notify,
}

impl ClientResets {
    fn new(limit: u32) -> ClientResets {
        ClientResets {
            window: Mutex::new((Instant::now(), 0)),
            limit,
            exceeded: Notify::new(),
        }
    }

    fn record(&self) {
        let Ok(mut window) = self.window.lock() else {
            return;
        };
        let now = Instant::now();
        if now.duration_since(window.0) >= RESET_WINDOW {
            *window = (now, 0);
        }
        window.1 += 1;
        if window.1 > self.limit {
            self.exceeded.notify_one();
        }
    }
}

fn go_away<IO: AsyncRead + AsyncWrite + Unpin>(conn: &mut Connection<IO, Bytes>) {
    // An unanswered PING: the peer is gone. NO_ERROR, as Kestrel's keep-alive timeout.
    conn.abrupt_shutdown(Reason::NO_ERROR);
}

/// Sends a PING every `delay` and reports a PING not answered within `timeout`.
struct KeepAlive {
    ping_pong: h2::PingPong,
    delay: Duration,
    timeout: Duration,
    awaiting_pong: bool,
}

impl KeepAlive {
    fn new(ping_pong: h2::PingPong, delay: Duration, timeout: Duration) -> KeepAlive {
        KeepAlive {
            ping_pong,
            delay,
            timeout,
            awaiting_pong: false,
        }
    }
}

/// Resolves to `true` when a PING went unanswered; pending forever without keep-alive.
async fn keep_alive_tick(keep_alive: &mut Option<KeepAlive>) -> bool {
    let Some(k) = keep_alive.as_mut() else {
        return std::future::pending().await;
    };
    if !k.awaiting_pong {
        tokio::time::sleep(k.delay).await;
        if k.ping_pong.send_ping(h2::Ping::opaque()).is_err() {
            return std::future::pending().await;
        }
        k.awaiting_pong = true;
    }
    let pong = tokio::time::timeout(k.timeout, poll_fn(|cx| k.ping_pong.poll_pong(cx))).await;
    match pong {
        Ok(Ok(_)) => {
            k.awaiting_pong = false;
            false
        }
        Ok(Err(_)) => std::future::pending().await,
        Err(_) => true,
    }
}

/// What a stream's task needs from its connection.
struct StreamContext {
    /// maxRequestBodySize.
    limit: Option<u64>,
    resets: Arc<ClientResets>,
    edge: Arc<ConnectionEdge>,
}

async fn serve_stream<A, Fut>(
    request: http::Request<h2::RecvStream>,
    mut respond: SendResponse<Bytes>,
    app: A,
    stream: StreamContext,
) where
    A: Fn(http::Request<RequestBody>, Option<u32>) -> Fut,
    Fut: Future<Output = Result<Response, ServiceError>>,
{
    // A stream the client reset before it was accepted is not served at all.
    if poll_fn(|cx| Poll::Ready(respond.poll_reset(cx).is_ready())).await {
        return;
    }
    let (parts, recv) = request.into_parts();
    let stream_id = Some(respond.stream_id().into());
    let content_length = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let is_head = parts.method == Method::HEAD;
    let StreamContext {
        limit,
        resets,
        edge,
    } = stream;
    let body = RequestBody::h2(recv, content_length, limit);
    let outcome = tokio::select! {
        // Checked first, as hyper does: a response to a stream the client has reset
        // must not be sent.
        biased;
        // The client reset the stream (or the connection is gone): dropping the
        // application's future tells it the request was aborted.
        reset = poll_fn(|cx| respond.poll_reset(cx)) => {
            if reset.is_ok() {
                resets.record();
            }
            return;
        }
        outcome = app(http::Request::from_parts(parts, body), stream_id) => outcome,
    };
    let response = match outcome {
        Ok(response) => response,
        // An abort is RST_STREAM(INTERNAL_ERROR), as in Kestrel.
        Err(ServiceError::Abort(_)) => return respond.send_reset(Reason::INTERNAL_ERROR),
        Err(ServiceError::Reset(e)) => {
            return respond.send_reset(e.reason().unwrap_or(Reason::INTERNAL_ERROR))
        }
    };
    let (mut head, body) = response.into_parts();
    prepare_headers(&mut head.headers, head.status, &body);
    let end_of_stream = is_head || body.is_end_stream();
    let Ok(send) = respond.send_response(http::Response::from_parts(head, ()), end_of_stream)
    else {
        return;
    };
    if !end_of_stream && send_body(send, body, &edge).await == BodyEnd::ClientReset {
        resets.record();
    }
}

/// How sending a response body ended.
#[derive(Debug, PartialEq, Eq)]
enum BodyEnd {
    Sent,
    /// The client reset the stream before the body was complete.
    ClientReset,
    /// The body failed, or the connection did.
    Failed,
}

/// What RFC 9113 forbids in HTTP/2 responses goes; Date and Content-Length are added as
/// hyper does for HTTP/1.1.
fn prepare_headers(headers: &mut HeaderMap, status: StatusCode, body: &ResponseBody) {
    if let Some(connection) = headers.remove(CONNECTION) {
        // Connection names further hop-by-hop headers.
        if let Ok(names) = connection.to_str() {
            for name in names.split(',') {
                if let Ok(name) = HeaderName::from_bytes(name.trim().as_bytes()) {
                    headers.remove(name);
                }
            }
        }
    }
    for name in [TRANSFER_ENCODING, UPGRADE, TE] {
        headers.remove(name);
    }
    for name in ["keep-alive", "proxy-connection"] {
        headers.remove(name);
    }
    if !headers.contains_key(DATE) {
        headers.insert(DATE, http_date());
    }
    let no_content = status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    if !no_content && !headers.contains_key(CONTENT_LENGTH) {
        if let Some(length) = body.size_hint().exact() {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
        }
    }
}

/// The Date header, formatted at most once a second per thread.
fn http_date() -> HeaderValue {
    thread_local! {
        static CACHED: RefCell<(u64, Option<HeaderValue>)> = const { RefCell::new((0, None)) };
    }
    let now = SystemTime::now();
    let second = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    CACHED.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != second || cached.1.is_none() {
            let value = HeaderValue::from_str(&httpdate::fmt_http_date(now))
                .unwrap_or(HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"));
            *cached = (second, Some(value));
        }
        cached
            .1
            .clone()
            .unwrap_or(HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"))
    })
}

/// Sends the response body within the peer's flow-control windows. A client that
/// resets the stream ends it; a body that fails resets the stream.
async fn send_body(
    mut send: SendStream<Bytes>,
    mut body: ResponseBody,
    edge: &ConnectionEdge,
) -> BodyEnd {
    loop {
        let frame = tokio::select! {
            biased;
            // Dropping the body tells its writer the client is gone.
            reset = poll_fn(|cx| send.poll_reset(cx)) => {
                return if reset.is_ok() { BodyEnd::ClientReset } else { BodyEnd::Failed };
            }
            frame = body.frame() => frame,
        };
        match frame {
            None => {
                let _ = send.send_data(Bytes::new(), true);
                return BodyEnd::Sent;
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    let last = body.is_end_stream();
                    match send_data(&mut send, data, last, edge).await {
                        Err(e) if e.is_reset() && e.is_remote() => return BodyEnd::ClientReset,
                        Err(_) => return BodyEnd::Failed,
                        Ok(()) if last => return BodyEnd::Sent,
                        Ok(()) => {}
                    }
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        let _ = send.send_trailers(trailers);
                    } else {
                        let _ = send.send_data(Bytes::new(), true);
                    }
                    return BodyEnd::Sent;
                }
            },
            Some(Err(error)) => {
                send.send_reset(reset_reason(&error));
                return BodyEnd::Failed;
            }
        }
    }
}

/// An h2 error among the body error's sources carries the code the application chose
/// (`BodyWriter::reset`); anything else is INTERNAL_ERROR.
fn reset_reason(error: &BoxError) -> Reason {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error.as_ref());
    while let Some(e) = source {
        if let Some(h2) = e.downcast_ref::<h2::Error>() {
            return h2.reason().unwrap_or(Reason::INTERNAL_ERROR);
        }
        source = e.source();
    }
    Reason::INTERNAL_ERROR
}

/// Sends `data` as the stream's flow-control window allows. A window the client opens
/// slower than minResponseDataRate resets the stream (CANCEL); while the connection's
/// own window is used up, the frame watch times the connection instead.
async fn send_data(
    send: &mut SendStream<Bytes>,
    mut data: Bytes,
    end_of_stream: bool,
    edge: &ConnectionEdge,
) -> Result<(), h2::Error> {
    if data.is_empty() {
        return if end_of_stream {
            send.send_data(data, true)
        } else {
            Ok(())
        };
    }
    let rate = edge.edge.min_response_data_rate;
    let mut waiting_since = Instant::now();
    let mut granted_since = 0u64;
    while !data.is_empty() {
        send.reserve_capacity(data.len());
        let deadline = rate.map(|r| waiting_since + r.allowance(granted_since));
        // Capacity the windows grant at once needs no timer. Arming one for each
        // response woke tokio's timer driver each time: a system call per response.
        let available = send.capacity();
        let capacity = match deadline {
            _ if available > 0 => Some(Ok(available)),
            None => poll_fn(|cx| send.poll_capacity(cx)).await,
            Some(deadline) => {
                let timer = tokio::time::sleep_until(deadline.into());
                tokio::select! {
                    c = poll_fn(|cx| send.poll_capacity(cx)) => c,
                    _ = timer => {
                        if edge.watch.connection_window_exhausted() {
                            waiting_since = Instant::now();
                            granted_since = 0;
                            continue;
                        }
                        edge.report(Rejection::Http2StreamWindowStall);
                        send.send_reset(Reason::CANCEL);
                        return Err(h2::Error::from(Reason::CANCEL));
                    }
                }
            }
        };
        let granted = match capacity {
            Some(Ok(n)) => n,
            Some(Err(e)) => return Err(e),
            None => return Err(h2::Error::from(Reason::STREAM_CLOSED)),
        };
        if granted == 0 {
            continue;
        }
        granted_since += granted as u64;
        let chunk = data.split_to(granted.min(data.len()));
        send.send_data(chunk, end_of_stream && data.is_empty())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn client_resets_trip_only_past_the_limit() {
        let resets = ClientResets::new(200);
        for _ in 0..200 {
            resets.record();
        }
        let at_limit = tokio::time::timeout(Duration::ZERO, resets.exceeded.notified()).await;
        assert!(at_limit.is_err(), "200 resets are within the budget");
        resets.record();
        let past = tokio::time::timeout(Duration::ZERO, resets.exceeded.notified()).await;
        assert!(past.is_ok(), "the 201st reset trips it");
    }

    #[tokio::test]
    async fn client_resets_start_over_each_window() {
        let resets = ClientResets::new(200);
        for _ in 0..200 {
            resets.record();
        }
        if let Ok(mut window) = resets.window.lock() {
            if let Some(earlier) = window.0.checked_sub(RESET_WINDOW) {
                window.0 = earlier;
            }
        }
        resets.record();
        let tripped = tokio::time::timeout(Duration::ZERO, resets.exceeded.notified()).await;
        assert!(tripped.is_err(), "a new window counts from zero");
    }
}
