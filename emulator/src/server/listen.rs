//! The emulator's own listener ([`Emulator::start`](super::Emulator::start)):
//! at most `max_connections` sockets at a time, HTTP/1.1 with a deadline
//! for every request head, and a graceful stop.
//!
//! `axum::serve` has neither a connection limit nor a timer (so hyper's
//! header-read timeout is off there), hence this small accept loop around
//! hyper's HTTP/1 connection, which brings both: hyper starts its
//! header-read timer as soon as a connection waits for a request head —
//! right after accept and after each response — so one setting covers
//! sockets that never send anything, heads trickled byte by byte, and idle
//! keep-alive connections.
//!
//! The HTTPS listener ([`EmulatorBuilder::https_port`](crate::EmulatorBuilder::https_port))
//! is the same loop with a TLS handshake first, itself bounded by the
//! header-read timeout; both listeners share one connection limit.
//!
//! Every request carries its peer's address as axum's
//! `ConnectInfo<SocketAddr>`, as `into_make_service_with_connect_info`
//! would give it: the admin routes answer loopback peers only (`endpoint/admin.rs`).

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::settings::ListenerLimits;

/// The most bytes hyper buffers for one request head.
const MAX_HEAD: usize = 64 * 1024;

/// A socket that holds one of the listener's permits until it is dropped,
/// also after hyper handed it over to a WebSocket.
struct Counted<S> {
    stream: S,
    _permit: OwnedSemaphorePermit,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The router as one connection's service: hands every request the peer's
/// address (`ConnectInfo<SocketAddr>`).
#[derive(Clone)]
struct WithPeer {
    router: Router,
    peer: SocketAddr,
}

impl tower_service::Service<http::Request<Incoming>> for WithPeer {
    type Response = <Router as tower_service::Service<http::Request<Incoming>>>::Response;
    type Error = <Router as tower_service::Service<http::Request<Incoming>>>::Error;
    type Future = <Router as tower_service::Service<http::Request<Incoming>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower_service::Service::<http::Request<Incoming>>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, mut request: http::Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(ConnectInfo(self.peer));
        tower_service::Service::call(&mut self.router, request)
    }
}

/// Tells a socket over the limit why it is closed, without waiting for it.
fn refuse(stream: &TcpStream, max: usize) {
    let body = format!("too many connections: the emulator serves at most {max} at a time\n");
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(response.as_bytes());
}

/// The permits of `limits`, shared by the listeners of one emulator.
pub(crate) fn permits(limits: ListenerLimits) -> Arc<Semaphore> {
    Arc::new(Semaphore::new(limits.max_connections.max(1)))
}

/// Serves `router` on `listener` (over TLS with `tls`) until `stop` fires
/// (or is dropped), then lets open HTTP connections finish their requests.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ListenerLimits,
    permits: Arc<Semaphore>,
    tls: Option<TlsAcceptor>,
    stop: oneshot::Receiver<()>,
) {
    let max = limits.max_connections.max(1);
    // Dropping `shutdown` asks every connection to finish; each holds a
    // `done` receiver, so `done_tx.closed()` waits for all of them.
    let (shutdown, shutdown_rx) = watch::channel(());
    let (done_tx, done) = watch::channel(());
    let mut full = false;
    let mut failing = false;
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut stop => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                failing = false;
                accepted
            }
            Err(error) => {
                // Out of file descriptors, most likely: say so once, retry soon.
                if !failing {
                    failing = true;
                    tracing::warn!(target: "webpubsub::emulator", %error, "accepting a connection failed; retrying");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            if !full {
                full = true;
                tracing::warn!(target: "webpubsub::emulator", max_connections = max,
                    "connection limit reached: refusing new connections with 503");
            }
            refuse(&stream, max);
            continue;
        };
        if full {
            full = false;
            tracing::info!(target: "webpubsub::emulator", "below the connection limit again");
        }
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(WithPeer {
            router: router.clone(),
            peer,
        });
        let shutdown = shutdown_rx.clone();
        let done = done.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => {
                    let io = Counted {
                        stream,
                        _permit: permit,
                    };
                    connection(io, service, limits, shutdown).await;
                }
                Some(acceptor) => {
                    // The TLS handshake counts against the head's deadline.
                    let handshake =
                        tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(stream)) => {
                            let io = Counted {
                                stream,
                                _permit: permit,
                            };
                            connection(io, service, limits, shutdown).await;
                        }
                        Ok(Err(error)) => {
                            tracing::debug!(target: "webpubsub::emulator", %error, "TLS handshake failed");
                        }
                        Err(_) => {
                            tracing::debug!(target: "webpubsub::emulator", "TLS handshake timed out");
                        }
                    }
                }
            }
            drop(done);
        });
    }
    drop(listener);
    drop(shutdown);
    drop(done);
    done_tx.closed().await;
}

/// Serves one HTTP/1.1 connection (with upgrades) until it ends or the
/// listener stops.
async fn connection<S>(
    io: Counted<S>,
    service: TowerToHyperService<WithPeer>,
    limits: ListenerLimits,
    mut shutdown: watch::Receiver<()>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_HEAD);
    let conn = http
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}
