//! Request and response bodies.
//!
//! [`RequestBody`] reads the incoming body one chunk at a time and enforces the
//! max-request-body-size limit. [`ResponseBody`] is what hyper sends: empty, one
//! buffer, or the reading end of a channel fed by a [`BodyWriter`]. The channel counts
//! buffered bytes so that a slow client pushes back on the writer instead of making
//! the server buffer without bound.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::time::Sleep;

use crate::error::{Error, ErrorCode};

/// One piece of an incoming body.
#[derive(Debug)]
pub enum BodyChunk {
    Data(Bytes),
    Trailers(HeaderMap),
}

enum Source {
    Incoming(Incoming),
    /// An HTTP/2 stream served by `http2.rs`: data, then trailers.
    H2 {
        recv: h2::RecvStream,
        content_length: Option<u64>,
        data_done: bool,
    },
    Full(Option<Bytes>),
    /// The client's side of an upgraded connection (`upgrade.rs`).
    Upgraded(crate::upgrade::UpgradedRead),
}

/// The body of an incoming request, read chunk by chunk.
pub struct RequestBody {
    source: Source,
    limit: Option<u64>,
    received: u64,
    started: bool,
    rate: Option<Box<RateWatch>>,
}

/// A minimum data rate (Kestrel's MinDataRate): after `grace_period`, the average rate
/// must stay at or above `bytes_per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinDataRate {
    pub bytes_per_second: f64,
    pub grace_period: Duration,
}

impl MinDataRate {
    /// How long a transfer of `bytes` may take at this rate: the grace period, or longer
    /// once the bytes have earned more time.
    pub(crate) fn allowance(&self, bytes: u64) -> Duration {
        let earned =
            Duration::from_secs_f64(bytes as f64 / self.bytes_per_second.max(f64::MIN_POSITIVE));
        self.grace_period.max(earned)
    }
}

/// Enforces a [`MinDataRate`] on the time spent waiting for the client: the clock runs
/// only while the app is reading and no data is there, so a slow app is not blamed on
/// the client.
struct RateWatch {
    rate: MinDataRate,
    waited: Duration,
    waiting_since: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
}

impl RateWatch {
    /// How long the client may have kept the app waiting, given what it has sent.
    fn allowance(&self, received: u64) -> Duration {
        let earned = Duration::from_secs_f64(
            received as f64 / self.rate.bytes_per_second.max(f64::MIN_POSITIVE),
        );
        self.rate.grace_period.max(earned)
    }

    fn on_data(&mut self) {
        if let Some(since) = self.waiting_since.take() {
            self.waited += since.elapsed();
        }
        self.timer = None;
    }

    /// Called while waiting; true when the client has fallen below the rate.
    fn too_slow(&mut self, received: u64, cx: &mut Context<'_>) -> bool {
        let now = Instant::now();
        let since = *self.waiting_since.get_or_insert(now);
        let allowance = self.allowance(received);
        let spent = self.waited + (now - since);
        if spent >= allowance {
            return true;
        }
        let deadline = tokio::time::Instant::from_std(now + (allowance - spent));
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        timer.as_mut().reset(deadline);
        timer.as_mut().poll(cx).is_ready()
    }
}

impl RequestBody {
    pub(crate) fn incoming(body: Incoming, limit: Option<u64>) -> Self {
        RequestBody {
            source: Source::Incoming(body),
            limit,
            received: 0,
            started: false,
            rate: None,
        }
    }

    pub(crate) fn h2(
        recv: h2::RecvStream,
        content_length: Option<u64>,
        limit: Option<u64>,
    ) -> Self {
        RequestBody {
            source: Source::H2 {
                recv,
                content_length,
                data_done: false,
            },
            limit,
            received: 0,
            started: false,
            rate: None,
        }
    }

    /// What the client sends after an upgrade: no size limit, no minimum rate.
    pub(crate) fn upgraded(reader: crate::upgrade::UpgradedReader) -> Self {
        RequestBody {
            source: Source::Upgraded(crate::upgrade::UpgradedRead::Waiting(reader)),
            limit: None,
            received: 0,
            started: false,
            rate: None,
        }
    }

    /// A body held in memory, for tests and in-process callers.
    pub fn full(data: impl Into<Bytes>) -> Self {
        let data = data.into();
        RequestBody {
            source: Source::Full((!data.is_empty()).then_some(data)),
            limit: None,
            received: 0,
            started: false,
            rate: None,
        }
    }

    /// True when the request has no body at all (nothing will ever be read).
    pub fn is_end_stream(&self) -> bool {
        match &self.source {
            Source::Incoming(b) => b.is_end_stream(),
            Source::H2 { recv, .. } => recv.is_end_stream(),
            Source::Full(d) => d.is_none(),
            Source::Upgraded(_) => false,
        }
    }

    /// The declared length, when the framing gives one.
    pub fn content_length(&self) -> Option<u64> {
        match &self.source {
            Source::Incoming(b) => b.size_hint().exact(),
            Source::H2 { content_length, .. } => *content_length,
            Source::Full(d) => Some(d.as_ref().map_or(0, |d| d.len() as u64)),
            Source::Upgraded(_) => None,
        }
    }

    pub fn limit(&self) -> Option<u64> {
        self.limit
    }

    /// Changes the size limit for this request. Like Kestrel's
    /// IHttpMaxRequestBodySizeFeature, it becomes read-only once reading has started.
    pub fn set_limit(&mut self, limit: Option<u64>) -> Result<(), Error> {
        if self.started {
            return Err(Error::new(
                ErrorCode::ResponseAlreadyStarted,
                "the max request body size cannot change once the body is being read",
            ));
        }
        self.limit = limit;
        Ok(())
    }

    pub fn has_started(&self) -> bool {
        self.started
    }

    /// Fails reading with [`ErrorCode::BodyTooSlow`] when the client sends slower than
    /// `rate` (minRequestBodyDataRate); `None` turns the check off.
    pub fn with_min_data_rate(mut self, rate: Option<MinDataRate>) -> Self {
        self.rate = rate.map(|rate| {
            Box::new(RateWatch {
                rate,
                waited: Duration::ZERO,
                waiting_since: None,
                timer: None,
            })
        });
        self
    }

    /// Reads the next chunk. `None` means the body is complete.
    pub async fn next_chunk(&mut self) -> Option<Result<BodyChunk, Error>> {
        match self.frame().await? {
            Ok(frame) => match frame.into_data() {
                Ok(data) => Some(Ok(BodyChunk::Data(data))),
                Err(frame) => frame
                    .into_trailers()
                    .ok()
                    .map(|t| Ok(BodyChunk::Trailers(t))),
            },
            Err(e) => Some(Err(e)),
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.get_mut();
        if !this.started {
            this.started = true;
            if let (Some(limit), Some(len)) = (this.limit, this.content_length()) {
                if len > limit {
                    return Poll::Ready(Some(Err(too_large(limit))));
                }
            }
        }
        let polled = match &mut this.source {
            Source::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Source::Upgraded(read) => read.poll_chunk(cx).map(|chunk| match chunk {
                None => None,
                Some(Ok(data)) => Some(Ok(Frame::data(data))),
                Some(Err(e)) => Some(Err(Error::new(
                    ErrorCode::BodyRead,
                    format!("reading the upgraded connection failed: {e}"),
                ))),
            }),
            Source::H2 {
                recv, data_done, ..
            } => poll_h2(recv, data_done, cx),
            Source::Incoming(body) => Pin::new(body).poll_frame(cx).map(|frame| match frame {
                None => None,
                Some(Ok(frame)) => Some(Ok(frame)),
                Some(Err(e)) => Some(Err(Error::new(
                    ErrorCode::BodyRead,
                    format!("reading the request body failed: {e}"),
                ))),
            }),
        };
        let frame = match polled {
            Poll::Ready(frame) => {
                if let Some(rate) = this.rate.as_mut() {
                    rate.on_data();
                }
                frame
            }
            Poll::Pending => {
                let received = this.received;
                if let Some(rate) = this.rate.as_mut() {
                    if rate.too_slow(received, cx) {
                        this.rate = None;
                        return Poll::Ready(Some(Err(too_slow(received))));
                    }
                }
                return Poll::Pending;
            }
        };
        if let Some(data) = frame.as_ref().and_then(|f| f.as_ref().ok()?.data_ref()) {
            this.received += data.len() as u64;
            if let Some(limit) = this.limit {
                if this.received > limit {
                    return Poll::Ready(Some(Err(too_large(limit))));
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        RequestBody::is_end_stream(self)
    }

    fn size_hint(&self) -> SizeHint {
        match self.content_length() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

/// A request body sent back as its response's body ([`crate::bridge::Bridge::relay`]),
/// from its first frame, which was read before the response head went out: its data
/// only. Request trailers describe the request, as they do when the app reads the body
/// itself; they are not the response's.
pub(crate) struct RelayedBody {
    first: Option<Frame<Bytes>>,
    rest: RequestBody,
    /// The declared length, taken before the first frame was read.
    length: Option<u64>,
}

impl RelayedBody {
    pub fn new(first: Option<Frame<Bytes>>, rest: RequestBody, length: Option<u64>) -> Self {
        RelayedBody {
            first,
            rest,
            length,
        }
    }
}

impl Body for RelayedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.get_mut();
        if let Some(first) = this.first.take() {
            if first.is_data() {
                return Poll::Ready(Some(Ok(first)));
            }
        }
        loop {
            match std::task::ready!(Pin::new(&mut this.rest).poll_frame(cx)) {
                Some(Ok(frame)) if frame.is_trailers() => continue,
                other => return Poll::Ready(other),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.first.as_ref().is_none_or(|f| !f.is_data()) && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.length
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

/// Reads an HTTP/2 stream: DATA frames, then trailers. Each chunk's bytes are released
/// to flow control as it is handed out, so the peer's window refills only as fast as
/// the body is read.
fn poll_h2(
    recv: &mut h2::RecvStream,
    data_done: &mut bool,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
    let read_failed = |e: h2::Error| {
        Error::new(
            ErrorCode::BodyRead,
            format!("reading the request body failed: {e}"),
        )
    };
    if !*data_done {
        match std::task::ready!(recv.poll_data(cx)) {
            Some(Ok(data)) => {
                let _ = recv.flow_control().release_capacity(data.len());
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            Some(Err(e)) => return Poll::Ready(Some(Err(read_failed(e)))),
            None => *data_done = true,
        }
    }
    match std::task::ready!(recv.poll_trailers(cx)) {
        Ok(Some(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
        Ok(None) => Poll::Ready(None),
        Err(e) => Poll::Ready(Some(Err(read_failed(e)))),
    }
}

fn too_slow(received: u64) -> Error {
    Error::new(
        ErrorCode::BodyTooSlow,
        format!(
            "the client sent the request body too slowly ({received} bytes so far; limits.minRequestBodyDataRate)"
        ),
    )
}

fn too_large(limit: u64) -> Error {
    Error::new(
        ErrorCode::BodyTooLarge,
        format!("the request body is larger than the limit of {limit} bytes (limits.maxRequestBodySize)"),
    )
}

/// What a [`BodyWriter`] tells its owner about the reading side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelSignal {
    /// The buffer fell below half the high-water mark after a write was refused.
    Drained,
    /// The reader went away before the body was finished: the client is gone.
    ReaderGone,
}

type SignalFn = Box<dyn Fn(ChannelSignal) + Send + Sync>;

enum End {
    Finished(Option<HeaderMap>),
    Aborted,
    /// Reset the HTTP/2 stream with this error code.
    Reset(u32),
}

struct ChannelState {
    chunks: VecDeque<Bytes>,
    buffered: usize,
    end: Option<End>,
    reader_waker: Option<Waker>,
    writer_waiting: bool,
    reader_gone: bool,
}

struct Channel {
    state: Mutex<ChannelState>,
    high_water: usize,
    signal: SignalFn,
}

impl Channel {
    fn lock(&self) -> std::sync::MutexGuard<'_, ChannelState> {
        // A panic while holding this lock cannot leave the state inconsistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The result of one [`BodyWriter::write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Accepted, and the writer may go on.
    Ready,
    /// Accepted, but the buffer is at its high-water mark: wait for
    /// [`ChannelSignal::Drained`] before writing more.
    Full,
    /// The body is finished, aborted, or the client is gone: the data was dropped.
    Closed,
}

/// The writing end of a streamed response body.
pub struct BodyWriter {
    channel: Arc<Channel>,
}

impl BodyWriter {
    /// Creates a channel. `high_water` is the number of bytes buffered before writes
    /// report [`WriteOutcome::Full`] (maxResponseBufferSize).
    pub fn channel(high_water: usize, signal: SignalFn) -> (BodyWriter, ResponseBody) {
        let channel = Arc::new(Channel {
            state: Mutex::new(ChannelState {
                chunks: VecDeque::new(),
                buffered: 0,
                end: None,
                reader_waker: None,
                writer_waiting: false,
                reader_gone: false,
            }),
            high_water: high_water.max(1),
            signal,
        });
        (
            BodyWriter {
                channel: channel.clone(),
            },
            ResponseBody {
                kind: Kind::Channel(channel),
            },
        )
    }

    pub fn write(&self, data: Bytes) -> WriteOutcome {
        let waker;
        let outcome;
        {
            let mut s = self.channel.lock();
            if s.end.is_some() || s.reader_gone {
                return WriteOutcome::Closed;
            }
            if data.is_empty() {
                return WriteOutcome::Ready;
            }
            s.buffered += data.len();
            s.chunks.push_back(data);
            outcome = if s.buffered >= self.channel.high_water {
                s.writer_waiting = true;
                WriteOutcome::Full
            } else {
                WriteOutcome::Ready
            };
            waker = s.reader_waker.take();
        }
        if let Some(w) = waker {
            w.wake();
        }
        outcome
    }

    /// Ends the body, optionally with trailers (sent on HTTP/2 and chunked HTTP/1.1).
    pub fn finish(self, trailers: Option<HeaderMap>) {
        self.close(End::Finished(trailers));
    }

    /// Ends the body abnormally: hyper resets the stream (HTTP/2) or closes the
    /// connection (HTTP/1.1), so the client never mistakes a partial body for a whole one.
    pub fn abort(self) {
        self.close(End::Aborted);
    }

    /// Ends the body by resetting the HTTP/2 stream with `code` (RST_STREAM); on
    /// HTTP/1.1 it is the same as [`BodyWriter::abort`].
    pub fn reset(self, code: u32) {
        self.close(End::Reset(code));
    }

    fn close(&self, end: End) {
        let waker = {
            let mut s = self.channel.lock();
            if s.end.is_some() {
                return;
            }
            s.end = Some(end);
            s.reader_waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl Drop for BodyWriter {
    fn drop(&mut self) {
        // A writer dropped without finish() means its owner went away mid-body.
        self.close(End::Aborted);
    }
}

/// Errors a response body may end with; any of them aborts the response.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

enum Kind {
    Empty,
    Full(Option<Bytes>),
    Channel(Arc<Channel>),
    Stream(UnsyncBoxBody<Bytes, BoxError>),
}

/// A response body as hyper sees it.
pub struct ResponseBody {
    kind: Kind,
}

impl Default for ResponseBody {
    fn default() -> Self {
        Self::empty()
    }
}

impl ResponseBody {
    pub fn empty() -> Self {
        ResponseBody { kind: Kind::Empty }
    }

    pub fn full(data: impl Into<Bytes>) -> Self {
        let data = data.into();
        if data.is_empty() {
            return Self::empty();
        }
        ResponseBody {
            kind: Kind::Full(Some(data)),
        }
    }

    /// Streams any body, such as a request body being echoed back.
    pub fn stream<B>(body: B) -> Self
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        ResponseBody {
            kind: Kind::Stream(body.map_err(Into::into).boxed_unsync()),
        }
    }
}

/// The error a streamed body yields when its writer aborted it.
#[derive(Debug)]
pub struct BodyAborted;

impl std::fmt::Display for BodyAborted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the response body was aborted")
    }
}

impl std::error::Error for BodyAborted {}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().kind {
            Kind::Stream(body) => Pin::new(body).poll_frame(cx),
            Kind::Empty => Poll::Ready(None),
            Kind::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Kind::Channel(channel) => {
                let mut s = channel.lock();
                if let Some(chunk) = s.chunks.pop_front() {
                    s.buffered -= chunk.len();
                    let drained = s.writer_waiting && s.buffered <= channel.high_water / 2;
                    if drained {
                        s.writer_waiting = false;
                    }
                    drop(s);
                    if drained {
                        (channel.signal)(ChannelSignal::Drained);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(chunk))));
                }
                match s.end.take() {
                    Some(End::Finished(trailers)) => {
                        // Leave a marker so that a poll after the end stays at the end.
                        s.end = Some(End::Finished(None));
                        Poll::Ready(trailers.map(|t| Ok(Frame::trailers(t))))
                    }
                    Some(End::Aborted) => {
                        s.end = Some(End::Aborted);
                        Poll::Ready(Some(Err(Box::new(BodyAborted))))
                    }
                    Some(End::Reset(code)) => {
                        s.end = Some(End::Aborted);
                        // hyper resets the stream with the code of an h2 error.
                        Poll::Ready(Some(Err(Box::new(h2::Error::from(h2::Reason::from(code))))))
                    }
                    None => {
                        s.reader_waker = Some(cx.waker().clone());
                        Poll::Pending
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Full(d) => d.is_none(),
            Kind::Channel(c) => {
                let s = c.lock();
                s.chunks.is_empty() && matches!(s.end, Some(End::Finished(None)))
            }
            Kind::Stream(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Full(d) => SizeHint::with_exact(d.as_ref().map_or(0, |d| d.len() as u64)),
            Kind::Channel(_) => SizeHint::default(),
            Kind::Stream(b) => b.size_hint(),
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        if let Kind::Channel(channel) = &self.kind {
            let gone = {
                let mut s = channel.lock();
                s.reader_gone = true;
                s.end.is_none()
            };
            if gone {
                (channel.signal)(ChannelSignal::ReaderGone);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn counting() -> (Arc<AtomicUsize>, Arc<AtomicUsize>, SignalFn) {
        let drained = Arc::new(AtomicUsize::new(0));
        let gone = Arc::new(AtomicUsize::new(0));
        let (d, g) = (drained.clone(), gone.clone());
        let f: SignalFn = Box::new(move |s| match s {
            ChannelSignal::Drained => {
                d.fetch_add(1, Ordering::SeqCst);
            }
            ChannelSignal::ReaderGone => {
                g.fetch_add(1, Ordering::SeqCst);
            }
        });
        (drained, gone, f)
    }

    #[tokio::test]
    async fn channel_reports_backpressure_and_drain() {
        let (drained, _gone, signal) = counting();
        let (writer, mut body) = BodyWriter::channel(10, signal);
        assert_eq!(
            writer.write(Bytes::from_static(b"hello")),
            WriteOutcome::Ready
        );
        assert_eq!(
            writer.write(Bytes::from_static(b"world!")),
            WriteOutcome::Full
        );
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&first[..], b"hello");
        assert_eq!(
            drained.load(Ordering::SeqCst),
            0,
            "6 bytes left is above half of 10"
        );
        body.frame().await.unwrap().unwrap();
        assert_eq!(drained.load(Ordering::SeqCst), 1);
        writer.finish(None);
        assert!(body.frame().await.is_none());
    }

    #[tokio::test]
    async fn aborted_writer_yields_error_and_dropped_reader_is_signalled() {
        let (_d, gone, signal) = counting();
        let (writer, mut body) = BodyWriter::channel(10, signal);
        writer.write(Bytes::from_static(b"x"));
        drop(writer);
        body.frame().await.unwrap().unwrap();
        assert!(body.frame().await.unwrap().is_err());
        drop(body);
        assert_eq!(gone.load(Ordering::SeqCst), 0, "the writer ended first");

        let (_d, gone, signal) = counting();
        let (writer, body) = BodyWriter::channel(10, signal);
        drop(body);
        assert_eq!(gone.load(Ordering::SeqCst), 1);
        assert_eq!(writer.write(Bytes::from_static(b"x")), WriteOutcome::Closed);
    }

    #[tokio::test]
    async fn request_body_limit_applies_to_declared_and_streamed_length() {
        let mut body = RequestBody::full(Bytes::from_static(b"0123456789"));
        body.set_limit(Some(5)).unwrap();
        let err = body.next_chunk().await.unwrap().unwrap_err();
        assert_eq!(err.code, ErrorCode::BodyTooLarge);
        assert!(
            body.set_limit(None).is_err(),
            "read-only once reading started"
        );

        let mut body = RequestBody::full(Bytes::from_static(b"0123456789"));
        assert!(matches!(
            body.next_chunk().await,
            Some(Ok(BodyChunk::Data(_)))
        ));
        assert!(body.next_chunk().await.is_none());
    }
}
