//! The transports a server listens on: TCP sockets and unix domain sockets. This layer
//! only accepts connections and moves bytes; the protocol layer (`connection.rs`) sees
//! one [`Stream`] type whichever transport it came from.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, UnixListener, UnixStream};

use crate::endpoint::Scheme;
use crate::linger::LingeringClose;

/// Which transport a connection arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    #[default]
    Tcp,
    /// A unix domain socket. Its peer has no IP address: `ConnectionInfo::remote` and
    /// `local` then hold [`UNIX_PEER`], and hosts show an empty address instead.
    Unix,
}

/// The placeholder address of both ends of a unix socket connection.
pub const UNIX_PEER: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

/// A bound listener.
pub(crate) enum Listener {
    Tcp(TcpListener),
    Unix(UnixSocket),
}

/// A connection as the protocol layer reads and writes it.
pub(crate) enum Stream {
    /// Closed without a reset when dropped (`linger.rs`).
    Tcp(LingeringClose),
    Unix(UnixStream),
}

/// An accepted connection and its two ends.
pub(crate) struct AcceptedStream {
    pub stream: Stream,
    pub remote: SocketAddr,
    pub local: SocketAddr,
    pub transport: Transport,
}

impl Listener {
    pub async fn accept(&self) -> io::Result<AcceptedStream> {
        match self {
            Listener::Tcp(listener) => {
                let (stream, remote) = listener.accept().await?;
                let local = stream.local_addr().unwrap_or(remote);
                // Small responses must not wait for Nagle's algorithm.
                let _ = stream.set_nodelay(true);
                Ok(AcceptedStream {
                    stream: Stream::Tcp(LingeringClose::new(stream)),
                    remote,
                    local,
                    transport: Transport::Tcp,
                })
            }
            Listener::Unix(socket) => {
                let (stream, _) = socket.listener.accept().await?;
                Ok(AcceptedStream {
                    stream: Stream::Unix(stream),
                    remote: UNIX_PEER,
                    local: UNIX_PEER,
                    transport: Transport::Unix,
                })
            }
        }
    }

    /// The URL reported back to the app (`app.urls`), with port 0 resolved.
    pub fn url(&self, scheme: Scheme) -> io::Result<String> {
        match self {
            Listener::Tcp(listener) => Ok(crate::endpoint::url_for(scheme, listener.local_addr()?)),
            Listener::Unix(socket) => Ok(format!("unix:{}", socket.path.display())),
        }
    }
}

/// Binds a TCP listener.
pub(crate) fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // Lets a restarted server rebind while old connections sit in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// A listening unix socket. Its file is removed when the listener is dropped (the
/// server stopped, or another endpoint failed to bind).
pub(crate) struct UnixSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds a unix socket at `path`. A socket file left behind by a process that died is
/// replaced; one that a live process still accepts on is `AddrInUse`, and so is a path
/// that exists and is not a socket (it is never removed).
pub(crate) fn bind_unix(path: &Path) -> io::Result<UnixSocket> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "another process is listening on this socket",
                ));
            }
            std::fs::remove_file(path)?;
        }
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                "the path exists and is not a socket; remove it or pick another path",
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    Ok(UnixSocket {
        listener,
        path: path.to_path_buf(),
    })
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Tcp(s) => s.is_write_vectored(),
            Stream::Unix(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
