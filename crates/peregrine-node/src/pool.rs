//! The `workers` option on the binding side: a listening NativeServer owns a
//! [`HostPool`] of bridges, and each JS worker thread attaches to one of them by the
//! pool's token, which the TS package passes to the worker in its workerData.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use peregrine_core::bridge::Bridge;
use peregrine_core::pool::HostPool;

use crate::server::{JsWake, SharedWake};
use crate::tape::Tape;

/// A pool and the wake-up of each of its hosts, by host index.
pub struct WorkerPool {
    pub token: u32,
    pub pool: Arc<HostPool<Tape>>,
    pub wakes: Vec<Arc<JsWake>>,
}

impl WorkerPool {
    /// Makes a pool of `workers` hosts and registers it so that workers can attach.
    pub fn register(workers: usize, response_buffer_size: usize) -> Arc<WorkerPool> {
        let runtime = peregrine_core::runtime::shared();
        let wakes: Vec<Arc<JsWake>> = (0..workers).map(|_| Arc::new(JsWake::new())).collect();
        let bridges = wakes
            .iter()
            .map(|wake| {
                Bridge::new(
                    SharedWake(wake.clone()),
                    runtime.handle().clone(),
                    response_buffer_size,
                )
            })
            .collect();
        static NEXT_TOKEN: AtomicU32 = AtomicU32::new(1);
        let pool = Arc::new(WorkerPool {
            token: NEXT_TOKEN.fetch_add(1, Ordering::Relaxed),
            pool: Arc::new(HostPool::new(bridges)),
            wakes,
        });
        registry().insert(pool.token, pool.clone());
        pool
    }

    pub fn find(token: u32) -> Option<Arc<WorkerPool>> {
        registry().get(&token).cloned()
    }

    /// Forgets the pool: no worker can attach any more.
    pub fn unregister(&self) {
        registry().remove(&self.token);
    }

    /// Tells every worker that the server has stopped.
    pub fn stopped(&self) {
        for wake in &self.wakes {
            wake.stopped.store(true, Ordering::Release);
            wake.wake();
        }
    }

    /// A worker has gone: it gets no new requests, and those it had are aborted.
    pub fn detach(&self, index: usize) {
        let host = &self.pool.hosts()[index];
        host.ready.store(false, Ordering::Release);
        host.bridge.abort_all();
    }
}

fn registry() -> std::sync::MutexGuard<'static, HashMap<u32, Arc<WorkerPool>>> {
    static POOLS: OnceLock<Mutex<HashMap<u32, Arc<WorkerPool>>>> = OnceLock::new();
    POOLS
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}
