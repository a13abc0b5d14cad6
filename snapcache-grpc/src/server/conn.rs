//! Connections: the accept loop, and a TCP stream the server can cut off.
//!
//! A client that stops reading cannot be reached through its gRPC stream: once the HTTP/2 flow
//! control window is full, the transport stops polling the stream's body, so whatever the
//! server yields there is never seen. To disconnect such a client (as Typha does: "fell behind",
//! write timeout), the server kills its *connection*: every connection carries a [`Kill`]
//! switch, handed to the request handler in the connection info, that makes the socket's next
//! read or write fail, so the transport drops the connection and with it everything the stream
//! held.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use atomic_waker::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tonic::transport::server::Connected;

use super::stats::ServerStats;

/// Cuts one connection off.
#[derive(Debug, Default)]
pub(crate) struct Kill {
    killed: AtomicBool,
    read: AtomicWaker,
    write: AtomicWaker,
}

impl Kill {
    /// Makes the connection's next read and write fail, waking whoever waits on them.
    pub(crate) fn kill(&self) {
        // Release: pairs with the Acquire loads in `check`; the wakers do the rest.
        self.killed.store(true, Ordering::Release);
        self.read.wake();
        self.write.wake();
    }

    /// Registers `cx` on `waker`, then fails if killed (registering first, so that a kill
    /// between the check and the wait still wakes us).
    fn check(&self, waker: &AtomicWaker, cx: &Context<'_>) -> io::Result<()> {
        waker.register(cx.waker());
        // Acquire: pairs with the Release store in `kill`.
        if self.killed.load(Ordering::Acquire) {
            Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "connection cut off by the server",
            ))
        } else {
            Ok(())
        }
    }
}

/// What a request handler learns about its connection.
#[derive(Clone, Debug)]
pub(crate) struct ConnInfo {
    pub(crate) remote: Option<SocketAddr>,
    pub(crate) kill: Arc<Kill>,
}

/// An accepted TCP connection with a kill switch.
pub(crate) struct Conn {
    io: TcpStream,
    info: ConnInfo,
    stats: Arc<ServerStats>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.stats.count_tcp(false);
    }
}

impl Connected for Conn {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.info.kill.check(&this.info.kill.read, cx)?;
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        this.info.kill.check(&this.info.kill.write, cx)?;
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        this.info.kill.check(&this.info.kill.write, cx)?;
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.info.kill.check(&this.info.kill.write, cx)?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The stream of accepted connections that tonic serves.
pub(crate) struct Incoming {
    listener: TcpListener,
    stats: Arc<ServerStats>,
}

impl Incoming {
    pub(crate) fn new(listener: TcpListener, stats: Arc<ServerStats>) -> Self {
        Incoming { listener, stats }
    }
}

impl futures_core::Stream for Incoming {
    type Item = io::Result<Conn>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.listener.poll_accept(cx) {
            Poll::Pending => Poll::Pending,
            // An accept error (out of file descriptors, say) is logged by tonic, which then
            // polls again: the listener stays up.
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok((io, remote))) => {
                let _ = io.set_nodelay(true);
                self.stats.count_tcp(true);
                Poll::Ready(Some(Ok(Conn {
                    io,
                    info: ConnInfo {
                        remote: Some(remote),
                        kill: Arc::default(),
                    },
                    stats: self.stats.clone(),
                })))
            }
        }
    }
}
