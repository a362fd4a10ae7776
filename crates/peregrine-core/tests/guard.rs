//! The HTTP/1.1 edge guard over real sockets: refusals never reach the handler, the
//! client gets the documented status and a closed connection, and the counters see it.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use peregrine_core::{Abort, ConnectionInfo, Handler, Rejection, Request, Response, ResponseBody};
use support::{start, RawClient};

#[derive(Default)]
struct Counting {
    calls: AtomicUsize,
    rejections: Mutex<Vec<Rejection>>,
}

/// The handler under test, shared with the test body that inspects it.
struct App(Arc<Counting>);

impl Handler for App {
    async fn call(&self, request: Request) -> Result<Response, Abort> {
        self.0.calls.fetch_add(1, Ordering::SeqCst);
        let body = request
            .body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Ok(http::Response::new(ResponseBody::full(Bytes::from(
            format!("ok{}", body.len()),
        ))))
    }

    fn rejected(&self, reason: Rejection, _connection: &ConnectionInfo) {
        self.0.rejections.lock().unwrap().push(reason);
    }
}

async fn exchange(port: u16, raw: &[u8]) -> String {
    let mut client = RawClient::connect(port).await;
    client.send(raw).await;
    client.read_until(|_| false).await
}

#[tokio::test]
async fn refuses_malformed_heads_before_the_handler() {
    let app = Arc::new(Counting::default());
    let (server, port) = start(App(app.clone()), |_| {});
    let cases: &[(&[u8], &str, Rejection)] = &[
        (b"GET / HTTP/1.1\nHost: a\r\n\r\n", "400", Rejection::BareLineFeed),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n folded\r\n\r\n", "400", Rejection::ObsoleteLineFolding),
        (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", "400", Rejection::WhitespaceBeforeColon),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "400",
            Rejection::TransferEncodingWithContentLength,
        ),
        (b"GET / HTTP/1.1\r\n\r\n", "400", Rejection::MissingOrDuplicateHost),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", "505", Rejection::UnsupportedVersion),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a\nb\r\nhello\r\n0\r\n\r\n",
            "400",
            Rejection::InvalidChunk,
        ),
    ];
    for (raw, status, reason) in cases {
        let text = exchange(port, raw).await;
        assert!(
            text.starts_with(&format!("HTTP/1.1 {status} ")),
            "{:?} -> {text}",
            String::from_utf8_lossy(raw)
        );
        assert!(text.contains("connection: close"), "{text}");
        assert_eq!(app.rejections.lock().unwrap().last(), Some(reason));
    }
    assert_eq!(
        app.calls.load(Ordering::SeqCst),
        0,
        "no refused request reached the handler"
    );
    let stats = server.stats();
    assert_eq!(
        stats.rejections.iter().map(|(_, n)| n).sum::<u64>(),
        cases.len() as u64
    );
    assert!(
        stats.rejections.contains(&("BAD_REQUEST_TE_CL", 1)),
        "{:?}",
        stats.rejections
    );
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn answers_earlier_pipelined_requests_before_refusing() {
    let app = Arc::new(Counting::default());
    let (server, port) = start(App(app.clone()), |_| {});
    let text = exchange(
        port,
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    )
    .await;
    let first = text.find("HTTP/1.1 200").expect(&text);
    let second = text.find("HTTP/1.1 400").expect(&text);
    assert!(first < second && text.contains("ok3"), "{text}");
    assert_eq!(app.calls.load(Ordering::SeqCst), 1);
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn enforces_line_and_header_limits() {
    let app = Arc::new(Counting::default());
    let (server, port) = start(App(app.clone()), |o| {
        o.limits.max_request_line_size = 64;
        o.limits.max_request_header_count = 3;
        o.limits.max_request_headers_total_size = 256;
    });
    let long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(100));
    assert!(exchange(port, long.as_bytes())
        .await
        .starts_with("HTTP/1.1 414 "));
    let many = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    assert!(exchange(port, many.as_bytes())
        .await
        .starts_with("HTTP/1.1 431 "));
    let big = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nA: {}\r\n\r\n",
        "x".repeat(300)
    );
    assert!(exchange(port, big.as_bytes())
        .await
        .starts_with("HTTP/1.1 431 "));
    // A head that never ends is refused as soon as it is too large.
    let mut client = RawClient::connect(port).await;
    client
        .send(format!("GET /{}", "a".repeat(100)).as_bytes())
        .await;
    assert!(client
        .read_until(|_| false)
        .await
        .starts_with("HTTP/1.1 414 "));
    assert_eq!(app.calls.load(Ordering::SeqCst), 0);
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn times_out_heads_that_trickle_in() {
    let app = Arc::new(Counting::default());
    let (server, port) = start(App(app.clone()), |o| {
        o.limits.request_headers_timeout = Duration::from_millis(200)
    });
    let mut client = RawClient::connect(port).await;
    client.send(b"GET / HTTP/1.1\r\nHo").await;
    let started = std::time::Instant::now();
    let text = client.read_until(|_| false).await;
    assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        app.rejections.lock().unwrap().as_slice(),
        &[Rejection::RequestHeadersTimeout]
    );
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn closes_idle_keep_alive_connections() {
    let app = Arc::new(Counting::default());
    let (server, port) = start(App(app.clone()), |o| {
        o.limits.keep_alive_timeout = Duration::from_millis(300)
    });
    let mut client = RawClient::connect(port).await;
    client.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    client.read_until(|t| t.ends_with("ok0")).await;
    let started = std::time::Instant::now();
    client.read_until(|_| false).await; // returns at EOF
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "closed after {:?}",
        started.elapsed()
    );
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn closes_connections_over_the_limit_at_accept() {
    let app = Arc::new(Counting::default());
    let (server, port) = start(App(app.clone()), |o| {
        o.limits.max_concurrent_connections = Some(1)
    });
    let mut first = RawClient::connect(port).await;
    first.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    first.read_until(|t| t.ends_with("ok0")).await;
    let refused = exchange(port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert_eq!(refused, "", "closed without a response");
    assert_eq!(
        app.rejections.lock().unwrap().as_slice(),
        &[Rejection::ConnectionLimit]
    );
    drop(first);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(exchange(
        port,
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    .await
    .ends_with("ok0"));
    let stats = server.stats();
    assert_eq!(stats.total_requests, 2);
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn serves_valid_requests_split_at_every_byte() {
    let app = Arc::new(Counting::default());
    let (server, port) = start(App(app.clone()), |_| {});
    let raw = b"\r\nPOST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;e=\"v\"\r\nabc\r\n0\r\nT: 1\r\n\r\n";
    let mut client = RawClient::connect(port).await;
    for byte in raw.iter() {
        client.send(&[*byte]).await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(client
        .read_until(|t| t.ends_with("ok3"))
        .await
        .starts_with("HTTP/1.1 200"));
    server.stop(Duration::from_secs(1)).await;
}

/// Answers 408 when the body came too slowly, the way the TS host does.
struct SlowBodyAware;

impl Handler for SlowBodyAware {
    async fn call(&self, request: Request) -> Result<Response, Abort> {
        let status = match request.body.collect().await {
            Ok(_) => http::StatusCode::OK,
            Err(e) if e.code == peregrine_core::ErrorCode::BodyTooSlow => {
                http::StatusCode::REQUEST_TIMEOUT
            }
            Err(_) => http::StatusCode::BAD_REQUEST,
        };
        let mut response = http::Response::new(ResponseBody::empty());
        *response.status_mut() = status;
        Ok(response)
    }
}

fn fast_rate() -> Option<peregrine_core::MinDataRate> {
    Some(peregrine_core::MinDataRate {
        bytes_per_second: 240.0,
        grace_period: Duration::from_millis(300),
    })
}

#[tokio::test]
async fn times_out_bodies_sent_below_the_minimum_rate() {
    let (server, port) = start(SlowBodyAware, |o| {
        o.limits.min_request_body_data_rate = fast_rate()
    });
    let mut client = RawClient::connect(port).await;
    client
        .send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n")
        .await;
    let trickle = async {
        for _ in 0..20 {
            client.send(b"x").await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    trickle.await;
    let text = client.read_until(|t| t.contains("\r\n\r\n")).await;
    assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
    server.stop(Duration::from_secs(1)).await;
}

/// Streams an endless response.
struct Firehose;

/// The same chunk, forever.
struct Endless(Bytes);

impl http_body::Body for Endless {
    type Data = Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(self.0.clone()))))
    }
}

impl Handler for Firehose {
    async fn call(&self, _request: Request) -> Result<Response, Abort> {
        let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
        Ok(http::Response::new(ResponseBody::stream(Endless(chunk))))
    }
}

#[tokio::test]
async fn aborts_clients_that_stop_reading() {
    let (server, port) = start(Firehose, |o| o.limits.min_response_data_rate = fast_rate());
    let mut client = RawClient::connect(port).await;
    client.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    // Read nothing: the kernel buffers fill, then the server's writes block.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let started = std::time::Instant::now();
    client.read_until(|_| false).await; // drains what was buffered, then sees the close
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the server kept the connection open"
    );
    assert_eq!(
        server.stats().rejections,
        vec![("MIN_RESPONSE_DATA_RATE", 1)]
    );
    server.stop(Duration::from_secs(1)).await;
}

/// Answers `/slow` after three seconds, anything else at once.
struct SlowAfterFast;

impl Handler for SlowAfterFast {
    async fn call(&self, request: Request) -> Result<Response, Abort> {
        if request.head.parts.uri.path() == "/slow" {
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        Ok(http::Response::new(ResponseBody::full(Bytes::from_static(
            b"done",
        ))))
    }
}

#[tokio::test]
async fn a_slow_pipelined_request_does_not_hold_back_the_response_before_it() {
    let (server, port) = start(SlowAfterFast, |_| {});
    let mut client = RawClient::connect(port).await;
    client
        .send(b"GET /fast HTTP/1.1\r\nHost: a\r\n\r\nGET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
        .await;
    // The guard holds /fast's response for the one behind it, but only for a
    // millisecond or two (guard/held.rs), not until /slow is answered.
    let first = tokio::time::timeout(
        Duration::from_secs(1),
        client.read_until(|r| r.contains("done")),
    )
    .await
    .expect("the first response waited for the second");
    assert!(first.starts_with("HTTP/1.1 200 OK"), "{first}");
    let both = client.read_until(|r| r.matches("done").count() == 2).await;
    assert_eq!(both.matches("HTTP/1.1 200 OK").count(), 2);
    server.stop(Duration::from_secs(1)).await;
}
