//! The process-wide tokio runtime that runs every Peregrine server in the process.

use std::sync::OnceLock;

use tokio::runtime::{Builder, Runtime};

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The number of I/O threads: `PEREGRINE_IO_THREADS` when set, otherwise one per core
/// this process may run on (CPU affinity is respected, so `taskset -c 0` gives one).
pub fn io_thread_count() -> usize {
    std::env::var("PEREGRINE_IO_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
}

/// The shared runtime, built on first use.
pub fn shared() -> &'static Runtime {
    RUNTIME.get_or_init(|| {
        Builder::new_multi_thread()
            .worker_threads(io_thread_count())
            .thread_name("peregrine-io")
            .on_thread_park(crate::memory::io_thread_idle)
            .enable_all()
            .build()
            .expect("building the tokio runtime failed: the process is out of threads or file descriptors")
    })
}
