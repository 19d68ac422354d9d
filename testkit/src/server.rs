//! A minimal HTTP/1.1 server with a hand-written accept loop, so that it can
//! stop accepting (closing its listening socket: clients get ECONNREFUSED),
//! reset every open connection (RST), and later listen again on the same port.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};

/// Response type of every handler.
pub(crate) type Reply = Response<Full<Bytes>>;
type BoxFuture = Pin<Box<dyn Future<Output = Reply> + Send>>;
type Handler = Arc<dyn Fn(Request<Incoming>) -> BoxFuture + Send + Sync>;

enum Command {
    Refuse(oneshot::Sender<Result<()>>),
    Accept(oneshot::Sender<Result<()>>),
}

/// A running server; dropping it closes the listener and resets connections.
pub(crate) struct Server {
    addr: SocketAddr,
    commands: mpsc::UnboundedSender<Command>,
}

impl Server {
    /// Serves `handler` on a free port of 127.0.0.1.
    pub(crate) async fn start<F, Fut>(handler: F) -> Result<Server>
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind a port on 127.0.0.1")?;
        let addr = listener.local_addr()?;
        let handler: Handler = Arc::new(move |req| Box::pin(handler(req)));
        let (commands, rx) = mpsc::unbounded_channel();
        tokio::spawn(accept_loop(addr, listener, handler, rx));
        Ok(Server { addr, commands })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes the listening socket and resets every open connection.
    pub(crate) async fn refuse(&self) -> Result<()> {
        self.command(Command::Refuse).await
    }

    /// Listens again on the same port (no-op when already listening).
    pub(crate) async fn accept(&self) -> Result<()> {
        self.command(Command::Accept).await
    }

    async fn command(&self, make: fn(oneshot::Sender<Result<()>>) -> Command) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .map_err(|_| anyhow!("server task on {} has stopped", self.addr))?;
        rx.await
            .map_err(|_| anyhow!("server task on {} has stopped", self.addr))?
    }
}

async fn accept_loop(
    addr: SocketAddr,
    listener: TcpListener,
    handler: Handler,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    // Bumped to make every connection task reset its connection; dropped
    // (with this task) to the same effect.
    let (reset, _) = watch::channel(0u64);
    let mut listener = Some(listener);
    loop {
        let command = match &listener {
            Some(l) => tokio::select! {
                accepted = l.accept() => {
                    if let Ok((stream, _)) = accepted {
                        tokio::spawn(serve(stream, handler.clone(), reset.subscribe()));
                    }
                    continue;
                }
                command = commands.recv() => command,
            },
            None => commands.recv().await,
        };
        match command {
            None => return,
            Some(Command::Refuse(done)) => {
                listener = None;
                reset.send_modify(|generation| *generation += 1);
                let _ = done.send(Ok(()));
            }
            Some(Command::Accept(done)) => {
                let result = match listener {
                    Some(_) => Ok(()),
                    None => rebind(addr).await.map(|l| listener = Some(l)),
                };
                let _ = done.send(result);
            }
        }
    }
}

/// Binds `addr` again, retrying for a while in case the old socket lingers.
async fn rebind(addr: SocketAddr) -> Result<TcpListener> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => return Ok(listener),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("listen again on {addr}")),
        }
    }
}

async fn serve(stream: TcpStream, handler: Handler, mut reset: watch::Receiver<u64>) {
    let _ = stream.set_nodelay(true);
    let fd = stream.as_raw_fd();
    let service = service_fn(move |req| {
        let handler = handler.clone();
        async move { Ok::<_, Infallible>(handler(req).await) }
    });
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    // Pinned here, not inside `select!`, so that the connection (and with it
    // `fd`) is still open when the reset branch runs.
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = reset.changed() => {
            // A zero linger makes closing the socket send RST, not FIN.
            let _ = zero_linger(fd);
        }
    }
}

fn zero_linger(fd: std::os::fd::RawFd) -> io::Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `fd` is an open socket owned by the caller's live connection;
    // the option value is a properly sized `linger`.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A response with a JSON body.
pub(crate) fn json(status: u16, body: impl Into<Bytes>) -> Reply {
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body.into()))
        .expect("valid response parts")
}
