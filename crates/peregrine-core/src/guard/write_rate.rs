//! minResponseDataRate: a client that stops reading (a zero TCP window) would hold its
//! connection, and the response queued for it, forever. While writes are blocked, the
//! bytes the client has taken must keep up with a minimum rate after a grace period,
//! or the connection is aborted. The clock runs only while a write waits, so a server
//! that has nothing to send is never blamed on the client.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::{EdgeObserver, Rejection};
use crate::body::MinDataRate;
use crate::ConnectionInfo;

pub(crate) struct MinWriteRate<S> {
    inner: S,
    rate: Option<MinDataRate>,
    /// Since when writes have been waiting on the client, and what it took meanwhile.
    blocked_since: Option<Instant>,
    written_while_blocked: u64,
    timer: Option<Pin<Box<Sleep>>>,
    report: Option<(Arc<dyn EdgeObserver>, Arc<ConnectionInfo>)>,
}

impl<S> MinWriteRate<S> {
    pub(crate) fn new(
        inner: S,
        rate: Option<MinDataRate>,
        report: Option<(Arc<dyn EdgeObserver>, Arc<ConnectionInfo>)>,
    ) -> Self {
        MinWriteRate {
            inner,
            rate,
            blocked_since: None,
            written_while_blocked: 0,
            timer: None,
            report,
        }
    }

    fn on_written(&mut self, n: usize) {
        if self.blocked_since.is_some() {
            self.written_while_blocked += n as u64;
        }
    }

    /// Called when a write would block; an error when the client is too slow.
    fn on_blocked(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let Some(rate) = self.rate else {
            return Ok(());
        };
        let now = Instant::now();
        let since = *self.blocked_since.get_or_insert(now);
        let allowance = rate.allowance(self.written_while_blocked);
        let waited = now - since;
        let expired = waited >= allowance || {
            let deadline = tokio::time::Instant::from_std(since + allowance);
            let timer = self
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            timer.as_mut().reset(deadline);
            timer.as_mut().poll(cx).is_ready()
        };
        if !expired {
            return Ok(());
        }
        if let Some((observer, connection)) = self.report.take() {
            observer.rejected(Rejection::ResponseTooSlow, &connection);
        }
        self.rate = None;
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client read the response too slowly (limits.minResponseDataRate)",
        ))
    }

    /// Counts what a write took, or starts the clock when it would block.
    fn account(
        &mut self,
        polled: Poll<io::Result<usize>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        match polled {
            Poll::Ready(Ok(n)) => {
                self.on_written(n);
                Poll::Ready(Ok(n))
            }
            Poll::Pending => match self.on_blocked(cx) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
            other => other,
        }
    }

    fn unblocked(&mut self) {
        self.blocked_since = None;
        self.written_while_blocked = 0;
        self.timer = None;
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for MinWriteRate<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for MinWriteRate<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.account(polled, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.account(polled, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                // Everything queued reached the socket: the client is keeping up.
                this.unblocked();
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match this.on_blocked(cx) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
