//! The transport behind module HTTP: a pooled hyper client (keep-alive,
//! HTTP/1.1, and HTTP/2 where TLS negotiates it) whose connector resolves a
//! name once, has [`OutboundRules`] check every address, and connects to a
//! checked address. There is no second lookup anywhere, so a DNS answer
//! that changes between check and connect cannot redirect a connection.
//!
//! Redirects are never followed: a module sees the 3xx and any request it
//! makes next goes through the policy again.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::policy::{Denial, OutboundRules};

/// Resolves host names. The system resolver in production; tests inject a
/// fixed table to exercise the address rules without touching DNS.
pub trait Resolve: Send + Sync + 'static {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send + 'a>>;
}

/// `getaddrinfo`, via tokio.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send + 'a>> {
        Box::pin(async move {
            let mut ips: Vec<IpAddr> = Vec::new();
            for a in tokio::net::lookup_host((host, port)).await? {
                if !ips.contains(&a.ip()) {
                    ips.push(a.ip());
                }
            }
            Ok(ips)
        })
    }
}

/// A fixed name → addresses table (tests); unknown names do not resolve.
#[derive(Debug, Default, Clone)]
pub struct StaticResolver(pub std::collections::HashMap<String, Vec<IpAddr>>);

impl Resolve for StaticResolver {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        _port: u16,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send + 'a>> {
        let found = self.0.get(&host.to_ascii_lowercase()).cloned();
        Box::pin(async move {
            found.ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("{host}: no such name"))
            })
        })
    }
}

/// Which connections a client may open.
#[derive(Clone)]
pub enum Gate {
    /// Module traffic: every destination is admitted and every address
    /// checked by the pipeline's rules.
    Rules(Arc<OutboundRules>),
    /// The host's own requests to endpoints named in its config (token
    /// endpoints): any resolved address.
    Trusted,
}

/// Why a connection was not made. Cloneable so it can be recovered from
/// the client's error chain.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectError {
    #[error("{0}")]
    Denied(Denial),
    #[error("cannot resolve {host}: {message}")]
    Dns { host: String, message: String },
    #[error("connect timed out")]
    Timeout,
    #[error("connection refused by {0}")]
    Refused(SocketAddr),
    #[error("connect: {0}")]
    Io(String),
    #[error("TLS certificate: {0}")]
    TlsCertificate(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("unsupported URL: {0}")]
    Url(String),
}

/// Options of one pooled client.
#[derive(Debug, Clone, Copy)]
pub struct ClientOptions {
    pub connect_timeout: Duration,
    pub pool_idle_timeout: Duration,
    /// 0: every request opens (and closes) its own connection.
    pub pool_max_idle_per_host: usize,
}

/// A pooled client behind a checking connector. Cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    inner: Client<CheckedConnector, Full<Bytes>>,
}

/// Why [`HttpClient::send`] got no response.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    #[error("{0}")]
    Connect(ConnectError),
    #[error("{0}")]
    Protocol(String),
}

impl HttpClient {
    pub fn new(gate: Gate, resolver: Arc<dyn Resolve>, options: ClientOptions) -> Self {
        let connector = CheckedConnector {
            gate,
            resolver,
            tls: tls_config(),
            connect_timeout: options.connect_timeout,
        };
        let inner = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(options.pool_idle_timeout)
            .pool_max_idle_per_host(options.pool_max_idle_per_host)
            .build(connector);
        Self { inner }
    }

    /// Sends a request with an absolute URI; returns once the response
    /// head has arrived.
    pub async fn send(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, SendError> {
        self.inner.request(request).await.map_err(|e| {
            let mut source: Option<&(dyn std::error::Error + 'static)> =
                std::error::Error::source(&e);
            while let Some(s) = source {
                if let Some(c) = s.downcast_ref::<ConnectError>() {
                    return SendError::Connect(c.clone());
                }
                source = s.source();
            }
            SendError::Protocol(error_chain(&e))
        })
    }
}

/// `a: b: c` from an error and its sources.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Root certificates: the Mozilla set compiled in (no system store needed
/// in a container). ALPN offers HTTP/2 first.
fn tls_config() -> Arc<rustls::ClientConfig> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    };
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Resolve once, check, connect to the checked address, then TLS.
#[derive(Clone)]
struct CheckedConnector {
    gate: Gate,
    resolver: Arc<dyn Resolve>,
    tls: Arc<rustls::ClientConfig>,
    connect_timeout: Duration,
}

impl CheckedConnector {
    async fn connect(self, uri: Uri) -> Result<TokioIo<Stream>, ConnectError> {
        let url = || {
            format!(
                "{}://{}",
                uri.scheme_str().unwrap_or(""),
                uri.authority().map_or("", |a| a.as_str())
            )
        };
        let scheme = uri.scheme_str().ok_or_else(|| ConnectError::Url(url()))?;
        let tls = match scheme {
            "https" => true,
            "http" => false,
            _ => return Err(ConnectError::Url(url())),
        };
        let host = uri.host().ok_or_else(|| ConnectError::Url(url()))?;
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let deadline = Instant::now() + self.connect_timeout;

        let ips = match &self.gate {
            Gate::Rules(rules) => {
                let admitted = rules
                    .admit(scheme, host, Some(port), &url())
                    .map_err(ConnectError::Denied)?;
                let ips = match admitted.ip_literal() {
                    Some(ip) => vec![ip],
                    None => self.lookup(bare, port, deadline).await?,
                };
                rules
                    .check_addresses(&admitted, &ips)
                    .map_err(ConnectError::Denied)?
            }
            Gate::Trusted => match bare.parse::<IpAddr>() {
                Ok(ip) => vec![ip],
                Err(_) => self.lookup(bare, port, deadline).await?,
            },
        };

        let tcp = connect_any(&ips, port, deadline).await?;
        let _ = tcp.set_nodelay(true);
        if !tls {
            return Ok(TokioIo::new(Stream::Plain(tcp)));
        }
        let name = rustls::pki_types::ServerName::try_from(bare.to_string())
            .map_err(|e| ConnectError::Url(format!("{host}: {e}")))?;
        let handshake = tokio_rustls::TlsConnector::from(Arc::clone(&self.tls)).connect(name, tcp);
        let stream = tokio::time::timeout_at(deadline.into(), handshake)
            .await
            .map_err(|_| ConnectError::Timeout)?
            .map_err(tls_error)?;
        Ok(TokioIo::new(Stream::Tls(Box::new(stream))))
    }

    async fn lookup(
        &self,
        host: &str,
        port: u16,
        deadline: Instant,
    ) -> Result<Vec<IpAddr>, ConnectError> {
        tokio::time::timeout_at(deadline.into(), self.resolver.resolve(host, port))
            .await
            .map_err(|_| ConnectError::Timeout)?
            .map_err(|e| ConnectError::Dns {
                host: host.to_string(),
                message: e.to_string(),
            })
    }
}

/// Tries each address in order until one connects or the deadline passes.
async fn connect_any(
    ips: &[IpAddr],
    port: u16,
    deadline: Instant,
) -> Result<TcpStream, ConnectError> {
    let mut last = ConnectError::Timeout;
    for ip in ips {
        let addr = SocketAddr::new(*ip, port);
        match tokio::time::timeout_at(deadline.into(), TcpStream::connect(addr)).await {
            Err(_) => return Err(ConnectError::Timeout),
            Ok(Ok(s)) => return Ok(s),
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                last = ConnectError::Refused(addr)
            }
            Ok(Err(e)) => last = ConnectError::Io(format!("{addr}: {e}")),
        }
    }
    Err(last)
}

fn tls_error(e: io::Error) -> ConnectError {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(c)) => {
            ConnectError::TlsCertificate(format!("{c:?}"))
        }
        _ => ConnectError::Tls(e.to_string()),
    }
}

impl tower_service::Service<Uri> for CheckedConnector {
    type Response = TokioIo<Stream>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        Box::pin(self.clone().connect(uri))
    }
}

/// A plain or TLS connection.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        match self {
            Stream::Plain(_) => Connected::new(),
            Stream::Tls(s) if s.get_ref().1.alpn_protocol() == Some(b"h2") => {
                Connected::new().negotiated_h2()
            }
            Stream::Tls(_) => Connected::new(),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
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
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
}
