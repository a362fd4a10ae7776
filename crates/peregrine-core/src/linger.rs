//! Closing a TCP connection without resetting it.
//!
//! Closing a socket whose receive buffer still holds unread bytes makes the kernel send
//! RST instead of FIN, and the peer may then lose the last frames the server sent (a
//! GOAWAY, an error response). h2spec counts that as a failure (hyperium/h2#701). So a
//! connection is not closed when hyper is done with it: its write side is shut, and
//! what the peer still sends is read and dropped until it closes too, for a bounded
//! time.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// How long a closed connection keeps reading what the peer still sends.
const LINGER_TIMEOUT: Duration = Duration::from_secs(2);
/// How much it reads before giving up on a peer that keeps sending.
const LINGER_MAX_BYTES: usize = 1024 * 1024;

/// A TCP stream that, when dropped, finishes closing in the background.
pub(crate) struct LingeringClose {
    stream: Option<TcpStream>,
}

impl LingeringClose {
    pub fn new(stream: TcpStream) -> LingeringClose {
        LingeringClose {
            stream: Some(stream),
        }
    }

    fn stream(&mut self) -> Pin<&mut TcpStream> {
        // Only Drop takes the stream out.
        Pin::new(self.stream.as_mut().expect("stream present until drop"))
    }
}

impl AsyncRead for LingeringClose {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.get_mut().stream().poll_read(cx, buf)
    }
}

impl AsyncWrite for LingeringClose {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().stream().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().stream().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().stream().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().stream().poll_shutdown(cx)
    }
}

impl Drop for LingeringClose {
    fn drop(&mut self) {
        let Some(stream) = self.stream.take() else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(drain(stream));
        }
    }
}

async fn drain(mut stream: TcpStream) {
    // FIN first, so the peer learns we are done and closes its side.
    let _ = stream.shutdown().await;
    let mut buf = [0u8; 8192];
    let mut read = 0;
    let _ = tokio::time::timeout(LINGER_TIMEOUT, async {
        while read < LINGER_MAX_BYTES {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
    })
    .await;
}
