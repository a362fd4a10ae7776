//! The HTTP/2 frame watch: an I/O wrapper under h2 that reads the 9-byte frame headers
//! going both ways, for what h2 does not limit.
//!
//! - SETTINGS and PING floods. h2 answers every SETTINGS and PING frame, so a client can
//!   make the server work frame for frame. Non-ACK SETTINGS and PING frames are counted
//!   per connection in a [`FLOOD_WINDOW`]; past [`SETTINGS_FLOOD_LIMIT`] or
//!   [`PING_FLOOD_LIMIT`] the watch stops reading (h2 never sees the frame over the
//!   limit) and reports the flood, and the connection answers GOAWAY(ENHANCE_YOUR_CALM).
//! - The connection-level send window. h2 does not say how much of it is left, so the
//!   watch keeps count: 65,535, plus every WINDOW_UPDATE the client sends for stream 0,
//!   minus every DATA payload the server writes. When it stays at zero longer than
//!   minResponseDataRate allows, the watch reports a stall.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Sleep;

use super::Rejection;
use crate::body::MinDataRate;

/// The window over which SETTINGS and PING frames are counted.
pub(crate) const FLOOD_WINDOW: Duration = Duration::from_secs(10);
/// Non-ACK SETTINGS frames a client may send per [`FLOOD_WINDOW`]. A client sends one
/// when it connects and rarely another.
pub(crate) const SETTINGS_FLOOD_LIMIT: u32 = 100;
/// Non-ACK PING frames a client may send per [`FLOOD_WINDOW`]: room for keep-alive
/// and for clients that measure round trips (gRPC's BDP pings).
pub(crate) const PING_FLOOD_LIMIT: u32 = 10_000;

/// RFC 9113 §6.9.2: every connection starts with this send window.
const INITIAL_WINDOW: i64 = 65_535;
const PREFACE_LEN: usize = 24;
const HEADER_LEN: usize = 9;
const DATA: u8 = 0x0;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const WINDOW_UPDATE: u8 = 0x8;
const ACK: u8 = 0x1;

/// What the watch has seen, shared by the wrapper and the connection task.
pub(crate) struct H2Watch {
    state: Mutex<WatchState>,
    rate: Option<MinDataRate>,
    /// Signalled once, when the watch finds a violation.
    violated: Notify,
}

struct WatchState {
    /// The connection-level send window as the client sees it.
    window: i64,
    /// While the window is exhausted: since when, and what the client granted since.
    stall: Option<(Instant, u64)>,
    /// Start of the current flood window, and SETTINGS and PING frames counted in it.
    flood_window: Instant,
    settings: u32,
    pings: u32,
    violation: Option<Rejection>,
}

impl H2Watch {
    pub(crate) fn new(rate: Option<MinDataRate>) -> Arc<H2Watch> {
        Arc::new(H2Watch {
            state: Mutex::new(WatchState {
                window: INITIAL_WINDOW,
                stall: None,
                flood_window: Instant::now(),
                settings: 0,
                pings: 0,
                violation: None,
            }),
            rate,
            violated: Notify::new(),
        })
    }

    fn state(&self) -> MutexGuard<'_, WatchState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True while the connection-level send window is used up: a stream waiting on
    /// flow control then waits on the connection, which the watch itself times.
    pub(crate) fn connection_window_exhausted(&self) -> bool {
        self.state().window <= 0
    }

    /// Resolves with the first violation found.
    pub(crate) async fn violation(&self) -> Rejection {
        loop {
            let notified = self.violated.notified();
            if let Some(reason) = self.state().violation {
                return reason;
            }
            notified.await;
        }
    }

    fn violate(&self, state: &mut WatchState, reason: Rejection) {
        if state.violation.is_none() {
            state.violation = Some(reason);
            self.violated.notify_waiters();
        }
    }

    /// A frame header from the client. False once the connection is in violation: the
    /// frame must not reach h2.
    fn on_client_frame(&self, kind: u8, flags: u8) -> bool {
        let mut state = self.state();
        if state.violation.is_some() {
            return false;
        }
        let counted = match kind {
            SETTINGS if flags & ACK == 0 => Some(Rejection::Http2SettingsFlood),
            PING if flags & ACK == 0 => Some(Rejection::Http2PingFlood),
            _ => None,
        };
        let Some(reason) = counted else {
            return true;
        };
        let now = Instant::now();
        if now.duration_since(state.flood_window) >= FLOOD_WINDOW {
            state.flood_window = now;
            state.settings = 0;
            state.pings = 0;
        }
        let over = if reason == Rejection::Http2SettingsFlood {
            state.settings += 1;
            state.settings > SETTINGS_FLOOD_LIMIT
        } else {
            state.pings += 1;
            state.pings > PING_FLOOD_LIMIT
        };
        if over {
            self.violate(&mut state, reason);
        }
        !over
    }

    /// A WINDOW_UPDATE for stream 0 from the client.
    fn on_window_update(&self, increment: u32) {
        let mut state = self.state();
        state.window += i64::from(increment & 0x7fff_ffff);
        if let Some((_, granted)) = state.stall.as_mut() {
            *granted += u64::from(increment & 0x7fff_ffff);
        }
    }

    /// A DATA frame the server wrote, with its payload length.
    fn on_data_sent(&self, len: u32) {
        let mut state = self.state();
        state.window -= i64::from(len);
        if state.window > 0 {
            // h2 had window to spare after this frame: it is not waiting on the client.
            state.stall = None;
        } else if state.stall.is_none() && self.rate.is_some() {
            state.stall = Some((Instant::now(), 0));
        }
    }

    /// When the window must have moved by, if it is exhausted now.
    fn stall_deadline(&self) -> Option<Instant> {
        let rate = self.rate?;
        let state = self.state();
        let (since, granted) = state.stall?;
        Some(since + rate.allowance(granted))
    }

    /// The stall deadline passed: a violation if the window is still exhausted.
    fn on_stall_deadline(&self) {
        let mut state = self.state();
        if state.window > 0 {
            state.stall = None;
        } else {
            self.violate(&mut state, Rejection::Http2ConnectionWindowStall);
        }
    }
}

/// Reads frame headers out of a byte stream, a read or a write at a time.
#[derive(Default)]
struct FrameReader {
    /// Bytes of the client preface still to skip.
    preface: usize,
    header: [u8; HEADER_LEN],
    have: usize,
    /// Payload bytes of the current frame still to pass.
    payload_left: usize,
    /// The WINDOW_UPDATE payload for stream 0, while it is being collected.
    update: Option<([u8; 4], usize)>,
}

/// What the reader found in the bytes it was given.
enum Found {
    /// A frame header: type, flags, payload length, and where in the bytes it starts.
    Header {
        kind: u8,
        flags: u8,
        len: u32,
        start: usize,
    },
    WindowUpdate(u32),
}

impl FrameReader {
    fn after_preface() -> FrameReader {
        FrameReader::default()
    }

    fn before_preface() -> FrameReader {
        FrameReader {
            preface: PREFACE_LEN,
            ..FrameReader::default()
        }
    }

    /// Walks `bytes`, calling `found` for each header and stream-0 WINDOW_UPDATE; stops
    /// early when `found` returns false.
    fn feed(&mut self, mut bytes: &[u8], mut found: impl FnMut(Found) -> bool) {
        let total = bytes.len();
        while !bytes.is_empty() {
            if self.preface > 0 {
                let n = self.preface.min(bytes.len());
                self.preface -= n;
                bytes = &bytes[n..];
                continue;
            }
            if self.payload_left > 0 {
                let n = self.payload_left.min(bytes.len());
                if let Some((buf, at)) = self.update.as_mut() {
                    let take = (4 - *at).min(n);
                    buf[*at..*at + take].copy_from_slice(&bytes[..take]);
                    *at += take;
                    if *at == 4 {
                        let increment = u32::from_be_bytes(*buf);
                        self.update = None;
                        if !found(Found::WindowUpdate(increment)) {
                            return;
                        }
                    }
                }
                self.payload_left -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (HEADER_LEN - self.have).min(bytes.len());
            self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have < HEADER_LEN {
                continue;
            }
            self.have = 0;
            let h = self.header;
            let len = u32::from_be_bytes([0, h[0], h[1], h[2]]);
            let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
            self.payload_left = len as usize;
            self.update = (h[3] == WINDOW_UPDATE && stream == 0 && len == 4).then_some(([0; 4], 0));
            let header = Found::Header {
                kind: h[3],
                flags: h[4],
                len,
                // A header that began in an earlier read starts at 0 here.
                start: (total - bytes.len()).saturating_sub(HEADER_LEN),
            };
            if !found(header) {
                return;
            }
        }
    }
}

/// The wrapper h2 reads and writes through; see the module comment.
pub(crate) struct H2FrameGuard<S> {
    inner: S,
    watch: Arc<H2Watch>,
    reads: FrameReader,
    writes: FrameReader,
    stall_timer: Option<(Instant, Pin<Box<Sleep>>)>,
}

impl<S> H2FrameGuard<S> {
    /// `inner` must start at the client preface (prior knowledge, or TLS with ALPN h2).
    pub(crate) fn new(inner: S, watch: Arc<H2Watch>) -> Self {
        H2FrameGuard {
            inner,
            watch,
            reads: FrameReader::before_preface(),
            writes: FrameReader::after_preface(),
            stall_timer: None,
        }
    }

    /// Arms a timer for the stall deadline, and checks it once it has passed.
    fn poll_stall(&mut self, cx: &mut Context<'_>) {
        let Some(deadline) = self.watch.stall_deadline() else {
            self.stall_timer = None;
            return;
        };
        let timer = match &mut self.stall_timer {
            Some((at, timer)) if *at == deadline => timer,
            slot => {
                let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline));
                &mut slot.insert((deadline, Box::pin(sleep))).1
            }
        };
        if timer.as_mut().poll(cx).is_ready() {
            self.stall_timer = None;
            self.watch.on_stall_deadline();
        }
    }

    /// After a violation the connection task sends GOAWAY and closes, and h2 reads
    /// nothing more. What the client still sends is dropped, so that unread bytes do not
    /// turn the close into a reset that would cost the client the GOAWAY.
    fn drop_reads(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>
    where
        S: AsyncRead + Unpin,
    {
        let mut scratch = [0u8; 8192];
        loop {
            let mut discard = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.inner).poll_read(cx, &mut discard) {
                Poll::Ready(Ok(())) if !discard.filled().is_empty() => continue,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                _ => return Poll::Pending,
            }
        }
    }

    /// Takes the written buffers as they came (`&[u8]` or `IoSlice`), so a vectored
    /// write costs no allocation to be watched.
    fn on_written<B: std::ops::Deref<Target = [u8]>>(&mut self, bufs: &[B], mut n: usize) {
        let watch = &self.watch;
        for buf in bufs {
            if n == 0 {
                break;
            }
            let part = &buf[..n.min(buf.len())];
            n -= part.len();
            self.writes.feed(part, |found| {
                if let Found::Header {
                    kind: DATA, len, ..
                } = found
                {
                    watch.on_data_sent(len);
                }
                true
            });
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for H2FrameGuard<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.poll_stall(cx);
        if this.watch.state().violation.is_some() {
            return this.drop_reads(cx);
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        let watch = &this.watch;
        let mut cut = None;
        this.reads
            .feed(&buf.filled()[before..], |found| match found {
                Found::Header {
                    kind, flags, start, ..
                } => {
                    let pass = watch.on_client_frame(kind, flags);
                    if !pass {
                        cut = Some(start);
                    }
                    pass
                }
                Found::WindowUpdate(increment) => {
                    watch.on_window_update(increment);
                    true
                }
            });
        if let Some(start) = cut {
            // h2 gets the frames before the one over the limit, and no more. An empty
            // read would tell h2 the client closed, so then h2 gets nothing at all.
            buf.set_filled(before + start);
            if start == 0 {
                return this.drop_reads(cx);
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for H2FrameGuard<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            this.on_written(&[buf], n);
            // h2 writes after its last read of a pass: a stall that starts here must
            // arm its timer here, or nothing would wake the connection to check it.
            this.poll_stall(cx);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled {
            this.on_written(bufs, n);
            this.poll_stall(cx);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A frame header or stream-0 WINDOW_UPDATE as [`FrameReader`] reports it, for the
/// fuzz target (crates/peregrine-core/fuzz/fuzz_targets/h2_frames.rs). Not part of the
/// API.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameEvent {
    Header { kind: u8, flags: u8, len: u32 },
    WindowUpdate(u32),
}

/// Feeds `reads` through one frame reader, as the watch sees a connection's bytes a
/// read at a time (starting at the client preface when `with_preface`), and returns
/// what it found. For the fuzz target only.
#[doc(hidden)]
pub fn scan_frames(reads: &[&[u8]], with_preface: bool) -> Vec<FrameEvent> {
    let mut reader = if with_preface {
        FrameReader::before_preface()
    } else {
        FrameReader::after_preface()
    };
    let mut events = Vec::new();
    for read in reads {
        reader.feed(read, |found| {
            events.push(match found {
                Found::Header {
                    kind, flags, len, ..
                } => FrameEvent::Header { kind, flags, len },
                Found::WindowUpdate(increment) => FrameEvent::WindowUpdate(increment),
            });
            true
        });
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = (payload.len() as u32).to_be_bytes();
        let mut out = vec![len[1], len[2], len[3], kind, flags];
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn headers(reader: &mut FrameReader, bytes: &[u8]) -> Vec<(u8, u32)> {
        let mut seen = Vec::new();
        reader.feed(bytes, |f| {
            match f {
                Found::Header { kind, len, .. } => seen.push((kind, len)),
                Found::WindowUpdate(n) => seen.push((0xff, n)),
            }
            true
        });
        seen
    }

    #[test]
    fn reads_frame_headers_however_the_bytes_are_split() {
        let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        bytes.extend(frame(SETTINGS, 0, 0, &[0; 6]));
        bytes.extend(frame(WINDOW_UPDATE, 0, 0, &1000u32.to_be_bytes()));
        bytes.extend(frame(DATA, 1, 3, b"hello"));
        bytes.extend(frame(PING, 0, 0, &[7; 8]));
        let whole = headers(&mut FrameReader::before_preface(), &bytes);
        assert_eq!(
            whole,
            vec![
                (SETTINGS, 6),
                (WINDOW_UPDATE, 4),
                (0xff, 1000),
                (DATA, 5),
                (PING, 8)
            ]
        );
        let mut reader = FrameReader::before_preface();
        let mut split = Vec::new();
        for byte in &bytes {
            split.extend(headers(&mut reader, std::slice::from_ref(byte)));
        }
        assert_eq!(split, whole);
    }

    #[test]
    fn pings_past_the_limit_are_a_flood_and_the_frame_is_held_back() {
        let watch = H2Watch::new(None);
        for _ in 0..PING_FLOOD_LIMIT {
            assert!(watch.on_client_frame(PING, 0));
            assert!(watch.on_client_frame(PING, ACK), "ACKs are not counted");
        }
        assert!(!watch.on_client_frame(PING, 0));
        assert_eq!(watch.state().violation, Some(Rejection::Http2PingFlood));
        assert!(
            !watch.on_client_frame(DATA, 0),
            "nothing passes after a violation"
        );
    }

    #[test]
    fn settings_counts_start_over_each_window() {
        let watch = H2Watch::new(None);
        for _ in 0..SETTINGS_FLOOD_LIMIT {
            assert!(watch.on_client_frame(SETTINGS, 0));
        }
        {
            let mut state = watch.state();
            if let Some(earlier) = state.flood_window.checked_sub(FLOOD_WINDOW) {
                state.flood_window = earlier;
            }
        }
        assert!(watch.on_client_frame(SETTINGS, 0));
        assert_eq!(watch.state().violation, None);
    }

    #[test]
    fn the_connection_window_is_counted_and_a_stall_times_from_exhaustion() {
        let rate = MinDataRate {
            bytes_per_second: 240.0,
            grace_period: Duration::from_secs(5),
        };
        let watch = H2Watch::new(Some(rate));
        watch.on_data_sent(65_000);
        assert!(!watch.connection_window_exhausted());
        assert!(watch.stall_deadline().is_none());
        watch.on_data_sent(535);
        assert!(watch.connection_window_exhausted());
        let deadline = watch.stall_deadline().expect("a stall is timed");
        // 2,400 bytes granted while stalled earn 10 s, past the 5 s grace period.
        watch.on_window_update(2400);
        watch.on_data_sent(2400);
        assert_eq!(
            watch.stall_deadline(),
            Some(deadline + Duration::from_secs(5))
        );
        watch.on_stall_deadline();
        assert_eq!(
            watch.state().violation,
            Some(Rejection::Http2ConnectionWindowStall)
        );
        // A window that opened by the deadline is no stall.
        let open = H2Watch::new(Some(rate));
        open.on_data_sent(65_535);
        open.on_window_update(10);
        open.on_stall_deadline();
        assert_eq!(open.state().violation, None);
        assert!(open.stall_deadline().is_none());
    }
}
