//! Server counters: open connections, totals, and refusals by reason. Updated with
//! relaxed atomics on the hot path; read as a snapshot.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::guard::Rejection;

#[derive(Default)]
pub struct ServerStats {
    current_connections: AtomicU64,
    current_upgraded: AtomicU64,
    current_idle: AtomicU64,
    total_connections: AtomicU64,
    total_requests: AtomicU64,
    rejections: [AtomicU64; Rejection::ALL.len()],
}

/// A point-in-time copy of [`ServerStats`].
#[derive(Debug, Clone, Default)]
pub struct StatsSnapshot {
    pub current_connections: u64,
    /// Open HTTP/1.1 connections parked between requests (`http1.rs`): counted in
    /// `current_connections` too.
    pub idle_connections: u64,
    pub total_connections: u64,
    pub total_requests: u64,
    /// Reason code and count, for every reason seen at least once.
    pub rejections: Vec<(&'static str, u64)>,
}

impl ServerStats {
    /// Counts a new connection, unless `max` connections are already open.
    pub(crate) fn try_open(self: &Arc<Self>, max: Option<u64>) -> Option<ConnectionCount> {
        let open = self.current_connections.fetch_add(1, Ordering::Relaxed) + 1;
        if max.is_some_and(|max| open > max) {
            self.current_connections.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        self.total_connections.fetch_add(1, Ordering::Relaxed);
        Some(ConnectionCount(self.clone()))
    }

    /// Moves an open connection from maxConcurrentConnections' count to
    /// maxConcurrentUpgradedConnections', unless `max` upgraded connections are open.
    pub(crate) fn try_upgrade(self: &Arc<Self>, max: Option<u64>) -> Option<UpgradedCount> {
        let open = self.current_upgraded.fetch_add(1, Ordering::Relaxed) + 1;
        if max.is_some_and(|max| open > max) {
            self.current_upgraded.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        self.current_connections.fetch_sub(1, Ordering::Relaxed);
        Some(UpgradedCount(self.clone()))
    }

    /// Counts a parked HTTP/1.1 connection until the returned count is dropped.
    pub(crate) fn park(self: &Arc<Self>) -> IdleCount {
        self.current_idle.fetch_add(1, Ordering::Relaxed);
        IdleCount(self.clone())
    }

    pub(crate) fn request(&self) {
        self.total_requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn rejected(&self, reason: Rejection) {
        self.rejections[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            current_connections: self.current_connections.load(Ordering::Relaxed),
            idle_connections: self.current_idle.load(Ordering::Relaxed),
            total_connections: self.total_connections.load(Ordering::Relaxed),
            total_requests: self.total_requests.load(Ordering::Relaxed),
            rejections: Rejection::ALL
                .iter()
                .zip(&self.rejections)
                .map(|(r, n)| (r.code(), n.load(Ordering::Relaxed)))
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }
}

/// Counts one upgraded connection until dropped. It is dropped before the connection's
/// [`ConnectionCount`], so the connection goes back to the open count just before it
/// leaves it.
pub(crate) struct UpgradedCount(Arc<ServerStats>);

impl Drop for UpgradedCount {
    fn drop(&mut self) {
        self.0.current_upgraded.fetch_sub(1, Ordering::Relaxed);
        self.0.current_connections.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts one open connection until dropped.
pub(crate) struct ConnectionCount(Arc<ServerStats>);

impl Drop for ConnectionCount {
    fn drop(&mut self) {
        self.0.current_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts one parked connection until dropped.
pub(crate) struct IdleCount(Arc<ServerStats>);

impl Drop for IdleCount {
    fn drop(&mut self) {
        self.0.current_idle.fetch_sub(1, Ordering::Relaxed);
    }
}
