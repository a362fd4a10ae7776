//! HTTP/1.1 Upgrade (RFC 9110 §7.8), as ASP.NET Core's IHttpUpgradeFeature: a request
//! with `Connection: upgrade` and an `Upgrade` header may be answered with 101, after
//! which the connection is an opaque byte stream owned by the application.
//!
//! The connection puts an [`UpgradeSlot`] in each upgradable request's extensions. The
//! handler takes it and calls [`UpgradeSlot::accept`], which counts the connection
//! under maxConcurrentUpgradedConnections (instead of maxConcurrentConnections) or
//! refuses. [`Upgrading::run`] then waits for hyper to hand the socket over after the
//! 101 and carries bytes both ways: what the client sends becomes a [`RequestBody`]
//! without size limit or rate, what the application writes goes through a
//! [`ResponseBody`] channel, with the same backpressure as a streamed response. At
//! shutdown the upgraded connection lives until shutdownTimeout, then it is aborted.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING, UPGRADE};
use http::{Method, Version};
use http_body_util::BodyExt;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf, ReadHalf};
use tokio::sync::{oneshot, Notify};
use tokio_util::sync::CancellationToken;

use crate::body::ResponseBody;
use crate::connection::ConnectionInfo;
use crate::error::{Error, ErrorCode};
use crate::guard::{EdgeObserver, Rejection};
use crate::stats::{ServerStats, UpgradedCount};

const READ_CHUNK: usize = 16 * 1024;

/// True for a request the server may upgrade: HTTP/1.1, not CONNECT, `Connection`
/// naming `upgrade`, an `Upgrade` header, and no body (Kestrel's rule).
pub(crate) fn is_upgradable(parts: &http::request::Parts) -> bool {
    let names_upgrade = parts
        .headers
        .get_all(CONNECTION)
        .iter()
        .any(|v| crate::http1::connection_has(v, "upgrade"));
    let has_body = parts.headers.contains_key(TRANSFER_ENCODING)
        || parts
            .headers
            .get(CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    parts.version == Version::HTTP_11
        && parts.method != Method::CONNECT
        && names_upgrade
        && parts.headers.contains_key(UPGRADE)
        && !has_body
}

/// True when the request asks to switch protocols at all (an `Upgrade` header, or
/// CONNECT): the edge guard then stops inspecting the connection's bytes, so unless the
/// request is upgraded the connection must close after the response.
pub(crate) fn asks_for_upgrade(parts: &http::request::Parts) -> bool {
    parts.method == Method::CONNECT || parts.headers.contains_key(UPGRADE)
}

/// What one HTTP/1.1 connection knows about upgrades: the limit, who hears about a
/// refusal, and when an upgraded stream has closed.
pub(crate) struct ConnectionUpgrades {
    pub stats: Arc<ServerStats>,
    pub max: Option<u64>,
    pub observer: Arc<dyn EdgeObserver>,
    pub connection: Arc<ConnectionInfo>,
    /// The server's abort: cancelled at shutdownTimeout.
    pub abort: CancellationToken,
    started: AtomicBool,
    /// Set, and `closed` notified, when the upgraded stream has closed. A `Notify`
    /// rather than a token: this is in every connection, upgraded or not.
    ended: AtomicBool,
    closed: Notify,
}

impl ConnectionUpgrades {
    pub(crate) fn new(
        stats: Arc<ServerStats>,
        max: Option<u64>,
        observer: Arc<dyn EdgeObserver>,
        connection: Arc<ConnectionInfo>,
        abort: CancellationToken,
    ) -> Arc<ConnectionUpgrades> {
        Arc::new(ConnectionUpgrades {
            stats,
            max,
            observer,
            connection,
            abort,
            started: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            closed: Notify::new(),
        })
    }

    /// Waits until the connection's upgraded stream has closed; at once if it was
    /// never upgraded. The connection task waits here, so the server's shutdown waits
    /// for upgraded streams too.
    pub(crate) async fn closed(&self) {
        if !self.started.load(Ordering::Acquire) {
            return;
        }
        loop {
            // Made before the check: a notification after it still reaches it.
            let closed = self.closed.notified();
            if self.ended.load(Ordering::Acquire) {
                return;
            }
            closed.await;
        }
    }
}

/// In an upgradable request's extensions: the way to upgrade it.
#[derive(Clone)]
pub struct UpgradeSlot {
    on_upgrade: OnUpgrade,
    upgrades: Arc<ConnectionUpgrades>,
}

impl UpgradeSlot {
    pub(crate) fn new(on_upgrade: OnUpgrade, upgrades: Arc<ConnectionUpgrades>) -> UpgradeSlot {
        UpgradeSlot {
            on_upgrade,
            upgrades,
        }
    }

    /// Counts the connection as upgraded, or refuses (maxConcurrentUpgradedConnections
    /// reached: the observer logs and counts `MAX_CONCURRENT_UPGRADED_CONNECTIONS`).
    pub fn accept(self) -> Result<Upgrading, Error> {
        let upgrades = self.upgrades;
        let Some(count) = upgrades.stats.try_upgrade(upgrades.max) else {
            upgrades
                .observer
                .rejected(Rejection::UpgradeLimit, &upgrades.connection);
            return Err(Error::new(
                ErrorCode::UpgradeLimit,
                format!(
                    "upgrade refused: {} upgraded connections are open, the most limits.maxConcurrentUpgradedConnections allows; answer the request without upgrading",
                    upgrades.max.unwrap_or(0)
                ),
            ));
        };
        upgrades.started.store(true, Ordering::Release);
        Ok(Upgrading {
            on_upgrade: self.on_upgrade,
            upgrades,
            count,
        })
    }
}

/// An accepted upgrade: the 101 is on its way, the socket not yet handed over.
pub struct Upgrading {
    on_upgrade: OnUpgrade,
    upgrades: Arc<ConnectionUpgrades>,
    count: UpgradedCount,
}

/// The client's side of an upgraded connection, once hyper has handed it over.
pub(crate) type UpgradedReader = oneshot::Receiver<ReadHalf<TokioIo<Upgraded>>>;

impl Upgrading {
    /// Carries the application's bytes (`outgoing`) to the client and hands the
    /// client's side to `reader`, until both are done or the server aborts.
    pub async fn run(
        self,
        mut outgoing: ResponseBody,
        reader: oneshot::Sender<ReadHalf<TokioIo<Upgraded>>>,
    ) {
        let Upgrading {
            on_upgrade,
            upgrades,
            count: _count,
        } = self;
        let abort = upgrades.abort.clone();
        let pump = async move {
            let Ok(upgraded) = on_upgrade.await else {
                return;
            };
            let (read, mut write) = tokio::io::split(TokioIo::new(upgraded));
            if reader.send(read).is_err() {
                return;
            }
            // Whatever is still on its way of the 101 and of the responses before it
            // (the socket may have been full; guard/held.rs) leaves now: the client may
            // wait for the 101 before it sends anything.
            if write.flush().await.is_err() {
                return;
            }
            // Write until the application finishes (then FIN) or fails (then drop).
            while let Some(frame) = outgoing.frame().await {
                let Ok(frame) = frame else { return };
                if let Ok(data) = frame.into_data() {
                    if write.write_all(&data).await.is_err() {
                        return;
                    }
                }
            }
            let _ = write.shutdown().await;
        };
        tokio::select! {
            _ = pump => {}
            _ = abort.cancelled() => {}
        }
        upgrades.ended.store(true, Ordering::Release);
        upgrades.closed.notify_waiters();
    }
}

/// Reads the client's side of an upgraded connection in chunks; see
/// [`crate::RequestBody`].
pub(crate) enum UpgradedRead {
    Waiting(UpgradedReader),
    Reading(ReadHalf<TokioIo<Upgraded>>, BytesMut),
    Done,
}

impl UpgradedRead {
    /// The next chunk; `None` at the end (the client closed, or the upgrade failed).
    pub(crate) fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        loop {
            match self {
                UpgradedRead::Waiting(rx) => match Pin::new(rx).poll(cx) {
                    Poll::Ready(Ok(read)) => {
                        *self = UpgradedRead::Reading(read, BytesMut::new());
                    }
                    Poll::Ready(Err(_)) => *self = UpgradedRead::Done,
                    Poll::Pending => return Poll::Pending,
                },
                UpgradedRead::Reading(read, buf) => {
                    if buf.len() < READ_CHUNK {
                        buf.resize(READ_CHUNK, 0);
                    }
                    let mut out = ReadBuf::new(&mut buf[..]);
                    return match Pin::new(read).poll_read(cx, &mut out) {
                        Poll::Ready(Ok(())) => {
                            let n = out.filled().len();
                            if n == 0 {
                                *self = UpgradedRead::Done;
                                return Poll::Ready(None);
                            }
                            Poll::Ready(Some(Ok(buf.split_to(n).freeze())))
                        }
                        Poll::Ready(Err(e)) => {
                            *self = UpgradedRead::Done;
                            Poll::Ready(Some(Err(e)))
                        }
                        Poll::Pending => Poll::Pending,
                    };
                }
                UpgradedRead::Done => return Poll::Ready(None),
            }
        }
    }
}
