//! The HTTP/1.1 edge guard: an I/O wrapper between the socket and hyper that refuses
//! what hyper would accept but the RFCs let a server refuse. Bare LF line endings,
//! obs-fold, ambiguous framing (the request-smuggling classes), malformed chunks and
//! oversized heads are all caught here, and so are heads that trickle in too slowly.
//!
//! hyper only ever sees bytes the guard has validated. A request head is handed over
//! only once it is complete and valid, together with whatever part of its body has
//! already arrived and checked out. A malformed request that arrives in one piece is
//! therefore refused before the app sees it.
//!
//! To refuse a request, the guard hands hyper a stand-in in its place: a minimal
//! `Connection: close` request. [`EdgeState`] records the stand-in's position in the
//! connection's request sequence. The connection's service answers that position with
//! the refusal status (400, 408, 414, 431 or 505) and never calls the app. Only the
//! guard decides the position, so a client cannot forge a stand-in. hyper keeps
//! pipelined responses in order and closes the connection after the refusal. Earlier
//! requests on the connection are answered normally.
//!
//! A body that breaks its framing after it was handed over is cut off. The app's body
//! read then fails, and the connection closes.
//!
//! The guard also holds complete responses to pipelined requests so that they leave
//! together (`held.rs`).
//!
//! Limitation: after a CONNECT or Upgrade request the guard stops inspecting, since the
//! bytes that follow an accepted upgrade are not HTTP/1.1 at all.

pub mod chunked;
pub mod h2_frames;
pub mod head;
mod held;
mod park;
mod rejection;
#[doc(hidden)]
pub mod replay;
mod write_rate;

use std::collections::VecDeque;
use std::future::Future;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use chunked::ChunkedValidator;
pub(crate) use h2_frames::{H2FrameGuard, H2Watch};
use head::{Framing, HeadLimits};
use held::HeldResponses;
use park::Parking;
pub(crate) use park::PARK_AFTER;
pub use rejection::Rejection;
pub(crate) use write_rate::MinWriteRate;

const READ_CHUNK: usize = 16 * 1024;

/// What hyper parses in place of a refused request.
const STAND_IN: &[u8] = b"GET / HTTP/1.1\r\nhost: refused.invalid\r\nconnection: close\r\n\r\n";

/// Shared by a connection's guard and its service: which request is a stand-in for a
/// refusal, how many responses are done, and the pipelined heads the service may
/// dispatch before hyper reaches them (`http1/lookahead.rs`).
#[derive(Default)]
pub(crate) struct EdgeState {
    refusal: std::sync::Mutex<Option<(u64, Rejection)>>,
    /// Responses hyper is done with (their bodies dropped, so all their bytes are in
    /// hyper's write buffer or sent). The guard's `requests` less this is the number
    /// of responses still owed: a connection that owes one is not idle.
    answered: AtomicU64,
    /// Requests the service has been called for (see `refusal_for_next`).
    served: AtomicU64,
    /// Set when the handler serves pipelined requests concurrently
    /// (`Handler::CONCURRENT_PIPELINING`): the guard then queues in `pipelined` a copy
    /// of each bodyless head that arrives behind a request still unanswered.
    lookahead: bool,
    pipelined: std::sync::Mutex<VecDeque<PipelinedHead>>,
}

/// A validated request head that arrived behind another request, with its position in
/// the connection's request sequence (from 0).
pub(crate) struct PipelinedHead {
    pub index: u64,
    pub head: Bytes,
}

impl EdgeState {
    /// `lookahead`: queue pipelined heads for the service (see the field).
    pub(crate) fn new(lookahead: bool) -> Self {
        EdgeState {
            lookahead,
            ..EdgeState::default()
        }
    }

    /// Whether the guard queues pipelined heads for the service.
    pub(crate) fn lookahead(&self) -> bool {
        self.lookahead
    }

    /// The pipelined heads queued since the last call, in order.
    pub(crate) fn take_pipelined(&self) -> VecDeque<PipelinedHead> {
        std::mem::take(&mut *self.pipelined.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The position the service's next request has (see `refusal_for_next`).
    pub(crate) fn next_served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Counts one response as done; see [`EdgeState::answered`].
    pub(crate) fn answered(&self) {
        self.answered.fetch_add(1, Ordering::Relaxed);
    }

    /// For the connection's service, called once per request in order: the refusal
    /// to answer if this request is a stand-in. HTTP/1.1 requests on a connection are
    /// served one after another, so a count gives each its position.
    pub(crate) fn refusal_for_next(&self) -> Option<Rejection> {
        let index = self.served.fetch_add(1, Ordering::Relaxed);
        self.refusal_for(index)
    }

    /// The refusal to answer if request number `index` (from 0) is a stand-in.
    fn refusal_for(&self, index: u64) -> Option<Rejection> {
        let refusal = *self.refusal.lock().unwrap_or_else(|e| e.into_inner());
        refusal
            .filter(|(at, _)| *at == index)
            .map(|(_, reason)| reason)
    }
}

/// Told about every refusal, for the log and the counters.
pub trait EdgeObserver: Send + Sync + 'static {
    fn rejected(&self, reason: Rejection, connection: &crate::ConnectionInfo);
}

pub(crate) struct GuardSettings {
    pub limits: HeadLimits,
    pub request_headers_timeout: Option<Duration>,
}

impl GuardSettings {
    pub(crate) fn from_limits(limits: &crate::Limits) -> Self {
        GuardSettings {
            limits: HeadLimits {
                max_request_line: limits.max_request_line_size,
                max_header_count: limits.max_request_header_count,
                max_headers_total: limits.max_request_headers_total_size,
            },
            request_headers_timeout: Some(limits.request_headers_timeout).filter(|t| !t.is_zero()),
        }
    }
}

enum Phase {
    Head,
    Fixed(u64),
    Chunked(ChunkedValidator),
    Passthrough,
    Rejected,
}

/// Head scanning state, kept across reads so that no byte is scanned twice.
#[derive(Default)]
struct Scan {
    /// Offset in `buf` of the first unscanned byte of the current head.
    at: usize,
    /// Offset in `buf` where the current line starts.
    line_start: usize,
    lines: usize,
    /// Offset in `buf` where the field lines start (after the request line).
    fields_start: usize,
}

pub(crate) struct GuardedIo<S> {
    inner: S,
    buf: BytesMut,
    /// `buf[..validated]` has been checked and may be handed to hyper.
    validated: usize,
    phase: Phase,
    /// Offset in `buf` of the current head's first byte.
    head_start: usize,
    scan: Scan,
    /// The current request's head, while it is still in `buf` (not yet handed over).
    undelivered_head: Option<usize>,
    settings: Arc<GuardSettings>,
    deadline: Option<Pin<Box<Sleep>>>,
    /// Requests handed to hyper so far (their heads, at least).
    requests: u64,
    /// The last of `requests` that has a body (or is an upgrade): pipelined responses
    /// are held only while every request hyper has yet to answer is without one.
    last_with_body: u64,
    /// Complete responses held to be written with the next (`held.rs`).
    held: HeldResponses,
    /// `EdgeState::answered` at the last write: a write made once it has grown ends a
    /// response.
    answered_at_write: u64,
    state: Arc<EdgeState>,
    eof: bool,
    connection: Arc<crate::ConnectionInfo>,
    observer: Arc<dyn EdgeObserver>,
    parking: Parking,
}

impl<S> GuardedIo<S> {
    pub(crate) fn new(
        inner: S,
        settings: Arc<GuardSettings>,
        connection: Arc<crate::ConnectionInfo>,
        observer: Arc<dyn EdgeObserver>,
        state: Arc<EdgeState>,
    ) -> Self {
        GuardedIo {
            inner,
            buf: BytesMut::new(),
            validated: 0,
            phase: Phase::Head,
            head_start: 0,
            scan: Scan::default(),
            undelivered_head: None,
            settings,
            deadline: None,
            requests: 0,
            last_with_body: 0,
            held: HeldResponses::default(),
            answered_at_write: 0,
            state,
            eof: false,
            connection,
            observer,
            parking: Parking::default(),
        }
    }

    /// Lets the guard park the connection once it has been idle a while (`park.rs`):
    /// hyper's read sees the end of the stream, and hyper ends its connection without
    /// shutting the stream and drops its buffers. The caller takes the guard back
    /// (hyper's `into_parts`), sees [`GuardedIo::is_parked`], and waits for the next
    /// request with [`GuardedIo::poll_next_request`], which holds no buffer.
    /// `after`: how long the connection must have been idle (see `park.rs`).
    pub(crate) fn park_when_idle(&mut self, after: Duration) {
        self.parking.enable(after);
    }

    /// Whether the guard ended hyper's connection to park it.
    pub(crate) fn is_parked(&self) -> bool {
        self.parking.is_parked()
    }

    /// Nothing held and no response owed: idle, as far as the guard can see (hyper's
    /// write buffer is `Parking`'s part).
    fn owes_nothing(&self) -> bool {
        !self.eof
            && matches!(self.phase, Phase::Head)
            && self.buf.is_empty()
            && self.held.is_empty()
            && self.state.answered.load(Ordering::Relaxed) == self.requests
    }

    /// Whether a complete response may be held: hyper has further requests to answer
    /// (`answered` is how many it has answered), and none of them has a body.
    fn may_hold(&self, answered: u64) -> bool {
        self.requests > answered && self.last_with_body <= answered
    }

    /// Refuses the request that starts at `self.validated`. With `respond`, hyper gets
    /// a stand-in for it, answered with the refusal; without (the request's head already
    /// went to hyper), its body is cut off and hyper sees the connection end.
    fn reject(&mut self, reason: Rejection, respond: bool) {
        self.observer.rejected(reason, &self.connection);
        self.phase = Phase::Rejected;
        self.deadline = None;
        if respond && reason.status() != 0 {
            self.buf.truncate(self.validated);
            self.buf.extend_from_slice(STAND_IN);
            self.validated = self.buf.len();
            *self.state.refusal.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((self.requests, reason));
            self.requests += 1;
        } else {
            self.eof = true;
        }
    }

    fn start_head(&mut self, at: usize) {
        self.phase = Phase::Head;
        self.head_start = at;
        self.scan = Scan {
            at,
            line_start: at,
            lines: 0,
            fields_start: at,
        };
    }

    /// Validates as much of `buf[validated..]` as possible.
    fn advance(&mut self) {
        loop {
            let available = self.buf.len() - self.validated;
            match &mut self.phase {
                Phase::Rejected => return,
                Phase::Passthrough => {
                    self.validated = self.buf.len();
                    return;
                }
                Phase::Fixed(remaining) => {
                    let take = (*remaining).min(available as u64);
                    self.validated += take as usize;
                    *remaining -= take;
                    if *remaining > 0 {
                        return;
                    }
                    self.undelivered_head = None;
                    self.start_head(self.validated);
                }
                Phase::Chunked(validator) => {
                    let result = validator.feed(&self.buf[self.validated..]);
                    let done = validator.is_done();
                    match result {
                        Ok(consumed) => {
                            self.validated += consumed;
                            if !done {
                                return;
                            }
                            self.undelivered_head = None;
                            self.start_head(self.validated);
                        }
                        Err(reason) => {
                            // Refuse the request outright if hyper has not seen its head
                            // yet; otherwise all that can be done is to cut the body off.
                            match self.undelivered_head.take() {
                                Some(head) => {
                                    self.validated = head;
                                    self.requests -= 1;
                                    self.reject(reason, true);
                                }
                                None => self.reject(reason, false),
                            }
                            return;
                        }
                    }
                }
                Phase::Head => match self.scan_head() {
                    Ok(None) => return,
                    Ok(Some(end)) => {
                        let limits = self.settings.limits;
                        match head::validate(&self.buf[self.head_start..end], &limits) {
                            Ok(head) => {
                                self.deadline = None;
                                let bodyless =
                                    !head.upgrade && matches!(head.framing, Framing::None);
                                if bodyless && self.state.lookahead {
                                    self.queue_if_pipelined(end);
                                }
                                self.requests += 1;
                                if !bodyless {
                                    self.last_with_body = self.requests;
                                }
                                self.undelivered_head = Some(self.head_start);
                                self.validated = end;
                                self.phase = if head.upgrade {
                                    Phase::Passthrough
                                } else {
                                    match head.framing {
                                        Framing::None => {
                                            self.undelivered_head = None;
                                            self.start_head(end);
                                            continue;
                                        }
                                        Framing::Length(n) => Phase::Fixed(n),
                                        Framing::Chunked => Phase::Chunked(ChunkedValidator::new(
                                            limits.max_headers_total,
                                        )),
                                    }
                                };
                            }
                            Err(reason) => {
                                self.reject(reason, true);
                                return;
                            }
                        }
                    }
                    Err(reason) => {
                        self.reject(reason, true);
                        return;
                    }
                },
            }
        }
    }

    /// Queues a copy of the bodyless head at `head_start..end` for the service if a
    /// request before it is still unanswered: hyper will not parse it until that
    /// request's response is done, but the service may dispatch it at once.
    fn queue_if_pipelined(&mut self, end: usize) {
        let index = self.requests;
        if self.state.answered.load(Ordering::Relaxed) >= index {
            return;
        }
        let head = Bytes::copy_from_slice(&self.buf[self.head_start..end]);
        self.state
            .pipelined
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(PipelinedHead { index, head });
    }

    /// Scans the current head for its end, refusing bare CR/LF and oversized heads as
    /// soon as they show. Returns the offset just past the head's final CRLF CRLF.
    fn scan_head(&mut self) -> Result<Option<usize>, Rejection> {
        let limits = self.settings.limits;
        let len = self.buf.len();
        if len > self.head_start && self.deadline.is_none() {
            if let Some(timeout) = self.settings.request_headers_timeout {
                self.deadline = Some(Box::pin(tokio::time::sleep(timeout)));
            }
        }
        let mut i = self.scan.at;
        while i < len {
            match self.buf[i] {
                b'\r' => {
                    if i + 1 == len {
                        break; // the LF may still come
                    }
                    if self.buf[i + 1] != b'\n' {
                        return Err(Rejection::BareLineFeed);
                    }
                }
                b'\n' => {
                    if i == self.head_start || self.buf[i - 1] != b'\r' {
                        return Err(Rejection::BareLineFeed);
                    }
                    let line_len = i - 1 - self.scan.line_start;
                    self.scan.line_start = i + 1;
                    if line_len == 0 {
                        if self.scan.lines == 0 {
                            // An empty line before the request line is ignored (§2.2).
                            i += 1;
                            continue;
                        }
                        self.scan.at = i + 1;
                        return Ok(Some(i + 1));
                    }
                    self.scan.lines += 1;
                    if self.scan.lines == 1 {
                        if line_len > limits.max_request_line {
                            return Err(Rejection::RequestLineTooLong);
                        }
                        self.scan.fields_start = i + 1;
                    }
                    if self.scan.lines > limits.max_header_count + 1 {
                        return Err(Rejection::TooManyHeaders);
                    }
                    i += 1;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
        self.scan.at = i;
        // Limits on the part that has not ended yet. A final CR whose LF has not arrived
        // (`self.scan.at` stops on it) is not part of the line.
        let current = self.scan.at - self.scan.line_start;
        if self.scan.lines == 0 && current > limits.max_request_line {
            return Err(Rejection::RequestLineTooLong);
        }
        if self.scan.lines > 0 && len - self.scan.fields_start > limits.max_headers_total + 2 {
            return Err(Rejection::HeadersTooLarge);
        }
        Ok(None)
    }

    fn deliver(&mut self, out: &mut ReadBuf<'_>) {
        let n = self.validated.min(out.remaining());
        out.put_slice(&self.buf[..n]);
        self.buf.advance(n);
        self.validated -= n;
        self.head_start = self.head_start.saturating_sub(n);
        self.scan.at = self.scan.at.saturating_sub(n);
        self.scan.line_start = self.scan.line_start.saturating_sub(n);
        self.scan.fields_start = self.scan.fields_start.saturating_sub(n);
        self.undelivered_head = match self.undelivered_head {
            Some(h) if h >= n => Some(h - n),
            _ => None,
        };
    }
}

impl<S: AsyncRead + Unpin> GuardedIo<S> {
    /// Reads more of a head through a buffer on the stack, keeping in `buf` only what
    /// arrived: a connection waiting for its next request holds no read buffer, and a
    /// head costs memory in proportion to its size. Sets `eof` at the stream's end.
    fn read_head_part(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut space = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
        let mut read = ReadBuf::uninit(&mut space);
        ready!(Pin::new(&mut self.inner).poll_read(cx, &mut read))?;
        if read.filled().is_empty() {
            self.eof = true;
        } else {
            self.buf.extend_from_slice(read.filled());
            self.advance();
        }
        Poll::Ready(Ok(()))
    }

    /// Reads more of a chunked body (or of what follows an upgrade) into `buf`.
    fn read_buffered(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let before = self.buf.len();
        self.buf.reserve(READ_CHUNK);
        let mut read = ReadBuf::uninit(self.buf.spare_capacity_mut());
        ready!(Pin::new(&mut self.inner).poll_read(cx, &mut read))?;
        let n = read.filled().len();
        if n == 0 {
            self.eof = true;
        } else {
            // SAFETY: `n` bytes of the spare capacity were initialized by the read.
            unsafe { self.buf.set_len(before + n) };
            self.advance();
        }
        Poll::Ready(Ok(()))
    }

    /// While parked: waits for the next request's first bytes, holding no buffer.
    /// `Ok(true)` when they have arrived (hyper's next connection reads them from the
    /// guard), `Ok(false)` when the client closed the connection.
    pub(crate) fn poll_next_request(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        debug_assert!(self.is_parked() && self.buf.is_empty());
        ready!(self.read_head_part(cx))?;
        self.parking.unpark();
        Poll::Ready(Ok(!self.eof))
    }

    /// Reads the rest of a Content-Length body straight into hyper's buffer, stopping
    /// at the body's end: a body needs no scanning, and the bytes after it (the next
    /// head) must come through `buf` to be scanned. Skipping `buf` saves a copy, and the
    /// reads grow with hyper's buffer instead of staying at READ_CHUNK, so a large
    /// upload reaches the app in fewer, larger chunks.
    fn read_body_direct(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let Phase::Fixed(remaining) = &mut self.phase else {
            unreachable!("only called while reading a Content-Length body");
        };
        if out.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let limit = usize::try_from(*remaining).map_or(out.remaining(), |r| r.min(out.remaining()));
        let mut part = out.take(limit);
        let start = part.filled().as_ptr();
        match Pin::new(&mut self.inner).poll_read(cx, &mut part) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        // `part` is a view of `out`'s unfilled bytes. A reader that swapped in other
        // memory would make the assume_init below unsound, so it is checked always.
        assert_eq!(
            start,
            part.filled().as_ptr(),
            "the reader replaced its ReadBuf"
        );
        let n = part.filled().len();
        if n == 0 {
            self.eof = true;
            return Poll::Ready(Ok(()));
        }
        // SAFETY: the read initialized `n` bytes at the start of `out`'s unfilled part.
        unsafe { out.assume_init(n) };
        out.advance(n);
        *remaining -= n as u64;
        if *remaining == 0 {
            self.undelivered_head = None;
            self.start_head(0);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for GuardedIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.parking.is_parked() {
            // hyper has been told the stream ended; it is ending its connection.
            return Poll::Ready(Ok(()));
        }
        loop {
            if this.validated > 0 {
                this.deliver(out);
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                // End-of-stream for hyper. Unvalidated bytes (a partial head) are dropped.
                return Poll::Ready(Ok(()));
            }
            if matches!(this.phase, Phase::Rejected) {
                // The stand-in asked hyper to close after answering; nothing more to read.
                return Poll::Pending;
            }
            if matches!(this.phase, Phase::Passthrough) && this.buf.is_empty() {
                return Pin::new(&mut this.inner).poll_read(cx, out);
            }
            if matches!(this.phase, Phase::Fixed(_)) && this.buf.is_empty() {
                return this.read_body_direct(cx, out);
            }
            let read = if matches!(this.phase, Phase::Head) {
                this.read_head_part(cx)
            } else {
                this.read_buffered(cx)
            };
            match read {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    if let Some(deadline) = this.deadline.as_mut() {
                        if deadline.as_mut().poll(cx).is_ready() {
                            this.validated = this.validated.min(this.head_start);
                            this.reject(Rejection::RequestHeadersTimeout, true);
                            continue;
                        }
                    }
                    if this.buf.is_empty() {
                        // Nothing is held for the next read: a connection waiting on
                        // its client should not keep a read buffer of its own.
                        this.buf = BytesMut::new();
                        if this.owes_nothing() && this.parking.poll_due(this.requests, cx) {
                            // The end of the stream, as hyper sees it (`park.rs`).
                            return Poll::Ready(Ok(()));
                        }
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> GuardedIo<S> {
    /// Takes a write that ends a response into the hold while [`GuardedIo::may_hold`],
    /// and any write while something is held, which then leaves with it. `Ready(None)`:
    /// the write is the caller's to make, nothing being held any more.
    fn poll_hold(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<Option<usize>>> {
        self.parking.on_write();
        let answered = self.state.answered.load(Ordering::Relaxed);
        let ends_response = answered > self.answered_at_write;
        self.answered_at_write = answered;
        let hold = ends_response && self.may_hold(answered);
        if hold || !self.held.is_empty() {
            if let Some(n) = self.held.hold(bufs) {
                if !hold {
                    // The hold is over: this write leaves with what was held, in one
                    // write. What the socket does not take now goes at the next flush.
                    if let Poll::Ready(Err(e)) = self.held.poll_release(&mut self.inner, cx) {
                        return Poll::Ready(Err(e));
                    }
                }
                return Poll::Ready(Ok(Some(n)));
            }
            ready!(self.held.poll_release(&mut self.inner, cx))?;
        }
        Poll::Ready(Ok(None))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for GuardedIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(n) = ready!(self.poll_hold(cx, &[IoSlice::new(buf)]))? {
            return Poll::Ready(Ok(n));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(n) = ready!(self.poll_hold(cx, bufs))? {
            return Poll::Ready(Ok(n));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.held.is_empty() {
            let answered = this.state.answered.load(Ordering::Relaxed);
            if this.may_hold(answered) && !this.held.expired(cx) {
                return Poll::Ready(Ok(()));
            }
            ready!(this.held.poll_release(&mut this.inner, cx))?;
        }
        let flushed = Pin::new(&mut self.inner).poll_flush(cx);
        if let Poll::Ready(Ok(())) = flushed {
            let this = &mut *self;
            let quiet = this.owes_nothing();
            this.parking.on_flushed(quiet, this.requests, cx);
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.parking.is_parked() {
            // The connection stays open: only hyper's is ending.
            return Poll::Ready(Ok(()));
        }
        let this = &mut *self;
        ready!(this.held.poll_release(&mut this.inner, cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod held_tests {
    use std::net::{Ipv4Addr, SocketAddr};
    use std::sync::atomic::AtomicUsize;

    use bytes::Bytes;
    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    use super::*;
    use crate::body::ResponseBody;
    use crate::connection::ServiceError;
    use crate::{ConnectionInfo, Scheme};

    /// The server's side of the connection, counting the writes that reach it.
    struct CountedWrites {
        inner: DuplexStream,
        writes: Arc<AtomicUsize>,
    }

    impl AsyncRead for CountedWrites {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for CountedWrites {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let written = Pin::new(&mut self.inner).poll_write(cx, buf);
            if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
                self.writes.fetch_add(1, Ordering::SeqCst);
            }
            written
        }

        /// One write of all of `bufs`, as a socket's writev (the duplex is large enough).
        fn poll_write_vectored(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let all: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            self.poll_write(cx, &all)
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    struct Unobserved;

    impl EdgeObserver for Unobserved {
        fn rejected(&self, _: Rejection, _: &ConnectionInfo) {}
    }

    /// Serves `requests` through hyper and a guard, answering each at once with "ok";
    /// returns what the client read and how many writes carried it.
    async fn serve_pipelined(requests: &[u8], responses: usize) -> (String, usize) {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let writes = Arc::new(AtomicUsize::new(0));
        let settings = Arc::new(GuardSettings {
            limits: HeadLimits {
                max_request_line: 8192,
                max_header_count: 100,
                max_headers_total: 32768,
            },
            request_headers_timeout: None,
        });
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let connection = Arc::new(ConnectionInfo::new(0, addr, addr, Scheme::Http, None));
        let state = Arc::new(EdgeState::default());
        let io = CountedWrites {
            inner: server,
            writes: writes.clone(),
        };
        let guard = GuardedIo::new(
            io,
            settings,
            connection,
            Arc::new(Unobserved),
            state.clone(),
        );
        let app = |_| async {
            Ok::<_, ServiceError>(http::Response::new(ResponseBody::full(Bytes::from_static(
                b"ok",
            ))))
        };
        let service = crate::http1::service(app, None, state);
        let serving = crate::http1::builder(8192).serve_connection(TokioIo::new(guard), service);
        let served = tokio::spawn(serving);
        client.write_all(requests).await.unwrap();
        let mut read = String::new();
        let mut buf = [0u8; 65536];
        while read.matches("\r\n\r\nok").count() < responses {
            let n = tokio::time::timeout(Duration::from_secs(10), client.read(&mut buf))
                .await
                .expect("timed out reading the responses")
                .unwrap();
            assert!(n > 0, "the connection closed early: {read}");
            read.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        served.abort();
        (read, writes.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn pipelined_responses_leave_together() {
        let requests = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".repeat(16);
        let (read, writes) = serve_pipelined(&requests, 16).await;
        assert_eq!(read.matches("HTTP/1.1 200 OK").count(), 16);
        // One write, or a few if the test's thread was held up past the hold time
        // (a loaded machine); one per response without the hold.
        assert!(writes <= 4, "16 responses took {writes} writes");
    }

    #[tokio::test]
    async fn a_request_with_a_body_ends_the_hold() {
        // The responses to the GETs are not held while the POST behind them waits to
        // be answered: its client may wait for them (or for 100 Continue) before
        // sending the body.
        let requests = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n\
            POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi";
        let (read, writes) = serve_pipelined(requests, 3).await;
        assert_eq!(read.matches("HTTP/1.1 200 OK").count(), 3);
        // Held, the GETs' responses would have left with the POST's, in one write.
        assert_eq!(writes, 3, "{read}");
    }
}

#[cfg(test)]
mod tests {
    use super::head::HeadLimits;
    use super::replay::{replay, STAND_IN};
    use super::Rejection;

    const LIMITS: HeadLimits = HeadLimits {
        max_request_line: 16,
        max_header_count: 100,
        max_headers_total: 32768,
    };

    /// Found by the guard_scan fuzz target: a request line of exactly the limit was
    /// refused with 414 when a read ended between its CR and LF.
    #[test]
    fn request_line_at_the_limit_passes_however_it_is_split() {
        let request = b"GET /0123456789 HTTP/1.1\r\nHost: a\r\n\r\n";
        let limits = HeadLimits {
            max_request_line: "GET /0123456789 HTTP/1.1".len(),
            ..LIMITS
        };
        for split in 0..request.len() {
            let (first, second) = request.split_at(split);
            let seen = replay(&[first, second], limits);
            assert_eq!(seen.read, request, "split at {split}");
            assert!(seen.rejections.is_empty(), "split at {split}");
        }
        let seen = replay(&[b"GET /0123456789 HTTP/1.1\r"], limits);
        assert!(seen.rejections.is_empty());
        let over = replay(&[b"GET /0123456789 HTTP/1.1x"], limits);
        assert_eq!(over.refusal, Some((0, Rejection::RequestLineTooLong)));
        assert_eq!(over.read, STAND_IN);
    }

    /// A Content-Length body is read past the guard's buffer, but never beyond its end:
    /// the head after it is still scanned, however the reads fall.
    #[test]
    fn a_body_read_directly_stops_at_its_end() {
        let first = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n";
        let body = b"0123456789";
        let bad = b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
        let wire = [&first[..], body, bad].concat();
        let before_bad = first.len() + body.len();
        for split in 0..wire.len() {
            let (a, b) = wire.split_at(split);
            let seen = replay(&[a, b], LIMITS);
            assert_eq!(
                &seen.read[..before_bad],
                &wire[..before_bad],
                "split at {split}"
            );
            assert_eq!(&seen.read[before_bad..], STAND_IN, "split at {split}");
            assert_eq!(seen.refusal.map(|(at, _)| at), Some(1), "split at {split}");
        }
        // The head alone first, so that the body is read while the guard holds nothing.
        for split in 0..body.len() + bad.len() {
            let rest = [&body[..], bad].concat();
            let (a, b) = rest.split_at(split);
            let seen = replay(&[&first[..], a, b], LIMITS);
            assert_eq!(
                &seen.read[..before_bad],
                &wire[..before_bad],
                "split at {split}"
            );
            assert_eq!(&seen.read[before_bad..], STAND_IN, "split at {split}");
        }
    }
}
