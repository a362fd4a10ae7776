//! Pipelined HTTP/1.1 requests reach a handler that serves them concurrently
//! (`Handler::CONCURRENT_PIPELINING`) together, and still get their responses in order,
//! with nothing served behind a request that ends the connection.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use peregrine_core::{Abort, Handler, Request, Response, ResponseBody, RunningServer};
use support::{start, RawClient};
use tokio::sync::Notify;

/// Records the requests it is called for. `/wait/N` answers once N calls have
/// started (or with 504 after 3 s), `/abort` aborts after a moment, and anything else
/// answers with its path and the body it was sent.
#[derive(Default)]
struct Record {
    calls: Mutex<Vec<String>>,
    started: AtomicUsize,
    arrived: Notify,
    /// Calls whose future was dropped before it answered.
    dropped: AtomicUsize,
    /// Calls running now, and the most that ran at once.
    running: AtomicUsize,
    most_running: AtomicUsize,
}

struct App(Arc<Record>);

/// Counts a call's future as dropped unless it was disarmed by answering.
struct DropCount<'a>(&'a AtomicUsize, bool);

impl Drop for DropCount<'_> {
    fn drop(&mut self) {
        if self.1 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Counts a call as running until its future is dropped.
struct Running<'a>(&'a AtomicUsize);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Handler for App {
    const CONCURRENT_PIPELINING: bool = true;

    async fn call(&self, request: Request) -> Result<Response, Abort> {
        let record = &self.0;
        let path = request.head.parts.uri.path().to_owned();
        record.calls.lock().unwrap().push(path.clone());
        record.started.fetch_add(1, Ordering::SeqCst);
        record.arrived.notify_waiters();
        let mut armed = DropCount(&record.dropped, true);
        let running = record.running.fetch_add(1, Ordering::SeqCst) + 1;
        record.most_running.fetch_max(running, Ordering::SeqCst);
        let _running = Running(&record.running);
        let mut status = http::StatusCode::OK;
        if let Some(n) = path.strip_prefix("/wait/") {
            let n: usize = n.parse().unwrap();
            let all_started = async {
                loop {
                    let notified = record.arrived.notified();
                    if record.started.load(Ordering::SeqCst) >= n {
                        break;
                    }
                    notified.await;
                }
            };
            if tokio::time::timeout(Duration::from_secs(3), all_started)
                .await
                .is_err()
            {
                status = http::StatusCode::GATEWAY_TIMEOUT;
            }
        } else if path.starts_with("/tick/") {
            tokio::time::sleep(Duration::from_millis(5)).await;
        } else if path == "/slow" {
            tokio::time::sleep(Duration::from_millis(50)).await;
        } else if path == "/abort" {
            tokio::time::sleep(Duration::from_millis(50)).await;
            armed.1 = false;
            return Err(Abort);
        }
        let body = request.body.collect().await.unwrap().to_bytes();
        armed.1 = false;
        let mut response = http::Response::new(ResponseBody::full(Bytes::from(format!(
            "<{path}:{}>",
            String::from_utf8_lossy(&body)
        ))));
        *response.status_mut() = status;
        Ok(response)
    }
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n")
}

/// A server for a fresh [`Record`], and a connection to it (see [`connected`]).
async fn serving() -> (Arc<Record>, RunningServer, RawClient) {
    let record = Arc::new(Record::default());
    let (server, port) = start(App(record.clone()), |_| {});
    (record, server, connected(port).await)
}

/// Asserts that each of `bodies` is in `text`, in this order.
fn assert_in_order(text: &str, bodies: &[&str]) {
    let at: Vec<usize> = bodies
        .iter()
        .map(|b| {
            text.find(b)
                .unwrap_or_else(|| panic!("{b} missing from {text}"))
        })
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
}

/// A connection that has had one exchange (`/first`), so that what a test sends next
/// arrives in one read: a connection's first bytes may be read apart while the server
/// tells HTTP/1.1 from HTTP/2, and a head read only after hyper has a request in hand
/// waits for it.
async fn connected(port: u16) -> RawClient {
    let mut client = RawClient::connect(port).await;
    client.send(get("/first").as_bytes()).await;
    client.read_until(|t| t.contains("</first:>")).await;
    client.take();
    client
}

#[tokio::test]
async fn pipelined_requests_reach_the_handler_together_and_are_answered_in_order() {
    let (record, server, mut client) = serving().await;
    // Each answers only once all eight (and /first) have been called for: served one
    // at a time, the first would wait out its 3 s and answer 504.
    let paths: Vec<String> = (0..8).map(|_| "/wait/9".to_owned()).collect();
    let raw: String = paths.iter().map(|p| get(p)).collect();
    client.send(raw.as_bytes()).await;
    let text = client
        .read_until(|t| t.matches("HTTP/1.1 ").count() == 8)
        .await;
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 8, "{text}");
    assert_eq!(record.calls.lock().unwrap().len(), 9);
    // In order, the connection still open for more.
    client.take();
    let raw: String = ["/x/1", "/slow", "/x/3", "/x/4"]
        .iter()
        .map(|p| get(p))
        .collect();
    client.send(raw.as_bytes()).await;
    let text = client.read_until(|t| t.contains("</x/4:>")).await;
    assert_in_order(&text, &["</x/1:>", "</slow:>", "</x/3:>", "</x/4:>"]);
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn nothing_behind_a_request_that_ends_the_connection_is_served() {
    let (record, server, mut client) = serving().await;
    let raw = format!(
        "{}GET /closing HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n{}GET /1.0 HTTP/1.0\r\n\r\n",
        get("/slow"),
        get("/after-close")
    );
    client.send(raw.as_bytes()).await;
    let text = client.read_until(|_| false).await;
    assert!(
        text.contains("</slow:>") && text.contains("</closing:>"),
        "{text}"
    );
    assert_eq!(text.matches("HTTP/1.1 ").count(), 2, "{text}");
    assert_eq!(
        *record.calls.lock().unwrap(),
        ["/first", "/slow", "/closing"]
    );

    // HTTP/1.0 without keep-alive ends the connection too, here as the first request.
    let (record, server2, mut client) = serving().await;
    let raw = format!("GET /old HTTP/1.0\r\n\r\n{}", get("/after"));
    client.send(raw.as_bytes()).await;
    let text = client.read_until(|_| false).await;
    assert!(text.contains("</old:>"), "{text}");
    assert!(!text.contains("</after:>"), "{text}");
    assert_eq!(*record.calls.lock().unwrap(), ["/first", "/old"]);
    server.stop(Duration::from_secs(1)).await;
    server2.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn requests_dispatched_ahead_are_dropped_when_the_connection_ends_first() {
    let (record, server, mut client) = serving().await;
    // The app aborts the first: hyper closes the connection without answering, and
    // the three dispatched behind it never get to be written.
    let raw: String = ["/abort", "/wait/100", "/wait/100", "/wait/100"]
        .iter()
        .map(|p| get(p))
        .collect();
    client.send(raw.as_bytes()).await;
    let text = client.read_until(|_| false).await;
    assert_eq!(text, "", "the connection closes without a response");
    assert_eq!(record.calls.lock().unwrap().len(), 5);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while record.dropped.load(Ordering::SeqCst) < 3 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(record.dropped.load(Ordering::SeqCst), 3);
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_request_with_a_body_among_pipelined_ones_is_served_in_its_turn() {
    let (record, server, mut client) = serving().await;
    let raw = format!(
        "{}POST /post HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nxyz{}{}",
        get("/slow"),
        get("/c"),
        get("/d")
    );
    client.send(raw.as_bytes()).await;
    let text = client.read_until(|t| t.contains("</d:>")).await;
    assert_in_order(&text, &["</slow:>", "</post:xyz>", "</c:>", "</d:>"]);
    assert_eq!(
        *record.calls.lock().unwrap(),
        ["/first", "/slow", "/post", "/c", "/d"]
    );
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn at_most_sixteen_requests_run_ahead_of_the_one_hyper_serves() {
    let (record, server, mut client) = serving().await;
    let paths: Vec<String> = (0..40).map(|i| format!("/tick/{i}")).collect();
    let raw: String = paths.iter().map(|p| get(p)).collect();
    client.send(raw.as_bytes()).await;
    let text = client.read_until(|t| t.contains("</tick/39:>")).await;
    let bodies: Vec<String> = (0..40).map(|i| format!("</tick/{i}:>")).collect();
    let bodies: Vec<&str> = bodies.iter().map(String::as_str).collect();
    assert_in_order(&text, &bodies);
    let most = record.most_running.load(Ordering::SeqCst);
    // The one hyper serves and 16 dispatched ahead; more than one, or nothing went ahead.
    assert!((2..=17).contains(&most), "{most} ran at once");
    server.stop(Duration::from_secs(1)).await;
}
