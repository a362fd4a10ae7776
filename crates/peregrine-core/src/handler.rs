use std::future::Future;
use std::sync::Arc;

use crate::body::{RequestBody, ResponseBody};
use crate::connection::ConnectionInfo;
use crate::guard::Rejection;

/// A request's head: everything but the body.
#[derive(Debug)]
pub struct RequestHead {
    pub parts: http::request::Parts,
    pub connection: Arc<ConnectionInfo>,
    /// The HTTP/2 stream the request arrived on; `None` over HTTP/1.1. A field rather
    /// than an extension of `parts`: the first extension costs three allocations.
    pub stream_id: Option<u32>,
}

/// An incoming request as handlers see it.
pub struct Request {
    pub head: RequestHead,
    pub body: RequestBody,
}

pub type Response = http::Response<ResponseBody>;

/// Serves requests. Implemented by plain Rust handlers (`examples/hello.rs`) and by
/// [`crate::bridge::Bridge`], which hands requests to a host on another thread.
pub trait Handler: Send + Sync + 'static {
    /// Whether requests pipelined on an HTTP/1.1 connection are handed to `call` as soon
    /// as they have arrived, before the responses ahead of them are done (node:http does
    /// the same); the responses still leave in order. hyper serves a connection's
    /// requests one after another, so a handler that answers from another thread would
    /// otherwise cost a round trip per pipelined request. Off by default: a handler that
    /// answers at once gains nothing, and each pipelined head is parsed twice.
    const CONCURRENT_PIPELINING: bool = false;

    /// Answers with a response, or with [`Abort`] to drop the exchange without one:
    /// hyper then closes the connection (HTTP/1.1) or resets the stream (HTTP/2).
    fn call(&self, request: Request) -> impl Future<Output = Result<Response, Abort>> + Send;

    /// Called once when a connection has closed, after its last request.
    fn connection_closed(&self, _connection: &ConnectionInfo) {}

    /// Told when the edge refused a request or a connection before it reached `call`.
    /// The bridge forwards it to the host's log; the default ignores it.
    fn rejected(&self, _reason: Rejection, _connection: &ConnectionInfo) {}
}

/// Put in a response's extensions, it makes the server reset the HTTP/2 stream with
/// this error code (RST_STREAM) instead of answering. On HTTP/1.1 the connection is
/// closed, as with [`Abort`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResetStream(pub u32);

/// The exchange was aborted on purpose (the request-lifetime feature's `abort()`).
#[derive(Debug, Clone, Copy)]
pub struct Abort;

impl std::fmt::Display for Abort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request was aborted by the application")
    }
}

impl std::error::Error for Abort {}

/// Sets a custom HTTP/1.1 reason phrase ("200 Fine Thanks"). HTTP/2 has none. The
/// phrase must be visible ASCII, spaces or tabs.
pub fn set_reason_phrase<B>(
    response: &mut http::Response<B>,
    reason: &str,
) -> Result<(), crate::Error> {
    let phrase = hyper::ext::ReasonPhrase::try_from(reason.as_bytes().to_vec()).map_err(|_| {
        crate::Error::new(
            crate::ErrorCode::InvalidStatus,
            format!("reason phrase {reason:?} has characters HTTP does not allow"),
        )
    })?;
    response.extensions_mut().insert(phrase);
    Ok(())
}
