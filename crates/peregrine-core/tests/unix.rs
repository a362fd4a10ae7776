//! Unix domain socket endpoints (`unix:/path`): serving, the socket file's lifecycle,
//! and what the connection reports about its peer.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use peregrine_core::transport::{Transport, UNIX_PEER};
use peregrine_core::{
    Abort, Endpoint, Error, ErrorCode, Handler, Request, Response, ResponseBody, RunningServer,
    Server, ServerOptions,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// Answers with what the connection says about its transport and peer.
struct Peer;

impl Handler for Peer {
    async fn call(&self, request: Request) -> Result<Response, Abort> {
        let connection = &request.head.connection;
        let text = format!(
            "{:?} {} {}",
            connection.transport,
            connection.remote == UNIX_PEER,
            connection.local == UNIX_PEER
        );
        Ok(http::Response::new(ResponseBody::full(text)))
    }
}

/// A fresh directory for one test's socket, removed when the test ends.
struct SocketDir(PathBuf);

impl SocketDir {
    fn new(name: &str) -> SocketDir {
        let dir =
            std::env::temp_dir().join(format!("peregrine-unix-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        SocketDir(dir)
    }

    fn socket(&self) -> PathBuf {
        self.0.join("app.sock")
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start(options: ServerOptions) -> Result<RunningServer, Error> {
    Server::start(options, Arc::new(Peer), &tokio::runtime::Handle::current())
}

fn options(path: &std::path::Path) -> ServerOptions {
    ServerOptions {
        endpoints: vec![Endpoint::parse(&format!("unix:{}", path.display())).unwrap()],
        ..ServerOptions::default()
    }
}

async fn get(path: &std::path::Path) -> String {
    let mut stream = UnixStream::connect(path).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut text))
        .await
        .expect("timed out reading")
        .unwrap();
    text
}

#[tokio::test]
async fn serves_http_over_a_unix_socket_and_removes_the_file_on_stop() {
    let dir = SocketDir::new("serve");
    let path = dir.socket();
    let server = start(options(&path)).unwrap();
    assert_eq!(server.urls(), [format!("unix:{}", path.display())]);
    let text = get(&path).await;
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with("Unix true true"), "{text}");
    server.stop(Duration::from_secs(1)).await;
    assert!(!path.exists(), "the socket file is removed on stop");
}

#[tokio::test]
async fn tcp_connections_report_the_tcp_transport() {
    let server = start(ServerOptions {
        endpoints: vec![Endpoint::parse("http://127.0.0.1:0").unwrap()],
        ..ServerOptions::default()
    })
    .unwrap();
    let addr = server.urls()[0].trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    assert!(
        text.ends_with(&format!("{:?} false false", Transport::Tcp)),
        "{text}"
    );
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn replaces_a_stale_socket_file_but_not_a_live_one() {
    let dir = SocketDir::new("stale");
    let path = dir.socket();
    // A socket file whose listener is gone, as a crashed process leaves it.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let server = start(options(&path)).unwrap();
    assert!(get(&path).await.starts_with("HTTP/1.1 200 OK"));

    // A second server on the same path finds the first one listening.
    let Err(err) = start(options(&path)) else {
        panic!("a live socket must not be replaced");
    };
    assert_eq!(err.code, ErrorCode::AddressInUse);
    assert!(err.message.contains(&path.display().to_string()), "{err}");
    assert!(get(&path).await.starts_with("HTTP/1.1 200 OK"));
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn never_removes_a_file_that_is_not_a_socket() {
    let dir = SocketDir::new("regular");
    let path = dir.socket();
    std::fs::write(&path, "data").unwrap();
    let Err(err) = start(options(&path)) else {
        panic!("a regular file must not be replaced");
    };
    assert_eq!(err.code, ErrorCode::AddressInUse);
    assert!(err.message.contains("not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "data");
}

#[tokio::test]
async fn a_failed_start_leaves_no_socket_file() {
    let dir = SocketDir::new("rollback");
    let path = dir.socket();
    let mut options = options(&path);
    // The second endpoint cannot bind, so the whole start fails.
    options
        .endpoints
        .push(Endpoint::parse("http://192.0.2.1:0").unwrap());
    assert!(start(options).is_err());
    assert!(!path.exists());
}
