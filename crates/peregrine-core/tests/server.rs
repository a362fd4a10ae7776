//! The core on its own: a plain Rust handler served over real sockets.

mod support;

use std::time::Duration;

use bytes::Bytes;
use peregrine_core::{Abort, Handler, Request, Response, ResponseBody};
use support::{start, RawClient};

struct Hello;

impl Handler for Hello {
    async fn call(&self, request: Request) -> Result<Response, Abort> {
        match request.head.parts.uri.path() {
            "/abort" => Err(Abort),
            "/slow" => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                Ok(http::Response::new(ResponseBody::full("slow")))
            }
            "/echo" => Ok(http::Response::new(ResponseBody::stream(request.body))),
            _ => Ok(http::Response::new(ResponseBody::full(Bytes::from_static(
                b"hello",
            )))),
        }
    }
}

#[tokio::test]
async fn serves_keep_alive_requests_with_date_and_server_headers() {
    let (server, port) = start(Hello, |_| {});
    let mut client = RawClient::connect(port).await;
    for _ in 0..3 {
        client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let text = client.read_until(|t| t.ends_with("hello")).await;
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("server: Peregrine\r\n"), "{text}");
        assert!(text.contains("date: "), "{text}");
        assert!(text.contains("content-length: 5\r\n"), "{text}");
        client.take();
    }
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn answers_pipelined_requests_in_order() {
    let (server, port) = start(Hello, |_| {});
    let mut client = RawClient::connect(port).await;
    client
        .send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let text = client
        .read_until(|t| t.matches("HTTP/1.1 200").count() == 2 && t.ends_with("hello"))
        .await;
    assert!(
        text.find("slow").unwrap() < text.rfind("hello").unwrap(),
        "{text}"
    );
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn streams_a_chunked_body_back() {
    let (server, port) = start(Hello, |_| {});
    let mut client = RawClient::connect(port).await;
    client
        .send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        .await;
    let text = client.read_until(|t| t.ends_with("0\r\n\r\n")).await;
    let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
    let data: String = body.split("\r\n").skip(1).step_by(2).collect();
    assert_eq!(data, "abcde");
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn an_aborted_exchange_closes_the_connection() {
    let (server, port) = start(Hello, |_| {});
    let mut client = RawClient::connect(port).await;
    client.send(b"GET /abort HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let text = client.read_until(|_| false).await;
    assert_eq!(text, "", "no response at all, just a closed connection");
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn stop_finishes_in_flight_requests_then_refuses_connections() {
    let (server, port) = start(Hello, |_| {});
    let mut client = RawClient::connect(port).await;
    client.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let stopping = tokio::spawn(server.stop(Duration::from_secs(5)));
    let text = client.read_until(|t| t.ends_with("slow")).await;
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    // During shutdown hyper tells the client this connection is not reused.
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    stopping.await.unwrap();
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err());
}

#[tokio::test]
async fn stop_aborts_requests_that_outlive_the_timeout() {
    let (server, port) = start(Hello, |_| {});
    let mut client = RawClient::connect(port).await;
    client.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = std::time::Instant::now();
    server.stop(Duration::from_millis(10)).await;
    assert!(started.elapsed() < Duration::from_millis(150));
    assert_eq!(client.read_until(|_| false).await, "");
}

#[tokio::test]
async fn binds_localhost_on_both_loopbacks_with_one_port() {
    let (server, _) = start(Hello, |o| {
        o.endpoints = vec![peregrine_core::Endpoint::parse("http://localhost:0").unwrap()];
    });
    let urls = server.urls().to_vec();
    assert!(urls[0].starts_with("http://127.0.0.1:"), "{urls:?}");
    if let Some(v6) = urls.get(1) {
        assert_eq!(
            v6.rsplit(':').next(),
            urls[0].rsplit(':').next(),
            "{urls:?}"
        );
    }
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn reports_an_address_in_use_with_its_code() {
    let (server, port) = start(Hello, |_| {});
    let options = peregrine_core::ServerOptions {
        endpoints: vec![
            peregrine_core::Endpoint::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
        ],
        ..Default::default()
    };
    let err = match peregrine_core::Server::start(
        options,
        std::sync::Arc::new(Hello),
        &tokio::runtime::Handle::current(),
    ) {
        Err(e) => e,
        Ok(_) => panic!("binding a used port succeeded"),
    };
    assert_eq!(err.code, peregrine_core::ErrorCode::AddressInUse);
    assert!(err.message.contains(&port.to_string()), "{}", err.message);
    server.stop(Duration::from_secs(1)).await;
}
