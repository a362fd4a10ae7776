//! `NativeServer`, the class the TS package drives. Each method converts its
//! arguments and forwards to the core's server or bridge.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use napi::bindgen_prelude::{
    Array, ArrayBuffer, Buffer, BufferSlice, Env, Function, Null, Unknown,
};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Either;
use napi_derive::napi;
use peregrine_core::bridge::{Bridge, EventQueue, Wake};
use peregrine_core::{
    CertificatePem, ClientCertificateMode, Endpoint, Http2Limits, Limits, MinDataRate, Protocols,
    RunningServer, Server, ServerOptions, TlsOptions, WriteOutcome,
};

use crate::answerer::{self, Answerer, PendingBatch};
use crate::batch::Malformed;
use crate::convert::{self, js_error};
use crate::lent;
use crate::pool::WorkerPool;
use crate::tape::Tape;

/// Options as the TS package passes them, already validated there.
#[napi(object)]
pub struct NativeServerOptions {
    pub urls: Vec<String>,
    /// "http1" | "http2" | "http1AndHttp2", one per URL; missing entries use the default.
    pub protocols: Option<Vec<String>>,
    /// Bytes; a negative value means unlimited.
    pub max_request_body_size: f64,
    pub max_request_buffer_size: u32,
    pub max_response_buffer_size: u32,
    /// A negative value means unlimited.
    pub max_concurrent_connections: f64,
    /// A negative value (or none) means unlimited.
    pub max_concurrent_upgraded_connections: Option<f64>,
    pub max_request_line_size: u32,
    pub max_request_header_count: u32,
    pub max_request_headers_total_size: u32,
    /// Milliseconds.
    pub keep_alive_timeout: f64,
    /// Milliseconds.
    pub request_headers_timeout: f64,
    /// Null turns the check off.
    pub min_request_body_data_rate: Option<NativeMinDataRate>,
    /// Null turns the check off.
    pub min_response_data_rate: Option<NativeMinDataRate>,
    pub add_server_header: bool,
    pub http2: NativeHttp2Limits,
    pub tls: Option<NativeTlsOptions>,
    /// Endpoints' own certificates, one per URL; null uses `tls`.
    pub endpoint_tls: Option<Vec<Option<NativeTlsOptions>>>,
    /// JS worker threads that serve the requests (the `workers` option); each attaches
    /// with `NativeServer.attach`. None: this server's own thread serves them.
    pub workers: Option<u32>,
}

/// limits.minRequestBodyDataRate / minResponseDataRate, validated by the TS package.
#[napi(object)]
pub struct NativeMinDataRate {
    pub bytes_per_second: f64,
    /// Milliseconds.
    pub grace_period: f64,
}

fn min_data_rate(rate: &Option<NativeMinDataRate>) -> Option<MinDataRate> {
    rate.as_ref().map(|r| MinDataRate {
        bytes_per_second: r.bytes_per_second,
        grace_period: millis(r.grace_period),
    })
}

/// limits.http2, validated by the TS package.
#[napi(object)]
pub struct NativeHttp2Limits {
    pub max_streams_per_connection: u32,
    pub header_table_size: u32,
    pub max_frame_size: u32,
    pub max_request_header_field_size: u32,
    pub initial_connection_window_size: u32,
    pub initial_stream_window_size: u32,
    /// Milliseconds; negative for off.
    pub keep_alive_ping_delay: f64,
    /// Milliseconds.
    pub keep_alive_ping_timeout: f64,
}

/// A certificate chain and its key, PEM.
#[napi(object)]
pub struct NativeCertificate {
    pub cert: Buffer,
    pub key: Buffer,
}

/// The tls option, PEM as Buffers.
#[napi(object)]
pub struct NativeTlsOptions {
    pub cert: Option<Buffer>,
    pub key: Option<Buffer>,
    /// Host names ("api.example.test", "*.example.test") and their certificates.
    pub sni_names: Vec<String>,
    pub sni_certificates: Vec<NativeCertificate>,
    /// "none" | "allow" | "require".
    pub client_certificate_mode: String,
    pub ca: Option<Buffer>,
}

fn tls_options(options: NativeTlsOptions) -> napi::Result<TlsOptions> {
    let default = match (options.cert, options.key) {
        (Some(cert), Some(key)) => Some(CertificatePem {
            cert: cert.to_vec(),
            key: key.to_vec(),
        }),
        _ => None,
    };
    let mode = ClientCertificateMode::parse(&options.client_certificate_mode).ok_or_else(|| {
        napi::Error::from_reason(format!(
            "PEREGRINE_INVALID_OPTION: tls.clientCertificateMode \"{}\" must be none, allow or require",
            options.client_certificate_mode
        ))
    })?;
    Ok(TlsOptions {
        default,
        sni: options
            .sni_names
            .into_iter()
            .zip(options.sni_certificates)
            .map(|(name, c)| {
                (
                    name,
                    CertificatePem {
                        cert: c.cert.to_vec(),
                        key: c.key.to_vec(),
                    },
                )
            })
            .collect(),
        client_certificate_mode: mode,
        ca: options.ca.map(|c| c.to_vec()),
    })
}

fn http2_limits(h2: &NativeHttp2Limits) -> Http2Limits {
    Http2Limits {
        max_streams_per_connection: h2.max_streams_per_connection,
        header_table_size: h2.header_table_size,
        max_frame_size: h2.max_frame_size,
        max_request_header_field_size: h2.max_request_header_field_size,
        initial_connection_window_size: h2.initial_connection_window_size,
        initial_stream_window_size: h2.initial_stream_window_size,
        keep_alive_ping_delay: (h2.keep_alive_ping_delay >= 0.0)
            .then(|| Duration::from_millis(h2.keep_alive_ping_delay as u64)),
        keep_alive_ping_timeout: Duration::from_millis(h2.keep_alive_ping_timeout.max(0.0) as u64),
    }
}

type WakeFn = ThreadsafeFunction<(), (), (), napi::Status, false>;

/// Wakes the JS thread through a threadsafe function. It holds the event loop open
/// while the server runs, as node:http's listening socket does.
pub(crate) struct JsWake {
    tsfn: Mutex<Option<WakeFn>>,
    pub(crate) stopped: AtomicBool,
}

impl JsWake {
    pub(crate) fn new() -> JsWake {
        JsWake {
            tsfn: Mutex::new(None),
            stopped: AtomicBool::new(false),
        }
    }

    fn set(&self, tsfn: Option<WakeFn>) {
        *self.tsfn.lock().unwrap_or_else(|e| e.into_inner()) = tsfn;
    }

    pub(crate) fn wake(&self) {
        let guard = self.tsfn.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tsfn) = guard.as_ref() {
            tsfn.call((), ThreadsafeFunctionCallMode::NonBlocking);
        }
    }
}

pub(crate) struct SharedWake(pub(crate) Arc<JsWake>);

impl Wake for SharedWake {
    fn wake(&self) {
        self.0.wake();
    }
}

#[napi]
pub struct NativeServer {
    options: Option<ServerOptions>,
    wake: Arc<JsWake>,
    pub(crate) bridge: Arc<Bridge<Tape>>,
    running: Option<Arc<RunningServer>>,
    on_wake: Option<napi::bindgen_prelude::FunctionRef<(), ()>>,
    /// With the `workers` option: the pool the listener hands requests to.
    workers: Option<Arc<WorkerPool>>,
    /// On a worker thread: the pool and the index of the host this handle serves.
    attached: Option<(Arc<WorkerPool>, usize)>,
    /// Answers this handle's response batches on the runtime.
    answerer: Arc<Answerer>,
}

#[napi]
impl NativeServer {
    /// `onWake` is called, with no arguments, whenever events are waiting; it should
    /// call `drain()`.
    #[napi(constructor)]
    pub fn new(options: NativeServerOptions, on_wake: Function<(), ()>) -> napi::Result<Self> {
        let mut endpoints = Vec::with_capacity(options.urls.len());
        for (i, url) in options.urls.iter().enumerate() {
            let mut endpoint = Endpoint::parse(url).map_err(js_error)?;
            if let Some(p) = options.protocols.as_ref().and_then(|p| p.get(i)) {
                endpoint.protocols = Protocols::parse(p).ok_or_else(|| {
                    napi::Error::from_reason(format!(
                        "PEREGRINE_INVALID_OPTION: protocols \"{p}\" for \"{url}\" must be http1, http2 or http1AndHttp2"
                    ))
                })?;
            }
            endpoints.push(endpoint);
        }
        let limits = Limits {
            max_request_body_size: (options.max_request_body_size >= 0.0)
                .then_some(options.max_request_body_size as u64),
            max_request_buffer_size: options.max_request_buffer_size as usize,
            max_response_buffer_size: options.max_response_buffer_size as usize,
            max_concurrent_connections: (options.max_concurrent_connections >= 0.0)
                .then_some(options.max_concurrent_connections as u64),
            max_concurrent_upgraded_connections: options
                .max_concurrent_upgraded_connections
                .filter(|n| *n >= 0.0)
                .map(|n| n as u64),
            max_request_line_size: options.max_request_line_size as usize,
            max_request_header_count: options.max_request_header_count as usize,
            max_request_headers_total_size: options.max_request_headers_total_size as usize,
            keep_alive_timeout: millis(options.keep_alive_timeout),
            request_headers_timeout: millis(options.request_headers_timeout),
            min_request_body_data_rate: min_data_rate(&options.min_request_body_data_rate),
            min_response_data_rate: min_data_rate(&options.min_response_data_rate),
            http2: http2_limits(&options.http2),
        };
        let tls = options.tls.map(tls_options).transpose()?;
        let endpoint_tls = options
            .endpoint_tls
            .unwrap_or_default()
            .into_iter()
            .map(|t| t.map(tls_options).transpose())
            .collect::<napi::Result<Vec<_>>>()?;
        let workers = options
            .workers
            .filter(|n| *n > 0)
            .map(|n| WorkerPool::register(n as usize, limits.max_response_buffer_size));
        let wake = Arc::new(JsWake::new());
        let runtime = peregrine_core::runtime::shared();
        let bridge = Bridge::new(
            SharedWake(wake.clone()),
            runtime.handle().clone(),
            limits.max_response_buffer_size,
        );
        Ok(NativeServer {
            options: Some(ServerOptions {
                endpoints,
                limits,
                add_server_header: options.add_server_header,
                tls,
                endpoint_tls,
            }),
            wake,
            running: None,
            on_wake: Some(on_wake.create_ref()?),
            workers,
            attached: None,
            answerer: Answerer::new(bridge.clone()),
            bridge,
        })
    }

    /// The token workers attach with, when the server has the `workers` option.
    #[napi(getter)]
    pub fn pool_token(&self) -> Option<u32> {
        self.workers.as_ref().map(|pool| pool.token)
    }

    /// On a worker thread: a handle that serves host `index` of the pool `token`.
    /// Requests start coming once it is made; `onWake` works as for the constructor.
    #[napi(factory)]
    pub fn attach(
        env: Env,
        token: u32,
        index: u32,
        on_wake: Function<(), ()>,
    ) -> napi::Result<NativeServer> {
        let pool = WorkerPool::find(token).ok_or_else(|| {
            napi::Error::from_reason(format!(
                "PEREGRINE_SERVER_STOPPED: there is no running server with worker pool {token}"
            ))
        })?;
        let index = index as usize;
        let host = pool.pool.hosts().get(index).ok_or_else(|| {
            napi::Error::from_reason(format!(
                "PEREGRINE_INVALID_OPTION: worker {index} is not in a pool of {}",
                pool.wakes.len()
            ))
        })?;
        let wake = pool.wakes[index].clone();
        let tsfn: WakeFn = on_wake
            .build_threadsafe_function()
            .build_callback(|_| Ok(()))?;
        wake.set(Some(tsfn));
        host.ready.store(true, Ordering::Release);
        // Requests may have queued before this worker was ready.
        wake.wake();
        let on_exit = (pool.clone(), index, wake.clone());
        env.add_env_cleanup_hook(on_exit, |(pool, index, wake)| {
            pool.detach(index);
            wake.set(None);
        })?;
        let bridge = host.bridge.clone();
        Ok(NativeServer {
            options: None,
            wake,
            answerer: Answerer::new(bridge.clone()),
            bridge,
            running: None,
            on_wake: None,
            workers: None,
            attached: Some((pool, index)),
        })
    }

    /// Binds every endpoint and starts serving. Returns the bound URLs.
    #[napi]
    pub fn listen(&mut self, env: Env) -> napi::Result<Vec<String>> {
        let options = self.options.take().ok_or_else(|| {
            napi::Error::from_reason("PEREGRINE_ALREADY_STARTED: this server was already started")
        })?;
        let on_wake = self.on_wake.take().ok_or_else(|| {
            napi::Error::from_reason("PEREGRINE_ALREADY_STARTED: this server was already started")
        })?;
        let tsfn: WakeFn = on_wake
            .borrow_back(&env)?
            .build_threadsafe_function()
            .build_callback(|_| Ok(()))?;
        *self.wake.tsfn.lock().unwrap_or_else(|e| e.into_inner()) = Some(tsfn);
        let runtime = peregrine_core::runtime::shared();
        let started = match &self.workers {
            Some(pool) => Server::start(options, pool.pool.clone(), runtime.handle()),
            None => Server::start(options, Arc::new(self.bridge.clone()), runtime.handle()),
        };
        let running = started.map_err(|e| {
            self.wake
                .tsfn
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            js_error(e)
        })?;
        let urls = running.urls().to_vec();
        let running = Arc::new(running);
        // A worker_thread that exits with its server still running must not leave
        // connections waiting on a JS thread that is gone.
        let on_exit = running.clone();
        env.add_env_cleanup_hook((), move |_| {
            peregrine_core::runtime::shared().spawn(on_exit.stop(Duration::ZERO));
        })?;
        self.running = Some(running);
        Ok(urls)
    }

    /// Takes every waiting event: `[tape, ...bodyChunks]`, or null when there are none.
    #[napi]
    pub fn drain<'env>(&self, env: &'env Env) -> napi::Result<Either<Array<'env>, Null>> {
        let mut tape = self.bridge.drain();
        let stopped = self.wake.stopped.swap(false, Ordering::AcqRel);
        if tape.is_empty() && !stopped {
            self.bridge.recycle(tape);
            return Ok(Either::B(Null));
        }
        if stopped {
            tape.stopped();
        }
        let mut batch = env.create_array(1 + tape.chunks.len() as u32)?;
        // Handed over, not copied: a copy went through the JS allocator, which mapped
        // fresh pages for each batch (page faults were most of drain()).
        batch.set(0, BufferSlice::from_data(env, tape.take_bytes())?)?;
        for (i, chunk) in tape.chunks.drain(..).enumerate() {
            let slice = if chunk.is_empty() {
                BufferSlice::from_data(env, Vec::new())?
            } else {
                let ptr = chunk.as_ptr() as *mut u8;
                let len = chunk.len();
                let lent_copy = chunk.clone();
                // The chunk's bytes stay alive, owned by the finalizer hint, until V8
                // collects the Buffer or JS gives it back: body data crosses into JS
                // without a copy. Recorded as lent once the Buffer exists, since only
                // its finalizer forgets it.
                let slice = unsafe {
                    BufferSlice::from_external(env, ptr, len, chunk, |_, chunk| {
                        lent::give_back(&chunk);
                    })?
                };
                lent::lend(lent_copy);
                slice
            };
            batch.set(i as u32 + 1, slice)?;
        }
        self.bridge.recycle(tape);
        Ok(Either::A(batch))
    }

    /// Sends a whole response: status, packed headers and body in one call.
    #[napi]
    pub fn respond(
        &self,
        id: u32,
        status: u32,
        headers: String,
        body: Unknown<'_>,
        reason: Option<String>,
    ) -> napi::Result<()> {
        let mut response =
            http::Response::new(peregrine_core::ResponseBody::full(convert::bytes(body)?));
        *response.status_mut() = convert::status(status)?;
        *response.headers_mut() = convert::headers(&headers)?;
        if let Some(reason) = reason {
            peregrine_core::set_reason_phrase(&mut response, &reason).map_err(js_error)?;
        }
        self.bridge.respond(id, response).map_err(js_error)
    }

    /// Sends many whole responses in one call: the TS package queues the responses one
    /// JS turn finishes and hands them over together, which saves a native call per
    /// response and lets the I/O threads pick the responses up in one pass. `records`
    /// holds one record per response (see `batch.rs`); bodies too large to copy into it
    /// come in `bodies`, in record order. A malformed batch is refused whole, before any
    /// response goes out. The rest happens on the core's runtime (`answerer.rs`): a
    /// response refused there aborts its exchange and reaches JS as a `refused` event.
    #[napi]
    pub fn respond_batch(&self, records: BufferSlice, bodies: Array) -> napi::Result<()> {
        let checked = answerer::check(&records).map_err(|_: Malformed| {
            napi::Error::from_reason("PEREGRINE_INTERNAL: a response batch is malformed")
        })?;
        let mut converted = Vec::with_capacity(checked.array_bodies);
        for index in 0..checked.array_bodies as u32 {
            let value: Unknown = bodies.get(index)?.ok_or_else(|| {
                napi::Error::from_reason("PEREGRINE_INTERNAL: a response batch lost a body")
            })?;
            converted.push(convert::bytes(value)?);
        }
        self.answerer.queue(PendingBatch {
            records: Bytes::copy_from_slice(&records),
            bodies: converted,
            field_count: checked.field_count,
        });
        Ok(())
    }

    /// Sends the response head of a streamed response.
    #[napi]
    pub fn start_response(
        &self,
        id: u32,
        status: u32,
        headers: String,
        reason: Option<String>,
    ) -> napi::Result<()> {
        self.bridge
            .start_response(
                id,
                convert::status(status)?,
                convert::headers(&headers)?,
                reason.as_deref(),
            )
            .map_err(js_error)
    }

    /// Answers with the request's own unread body as the response body, streamed by the
    /// core; the exchange ends here, as with `respond`.
    #[napi]
    pub fn relay(
        &self,
        id: u32,
        status: u32,
        headers: String,
        reason: Option<String>,
    ) -> napi::Result<()> {
        self.bridge
            .relay(
                id,
                convert::status(status)?,
                convert::headers(&headers)?,
                reason.as_deref(),
            )
            .map_err(js_error)
    }

    /// Upgrades the request's connection: 101 with the packed headers; afterwards
    /// readBody, write and finish carry the upgraded stream.
    #[napi]
    pub fn upgrade(&self, id: u32, headers: String) -> napi::Result<()> {
        self.bridge
            .upgrade(id, convert::headers(&headers)?)
            .map_err(js_error)
    }

    /// Writes a chunk: 0 = go on, 1 = buffer full (wait for write-ready), 2 = closed.
    #[napi]
    pub fn write(&self, id: u32, chunk: Unknown<'_>) -> napi::Result<u32> {
        let outcome = self.bridge.write(id, convert::bytes(chunk)?);
        Ok(match outcome {
            Ok(WriteOutcome::Ready) => 0,
            Ok(WriteOutcome::Full) => 1,
            Ok(WriteOutcome::Closed) | Err(_) => 2,
        })
    }

    /// Ends a streamed response, with packed trailers (may be empty).
    #[napi]
    pub fn finish(&self, id: u32, trailers: String) -> napi::Result<()> {
        let trailers = if trailers.is_empty() {
            None
        } else {
            Some(convert::headers(&trailers)?)
        };
        // The client may have left already; that is not the app's error.
        let _ = self.bridge.finish(id, trailers);
        Ok(())
    }

    /// Gives back a request body chunk JS is done with (the ArrayBuffer of a Buffer
    /// `drain` made): it is detached, so V8 no longer counts its memory, and the bytes
    /// go back to the allocator once the core no longer needs them. Returns false,
    /// leaving it alone, for any other ArrayBuffer. The caller must hold the only
    /// reference to the chunk: a detached Buffer reads as empty.
    #[napi]
    pub fn release_chunk(&self, buffer: ArrayBuffer) -> napi::Result<bool> {
        if lent::find(&buffer).is_none() {
            return Ok(false);
        }
        buffer.detach()?;
        Ok(true)
    }

    #[napi]
    pub fn abort(&self, id: u32) {
        self.bridge.abort(id);
    }

    /// Resets the request's HTTP/2 stream with `code` (RST_STREAM); on HTTP/1.1 the
    /// connection is closed, as with abort.
    #[napi]
    pub fn reset(&self, id: u32, code: u32) {
        self.bridge.reset(id, code);
    }

    /// Swaps the TLS certificate set for new connections.
    #[napi]
    pub fn reload_tls(&self, tls: NativeTlsOptions) -> napi::Result<()> {
        let options = tls_options(tls)?;
        let running = self.running.as_ref().ok_or_else(|| {
            napi::Error::from_reason("PEREGRINE_SERVER_STOPPED: the server is not running")
        })?;
        running.reload_tls(&options).map_err(js_error)
    }

    /// Asks for the next request body chunk.
    #[napi]
    pub fn read_body(&self, id: u32) -> napi::Result<()> {
        self.bridge.read_body(id).map_err(js_error)
    }

    /// A negative limit means unlimited.
    #[napi]
    pub fn set_max_request_body_size(&self, id: u32, limit: f64) -> napi::Result<()> {
        let limit = (limit >= 0.0).then_some(limit as u64);
        self.bridge
            .set_max_request_body_size(id, limit)
            .map_err(js_error)
    }

    /// Stops gracefully; a `stopped` record on the tape reports the end.
    #[napi]
    pub fn stop(&self, timeout_ms: f64) {
        let timeout = Duration::from_millis(timeout_ms.max(0.0) as u64);
        if let Some((pool, index)) = &self.attached {
            self.leave_pool(pool.clone(), *index, timeout);
            return;
        }
        let Some(running) = self.running.clone() else {
            self.wake.stopped.store(true, Ordering::Release);
            self.wake.wake();
            return;
        };
        let wake = self.wake.clone();
        let workers = self.workers.clone();
        peregrine_core::runtime::shared().spawn(async move {
            running.stop(timeout).await;
            if let Some(pool) = workers {
                pool.stopped();
            }
            wake.stopped.store(true, Ordering::Release);
            wake.wake();
        });
    }

    /// A worker stops on its own while the server goes on: it takes no new requests,
    /// and those in flight get `timeout` to finish before they are aborted.
    fn leave_pool(&self, pool: Arc<WorkerPool>, index: usize, timeout: Duration) {
        pool.pool.hosts()[index]
            .ready
            .store(false, Ordering::Release);
        let bridge = self.bridge.clone();
        let wake = self.wake.clone();
        peregrine_core::runtime::shared().spawn(async move {
            bridge.settle(timeout).await;
            pool.detach(index);
            wake.stopped.store(true, Ordering::Release);
            wake.wake();
        });
    }

    /// Releases the wake-up function so the process may exit. Call after `stopped`.
    #[napi]
    pub fn close(&mut self) {
        self.wake.set(None);
        self.running = None;
        if let Some(pool) = &self.workers {
            pool.unregister();
        }
        if let Some((pool, index)) = &self.attached {
            pool.detach(*index);
        }
    }

    /// Requests in flight, for diagnostics and tests.
    #[napi(getter)]
    pub fn in_flight(&self) -> u32 {
        self.bridge.in_flight() as u32
    }

    /// Counters since start: connections, requests and refusals by reason code.
    #[napi]
    pub fn stats(&self) -> NativeStats {
        let snapshot = self.running.as_ref().map(|r| r.stats()).unwrap_or_default();
        NativeStats {
            current_connections: snapshot.current_connections as f64,
            idle_connections: snapshot.idle_connections as f64,
            total_connections: snapshot.total_connections as f64,
            total_requests: snapshot.total_requests as f64,
            rejections: snapshot
                .rejections
                .into_iter()
                .map(|(reason, count)| NativeRejectionCount {
                    reason: reason.to_string(),
                    count: count as f64,
                })
                .collect(),
        }
    }
}

#[napi(object)]
pub struct NativeRejectionCount {
    pub reason: String,
    pub count: f64,
}

#[napi(object)]
pub struct NativeStats {
    pub current_connections: f64,
    pub idle_connections: f64,
    pub total_connections: f64,
    pub total_requests: f64,
    pub rejections: Vec<NativeRejectionCount>,
}

fn millis(ms: f64) -> Duration {
    Duration::from_millis(ms.max(0.0) as u64)
}
