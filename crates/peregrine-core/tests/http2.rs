//! HTTP/2 in the core, with the h2 crate as the client: stream ids, resets with a
//! chosen code, trailers, and a graceful stop that lets open streams finish.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use peregrine_core::{
    Abort, BodyChunk, Handler, Protocols, Request as CoreRequest, ResetStream, Response,
    ResponseBody,
};
use tokio::net::TcpStream;

struct App;

impl Handler for App {
    async fn call(&self, mut request: CoreRequest) -> Result<Response, Abort> {
        let path = request.head.parts.uri.path().to_string();
        let stream_id = request.head.stream_id;
        let mut response = http::Response::new(ResponseBody::empty());
        match path.as_str() {
            "/id" => *response.body_mut() = ResponseBody::full(format!("{stream_id:?}")),
            "/reset" => {
                response.extensions_mut().insert(ResetStream(0xb));
            }
            "/trailers" => {
                let mut seen = String::new();
                while let Some(chunk) = request.body.next_chunk().await {
                    if let Ok(BodyChunk::Trailers(t)) = chunk {
                        seen = t["x-sum"].to_str().unwrap().to_string();
                    }
                }
                *response.body_mut() = ResponseBody::full(seen);
            }
            "/slow" => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                *response.body_mut() = ResponseBody::full("slow done");
            }
            _ => *response.status_mut() = StatusCode::NOT_FOUND,
        }
        Ok(response)
    }
}

async fn client(port: u16) -> h2::client::SendRequest<Bytes> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (send, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    send
}

async fn get(
    send: &mut h2::client::SendRequest<Bytes>,
    path: &str,
) -> Result<(StatusCode, String), h2::Error> {
    let request = Request::get(format!("http://localhost{path}"))
        .body(())
        .unwrap();
    let (response, _) = send.clone().ready().await?.send_request(request, true)?;
    let response = response.await?;
    let status = response.status();
    let mut body = response.into_body();
    let mut text = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        text.extend_from_slice(&chunk);
    }
    Ok((status, String::from_utf8(text).unwrap()))
}

#[tokio::test]
async fn requests_carry_their_stream_id() {
    let (server, port) = support::start(App, |o| o.endpoints[0].protocols = Protocols::Http2);
    let mut send = client(port).await;
    for expected in [1, 3, 5] {
        let (status, body) = get(&mut send, "/id").await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, format!("Some({expected})"));
    }
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_reset_stream_response_sends_rst_stream_with_its_code() {
    let (server, port) = support::start(App, |_| {});
    let mut send = client(port).await;
    let error = get(&mut send, "/reset").await.unwrap_err();
    assert_eq!(error.reason(), Some(h2::Reason::ENHANCE_YOUR_CALM));
    // The connection lives on.
    assert_eq!(get(&mut send, "/id").await.unwrap().0, StatusCode::OK);
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn request_trailers_reach_the_handler() {
    let (server, port) = support::start(App, |_| {});
    let send = client(port).await;
    let request = Request::post("http://localhost/trailers").body(()).unwrap();
    let (response, mut body) = send
        .ready()
        .await
        .unwrap()
        .send_request(request, false)
        .unwrap();
    body.send_data(Bytes::from_static(b"data"), false).unwrap();
    let mut trailers = http::HeaderMap::new();
    trailers.insert("x-sum", "42".parse().unwrap());
    body.send_trailers(trailers).unwrap();
    let response = response.await.unwrap();
    let mut received = response.into_body();
    let chunk = received.data().await.unwrap().unwrap();
    assert_eq!(&chunk[..], b"42");
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn stop_sends_goaway_and_lets_open_streams_finish() {
    let (server, port) = support::start(App, |_| {});
    let mut send = client(port).await;
    let slow = tokio::spawn(async move { get(&mut send, "/slow").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = tokio::time::Instant::now();
    server.stop(Duration::from_secs(5)).await;
    let (status, body) = slow.await.unwrap().unwrap();
    assert_eq!((status, body.as_str()), (StatusCode::OK, "slow done"));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "stop waited only for the stream"
    );
}
