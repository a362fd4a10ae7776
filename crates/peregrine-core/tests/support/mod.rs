//! Helpers shared by the core's integration tests: a raw HTTP/1.1 client and a bridge
//! host that records wake-ups.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use peregrine_core::bridge::{Bridge, Event, Wake};
use peregrine_core::{Endpoint, Handler, RunningServer, Server, ServerOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

pub fn start<H: Handler>(
    handler: H,
    configure: impl FnOnce(&mut ServerOptions),
) -> (RunningServer, u16) {
    let mut options = ServerOptions {
        endpoints: vec![Endpoint::parse("http://127.0.0.1:0").unwrap()],
        ..ServerOptions::default()
    };
    configure(&mut options);
    let server = Server::start(
        options,
        Arc::new(handler),
        &tokio::runtime::Handle::current(),
    )
    .unwrap();
    let port = server.urls()[0]
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    (server, port)
}

/// A raw connection that reads until a predicate holds.
pub struct RawClient {
    pub stream: TcpStream,
    pub received: Vec<u8>,
}

impl RawClient {
    pub async fn connect(port: u16) -> RawClient {
        RawClient {
            stream: TcpStream::connect(("127.0.0.1", port)).await.unwrap(),
            received: Vec::new(),
        }
    }

    pub async fn send(&mut self, data: &[u8]) {
        self.stream.write_all(data).await.unwrap();
    }

    /// Reads until `done` holds for everything received, or fails after 10 s.
    pub async fn read_until(&mut self, done: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 16384];
        while !done(&String::from_utf8_lossy(&self.received)) {
            // A reset ends the reading like a close does.
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut buf))
                .await
                .expect("timed out reading")
                .unwrap_or(0);
            if n == 0 {
                break;
            }
            self.received.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&self.received).into_owned()
    }

    pub fn take(&mut self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut self.received)).into_owned()
    }
}

/// A bridge host that counts wake-ups and lets a test wait for events.
pub struct TestWake(pub Arc<Notify>);

impl Wake for TestWake {
    fn wake(&self) {
        self.0.notify_one();
    }
}

pub fn bridge() -> (Arc<Bridge>, Arc<Notify>) {
    let notify = Arc::new(Notify::new());
    let bridge = Bridge::new(
        TestWake(notify.clone()),
        tokio::runtime::Handle::current(),
        16,
    );
    (bridge, notify)
}

/// Waits for wake-ups and drains until `pick` accepts an event, which it returns.
pub async fn next_event<T>(
    bridge: &Bridge,
    notify: &Notify,
    mut pick: impl FnMut(Event) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        for event in bridge.drain() {
            if let Some(found) = pick(event) {
                return found;
            }
        }
        tokio::time::timeout_at(deadline, notify.notified())
            .await
            .expect("no event arrived in time");
    }
}

/// Waits for the next request and returns its exchange id.
pub async fn next_request(bridge: &Bridge, notify: &Notify) -> peregrine_core::bridge::ExchangeId {
    next_event(bridge, notify, |e| match e {
        Event::Request { id, .. } => Some(id),
        _ => None,
    })
    .await
}
