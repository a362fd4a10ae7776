//! A seam for the fuzz targets (crates/peregrine-core/fuzz): replays bytes through a real
//! [`GuardedIo`], one socket read at a time, without a runtime or a socket. Not part of
//! the API.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, ReadBuf};

use super::head::HeadLimits;
use super::{EdgeObserver, EdgeState, GuardSettings, GuardedIo, Rejection};
use crate::{ConnectionInfo, Scheme};

/// What a replay let through: hyper's view of the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// Every byte hyper read, in order; ends with [`STAND_IN`] when `refusal` is set.
    pub read: Vec<u8>,
    /// The stand-in's position among the requests hyper saw, and the answer it gets.
    pub refusal: Option<(u64, Rejection)>,
    /// Every refusal the observer was told of, in order.
    pub rejections: Vec<Rejection>,
}

/// The request hyper parses in place of a refused one.
pub const STAND_IN: &[u8] = super::STAND_IN;

/// Feeds `reads` to a guard as successive socket reads, then end of stream. After each
/// read, hyper's side reads everything the guard lets through, as it does when it is
/// waiting for the next request. The requests-headers timeout is off.
pub fn replay(reads: &[&[u8]], limits: HeadLimits) -> Replay {
    let settings = Arc::new(GuardSettings {
        limits,
        request_headers_timeout: None,
    });
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let connection = Arc::new(ConnectionInfo::new(0, addr, addr, Scheme::Http, None));
    let observer = Arc::new(Recorder::default());
    let state = Arc::new(EdgeState::default());
    let socket = Script {
        pending: Vec::new(),
        eof: false,
    };
    let mut io = GuardedIo::new(
        socket,
        settings,
        connection,
        observer.clone(),
        state.clone(),
    );
    let mut read = Vec::new();
    for bytes in reads {
        io.inner.pending.extend_from_slice(bytes);
        if !drain(&mut io, &mut read) {
            break;
        }
    }
    io.inner.eof = true;
    drain(&mut io, &mut read);
    let refusal = *state.refusal.lock().unwrap_or_else(|e| e.into_inner());
    let rejections = observer.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Replay {
        read,
        refusal,
        rejections,
    }
}

/// Reads until the guard has nothing more to give; false once it reported end of stream.
fn drain(io: &mut GuardedIo<Script>, read: &mut Vec<u8>) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = [0u8; 8192];
    loop {
        let mut buf = ReadBuf::new(&mut out);
        match Pin::new(&mut *io).poll_read(&mut cx, &mut buf) {
            Poll::Ready(Ok(())) if buf.filled().is_empty() => return false,
            Poll::Ready(Ok(())) => read.extend_from_slice(buf.filled()),
            Poll::Ready(Err(_)) | Poll::Pending => return true,
        }
    }
}

#[derive(Default)]
struct Recorder(Mutex<Vec<Rejection>>);

impl EdgeObserver for Recorder {
    fn rejected(&self, reason: Rejection, _connection: &ConnectionInfo) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(reason);
    }
}

/// A socket whose next read returns what is pending, or waits; then end of stream.
struct Script {
    pending: Vec<u8>,
    eof: bool,
}

impl AsyncRead for Script {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.pending.is_empty() {
            return if self.eof {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            };
        }
        let n = self.pending.len().min(out.remaining());
        out.put_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Poll::Ready(Ok(()))
    }
}
