//! Synthetic requests for bench/crossing.mjs, the N-API crossing micro-benchmark.
//!
//! They enter a started server's bridge exactly where hyper's requests do
//! (`Handler::call`), so JS receives them through the tape and answers through
//! `respond`, with no socket involved. Nothing here is used when serving.
//!
//! Two ways to learn that the responses arrived:
//! - with `onDone`, a task on the core's runtime awaits them, as hyper's connection
//!   tasks would, and calls `onDone` (the round trip, tokio wake-ups included);
//! - without it, no connection task is woken per response and `settle()` collects
//!   them afterwards, outside the timed region (what the JS thread alone spends per
//!   request).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use napi::bindgen_prelude::Function;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use peregrine_core::{ConnectionInfo, Handler, Request, RequestBody, RequestHead, Scheme};

use crate::server::NativeServer;

/// Weak: the running server already holds the event loop open.
type DoneFn = ThreadsafeFunction<(), (), (), napi::Status, false, true>;

type Pending = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Far above the core's connection ids, so the two never collide.
static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1 << 48);

/// A batch of `count` identical GET requests, as one keep-alive connection would send
/// them (`GET {path} HTTP/1.1` with only a Host header, like wrk). `prepare()` builds
/// the batch outside the timed region; `NativeServer.injectRequests` sends it.
#[napi]
pub struct SyntheticRequests {
    count: u32,
    path: String,
    host: String,
    connection: Arc<ConnectionInfo>,
    requests: Vec<Request>,
    on_done: Option<Arc<DoneFn>>,
    /// Injected without `onDone`: polled only by `settle()`.
    pending: Vec<Pending>,
}

#[napi]
impl SyntheticRequests {
    /// `host` is the server's "ip:port". `onDone`, when given, is called with no
    /// arguments once every request of an injected batch has received its response.
    #[napi(constructor)]
    pub fn new(
        count: u32,
        path: String,
        host: String,
        on_done: Option<Function<(), ()>>,
    ) -> napi::Result<Self> {
        let local: SocketAddr = host.parse().map_err(|_| {
            napi::Error::from_reason(format!(
                "host \"{host}\" must be an ip:port such as 127.0.0.1:5000"
            ))
        })?;
        let on_done = match on_done {
            Some(f) => {
                let tsfn: DoneFn = f
                    .build_threadsafe_function()
                    .weak::<true>()
                    .build_callback(|_| Ok(()))?;
                Some(Arc::new(tsfn))
            }
            None => None,
        };
        Ok(SyntheticRequests {
            count,
            path,
            host,
            connection: Arc::new(ConnectionInfo::new(
                NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed),
                SocketAddr::from(([127, 0, 0, 1], 40000)),
                local,
                Scheme::Http,
                None,
            )),
            requests: Vec::new(),
            on_done,
            pending: Vec::new(),
        })
    }

    /// Builds the next batch of `count` requests.
    #[napi]
    pub fn prepare(&mut self) -> napi::Result<()> {
        self.requests.clear();
        self.requests.reserve(self.count as usize);
        for _ in 0..self.count {
            let (parts, ()) = http::Request::get(self.path.as_str())
                .header(http::header::HOST, self.host.as_str())
                .body(())
                .map_err(|e| napi::Error::from_reason(format!("path \"{}\": {e}", self.path)))?
                .into_parts();
            self.requests.push(Request {
                head: RequestHead {
                    parts,
                    connection: self.connection.clone(),
                    stream_id: None,
                },
                body: RequestBody::full(bytes::Bytes::new()),
            });
        }
        Ok(())
    }

    /// Collects the responses of a batch injected without `onDone`: waits for them (the
    /// core answers on its runtime, `answerer.rs`), for at most SETTLE_TIMEOUT in all,
    /// returns how many arrived, and forgets the batch.
    #[napi]
    pub fn settle(&mut self) -> u32 {
        let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        let mut answered = 0;
        for mut call in self.pending.drain(..) {
            loop {
                if call.as_mut().poll(&mut cx).is_ready() {
                    answered += 1;
                    break;
                }
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                std::thread::park_timeout(deadline - now);
            }
        }
        answered
    }
}

/// The CPU time the calling thread has used, in nanoseconds, or null where there is no
/// per-thread clock. The crossing benchmark reads it on the JS thread: the core answers
/// response batches on its own threads, which share the JS thread's core when the
/// benchmark is pinned, so wall time would count their work as the JS thread's.
// The tests' build does not register napi functions, so it sees this one unused.
#[cfg_attr(test, allow(dead_code))]
#[napi]
pub fn thread_cpu_time() -> Option<f64> {
    #[cfg(unix)]
    {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes only the timespec it is given.
        let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
        (status == 0).then_some(now.tv_sec as f64 * 1e9 + now.tv_nsec as f64)
    }
    #[cfg(not(unix))]
    None
}

/// How long `settle()` waits for a batch's responses.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Wakes the thread waiting in `settle()`.
struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

#[napi]
impl NativeServer {
    /// Hands every prepared request of `batch` to the bridge, as hyper would.
    ///
    /// Each request is queued before this returns, on the JS thread, so the JS thread
    /// wakes once and drains them as one batch. With `onDone`, one task on the core's
    /// runtime then waits for the responses and calls it.
    #[napi]
    pub fn inject_requests(&self, batch: &mut SyntheticRequests) -> napi::Result<()> {
        if batch.requests.is_empty() {
            return Err(napi::Error::from_reason(
                "no synthetic requests are prepared: call prepare() before each injectRequests()",
            ));
        }
        let runtime = peregrine_core::runtime::shared();
        let _context = runtime.enter();
        let mut cx = Context::from_waker(Waker::noop());
        let mut pending: Vec<Pending> = Vec::with_capacity(batch.requests.len());
        for request in batch.requests.drain(..) {
            let bridge = self.bridge.clone();
            let mut call: Pending = Box::pin(async move {
                let _ = bridge.call(request).await;
            });
            // The first poll queues the request; later polls (the task awaiting them,
            // or settle()) register their own waker.
            if call.as_mut().poll(&mut cx) == Poll::Pending {
                pending.push(call);
            }
        }
        match batch.on_done.clone() {
            Some(on_done) => {
                runtime.spawn(async move {
                    for call in pending {
                        call.await;
                    }
                    on_done.call((), ThreadsafeFunctionCallMode::NonBlocking);
                });
            }
            None => batch.pending.extend(pending),
        }
        Ok(())
    }
}
