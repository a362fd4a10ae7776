//! Serving one listener from several hosts: the `workers` option, where each host is
//! a JS worker thread with its own [`Bridge`].
//!
//! The I/O threads parse every connection; each request goes to the host with the
//! fewest exchanges in flight, so a worker stuck in a slow handler stops getting new
//! work while the others go on. Requests of one connection may go to different hosts.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::bridge::{Bridge, Event, EventQueue};
use crate::connection::ConnectionInfo;
use crate::guard::Rejection;
use crate::handler::{Abort, Handler, Request, Response};

/// One host of a pool.
pub struct PoolHost<Q: EventQueue = Vec<Event>> {
    pub bridge: Arc<Bridge<Q>>,
    /// False until the host is ready for requests, and again once it has gone. While
    /// no host is ready, requests queue on the least busy one.
    pub ready: AtomicBool,
}

pub struct HostPool<Q: EventQueue = Vec<Event>> {
    hosts: Vec<PoolHost<Q>>,
    /// Where the search for the least busy host starts: rotating it spreads requests
    /// over hosts that are equally busy (all idle, say) instead of piling on the first.
    next: AtomicUsize,
}

impl<Q: EventQueue> HostPool<Q> {
    /// A pool over `bridges`, none of them ready yet.
    pub fn new(bridges: Vec<Arc<Bridge<Q>>>) -> HostPool<Q> {
        assert!(!bridges.is_empty(), "a host pool needs at least one host");
        HostPool {
            hosts: bridges
                .into_iter()
                .map(|bridge| PoolHost {
                    bridge,
                    ready: AtomicBool::new(false),
                })
                .collect(),
            next: AtomicUsize::new(0),
        }
    }

    pub fn hosts(&self) -> &[PoolHost<Q>] {
        &self.hosts
    }

    /// The host a new request goes to.
    fn pick(&self) -> &Arc<Bridge<Q>> {
        let count = self.hosts.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % count;
        let mut best: Option<(&PoolHost<Q>, usize)> = None;
        for offset in 0..count {
            let host = &self.hosts[(start + offset) % count];
            if !host.ready.load(Ordering::Acquire) {
                continue;
            }
            let load = host.bridge.in_flight();
            if best.is_none_or(|(_, least)| load < least) {
                best = Some((host, load));
            }
        }
        match best {
            Some((host, _)) => &host.bridge,
            None => &self.hosts[start].bridge,
        }
    }
}

impl<Q: EventQueue> Handler for HostPool<Q> {
    const CONCURRENT_PIPELINING: bool = true;

    fn call(&self, request: Request) -> impl Future<Output = Result<Response, Abort>> + Send {
        self.pick().call(request)
    }

    fn connection_closed(&self, connection: &ConnectionInfo) {
        for host in &self.hosts {
            host.bridge.connection_closed(connection);
        }
    }

    fn rejected(&self, reason: Rejection, connection: &ConnectionInfo) {
        // One log event per refusal: the first ready host logs it.
        let host = self
            .hosts
            .iter()
            .find(|h| h.ready.load(Ordering::Acquire))
            .unwrap_or(&self.hosts[0]);
        host.bridge.rejected(reason, connection);
    }
}
