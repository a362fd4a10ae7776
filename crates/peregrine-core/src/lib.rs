//! Peregrine's HTTP engine.
//!
//! This crate owns everything between the socket and a request handler: listeners,
//! connections (HTTP/1.1 and h2c through hyper), request and response bodies with
//! backpressure, and graceful shutdown. It knows nothing of Node.js. Two kinds of
//! handler sit on top of it:
//!
//! - a plain Rust [`Handler`], as in `examples/hello.rs`;
//! - a [`bridge::Bridge`], which turns requests into [`bridge::Event`]s for a host that
//!   runs on another thread (the napi binding drains them in batches on the JS thread);
//!   a [`pool::HostPool`] spreads requests over several bridges (JS worker threads).

pub mod body;
pub mod bridge;
mod connection;
pub mod endpoint;
mod error;
pub mod guard;
mod handler;
mod http1;
mod http2;
mod linger;
pub mod memory;
pub mod pool;
mod preface;
pub mod runtime;
mod server;
mod stats;
pub mod tls;
pub mod transport;
pub mod upgrade;

pub use body::{
    BodyChunk, BodyWriter, BoxError, MinDataRate, RequestBody, ResponseBody, WriteOutcome,
};
pub use connection::ConnectionInfo;
pub use endpoint::{Endpoint, Protocols, Scheme};
pub use error::{Error, ErrorCode};
pub use guard::Rejection;
pub use handler::{set_reason_phrase, Abort, Handler, Request, RequestHead, ResetStream, Response};
pub use server::{Http2Limits, Limits, RunningServer, Server, ServerOptions};
pub use stats::StatsSnapshot;
pub use tls::{CertificatePem, ClientCertificateMode, TlsInfo, TlsOptions};
