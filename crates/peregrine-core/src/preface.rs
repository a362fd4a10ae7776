//! Telling HTTP/2 from HTTP/1.1 on a cleartext endpoint that speaks both: a client
//! with prior knowledge of h2c opens with the HTTP/2 connection preface, anyone else
//! with an HTTP/1.1 request line. The bytes read to decide are replayed to hyper by
//! [`Rewind`].

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// The connection preface of RFC 9113, section 3.4.
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detected {
    Http1,
    Http2,
}

/// Reads until the bytes either match the whole preface or stop matching it. A client
/// that closes first is served as HTTP/1.1, which closes the connection quietly.
pub(crate) async fn detect<IO>(mut io: IO) -> io::Result<(Detected, Rewind<IO>)>
where
    IO: AsyncRead + Unpin,
{
    let mut buf = [0u8; PREFACE.len()];
    let mut filled = 0;
    let detected = loop {
        let n = io.read(&mut buf[filled..]).await?;
        if n == 0 {
            break Detected::Http1;
        }
        filled += n;
        if buf[..filled] != PREFACE[..filled] {
            break Detected::Http1;
        }
        if filled == PREFACE.len() {
            break Detected::Http2;
        }
    };
    Ok((detected, Rewind::new(io, buf[..filled].to_vec())))
}

/// An I/O object that yields `prefix` before reading from the inner one.
pub(crate) struct Rewind<IO> {
    prefix: Vec<u8>,
    consumed: usize,
    inner: IO,
}

impl<IO> Rewind<IO> {
    pub fn new(inner: IO, prefix: Vec<u8>) -> Rewind<IO> {
        Rewind {
            prefix,
            consumed: 0,
            inner,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Rewind<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.consumed < this.prefix.len() {
            let rest = &this.prefix[this.consumed..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.consumed += n;
            if this.consumed == this.prefix.len() {
                this.prefix = Vec::new();
                this.consumed = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Rewind<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn detects_the_preface_and_replays_what_it_read() {
        let (mut client, server) = tokio::io::duplex(64);
        tokio::io::AsyncWriteExt::write_all(&mut client, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nxyz")
            .await
            .unwrap();
        let (detected, mut io) = detect(server).await.unwrap();
        assert_eq!(detected, Detected::Http2);
        let mut buf = [0u8; 27];
        io.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf[..24], PREFACE);
        assert_eq!(&buf[24..], b"xyz");
    }

    #[tokio::test]
    async fn anything_else_is_http1() {
        let (mut client, server) = tokio::io::duplex(64);
        tokio::io::AsyncWriteExt::write_all(&mut client, b"GET / HTTP/1.1\r\n")
            .await
            .unwrap();
        let (detected, mut io) = detect(server).await.unwrap();
        assert_eq!(detected, Detected::Http1);
        let mut buf = [0u8; 16];
        io.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"GET / HTTP/1.1\r\n");
    }
}
