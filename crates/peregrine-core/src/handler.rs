use std::future::Future;
use std::sync::Arc;

use crate::body::{RequestBody, ResponseBody};
use crate::connection::ConnectionInfo;

/// A request's head: everything but the body.
#[derive(Debug)]
pub struct RequestHead {
    pub parts: http::request::Parts,
    pub connection: Arc<ConnectionInfo>,
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
    /// Answers with a response, or with [`Abort`] to drop the exchange without one:
    /// hyper then closes the connection (HTTP/1.1) or resets the stream (HTTP/2).
    fn call(&self, request: Request) -> impl Future<Output = Result<Response, Abort>> + Send;
}

/// The exchange was aborted on purpose (the request-lifetime feature's `abort()`).
#[derive(Debug, Clone, Copy)]
pub struct Abort;

impl std::fmt::Display for Abort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request was aborted by the application")
    }
}

impl std::error::Error for Abort {}
