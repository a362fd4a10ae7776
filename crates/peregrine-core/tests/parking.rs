//! Idle HTTP/1.1 connections are parked: hyper's connection and its buffers are
//! dropped while the client is quiet, and the next request is served as if nothing
//! happened. `idle_connections` in the stats counts parked connections.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame};
use peregrine_core::{Abort, Handler, Request, Response, ResponseBody, RunningServer};
use support::{start, RawClient};

/// Longer than a connection needs to park (`PARK_AFTER`, 50 ms, at most twice that).
const PARKED: Duration = Duration::from_millis(250);

struct App;

impl Handler for App {
    async fn call(&self, request: Request) -> Result<Response, Abort> {
        let path = request.head.parts.uri.path().to_string();
        let body = match path.as_str() {
            "/slow" => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                ResponseBody::full("slow")
            }
            "/trickle" => ResponseBody::stream(Trickle {
                left: 4,
                pause: Box::pin(tokio::time::sleep(Duration::from_millis(150))),
            }),
            _ => ResponseBody::full(format!("ok {path}")),
        };
        Ok(http::Response::new(body))
    }
}

/// A body of `left` chunks with a pause before each.
struct Trickle {
    left: usize,
    pause: Pin<Box<tokio::time::Sleep>>,
}

impl Body for Trickle {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        std::task::ready!(self.pause.as_mut().poll(cx));
        self.left -= 1;
        let next = tokio::time::Instant::now() + Duration::from_millis(150);
        self.pause.as_mut().reset(next);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"chunk;")))))
    }
}

fn idle(server: &RunningServer) -> u64 {
    server.stats().idle_connections
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n").into_bytes()
}

/// A connection that has been answered once, then parked.
async fn parked_connection(server: &RunningServer, port: u16) -> RawClient {
    let mut client = RawClient::connect(port).await;
    client.send(&get("/one")).await;
    client.read_until(|t| t.ends_with("ok /one")).await;
    tokio::time::sleep(PARKED).await;
    assert_eq!(idle(server), 1, "parked after the response");
    client.take();
    client
}

#[tokio::test]
async fn an_idle_connection_is_parked_and_serves_its_next_requests() {
    let (server, port) = start(App, |_| {});
    let mut client = parked_connection(&server, port).await;
    // Pipelined requests wake it; they are answered in order.
    client.send(&[get("/two"), get("/three")].concat()).await;
    let answers = client.read_until(|t| t.ends_with("ok /three")).await;
    assert!(answers.find("ok /two").unwrap() < answers.find("ok /three").unwrap());
    assert!(answers.starts_with("HTTP/1.1 200 OK\r\n"), "{answers}");
    tokio::time::sleep(PARKED).await;
    assert_eq!(idle(&server), 1, "parked again");
    assert_eq!(server.stats().total_requests, 3);

    drop(client);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(idle(&server), 0, "a closed connection is no longer counted");
    assert_eq!(server.stats().current_connections, 0);
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_head_split_across_the_wait_is_served() {
    let (server, port) = start(App, |_| {});
    let mut client = parked_connection(&server, port).await;
    let request = get("/split");
    let (first, rest) = request.split_at(12);
    client.send(first).await;
    tokio::time::sleep(PARKED).await;
    assert_eq!(
        idle(&server),
        0,
        "a connection holding part of a head is not idle"
    );
    client.send(rest).await;
    client.read_until(|t| t.ends_with("ok /split")).await;
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_connection_owing_a_response_is_not_parked() {
    let (server, port) = start(App, |_| {});
    let mut client = RawClient::connect(port).await;
    client.send(&get("/slow")).await;
    tokio::time::sleep(PARKED).await;
    assert_eq!(idle(&server), 0, "the handler has not answered yet");
    client.read_until(|t| t.ends_with("slow")).await;

    client.take();
    client.send(&get("/trickle")).await;
    tokio::time::sleep(PARKED).await;
    assert_eq!(idle(&server), 0, "the response is still being sent");
    let body = client.read_until(|t| t.ends_with("\r\n0\r\n\r\n")).await;
    assert!(body.contains("transfer-encoding: chunked"), "{body}");
    assert_eq!(body.matches("chunk;").count(), 4, "{body}");
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn keep_alive_timeout_counts_the_time_before_and_while_parked() {
    let timeout = Duration::from_millis(400);
    let (server, port) = start(App, |o| o.limits.keep_alive_timeout = timeout);
    let mut client = RawClient::connect(port).await;
    client.send(&get("/one")).await;
    client.read_until(|t| t.ends_with("ok /one")).await;
    let answered = Instant::now();
    client.read_until(|_| false).await; // returns at EOF
    let idle_for = answered.elapsed();
    assert!(
        idle_for >= timeout && idle_for < timeout + Duration::from_millis(250),
        "closed after {idle_for:?}"
    );
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn stop_closes_parked_connections() {
    let (server, port) = start(App, |_| {});
    let mut client = parked_connection(&server, port).await;
    let stopped = Instant::now();
    server.stop(Duration::from_secs(5)).await;
    assert!(
        stopped.elapsed() < Duration::from_secs(1),
        "waited for an idle connection"
    );
    assert_eq!(
        client.read_until(|_| false).await,
        "",
        "closed with nothing sent"
    );
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_keep_alive_timeout() {
    let timeout = Duration::from_millis(300);
    let (server, port) = start(App, |o| o.limits.keep_alive_timeout = timeout);
    let mut client = RawClient::connect(port).await;
    let connected = Instant::now();
    assert_eq!(
        client.read_until(|_| false).await,
        "",
        "closed with nothing sent"
    );
    let waited = connected.elapsed();
    assert!(
        waited >= timeout && waited < timeout + Duration::from_millis(250),
        "closed after {waited:?}"
    );
    server.stop(Duration::from_secs(1)).await;
}
