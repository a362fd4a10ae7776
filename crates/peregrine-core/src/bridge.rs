//! Serving requests from a host that runs on another thread.
//!
//! The napi binding cannot run JavaScript on tokio's threads, so it serves through a
//! [`Bridge`]: every request, body chunk and abort becomes an [`Event`] in one queue.
//! Events pushed on an I/O thread do not wake the host at once: a flusher task wakes it
//! when the I/O thread has finished its current pass over ready connections (see
//! [`Bridge::push`]), so one wake carries every request that pass parsed. The host then
//! takes every waiting event with [`Bridge::drain`]. However many requests arrive while
//! the host is busy, they cost one wake-up. The host answers through the methods on
//! [`Bridge`], addressing each request by its [`ExchangeId`].
//!
//! Request bodies are pulled: the host asks for one chunk at a time with
//! [`Bridge::read_body`], so a slow reader never makes the server buffer an upload.
//! Streamed responses go through a [`BodyWriter`] whose high-water mark is
//! maxResponseBufferSize; [`Event::WriteReady`] says when a refused writer may go on.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;
use tokio::runtime::Handle;
use tokio::sync::{oneshot, Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::body::{
    BodyChunk, BodyWriter, ChannelSignal, RelayedBody, RequestBody, ResponseBody, WriteOutcome,
};
use crate::connection::ConnectionInfo;
use crate::error::{Error, ErrorCode};
use crate::guard::Rejection;
use crate::handler::{Abort, Handler, Request, RequestHead, ResetStream, Response};
use crate::upgrade::UpgradeSlot;

/// Identifies one request/response exchange between the bridge and its host.
pub type ExchangeId = u32;

/// Something the host must hear about.
pub enum Event {
    /// A new request. `body_empty` tells the host not to bother reading the body.
    /// `first_on_connection` is true for the first request of a TLS connection that
    /// this host sees, so a host can be sent per-connection data (TLS details) once.
    Request {
        id: ExchangeId,
        head: RequestHead,
        body_empty: bool,
        first_on_connection: bool,
    },
    /// A chunk of request body, in answer to one [`Bridge::read_body`].
    Data { id: ExchangeId, data: Bytes },
    /// Request trailers (chunked HTTP/1.1 or HTTP/2); [`Event::End`] follows.
    Trailers { id: ExchangeId, trailers: HeaderMap },
    /// The request body is complete.
    End { id: ExchangeId },
    /// Reading the request body failed (too large, or the client broke off).
    BodyError { id: ExchangeId, error: Error },
    /// A streamed response that reported [`WriteOutcome::Full`] may be written again.
    WriteReady { id: ExchangeId },
    /// The client went away before the exchange completed.
    Aborted { id: ExchangeId },
    /// A TLS connection that had requests has closed: per-connection data the host
    /// keeps for it can go.
    ConnectionClosed { connection_id: u64 },
    /// The edge refused a request or a connection before it reached the host; for the
    /// host's log.
    Rejected {
        reason: Rejection,
        connection_id: u64,
        remote: std::net::SocketAddr,
    },
    /// A response the host handed over could not be sent (see [`Bridge::refuse`]); its
    /// exchange was aborted. For the host's log.
    Refused { id: ExchangeId, error: Error },
}

/// Where a bridge queues events until its host drains them, and the form they take
/// there. A `Vec<Event>` keeps them as they are. A host that reads them in some other
/// form (the napi binding's tape) encodes each one as it is pushed, on the I/O thread
/// that made it: the request's head is still in that thread's cache and is freed there,
/// and the host's thread only swaps the queue out (bench/README.md).
///
/// `push` runs under the bridge's queue lock, so I/O threads pushing to one bridge
/// take turns for as long as an encoding takes (tens of nanoseconds for a request).
/// One host thread cannot take requests much faster than that anyway; with several
/// (the `workers` option) each has a bridge of its own.
pub trait EventQueue: Default + Send + 'static {
    fn push(&mut self, event: Event);
    /// The number of events queued.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Empties a drained queue so that a later batch can queue into its buffers.
    /// Returns false when they are too large to keep: a burst must not pin its memory.
    fn reset(&mut self) -> bool;
}

impl EventQueue for Vec<Event> {
    fn push(&mut self, event: Event) {
        Vec::push(self, event);
    }
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn reset(&mut self) -> bool {
        self.clear();
        self.capacity() <= RECYCLED_EVENTS_MAX
    }
}

/// Wakes the host so that it calls [`Bridge::drain`]. Called from I/O threads at most
/// once per batch; it must not block.
pub trait Wake: Send + Sync + 'static {
    fn wake(&self);
}

enum BodyState {
    Idle(RequestBody),
    Pumping(Arc<Semaphore>),
    Gone,
}

/// Header fields a host decoded for a whole batch of responses at once (one
/// allocation), shared by the batch's responses, with the range that is one response's.
/// The future waiting for the response makes its `HeaderMap`, on the I/O thread that
/// sends it: a map made on the host's thread was freed on the I/O thread, two
/// allocations per response that the host's allocator then had to collect back
/// (bench/README.md).
pub struct SharedFields {
    fields: Arc<Vec<(HeaderName, HeaderValue)>>,
    range: Range<usize>,
}

impl SharedFields {
    /// None when `range` is not within `fields`.
    pub fn new(
        fields: Arc<Vec<(HeaderName, HeaderValue)>>,
        range: Range<usize>,
    ) -> Option<SharedFields> {
        fields.get(range.clone())?;
        Some(SharedFields { fields, range })
    }

    fn into_map(self) -> HeaderMap {
        let fields = self.fields.get(self.range).unwrap_or_default();
        // Room for what the server adds: Server, and Date and Content-Length over h2.
        let mut map = HeaderMap::with_capacity(fields.len() + 3);
        for (name, value) in fields {
            map.append(name.clone(), value.clone());
        }
        map
    }
}

/// A whole response whose header map is made where it is sent ([`SharedFields`]).
pub struct WholeResponse {
    pub status: StatusCode,
    pub headers: SharedFields,
    pub body: ResponseBody,
}

/// A response as the host gave it. A built one is boxed: it is the rare kind (streamed
/// heads, upgrades, reason phrases), and unboxed it made every answer, whole ones too,
/// as large as an `http::Response`, copied into the answer's channel each time.
enum Reply {
    Built(Box<Response>),
    Whole(WholeResponse),
}

impl Reply {
    fn into_response(self) -> Response {
        match self {
            Reply::Built(response) => *response,
            Reply::Whole(whole) => {
                let mut response = http::Response::new(whole.body);
                *response.status_mut() = whole.status;
                *response.headers_mut() = whole.headers.into_map();
                response
            }
        }
    }
}

/// What answers a request's future.
struct Answer {
    outcome: Result<Reply, Abort>,
    /// The request body a whole response leaves unread, dropped by the future on the
    /// I/O thread that made it rather than on the host's. There an HTTP/2 body's drop
    /// finds its connection's stream state in cache, and the memory goes back to the
    /// thread that allocated it (h2c: 5 % of the JS thread went to these drops).
    unread: Option<RequestBody>,
}

impl Answer {
    fn outcome(outcome: Result<Response, Abort>) -> Answer {
        Answer {
            outcome: outcome.map(|response| Reply::Built(Box::new(response))),
            unread: None,
        }
    }
}

type Responder = oneshot::Sender<Answer>;

/// Answers an exchange taken from the map: the unread request body goes along, to be
/// dropped on the I/O thread.
fn deliver(responder: Responder, mut exchange: Exchange, reply: Reply) {
    let unread = match std::mem::replace(&mut exchange.body, BodyState::Gone) {
        BodyState::Idle(body) => Some(body),
        _ => None,
    };
    // If the client left meanwhile, the answer is dropped here, outside any lock.
    let _ = responder.send(Answer {
        outcome: Ok(reply),
        unread,
    });
}

struct Exchange {
    responder: Option<Responder>,
    body: BodyState,
    writer: Option<BodyWriter>,
    /// Stops the body pump when the exchange ends. Made when the pump starts: most
    /// requests have no body, and a token costs an allocation and a lock to cancel.
    cancel: Option<CancellationToken>,
    /// Set for an upgradable HTTP/1.1 request until it is upgraded or answered.
    upgrade: Option<Box<UpgradeSlot>>,
}

impl Drop for Exchange {
    fn drop(&mut self) {
        if let Some(cancel) = &self.cancel {
            cancel.cancel();
        }
    }
}

/// Past this many queued events the host is woken without waiting for the I/O thread's
/// pass to end, so that on a machine with spare cores the host starts on a large batch
/// while the I/O thread goes on parsing. Not when the process has one core to run on
/// (`taskset`, a container's CPU quota): there the woken host preempts the I/O thread
/// and splits its pass into small batches, each costing two context switches. Server
/// pinned to one core, 16-deep pipelining: 300k -> 314-338k req/s, the JS thread 1.02
/// -> 0.81-0.91 µs per request; h2c 212-218k -> 220-234k (bench/README.md).
const WAKE_AT_EVENTS: usize = 64;

/// The most passes over ready connections a flusher waits for while each one still
/// adds events (see [`Bridge::flush_after_pass`]).
const MAX_FLUSH_PASSES: u32 = 8;

/// The largest queue [`Bridge::recycle`] keeps: 1,024 events, 240 KiB.
const RECYCLED_EVENTS_MAX: usize = 1024;

/// Hashes exchange ids for the exchange map. Ids are sequential u32s picked by the
/// bridge, never by a client, so a multiplicative hash spreads them well enough;
/// SipHash's flood resistance would cost about as much as the rest of the lookup.
#[derive(Default)]
struct ExchangeIdHasher(u64);

impl Hasher for ExchangeIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, id: u32) {
        self.0 = u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type ExchangeMap = HashMap<ExchangeId, Exchange, BuildHasherDefault<ExchangeIdHasher>>;

pub struct Bridge<Q: EventQueue = Vec<Event>> {
    events: Mutex<Q>,
    /// The buffer of a drained batch, given back by the host ([`Bridge::recycle`]): the
    /// next batch queues into it instead of growing a new one from nothing.
    spare: Mutex<Q>,
    wake_pending: AtomicBool,
    /// A flusher task is spawned and will wake the host after the current I/O pass.
    flush_scheduled: AtomicBool,
    waker: Box<dyn Wake>,
    exchanges: Mutex<ExchangeMap>,
    /// The size of `exchanges`, readable without the lock (a [`crate::HostPool`] picks
    /// the least busy host by it).
    in_flight: AtomicUsize,
    /// Notified when the last exchange in flight ends.
    idle: Notify,
    /// TLS connections whose details this host has been sent (with their first request
    /// here); with several hosts, each learns about a connection separately.
    tls_connections: Mutex<HashSet<u64>>,
    next_id: AtomicU32,
    runtime: Handle,
    response_buffer_size: usize,
    /// [`WAKE_AT_EVENTS`], or no limit on a single core.
    wake_at_events: usize,
    me: Weak<Bridge<Q>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // No code path panics while holding these locks with the state half-updated.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn already_started(id: ExchangeId) -> Error {
    Error::new(
        ErrorCode::ResponseAlreadyStarted,
        format!("request {id} has already started its response"),
    )
}

/// A response head, its reason phrase checked: done before anything changes, so that a
/// bad phrase leaves the exchange as it was.
fn response_head(
    status: StatusCode,
    headers: HeaderMap,
    reason: Option<&str>,
) -> Result<http::response::Parts, Error> {
    let mut head = http::Response::new(());
    if let Some(reason) = reason {
        crate::handler::set_reason_phrase(&mut head, reason)?;
    }
    let (mut parts, ()) = head.into_parts();
    parts.status = status;
    parts.headers = headers;
    Ok(parts)
}

fn unknown(id: ExchangeId) -> Error {
    Error::new(
        ErrorCode::UnknownExchange,
        format!("request {id} is finished or was aborted"),
    )
}

impl<Q: EventQueue> Bridge<Q> {
    /// `response_buffer_size` is the high-water mark of streamed responses
    /// (maxResponseBufferSize).
    pub fn new(waker: impl Wake, runtime: Handle, response_buffer_size: usize) -> Arc<Bridge<Q>> {
        Arc::new_cyclic(|me| Bridge {
            events: Mutex::new(Q::default()),
            spare: Mutex::new(Q::default()),
            wake_pending: AtomicBool::new(false),
            flush_scheduled: AtomicBool::new(false),
            waker: Box::new(waker),
            exchanges: Mutex::new(ExchangeMap::default()),
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
            tls_connections: Mutex::new(HashSet::new()),
            next_id: AtomicU32::new(1),
            runtime,
            response_buffer_size,
            wake_at_events: if std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 {
                WAKE_AT_EVENTS
            } else {
                usize::MAX
            },
            me: me.clone(),
        })
    }

    /// Queues an event for the host and makes sure a wake-up follows.
    fn push(&self, event: Event) {
        self.queue(|events| events.push(event));
    }

    /// Queues two events that the host must see in one batch: between batches it
    /// runs the app, which could otherwise act on the first without the second.
    fn push_together(&self, first: Event, second: Event) {
        self.queue(|events| {
            events.push(first);
            events.push(second);
        });
    }

    /// Adds to the queue under its lock, then makes sure a wake-up follows.
    ///
    /// Waking the host for the first event of a batch made it preempt the I/O thread
    /// on a busy core after every few requests (two context switches each). So on an
    /// I/O thread the wake is deferred to a flusher task that yields once: tokio runs a
    /// yielded task again only after the worker has polled the other ready tasks, that
    /// is after this pass over ready connections. Off the runtime (the host's own
    /// thread) and, with more than one core, for large batches the host is woken at once.
    fn queue(&self, add: impl FnOnce(&mut Q)) {
        let queued = {
            let mut events = lock(&self.events);
            add(&mut events);
            events.len()
        };
        if self.wake_pending.load(Ordering::Acquire) {
            return;
        }
        if queued < self.wake_at_events && Handle::try_current().is_ok() {
            if !self.flush_scheduled.swap(true, Ordering::AcqRel) {
                if let Some(me) = self.me.upgrade() {
                    self.runtime.spawn(me.flush_after_pass());
                    return;
                }
                self.flush_scheduled.store(false, Ordering::Release);
            } else {
                return;
            }
        }
        self.wake_now();
    }

    fn wake_now(&self) {
        if !self.wake_pending.swap(true, Ordering::AcqRel) {
            self.waker.wake();
        }
    }

    /// Wakes the host once a pass over ready connections adds no event, or after
    /// MAX_FLUSH_PASSES passes. Under load the JS thread and the I/O thread share
    /// a core, and every wake costs two context switches, so one more pass that parses
    /// more requests is cheaper than waking the host for the ones queued so far. When a
    /// pass adds nothing, the I/O thread is about to go idle and waiting longer gains
    /// nothing; a lone request waits for one pass, as before. (On the development
    /// machine, plaintext went from 65k to 70k req/s; bench/README.md.)
    async fn flush_after_pass(self: Arc<Self>) {
        let mut queued = lock(&self.events).len();
        for _ in 0..MAX_FLUSH_PASSES {
            tokio::task::yield_now().await;
            let now = lock(&self.events).len();
            if now <= queued || self.wake_pending.load(Ordering::Acquire) {
                break;
            }
            queued = now;
        }
        // Cleared before the check: an event pushed from here on schedules a new flusher.
        self.flush_scheduled.store(false, Ordering::Release);
        if !self.wake_pending.load(Ordering::Acquire) && !lock(&self.events).is_empty() {
            self.wake_now();
        }
    }

    /// Takes every waiting event. Call it from the host thread after a wake, and give
    /// the emptied queue back with [`Bridge::recycle`].
    pub fn drain(&self) -> Q {
        // Clear the flag first: an event pushed after this point wakes the host again
        // rather than being left in the queue unnoticed.
        self.wake_pending.store(false, Ordering::Release);
        let spare = std::mem::take(&mut *lock(&self.spare));
        std::mem::replace(&mut *lock(&self.events), spare)
    }

    /// Takes back a drained batch's queue, to queue a later batch into. A queue grown
    /// from nothing for every batch moved its contents at every doubling; a recycled one
    /// is allocated once, at the size of the batches the host sees. One that
    /// [`EventQueue::reset`] finds too large is freed instead. Sizing each new queue from
    /// the last batch, before this, made every wake allocate for the largest batch seen,
    /// which under backpressure (one wake per write-ready) fragmented the heap by
    /// hundreds of megabytes.
    pub fn recycle(&self, mut events: Q) {
        if events.reset() {
            *lock(&self.spare) = events;
        }
    }

    /// The number of exchanges in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    fn insert(&self, exchange: Exchange) -> ExchangeId {
        let mut map = lock(&self.exchanges);
        loop {
            // Ids wrap after 2^32 requests; skip any still in use.
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            if id != 0 && !map.contains_key(&id) {
                map.insert(id, exchange);
                self.in_flight.store(map.len(), Ordering::Relaxed);
                return id;
            }
        }
    }

    fn remove(&self, id: ExchangeId) -> Option<Exchange> {
        self.remove_from(&mut lock(&self.exchanges), id)
    }

    /// [`Bridge::remove`] under a lock the caller holds.
    fn remove_from(&self, map: &mut ExchangeMap, id: ExchangeId) -> Option<Exchange> {
        let exchange = map.remove(&id);
        if exchange.is_some() {
            self.removed(map);
        }
        exchange
    }

    /// Counts the exchanges left after removals, under the map's lock, and wakes
    /// whoever waits for none to be left.
    fn removed(&self, map: &ExchangeMap) {
        self.in_flight.store(map.len(), Ordering::Relaxed);
        if map.is_empty() {
            self.idle.notify_waiters();
        }
    }

    /// Waits until no exchange is in flight, or `timeout` has passed; then aborts
    /// whatever is left. For a host that leaves while the server goes on.
    pub async fn settle(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let idle = self.idle.notified();
            if self.in_flight() == 0 {
                return;
            }
            tokio::select! {
                _ = idle => {}
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        self.abort_all();
    }

    /// Aborts every exchange in flight: the host serving them is gone.
    pub fn abort_all(&self) {
        let ids: Vec<ExchangeId> = lock(&self.exchanges).keys().copied().collect();
        for id in ids {
            self.abort(id);
        }
    }

    fn take_responder(&self, id: ExchangeId) -> Result<Responder, Error> {
        let mut map = lock(&self.exchanges);
        let exchange = map.get_mut(&id).ok_or_else(|| unknown(id))?;
        exchange.responder.take().ok_or_else(|| already_started(id))
    }

    /// Sends a whole response in one step and ends the exchange, under one lock of the
    /// exchange map.
    pub fn respond(&self, id: ExchangeId, response: Response) -> Result<(), Error> {
        self.answer(id, Reply::Built(Box::new(response)))
    }

    /// [`Bridge::respond`] for a response whose header map is made on the I/O thread
    /// (the hot path: every whole response of a batch).
    pub fn respond_whole(&self, id: ExchangeId, response: WholeResponse) -> Result<(), Error> {
        self.answer(id, Reply::Whole(response))
    }

    fn answer(&self, id: ExchangeId, reply: Reply) -> Result<(), Error> {
        let (responder, exchange) = {
            let mut map = lock(&self.exchanges);
            let taken = Self::take_unanswered(&mut map, id)?;
            self.removed(&map);
            taken
        };
        deliver(responder, exchange, reply);
        Ok(())
    }

    /// Removes an exchange that has not started its response, to answer it; one that
    /// has stays where it is.
    fn take_unanswered(
        map: &mut ExchangeMap,
        id: ExchangeId,
    ) -> Result<(Responder, Exchange), Error> {
        let mut exchange = map.remove(&id).ok_or_else(|| unknown(id))?;
        match exchange.responder.take() {
            Some(responder) => Ok((responder, exchange)),
            None => {
                map.insert(id, exchange);
                Err(already_started(id))
            }
        }
    }

    /// Sends the response head; the body follows through [`Bridge::write`] and
    /// [`Bridge::finish`].
    pub fn start_response(
        &self,
        id: ExchangeId,
        status: StatusCode,
        headers: HeaderMap,
        reason: Option<&str>,
    ) -> Result<(), Error> {
        let head = response_head(status, headers, reason)?;
        let responder = self.take_responder(id)?;
        let body = self.response_channel(id, None);
        let _ = responder.send(Answer::outcome(Ok(http::Response::from_parts(head, body))));
        Ok(())
    }

    /// The channel a streamed response (or an upgraded stream) is written through: the
    /// writer goes in the exchange, hyper reads the body. With `incoming`, the request
    /// body is replaced too (what the client sends after an upgrade).
    fn response_channel(&self, id: ExchangeId, incoming: Option<RequestBody>) -> ResponseBody {
        let me = self.me.clone();
        let (writer, body) = BodyWriter::channel(
            self.response_buffer_size,
            Box::new(move |signal| {
                if let Some(bridge) = me.upgrade() {
                    bridge.on_channel_signal(id, signal);
                }
            }),
        );
        if let Some(exchange) = lock(&self.exchanges).get_mut(&id) {
            exchange.writer = Some(writer);
            if let Some(incoming) = incoming {
                exchange.body = BodyState::Idle(incoming);
            }
        }
        body
    }

    /// Answers with the exchange's own unread request body as the response body, which
    /// the connection then streams without the host (an echo, a host relaying what it
    /// was sent): each chunk goes out as soon as it is read, and the next is read
    /// after. The request body's limits still apply, and request trailers stay the
    /// request's.
    ///
    /// The head goes out once the first chunk is in, as when the host writes each
    /// chunk itself: reading first asks a client that expects `100 Continue` for the
    /// body (hyper sends it only before a response head), and a limit the body breaks
    /// before its first byte still reaches the host as [`Event::BodyError`], with the
    /// exchange unanswered. Otherwise [`Event::End`] says the response went out, and
    /// the exchange has ended, as with a whole response. A body that breaks off later
    /// ends the connection, as any broken response body does. Fails, leaving the
    /// exchange as it was, when the response has started or the body is being read.
    pub fn relay(
        &self,
        id: ExchangeId,
        status: StatusCode,
        headers: HeaderMap,
        reason: Option<&str>,
    ) -> Result<(), Error> {
        let head = response_head(status, headers, reason)?;
        let mut map = lock(&self.exchanges);
        let exchange = map.get_mut(&id).ok_or_else(|| unknown(id))?;
        if exchange.responder.is_none() {
            return Err(already_started(id));
        }
        let body = match std::mem::replace(&mut exchange.body, BodyState::Gone) {
            BodyState::Idle(body) => body,
            other => {
                exchange.body = other;
                return Err(Error::new(
                    ErrorCode::BodyRead,
                    format!("the body of request {id} is being read or was read: only an unread body can be relayed"),
                ));
            }
        };
        let cancel = exchange
            .cancel
            .get_or_insert_with(CancellationToken::new)
            .clone();
        drop(map);
        if let Some(me) = self.me.upgrade() {
            self.runtime
                .spawn(me.relay_once_read(id, head, body, cancel));
        }
        Ok(())
    }

    async fn relay_once_read(
        self: Arc<Self>,
        id: ExchangeId,
        head: http::response::Parts,
        mut body: RequestBody,
        cancel: CancellationToken,
    ) {
        let length = body.content_length();
        let first = tokio::select! {
            frame = body.frame() => frame,
            _ = cancel.cancelled() => return,
        };
        let first = match first {
            None => None,
            Some(Ok(frame)) => Some(frame),
            Some(Err(error)) => {
                self.body_failed(id, error);
                return;
            }
        };
        let taken = {
            let mut map = lock(&self.exchanges);
            let taken = Self::take_unanswered(&mut map, id);
            self.removed(&map);
            taken
        };
        let (responder, exchange) = match taken {
            Ok(taken) => taken,
            // Gone meanwhile: the client left, and the host heard.
            Err(error) if error.code == ErrorCode::UnknownExchange => return,
            // The host started a response of its own meanwhile: the relay cannot follow.
            Err(error) => {
                self.push(Event::BodyError { id, error });
                return;
            }
        };
        self.push(Event::End { id });
        let body = ResponseBody::stream(RelayedBody::new(first, body, length));
        let _ = responder.send(Answer::outcome(Ok(http::Response::from_parts(head, body))));
        drop(exchange);
    }

    /// Upgrades the exchange's connection (the upgrade feature): answers 101 with
    /// `headers` plus `Connection: upgrade`. Afterwards [`Bridge::read_body`] reads what
    /// the client sends, and [`Bridge::write`] and [`Bridge::finish`] send to it, with
    /// a streamed response's backpressure. Fails, leaving the exchange as it was, when
    /// the request is not upgradable or maxConcurrentUpgradedConnections is reached.
    pub fn upgrade(&self, id: ExchangeId, mut headers: HeaderMap) -> Result<(), Error> {
        let slot = {
            let mut map = lock(&self.exchanges);
            let exchange = map.get_mut(&id).ok_or_else(|| unknown(id))?;
            if exchange.responder.is_none() {
                return Err(Error::new(
                    ErrorCode::ResponseAlreadyStarted,
                    format!("request {id} has already started its response: upgrade first"),
                ));
            }
            exchange.upgrade.take().ok_or_else(|| {
                Error::new(
                    ErrorCode::NotUpgradable,
                    format!("request {id} is not upgradable: only an HTTP/1.1 request with Connection: upgrade, an Upgrade header and no body is; check isUpgradableRequest first"),
                )
            })?
        };
        let upgrading = slot.accept()?;
        let responder = self.take_responder(id)?;
        let (reader_tx, reader_rx) = oneshot::channel();
        let outgoing = self.response_channel(id, Some(RequestBody::upgraded(reader_rx)));
        headers.insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("upgrade"),
        );
        let mut response = http::Response::new(ResponseBody::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        *response.headers_mut() = headers;
        self.runtime.spawn(upgrading.run(outgoing, reader_tx));
        let _ = responder.send(Answer::outcome(Ok(response)));
        Ok(())
    }

    fn on_channel_signal(&self, id: ExchangeId, signal: ChannelSignal) {
        match signal {
            ChannelSignal::Drained => self.push(Event::WriteReady { id }),
            ChannelSignal::ReaderGone => {
                let exchange = self.remove(id);
                if exchange.is_some() {
                    self.push(Event::Aborted { id });
                }
                drop(exchange);
            }
        }
    }

    /// Writes a chunk of a streamed response.
    pub fn write(&self, id: ExchangeId, data: Bytes) -> Result<WriteOutcome, Error> {
        let map = lock(&self.exchanges);
        let writer = map
            .get(&id)
            .and_then(|e| e.writer.as_ref())
            .ok_or_else(|| unknown(id))?;
        Ok(writer.write(data))
    }

    /// Ends a streamed response, with optional trailers, and the exchange with it.
    pub fn finish(&self, id: ExchangeId, trailers: Option<HeaderMap>) -> Result<(), Error> {
        let mut exchange = self.remove(id).ok_or_else(|| unknown(id))?;
        match exchange.writer.take() {
            Some(writer) => {
                writer.finish(trailers);
                Ok(())
            }
            None => Err(Error::new(
                ErrorCode::UnknownExchange,
                format!("request {id} has no streamed response to finish"),
            )),
        }
    }

    /// Aborts the exchange: before the response started, the connection is closed
    /// (HTTP/1.1) or the stream reset (HTTP/2); after, the body is cut off.
    pub fn abort(&self, id: ExchangeId) {
        let Some(mut exchange) = self.remove(id) else {
            return;
        };
        if let Some(responder) = exchange.responder.take() {
            let _ = responder.send(Answer::outcome(Err(Abort)));
        }
        if let Some(writer) = exchange.writer.take() {
            writer.abort();
        }
    }

    /// Aborts an exchange whose response the host handed over but that could not be
    /// sent (a header field refused on the way, say), and tells the host why. For a
    /// host that answers apart from its own calls (the napi binding answers response
    /// batches on the runtime), where no call can return the error.
    pub fn refuse(&self, id: ExchangeId, error: Error) {
        self.abort(id);
        self.push(Event::Refused { id, error });
    }

    /// Resets the exchange with an HTTP/2 error code (RST_STREAM), before or after the
    /// response started. On HTTP/1.1 it is the same as [`Bridge::abort`].
    pub fn reset(&self, id: ExchangeId, code: u32) {
        let Some(mut exchange) = self.remove(id) else {
            return;
        };
        if let Some(responder) = exchange.responder.take() {
            let mut response = http::Response::new(ResponseBody::empty());
            response.extensions_mut().insert(ResetStream(code));
            let _ = responder.send(Answer::outcome(Ok(response)));
        }
        if let Some(writer) = exchange.writer.take() {
            writer.reset(code);
        }
    }

    /// Changes the request body size limit (the max-request-body-size feature).
    pub fn set_max_request_body_size(
        &self,
        id: ExchangeId,
        limit: Option<u64>,
    ) -> Result<(), Error> {
        let mut map = lock(&self.exchanges);
        let exchange = map.get_mut(&id).ok_or_else(|| unknown(id))?;
        match &mut exchange.body {
            BodyState::Idle(body) => body.set_limit(limit),
            _ => Err(Error::new(
                ErrorCode::ResponseAlreadyStarted,
                "the max request body size cannot change once the body is being read",
            )),
        }
    }

    /// Asks for the next chunk of the request body. Exactly one of [`Event::Data`],
    /// [`Event::End`] or [`Event::BodyError`] answers each call.
    pub fn read_body(&self, id: ExchangeId) -> Result<(), Error> {
        let mut map = lock(&self.exchanges);
        let exchange = map.get_mut(&id).ok_or_else(|| unknown(id))?;
        match std::mem::replace(&mut exchange.body, BodyState::Gone) {
            BodyState::Idle(body) => {
                let credit = Arc::new(Semaphore::new(1));
                exchange.body = BodyState::Pumping(credit.clone());
                let cancel = exchange
                    .cancel
                    .get_or_insert_with(CancellationToken::new)
                    .clone();
                drop(map);
                if let Some(me) = self.me.upgrade() {
                    self.runtime.spawn(me.pump_body(id, body, credit, cancel));
                }
                Ok(())
            }
            BodyState::Pumping(credit) => {
                credit.add_permits(1);
                exchange.body = BodyState::Pumping(credit);
                Ok(())
            }
            BodyState::Gone => Err(Error::new(
                ErrorCode::BodyRead,
                format!("the body of request {id} was already read to the end"),
            )),
        }
    }

    async fn pump_body(
        self: Arc<Self>,
        id: ExchangeId,
        mut body: RequestBody,
        credit: Arc<Semaphore>,
        cancel: CancellationToken,
    ) {
        let mut need_credit = true;
        loop {
            if need_credit {
                tokio::select! {
                    permit = credit.acquire() => match permit {
                        Ok(p) => p.forget(),
                        Err(_) => return,
                    },
                    _ = cancel.cancelled() => return,
                }
            }
            let chunk = tokio::select! {
                c = body.next_chunk() => c,
                _ = cancel.cancelled() => return,
            };
            need_credit = true;
            let event = match chunk {
                Some(Ok(BodyChunk::Data(data))) => Event::Data {
                    id,
                    data: own_chunk(data),
                },
                Some(Ok(BodyChunk::Trailers(trailers))) => {
                    // Trailers come unasked; the end follows without another request.
                    need_credit = false;
                    Event::Trailers { id, trailers }
                }
                None => {
                    self.push(Event::End { id });
                    return;
                }
                Some(Err(error)) => {
                    self.body_failed(id, error);
                    return;
                }
            };
            self.push(event);
        }
    }

    /// Tells the host that reading the request body failed.
    fn body_failed(&self, id: ExchangeId, error: Error) {
        // Limit errors leave the client there to hear the app's 413 or 408; any other
        // error means the body broke off.
        let broken = !matches!(error.code, ErrorCode::BodyTooLarge | ErrorCode::BodyTooSlow);
        if broken {
            // The body broke off: the client is gone or its framing is bad. Either way
            // the exchange cannot finish, so end it as aborted. The app hears both at
            // once: told of the error alone, it could answer and end the exchange
            // before the abort came, and its signal would never fire.
            self.abort(id);
            self.push_together(Event::BodyError { id, error }, Event::Aborted { id });
        } else {
            self.push(Event::BodyError { id, error });
        }
    }
}

/// Body chunks at least this long go to the host as they are; shorter ones are copied.
const SHARED_CHUNK_MIN: usize = 256 * 1024;

/// hyper's chunks are slices of its read buffer, and one slice keeps the whole buffer
/// alive. A host with a garbage collector holds chunks until it collects, and counts
/// only the slice's size, so a short slice of a large buffer would hide most of the
/// memory it holds: short chunks get an exact-size copy, made here on the I/O thread.
/// A long chunk is a good part of its buffer: hyper reads at most
/// `maxRequestBufferSize` (1 MiB by default) into one, so a shared chunk keeps at most
/// that much alive, 4 times the shortest shared chunk by default (more for an app that
/// raises the limit). Copying it instead would cost a memmove of every byte: an eighth
/// of the server's CPU on a streamed echo (bench/README.md).
fn own_chunk(data: Bytes) -> Bytes {
    if data.len() >= SHARED_CHUNK_MIN {
        data
    } else {
        Bytes::copy_from_slice(&data)
    }
}

/// Removes the exchange and tells the host when hyper drops a request's future before
/// the host answered, which happens when the client disconnects.
struct PendingGuard<'a, Q: EventQueue> {
    bridge: &'a Bridge<Q>,
    id: ExchangeId,
    armed: bool,
}

impl<Q: EventQueue> Drop for PendingGuard<'_, Q> {
    fn drop(&mut self) {
        if self.armed {
            let exchange = self.bridge.remove(self.id);
            if exchange.is_some() {
                self.bridge.push(Event::Aborted { id: self.id });
            }
            drop(exchange);
        }
    }
}

impl<Q: EventQueue> Handler for Arc<Bridge<Q>> {
    /// The host answers on its own thread: pipelined requests go to it together.
    const CONCURRENT_PIPELINING: bool = true;

    fn rejected(&self, reason: Rejection, connection: &ConnectionInfo) {
        self.push(Event::Rejected {
            reason,
            connection_id: connection.id,
            remote: connection.remote,
        });
    }

    fn connection_closed(&self, connection: &ConnectionInfo) {
        // Only TLS connections have per-connection data on the host side.
        if connection.tls.is_some() && lock(&self.tls_connections).remove(&connection.id) {
            self.push(Event::ConnectionClosed {
                connection_id: connection.id,
            });
        }
    }

    /// Hands the request to the host at once and returns a future that only waits for
    /// the answer: a few words, where an `async fn` would hold the whole request (over
    /// 300 bytes) for its callers to move about.
    fn call(&self, mut request: Request) -> impl Future<Output = Result<Response, Abort>> + Send {
        let (tx, rx) = oneshot::channel();
        let body_empty = request.body.is_end_stream();
        let upgrade = request
            .head
            .parts
            .extensions
            .remove::<UpgradeSlot>()
            .map(Box::new);
        let id = self.insert(Exchange {
            responder: Some(tx),
            body: BodyState::Idle(request.body),
            writer: None,
            cancel: None,
            upgrade,
        });
        let guard = PendingGuard {
            bridge: self,
            id,
            armed: true,
        };
        let connection = &request.head.connection;
        let first_on_connection =
            connection.tls.is_some() && lock(&self.tls_connections).insert(connection.id);
        self.push(Event::Request {
            id,
            head: request.head,
            body_empty,
            first_on_connection,
        });
        async move {
            // The whole guard moves in (not just the field written below): dropped with
            // this future, it tells the host.
            let mut guard = guard;
            let result = rx.await;
            guard.armed = false;
            match result {
                Ok(Answer { outcome, unread }) => {
                    drop(unread);
                    outcome.map(Reply::into_response)
                }
                // The bridge itself went away (the host shut down without answering).
                Err(_) => Ok(internal_error()),
            }
        }
    }
}

fn internal_error() -> Response {
    let mut response = http::Response::new(ResponseBody::empty());
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &'static str, value: &'static str) -> (HeaderName, HeaderValue) {
        (
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        )
    }

    #[test]
    fn shared_fields_make_the_map_of_their_range_only() {
        let list = Arc::new(vec![
            field("content-type", "text/plain"),
            field("vary", "accept"),
            field("vary", "origin"),
            field("etag", "\"1\""),
        ]);
        let map = SharedFields::new(list.clone(), 1..3).unwrap().into_map();
        assert_eq!(map.len(), 2);
        let vary: Vec<_> = map.get_all("vary").iter().collect();
        assert_eq!(vary, ["accept", "origin"]);
        assert!(map.get("content-type").is_none() && map.get("etag").is_none());
        assert!(SharedFields::new(list.clone(), 0..0)
            .unwrap()
            .into_map()
            .is_empty());
        assert!(SharedFields::new(list.clone(), 3..5).is_none());
        #[allow(clippy::reversed_empty_ranges)]
        let backwards = 3..1;
        assert!(SharedFields::new(list, backwards).is_none());
    }
}
