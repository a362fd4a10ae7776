//! Binding endpoints, accepting connections, and stopping gracefully.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::connection::{self, ConnectionInfo, ConnectionSettings};
use crate::endpoint::{url_for, Endpoint, Scheme};
use crate::error::{Error, ErrorCode};
use crate::handler::Handler;

/// Server limits. Each field's default is Kestrel's; docs/limits.md is the reference.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body in bytes; `None` for no limit. Default 30,000,000.
    pub max_request_body_size: Option<u64>,
    /// Bytes hyper may buffer while reading a request head. Default 1 MiB.
    pub max_request_buffer_size: usize,
    /// Bytes of a streamed response buffered before writes push back. Default 64 KiB.
    pub max_response_buffer_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_body_size: Some(30_000_000),
            max_request_buffer_size: 1024 * 1024,
            max_response_buffer_size: 64 * 1024,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub endpoints: Vec<Endpoint>,
    pub limits: Limits,
    /// Adds `Server: Peregrine` to responses that do not set it. Default true.
    pub add_server_header: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            endpoints: Vec::new(),
            limits: Limits::default(),
            add_server_header: true,
        }
    }
}

pub struct Server;

impl Server {
    /// Binds every endpoint and starts accepting on `runtime`. Fails without leaving
    /// anything bound if any endpoint cannot be bound.
    pub fn start<H: Handler>(
        options: ServerOptions,
        handler: Arc<H>,
        runtime: &Handle,
    ) -> Result<RunningServer, Error> {
        if options.endpoints.is_empty() {
            return Err(Error::new(
                ErrorCode::NoEndpoints,
                "no endpoints to listen on: give at least one URL",
            ));
        }
        let _enter = runtime.enter();
        let mut bound: Vec<(TcpListener, &Endpoint)> = Vec::new();
        for endpoint in &options.endpoints {
            if endpoint.scheme == Scheme::Https {
                return Err(Error::new(
                    ErrorCode::UnsupportedScheme,
                    format!(
                        "endpoint \"{}\" is https, but TLS is not available in this build yet",
                        endpoint.url
                    ),
                ));
            }
            let mut port = endpoint.port;
            for (i, mut addr) in endpoint.candidate_addresses().into_iter().enumerate() {
                addr.set_port(port);
                match bind(addr) {
                    Ok(listener) => {
                        port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
                        bound.push((listener, endpoint));
                    }
                    // `localhost` binds IPv6 too when the machine has it, like Kestrel.
                    Err(e) if i > 0 && e.kind() == io::ErrorKind::AddrNotAvailable => {}
                    Err(e) => return Err(bind_error(endpoint, addr, e)),
                }
            }
        }

        let shutdown = CancellationToken::new();
        let abort = CancellationToken::new();
        let tracker = TaskTracker::new();
        let mut urls = Vec::new();
        for (listener, endpoint) in bound {
            let local = listener
                .local_addr()
                .map_err(|e| bind_error(endpoint, SocketAddr::from(([0, 0, 0, 0], 0)), e))?;
            urls.push(url_for(endpoint.scheme, local));
            let settings = Arc::new(ConnectionSettings {
                scheme: endpoint.scheme,
                protocols: endpoint.protocols,
                limits: options.limits.clone(),
                add_server_header: options.add_server_header,
            });
            tracker.spawn(accept_loop(
                listener,
                settings,
                handler.clone(),
                shutdown.clone(),
                abort.clone(),
                tracker.clone(),
            ));
        }
        Ok(RunningServer {
            urls,
            shutdown,
            abort,
            tracker,
        })
    }
}

fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // Lets a restarted server rebind while old connections sit in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

fn bind_error(endpoint: &Endpoint, addr: SocketAddr, e: io::Error) -> Error {
    let code = match e.kind() {
        io::ErrorKind::AddrInUse => ErrorCode::AddressInUse,
        io::ErrorKind::AddrNotAvailable => ErrorCode::AddressNotAvailable,
        _ => ErrorCode::Bind,
    };
    Error::new(
        code,
        format!("cannot listen on {addr} for endpoint \"{}\": {e}", endpoint.url),
    )
}

async fn accept_loop<H: Handler>(
    listener: TcpListener,
    settings: Arc<ConnectionSettings>,
    handler: Arc<H>,
    shutdown: CancellationToken,
    abort: CancellationToken,
    tracker: TaskTracker,
) {
    let builder = Arc::new(connection::http_builder(&settings));
    let local = listener.local_addr().ok();
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.cancelled() => break,
        };
        match accepted {
            Ok((stream, remote)) => {
                // Small responses must not wait for Nagle's algorithm.
                let _ = stream.set_nodelay(true);
                let info = Arc::new(ConnectionInfo {
                    id: connection::next_connection_id(),
                    remote,
                    local: stream.local_addr().ok().or(local).unwrap_or(remote),
                    scheme: settings.scheme,
                });
                tracker.spawn(connection::serve(
                    stream,
                    info,
                    builder.clone(),
                    settings.clone(),
                    handler.clone(),
                    shutdown.clone(),
                    abort.clone(),
                ));
            }
            // Out of file descriptors or similar: back off instead of spinning.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// A started server. Dropping it does not stop it: call [`RunningServer::stop`].
pub struct RunningServer {
    urls: Vec<String>,
    shutdown: CancellationToken,
    abort: CancellationToken,
    tracker: TaskTracker,
}

impl RunningServer {
    /// The addresses actually bound, with port 0 resolved.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// Stops accepting, lets in-flight requests finish for up to `timeout`, then aborts
    /// whatever remains. Resolves when every connection is closed.
    pub fn stop(&self, timeout: Duration) -> impl std::future::Future<Output = ()> + Send {
        self.shutdown.cancel();
        self.tracker.close();
        let tracker = self.tracker.clone();
        let abort = self.abort.clone();
        async move {
            if tokio::time::timeout(timeout, tracker.wait()).await.is_err() {
                abort.cancel();
                tracker.wait().await;
            }
        }
    }

    /// The number of open connections (plus one accept loop per listener while running).
    pub fn active_tasks(&self) -> usize {
        self.tracker.len()
    }
}
