//! Gives the memory freed by parked connections back to the OS.
//!
//! Parking an HTTP/1.1 connection (`http1.rs`) frees hyper's buffers, about 17 KiB,
//! but glibc's malloc keeps freed memory in its heaps: the buffers sat between the
//! small allocations that live as long as their connections, so the freed pages stay
//! resident. After a burst of parks, `malloc_trim` returns those pages (glibc
//! releases every free page inside its heaps, not only at their tops). It runs once
//! parking has been quiet for a moment (or after a few seconds of steady parking), on
//! a blocking thread, and at most once every few seconds: it walks the heaps under
//! their locks. A no-op where the allocator is not glibc's.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Parks that make a trim worth it: about 17 MiB of buffers.
const PARKS_PER_TRIM: u64 = 1024;
/// Parking is quiet when no connection parked for this long.
const QUIET: Duration = Duration::from_millis(200);
/// The longest a trim waits for parking to be quiet.
const MAX_WAIT: Duration = Duration::from_secs(2);
/// The shortest time between two trims.
const MIN_INTERVAL: Duration = Duration::from_secs(5);

static PARKS: AtomicU64 = AtomicU64::new(0);
static SCHEDULED: AtomicBool = AtomicBool::new(false);

/// Counts a parked connection; schedules a trim once enough have parked. Called on a
/// tokio runtime.
pub(crate) fn parked() {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return;
    }
    let parks = PARKS.fetch_add(1, Ordering::Relaxed) + 1;
    if parks >= PARKS_PER_TRIM && !SCHEDULED.swap(true, Ordering::AcqRel) {
        tokio::spawn(trim_when_quiet());
    }
}

async fn trim_when_quiet() {
    let waiting = tokio::time::Instant::now();
    loop {
        let before = PARKS.load(Ordering::Relaxed);
        tokio::time::sleep(QUIET).await;
        if PARKS.load(Ordering::Relaxed) == before || waiting.elapsed() >= MAX_WAIT {
            break;
        }
    }
    PARKS.store(0, Ordering::Relaxed);
    let _ = tokio::task::spawn_blocking(trim).await;
    tokio::time::sleep(MIN_INTERVAL).await;
    SCHEDULED.store(false, Ordering::Release);
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim takes no pointers and is thread-safe (it locks each arena).
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
