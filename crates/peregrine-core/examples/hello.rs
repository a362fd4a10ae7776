//! The pure-Rust twin of examples/hello: the same routes, answered without leaving
//! Rust. The load harness runs it as the native ceiling for the JS pipeline.
//!
//!     cargo run --release -p peregrine-core --example hello
//!
//! Listens on `PEREGRINE_URLS` (";"-separated) or http://localhost:5000. With
//! `MAX_REQUEST_BODY_SIZE=none` (as the harness sets for the echo) request bodies have
//! no size limit; a number sets it in bytes. `TLS_CERT` and `TLS_KEY` (PEM file paths)
//! are the certificate of https URLs, as bench/servers/peregrine.mjs takes them.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, StatusCode};
use peregrine_core::{
    Abort, CertificatePem, Endpoint, Handler, Request, Response, ResponseBody, Server,
    ServerOptions, TlsOptions,
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

/// As the napi binding allocates, so that the ceiling measures the same native code.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    // SAFETY: mi_collect takes no pointers and may run on any thread.
    peregrine_core::memory::set_release(|| unsafe { libmimalloc_sys::mi_collect(true) });
    let runtime = peregrine_core::runtime::shared();
    let mut options = ServerOptions {
        endpoints,
        ..ServerOptions::default()
    };
    match std::env::var("MAX_REQUEST_BODY_SIZE").as_deref() {
        Err(_) => {}
        Ok("none") => options.limits.max_request_body_size = None,
        Ok(bytes) => {
            options.limits.max_request_body_size = Some(bytes.parse().unwrap_or_else(|_| {
                eprintln!("MAX_REQUEST_BODY_SIZE must be a byte count or \"none\", not {bytes:?}");
                std::process::exit(2)
            }))
        }
    }
    if let (Ok(cert), Ok(key)) = (std::env::var("TLS_CERT"), std::env::var("TLS_KEY")) {
        let read = |path: &str| {
            std::fs::read(path).unwrap_or_else(|e| {
                eprintln!("cannot read {path}: {e}");
                std::process::exit(2)
            })
        };
        options.tls = Some(TlsOptions {
            default: Some(CertificatePem {
                cert: read(&cert),
                key: read(&key),
            }),
            ..TlsOptions::default()
        });
    }
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
