//! When an idle HTTP/1.1 connection is parked. hyper keeps an 8 KiB read buffer and an
//! 8 KiB write buffer for as long as its connection lives, and offers no way to drop
//! them between requests. So once a connection has been idle for [`PARK_AFTER`], the
//! guard ends hyper's connection: hyper's next read sees the end of the stream, hyper
//! finishes cleanly, and the guard passes on no shutdown. The caller (`http1.rs`) then
//! takes the guard back and waits for the next request holding no buffer.
//!
//! Idle means: the guard holds no bytes, every response hyper owes is done, and
//! hyper's write buffer is empty. hyper flushes the stream only once its own buffer is
//! empty, so a flush that succeeds with no write after it shows the last one.
//!
//! Parking only after a delay keeps it off a busy keep-alive connection's path: a new
//! hyper connection per request costs about a seventh more instructions per request on
//! the pure-Rust server. The timer is armed when a connection goes idle and not
//! touched while it is busy; when it fires on a connection that has served a request
//! since, it is set again, so a busy connection costs one timer event per period.

use std::future::Future;
use std::pin::Pin;
use std::task::Context;
use std::time::Duration;

use tokio::time::Sleep;

/// How long a connection stays idle before it is parked (less than twice this), or
/// keepAliveTimeout if shorter.
pub(crate) const PARK_AFTER: Duration = Duration::from_millis(50);

#[derive(Default)]
pub(super) struct Parking {
    /// `Some(delay)` once enabled.
    after: Option<Duration>,
    /// Set once hyper has been told the stream ended.
    parked: bool,
    /// A write since the last successful flush: hyper may hold unsent bytes.
    unflushed: bool,
    /// Runs while the connection may be idle; `None` when parked or never idle.
    timer: Option<Pin<Box<Sleep>>>,
    /// The guard's request count when the timer was set: if it has moved when the
    /// timer fires, the connection was not idle all along.
    armed_at: u64,
    /// The request count when the timer was last polled for an idle connection: a
    /// flush sets the timer once per request (`on_flushed`).
    idle_seen: u64,
}

impl Parking {
    pub(super) fn enable(&mut self, after: Duration) {
        self.after = Some(after);
    }

    pub(super) fn is_parked(&self) -> bool {
        self.parked
    }

    pub(super) fn unpark(&mut self) {
        self.parked = false;
    }

    pub(super) fn on_write(&mut self) {
        self.unflushed = true;
    }

    /// After a successful flush: hyper's write buffer is empty. If the connection owes
    /// nothing (`quiet`), hyper will not read again unless woken, so the timer is set
    /// here, once per request.
    pub(super) fn on_flushed(&mut self, quiet: bool, requests: u64, cx: &mut Context<'_>) {
        self.unflushed = false;
        if quiet && self.idle_seen != requests && self.poll_due(requests, cx) {
            // Due already: hyper must read to see the end.
            cx.waker().wake_by_ref();
        }
    }

    /// On hyper's read of a connection that owes nothing and found nothing to read,
    /// and after `on_flushed`: whether to park now. Sets the timer if it is not
    /// running; it wakes the connection when it fires, and hyper then reads again.
    pub(super) fn poll_due(&mut self, requests: u64, cx: &mut Context<'_>) -> bool {
        // Parking applies only when enabled, not parked already, and with hyper's
        // write buffer empty.
        let Some(after) = self.after else {
            return false;
        };
        if self.parked || self.unflushed {
            return false;
        }
        self.idle_seen = requests;
        let timer = match &mut self.timer {
            Some(timer) => timer,
            None => {
                self.armed_at = requests;
                self.timer.insert(Box::pin(tokio::time::sleep(after)))
            }
        };
        if timer.as_mut().poll(cx).is_pending() {
            return false;
        }
        if self.armed_at == requests {
            self.timer = None;
            self.parked = true;
            return true;
        }
        // Requests came and went meanwhile: idle only since the last of them.
        self.armed_at = requests;
        timer.as_mut().reset(tokio::time::Instant::now() + after);
        let _ = timer.as_mut().poll(cx);
        false
    }
}
