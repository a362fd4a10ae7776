//! Pipelined responses, written together.
//!
//! hyper answers a connection's requests one after another and writes each response
//! out, in a system call of its own, as soon as it is complete. A client that
//! pipelines 16 requests was answered in 16 writes: on loopback, the write of each
//! response cost more than hyper's parsing and answering of it. hyper's own remedy
//! (`pipeline_flush`) holds every byte, a streamed response's too, while any request
//! waits in its read buffer, so a client that pipelines a second request behind a
//! large download would make the server buffer the whole download.
//!
//! So the guard holds responses itself, and only complete ones: a write that ends a
//! response is held while hyper has further requests of the connection to answer
//! that need nothing more from the client (no body, so no `100 Continue` to wait
//! for). Whatever comes next is written after what is held, in one write with it when
//! it is held too. A hold ends:
//! - when hyper has no further request to answer, or the next has a body;
//! - at [`HOLD_BYTES`] held;
//! - after [`HOLD_TIME`]: a slow response to a later request delays an earlier
//!   response by no more than that;
//! - before the connection shuts down or parks.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::AsyncWrite;
use tokio::time::{Instant, Sleep};

/// The most bytes of responses held at once; a response that would go past it is
/// written with what is held.
pub(crate) const HOLD_BYTES: usize = 64 * 1024;

/// The longest a complete response is held. tokio's timers tick in milliseconds, so a
/// hold lasts 1 to 2 ms. Under load, a JavaScript application answers a connection's
/// next pipelined request within a fraction of that.
pub(crate) const HOLD_TIME: Duration = Duration::from_millis(1);

/// The complete responses the guard holds, and when the hold ends.
#[derive(Default)]
pub(crate) struct HeldResponses {
    bytes: BytesMut,
    /// Made at the first hold of the connection and reset at each later one.
    deadline: Option<Pin<Box<Sleep>>>,
    /// The deadline has been polled since it was last set, so the timer will wake the
    /// connection's task: later checks only read it.
    watched: bool,
}

impl HeldResponses {
    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Holds all of `bufs` and returns their length, or returns `None` (holding none of
    /// them) when they would take the hold past [`HOLD_BYTES`].
    pub(crate) fn hold(&mut self, bufs: &[IoSlice<'_>]) -> Option<usize> {
        let len: usize = bufs.iter().map(|b| b.len()).sum();
        if self.bytes.len() + len > HOLD_BYTES {
            return None;
        }
        if self.bytes.is_empty() {
            let until = Instant::now() + HOLD_TIME;
            match &mut self.deadline {
                Some(deadline) => deadline.as_mut().reset(until),
                None => self.deadline = Some(Box::pin(tokio::time::sleep_until(until))),
            }
            self.watched = false;
        }
        for buf in bufs {
            self.bytes.extend_from_slice(buf);
        }
        Some(len)
    }

    /// Whether the hold has lasted [`HOLD_TIME`]; if not, `cx` is woken when it has.
    /// A connection is always served by the same task, so one poll per hold is enough
    /// to be woken.
    pub(crate) fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = &mut self.deadline else {
            return true;
        };
        if self.watched {
            return deadline.is_elapsed();
        }
        self.watched = true;
        deadline.as_mut().poll(cx).is_ready()
    }

    /// Writes everything held to `io`; pending until `io` has taken it all.
    pub(crate) fn poll_release<S: AsyncWrite + Unpin>(
        &mut self,
        io: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        while !self.bytes.is_empty() {
            let n = std::task::ready!(Pin::new(&mut *io).poll_write(cx, &self.bytes))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.bytes.advance(n);
        }
        // A connection between pipelined bursts keeps no buffer.
        self.bytes = BytesMut::new();
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn holds_up_to_the_limit_and_releases_in_order() {
        let mut held = HeldResponses::default();
        let first = vec![b'a'; HOLD_BYTES - 10];
        assert_eq!(held.hold(&[IoSlice::new(&first)]), Some(first.len()));
        assert_eq!(held.hold(&[IoSlice::new(b"0123456789x")]), None);
        assert_eq!(
            held.hold(&[IoSlice::new(b"01234"), IoSlice::new(b"56789")]),
            Some(10)
        );
        let mut out = Vec::new();
        std::future::poll_fn(|cx| held.poll_release(&mut out, cx))
            .await
            .unwrap();
        assert!(held.is_empty());
        assert_eq!(out.len(), HOLD_BYTES);
        assert!(out.ends_with(b"aaa0123456789"));
    }

    #[tokio::test]
    async fn a_hold_expires_after_the_hold_time() {
        let mut held = HeldResponses::default();
        held.hold(&[IoSlice::new(b"HTTP/1.1 200 OK\r\n\r\n")]);
        let expired = std::future::poll_fn(|cx| Poll::Ready(held.expired(cx))).await;
        assert!(!expired);
        tokio::time::sleep(HOLD_TIME * 3).await;
        let expired = std::future::poll_fn(|cx| Poll::Ready(held.expired(cx))).await;
        assert!(expired);
    }
}
