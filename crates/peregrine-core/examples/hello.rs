//! The pure-Rust twin of examples/hello: the same routes, answered without leaving
//! Rust. The load harness runs it as the native ceiling for the JS pipeline.
//!
//!     cargo run --release -p peregrine-core --example hello
//!
//! Listens on `PEREGRINE_URLS` (";"-separated) or http://localhost:5000.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, StatusCode};
use peregrine_core::{
    Abort, Endpoint, Handler, Request, Response, ResponseBody, Server, ServerOptions,
};

struct Hello;

const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
const JSON: HeaderValue = HeaderValue::from_static("application/json");

impl Handler for Hello {
    async fn call(&self, request: Request) -> Result<Response, Abort> {
        let parts = &request.head.parts;
        let (content_type, body) = match (&parts.method, parts.uri.path()) {
            (&Method::GET, "/") => (
                TEXT,
                ResponseBody::full(Bytes::from_static(b"Hello, World!")),
            ),
            (&Method::GET, "/json") => {
                // Serialized per request, as the JS handler does.
                let json = format!("{{\"message\":\"{}\"}}", "Hello, World!");
                (JSON, ResponseBody::full(json))
            }
            (&Method::POST, "/echo") => {
                let content_type = parts
                    .headers
                    .get(CONTENT_TYPE)
                    .cloned()
                    .unwrap_or(HeaderValue::from_static("application/octet-stream"));
                (content_type, ResponseBody::stream(request.body))
            }
            _ => {
                let mut response = http::Response::new(ResponseBody::empty());
                *response.status_mut() = StatusCode::NOT_FOUND;
                return Ok(response);
            }
        };
        let mut response = http::Response::new(body);
        response.headers_mut().insert(CONTENT_TYPE, content_type);
        Ok(response)
    }
}

fn main() {
    let urls = std::env::var("PEREGRINE_URLS").unwrap_or_else(|_| "http://localhost:5000".into());
    let endpoints = urls
        .split(';')
        .filter(|u| !u.trim().is_empty())
        .map(|u| Endpoint::parse(u.trim()))
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(2)
        });
    let runtime = peregrine_core::runtime::shared();
    let options = ServerOptions {
        endpoints,
        ..ServerOptions::default()
    };
    let server = Server::start(options, Arc::new(Hello), runtime.handle()).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    for url in server.urls() {
        println!("Now listening on: {url}");
    }
    runtime.block_on(async {
        let _ = tokio::signal::ctrl_c().await;
        server.stop(Duration::from_secs(30)).await;
    });
}
