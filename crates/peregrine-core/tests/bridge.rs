//! The bridge protocol: events out, answers in, as the napi binding uses it.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use peregrine_core::bridge::Event;
use peregrine_core::{ErrorCode, ResponseBody, WriteOutcome};
use support::{bridge, next_event, next_request, start, RawClient};

fn ok(body: &'static str) -> peregrine_core::Response {
    http::Response::new(ResponseBody::full(Bytes::from_static(body.as_bytes())))
}

/// Waits for the body-too-large error of exchange `id`, answers it 413 as a host
/// would, and checks that the client got it.
async fn answers_too_large(
    bridge: &peregrine_core::bridge::Bridge,
    notify: &tokio::sync::Notify,
    client: &mut RawClient,
    id: u32,
) {
    let code = next_event(bridge, notify, |e| match e {
        Event::BodyError { id: failed, error } if failed == id => Some(error.code),
        _ => None,
    })
    .await;
    assert_eq!(code, ErrorCode::BodyTooLarge);
    let mut response = ok("");
    *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
    bridge.respond(id, response).unwrap();
    assert!(client
        .read_until(|t| t.contains("\r\n\r\n"))
        .await
        .starts_with("HTTP/1.1 413"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_requests_and_takes_whole_responses() {
    let (bridge, notify) = bridge();
    let (server, port) = start(bridge.clone(), |_| {});
    let mut client = RawClient::connect(port).await;
    client
        .send(b"GET /hi?x=1 HTTP/1.1\r\nHost: example\r\nX-Test: yes\r\n\r\n")
        .await;
    let (id, empty) = next_event(&bridge, &notify, |e| match e {
        Event::Request {
            id,
            head,
            body_empty,
            ..
        } => {
            assert_eq!(head.parts.uri.path_and_query().unwrap().as_str(), "/hi?x=1");
            assert_eq!(head.parts.headers["x-test"], "yes");
            assert_eq!(head.connection.remote.ip().to_string(), "127.0.0.1");
            Some((id, body_empty))
        }
        _ => None,
    })
    .await;
    assert!(empty);
    assert_eq!(bridge.in_flight(), 1);
    bridge.respond(id, ok("answer")).unwrap();
    assert_eq!(bridge.in_flight(), 0);
    assert!(client
        .read_until(|t| t.ends_with("answer"))
        .await
        .starts_with("HTTP/1.1 200"));
    // The exchange ended with the response; its id is no longer valid.
    let again = bridge.respond(id, ok("twice")).unwrap_err();
    assert_eq!(again.code, ErrorCode::UnknownExchange);
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_response_aborts_its_exchange_and_tells_the_host() {
    let (bridge, notify) = bridge();
    let (server, port) = start(bridge.clone(), |_| {});
    let mut client = RawClient::connect(port).await;
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let id = next_request(&bridge, &notify).await;
    bridge.refuse(
        id,
        peregrine_core::Error::new(ErrorCode::InvalidHeader, "header field 7 was never defined"),
    );
    assert_eq!(bridge.in_flight(), 0);
    let error = next_event(&bridge, &notify, |e| match e {
        Event::Refused { id: refused, error } if refused == id => Some(error),
        _ => None,
    })
    .await;
    assert_eq!(error.code, ErrorCode::InvalidHeader);
    assert_eq!(error.message, "header field 7 was never defined");
    // Aborted before its response started: the connection closes with no response.
    assert_eq!(client.read_until(|_| false).await, "");
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_requests_cost_few_wakes() {
    let (bridge, notify) = bridge();
    let (server, port) = start(bridge.clone(), |_| {});
    let mut clients = Vec::new();
    for _ in 0..20 {
        let mut c = RawClient::connect(port).await;
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        clients.push(c);
    }
    // Without draining, the queue fills while the host is "busy": one wake so far.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let events = bridge.drain();
    assert_eq!(events.len(), 20, "every request waits in one batch");
    notify.notified().await; // exactly one pending wake-up was recorded
    for event in events {
        if let Event::Request { id, .. } = event {
            bridge.respond(id, ok("x")).unwrap();
        }
    }
    for c in &mut clients {
        c.read_until(|t| t.ends_with("\r\n\r\nx")).await;
    }
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_the_body_one_chunk_per_request() {
    let (bridge, notify) = bridge();
    let (server, port) = start(bridge.clone(), |_| {});
    let mut client = RawClient::connect(port).await;
    client
        .send(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        .await;
    let id = next_event(&bridge, &notify, |e| match e {
        Event::Request { id, body_empty, .. } => {
            assert!(!body_empty);
            Some(id)
        }
        _ => None,
    })
    .await;
    bridge.read_body(id).unwrap();
    let data = next_event(&bridge, &notify, |e| match e {
        Event::Data { data, .. } => Some(data),
        _ => None,
    })
    .await;
    assert_eq!(&data[..], b"abc");
    client.send(b"2\r\nde\r\n0\r\n\r\n").await;
    // Nothing more is read until the host asks.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(bridge.drain().is_empty());
    bridge.read_body(id).unwrap();
    let data = next_event(&bridge, &notify, |e| match e {
        Event::Data { data, .. } => Some(data),
        _ => None,
    })
    .await;
    assert_eq!(&data[..], b"de");
    bridge.read_body(id).unwrap();
    next_event(&bridge, &notify, |e| {
        matches!(e, Event::End { .. }).then_some(())
    })
    .await;
    bridge.respond(id, ok("done")).unwrap();
    client.read_until(|t| t.ends_with("done")).await;
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforces_the_body_limit_per_request() {
    let (bridge, notify) = bridge();
    let (server, port) = start(bridge.clone(), |o| o.limits.max_request_body_size = Some(4));
    let mut client = RawClient::connect(port).await;
    client
        .send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789")
        .await;
    let id = next_request(&bridge, &notify).await;
    bridge.read_body(id).unwrap();
    answers_too_large(&bridge, &notify, &mut client, id).await;

    // The per-request limit can be raised before reading starts.
    let mut client = RawClient::connect(port).await;
    client
        .send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789")
        .await;
    let id = next_request(&bridge, &notify).await;
    bridge.set_max_request_body_size(id, Some(100)).unwrap();
    bridge.read_body(id).unwrap();
    next_event(&bridge, &notify, |e| {
        matches!(e, Event::Data { .. }).then_some(())
    })
    .await;
    assert!(
        bridge.set_max_request_body_size(id, None).is_err(),
        "read-only once reading started"
    );
    bridge.respond(id, ok("ok")).unwrap();
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_clients_that_leave_before_the_response() {
    let (bridge, notify) = bridge();
    let (server, port) = start(bridge.clone(), |_| {});
    let mut client = RawClient::connect(port).await;
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let id = next_request(&bridge, &notify).await;
    drop(client);
    let aborted = next_event(&bridge, &notify, |e| match e {
        Event::Aborted { id } => Some(id),
        _ => None,
    })
    .await;
    assert_eq!(aborted, id);
    assert_eq!(bridge.in_flight(), 0);
    assert_eq!(
        bridge.respond(id, ok("late")).unwrap_err().code,
        ErrorCode::UnknownExchange
    );
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_responses_with_backpressure_and_trailers() {
    let (bridge, notify) = bridge();
    let (server, port) = start(bridge.clone(), |_| {});
    let mut client = RawClient::connect(port).await;
    client
        .send(b"GET / HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\n")
        .await;
    let id = next_request(&bridge, &notify).await;
    // HTTP/1.1 sends only the trailer fields the response declared.
    let mut headers = HeaderMap::new();
    headers.insert("trailer", "x-checksum".parse().unwrap());
    bridge
        .start_response(id, StatusCode::OK, headers, None)
        .unwrap();
    // The high-water mark is 16 bytes here. The connection may take the first chunk
    // before the second is written, so the second alone reaches the mark.
    assert_eq!(
        bridge.write(id, Bytes::from_static(b"0123456789")).unwrap(),
        WriteOutcome::Ready
    );
    assert_eq!(
        bridge
            .write(id, Bytes::from_static(b"abcdefghijklmnop"))
            .unwrap(),
        WriteOutcome::Full
    );
    // The client reads, the buffer drains, and the host hears it may write again.
    next_event(&bridge, &notify, |e| {
        matches!(e, Event::WriteReady { .. }).then_some(())
    })
    .await;
    let mut trailers = HeaderMap::new();
    trailers.insert("x-checksum", "42".parse().unwrap());
    bridge.finish(id, Some(trailers)).unwrap();
    let text = client
        .read_until(|t| t.ends_with("\r\n\r\n") && t.contains("x-checksum"))
        .await;
    assert!(text.contains("transfer-encoding: chunked"), "{text}");
    assert!(
        text.contains("0123456789") && text.contains("abcdefghijklmnop"),
        "{text}"
    );
    assert!(text.contains("x-checksum: 42"), "{text}");
    server.stop(Duration::from_secs(1)).await;
}

fn relay(bridge: &peregrine_core::bridge::Bridge, id: u32) -> Result<(), peregrine_core::Error> {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/octet-stream".parse().unwrap());
    bridge.relay(id, StatusCode::OK, headers, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_an_unread_body_as_the_response_without_the_host() {
    let (bridge, notify) = bridge();
    let (server, port) = start(bridge.clone(), |_| {});
    let mut client = RawClient::connect(port).await;
    client
        .send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234")
        .await;
    let id = next_request(&bridge, &notify).await;
    relay(&bridge, id).unwrap();
    // With its first chunk in, the response went out and the exchange ended.
    next_event(&bridge, &notify, |e| {
        matches!(e, Event::End { id: ended } if ended == id).then_some(())
    })
    .await;
    assert_eq!(bridge.in_flight(), 0);
    assert_eq!(
        relay(&bridge, id).unwrap_err().code,
        ErrorCode::UnknownExchange
    );
    let head = client.read_until(|t| t.ends_with("01234")).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // The request's whole length is the response's.
    assert!(
        head.to_ascii_lowercase().contains("content-length: 10\r\n"),
        "{head}"
    );
    client.send(b"56789").await;
    client.read_until(|t| t.ends_with("0123456789")).await;
    // The rest of the body made no events, and the connection is kept.
    assert!(bridge.drain().is_empty());
    client.take();
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let id = next_request(&bridge, &notify).await;
    bridge.respond(id, ok("next")).unwrap();
    client.read_until(|t| t.ends_with("next")).await;
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_asks_for_the_body_before_it_answers() {
    let (bridge, notify) = bridge();
    let (server, port) = start(bridge.clone(), |_| {});
    let mut client = RawClient::connect(port).await;
    client
        .send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        .await;
    let id = next_request(&bridge, &notify).await;
    relay(&bridge, id).unwrap();
    let text = client.read_until(|t| t.contains("\r\n\r\n")).await;
    assert_eq!(text, "HTTP/1.1 100 Continue\r\n\r\n");
    assert_eq!(bridge.in_flight(), 1, "no answer before the first chunk");
    client.send(b"hello").await;
    let text = client.read_until(|t| t.ends_with("hello")).await;
    assert!(text.contains("HTTP/1.1 200 OK\r\n"), "{text}");
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayed_body_keeps_its_trailers_and_limit() {
    let (bridge, notify) = bridge();
    let (server, port) = start(bridge.clone(), |o| o.limits.max_request_body_size = Some(8));
    let mut client = RawClient::connect(port).await;
    client
        .send(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTE: trailers\r\n\r\n5\r\nhello\r\n0\r\nx-sum: 5\r\n\r\n")
        .await;
    let id = next_request(&bridge, &notify).await;
    // Even a response that declares the field, to a client that takes trailers.
    let mut headers = HeaderMap::new();
    headers.insert("trailer", "x-sum".parse().unwrap());
    bridge.relay(id, StatusCode::OK, headers, None).unwrap();
    let text = client
        .read_until(|t| t.ends_with("\r\n\r\n") && t.contains("\r\n0\r\n"))
        .await;
    assert!(text.contains("\r\n5\r\nhello\r\n0\r\n\r\n"), "{text}");
    assert!(
        !text.contains("x-sum: 5"),
        "request trailers are not the response's: {text}"
    );

    // Past the limit with the first chunk, the host hears it and can still answer.
    let mut client = RawClient::connect(port).await;
    client
        .send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789")
        .await;
    let id = next_request(&bridge, &notify).await;
    relay(&bridge, id).unwrap();
    answers_too_large(&bridge, &notify, &mut client, id).await;

    // Past the limit later, the response breaks off and the connection closes.
    let mut client = RawClient::connect(port).await;
    client
        .send(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n")
        .await;
    let id = next_request(&bridge, &notify).await;
    relay(&bridge, id).unwrap();
    // hyper may drop the head it had not flushed yet: the client sees a broken
    // response or none, never a complete one.
    let text = client.read_until(|_| false).await;
    assert!(!text.contains("world"), "{text}");
    assert!(
        !text.ends_with("0\r\n\r\n"),
        "the response must not look complete: {text}"
    );
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_unread_body_is_relayed() {
    let (bridge, notify) = bridge();
    let (server, port) = start(bridge.clone(), |_| {});
    let mut client = RawClient::connect(port).await;
    client
        .send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        .await;
    let id = next_request(&bridge, &notify).await;
    bridge.read_body(id).unwrap();
    next_event(&bridge, &notify, |e| {
        matches!(e, Event::Data { .. }).then_some(())
    })
    .await;
    assert_eq!(relay(&bridge, id).unwrap_err().code, ErrorCode::BodyRead);
    // The exchange is as it was: it can still answer.
    bridge.respond(id, ok("read")).unwrap();
    client.read_until(|t| t.ends_with("read")).await;

    let mut client = RawClient::connect(port).await;
    client
        .send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        .await;
    let id = next_request(&bridge, &notify).await;
    let bad = bridge.relay(id, StatusCode::OK, HeaderMap::new(), Some("bad\r\nphrase"));
    assert_eq!(bad.unwrap_err().code, ErrorCode::InvalidStatus);
    relay(&bridge, id).unwrap();
    client.read_until(|t| t.ends_with("abc")).await;
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_started_during_a_relay_ends_the_relay() {
    let (bridge, notify) = bridge();
    let (server, port) = start(bridge.clone(), |_| {});
    let mut client = RawClient::connect(port).await;
    client
        .send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
        .await;
    let id = next_request(&bridge, &notify).await;
    relay(&bridge, id).unwrap();
    // Before the first chunk comes, the host answers on its own.
    bridge
        .start_response(id, StatusCode::OK, HeaderMap::new(), None)
        .unwrap();
    client.send(b"hello").await;
    let code = next_event(&bridge, &notify, |e| match e {
        Event::BodyError { id: failed, error } if failed == id => Some(error.code),
        _ => None,
    })
    .await;
    assert_eq!(code, ErrorCode::ResponseAlreadyStarted);
    bridge.finish(id, None).unwrap();
    server.stop(Duration::from_secs(1)).await;
}
