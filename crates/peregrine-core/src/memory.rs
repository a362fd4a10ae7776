//! Gives the memory freed by parked connections back to the OS.
//!
//! Parking an HTTP/1.1 connection (`http1.rs`) frees hyper's buffers, about 17 KiB,
//! but glibc's malloc keeps freed memory in its heaps: the buffers sat between the
//! small allocations that live as long as their connections, so the freed pages stay
//! resident. After a burst of parks, `malloc_trim` returns those pages (glibc
//! releases every free page inside its heaps, not only at their tops). It runs once
//! parking has been quiet for a moment (or after a few seconds of steady parking), on
//! a blocking thread, and at most once every few seconds: it walks the heaps under
//! their locks.
//!
//! A process that allocates with something else sets its own way with [`set_release`]
//! (the napi binding does: it allocates with mimalloc). Without one, and where the
//! allocator is not glibc's, parking costs nothing here.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
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
static RELEASE: OnceLock<fn()> = OnceLock::new();
/// Releases asked of the I/O threads; each serves them when it next goes idle.
static RELEASES_ASKED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The releases this I/O thread has served.
    static RELEASES_SERVED: Cell<u64> = const { Cell::new(0) };
}

/// Sets how freed memory goes back to the OS, in place of glibc's `malloc_trim`, for
/// a process whose allocator is not the system's. After a burst of parked
/// connections (at most once every few seconds), `release` runs on every I/O thread
/// of the shared runtime as it next goes idle, since allocators such as mimalloc
/// keep freed memory per thread and give it back only from the thread that freed it.
/// The first call wins.
pub fn set_release(release: fn()) {
    let _ = RELEASE.set(release);
}

/// Runs on each I/O thread just before it goes idle (`runtime.rs`): serves a release
/// asked since the thread last served one. An atomic load otherwise.
pub(crate) fn io_thread_idle() {
    let asked = RELEASES_ASKED.load(Ordering::Relaxed);
    if RELEASES_SERVED.get() == asked {
        return;
    }
    RELEASES_SERVED.set(asked);
    if let Some(release) = RELEASE.get() {
        release();
    }
}

/// Counts a parked connection; schedules a trim once enough have parked. Called on a
/// tokio runtime.
pub(crate) fn parked() {
    if RELEASE.get().is_none() && !cfg!(all(target_os = "linux", target_env = "gnu")) {
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
    if RELEASE.get().is_some() {
        // This thread serves it as soon as this task ends; the others when they next
        // go idle (an idle one, when work next wakes it).
        RELEASES_ASKED.fetch_add(1, Ordering::Relaxed);
    } else {
        let _ = tokio::task::spawn_blocking(trim).await;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_io_thread_serves_an_asked_release_once_as_it_goes_idle() {
        static RELEASED: AtomicU64 = AtomicU64::new(0);
        set_release(|| {
            RELEASED.fetch_add(1, Ordering::Relaxed);
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .on_thread_park(io_thread_idle)
            .build()
            .unwrap();
        // Runs `work` as a task, lets the worker go idle, and counts the releases so
        // far (waiting up to a second for `expected`, then a moment for any extra).
        let released_after = |work: fn(), expected: u64| {
            runtime.block_on(async { tokio::spawn(async move { work() }).await.unwrap() });
            for _ in 0..200 {
                if RELEASED.load(Ordering::Relaxed) >= expected {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            std::thread::sleep(Duration::from_millis(50));
            RELEASED.load(Ordering::Relaxed)
        };
        let asked = || {
            RELEASES_ASKED.fetch_add(1, Ordering::Relaxed);
        };
        assert_eq!(released_after(|| {}, 0), 0, "nothing was asked");
        assert_eq!(released_after(asked, 1), 1);
        assert_eq!(released_after(|| {}, 1), 1, "a release is served once");
        assert_eq!(released_after(asked, 2), 2);
    }
}
