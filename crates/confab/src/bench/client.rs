//! The HTTP client of `confab bench`: where requests go ([`Endpoint`]), prebuilt requests
//! ([`ReqTemplate`]), and one keep-alive HTTP/1.1 connection per worker that reconnects when it
//! breaks ([`Conn`]).

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST, ORIGIN};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Where requests go: a resolved address, the `Host` header, and a path prefix.
pub(super) struct Endpoint {
    addr: SocketAddr,
    pub(super) host: HeaderValue,
    prefix: String,
    /// Path and query of the URL as given (the `url` scenario's request).
    pub(super) path_and_query: String,
    pub(super) origin: String,
}

impl Endpoint {
    pub(super) async fn parse(url: &str) -> Result<Self> {
        let uri: Uri = url.parse().with_context(|| format!("bad URL {url}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(s) => bail!("{url}: only http:// is supported (scheme {s})"),
            None => bail!("{url}: give a full URL like http://127.0.0.1:8080"),
        }
        let auth = uri.authority().ok_or_else(|| anyhow!("{url}: no host"))?;
        let port = auth.port_u16().unwrap_or(80);
        let addr = tokio::net::lookup_host((auth.host(), port))
            .await
            .with_context(|| format!("resolving {}", auth.host()))?
            .next()
            .ok_or_else(|| anyhow!("{} resolves to no address", auth.host()))?;
        let prefix = uri.path().trim_end_matches('/').to_string();
        let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
        let path_and_query = if path_and_query.starts_with('/') {
            path_and_query
        } else {
            format!("/{path_and_query}")
        };
        Ok(Endpoint {
            addr,
            host: HeaderValue::from_str(auth.as_str())?,
            prefix,
            path_and_query,
            origin: format!("http://{}", auth.as_str()),
        })
    }

    /// An origin-form request URI: prefix + `path_and_query` (which starts with `/`).
    pub(super) fn uri(&self, path_and_query: &str) -> Result<Uri> {
        let s = format!("{}{}", self.prefix, path_and_query);
        Uri::from_maybe_shared(Bytes::from(s))
            .with_context(|| format!("bad request path {path_and_query}"))
    }
}

/// One prebuilt request; building a [`Request`] from it clones only refcounted parts.
#[derive(Clone)]
pub(super) struct ReqTemplate {
    pub(super) method: Method,
    pub(super) uri: Uri,
    body: Bytes,
}

impl ReqTemplate {
    pub(super) fn get(uri: Uri) -> Self {
        ReqTemplate {
            method: Method::GET,
            uri,
            body: Bytes::new(),
        }
    }
    pub(super) fn post(uri: Uri, body: impl Into<Bytes>) -> Self {
        ReqTemplate {
            method: Method::POST,
            uri,
            body: body.into(),
        }
    }
}

/// Headers every request of a run carries besides `Host`.
#[derive(Clone, Default)]
pub(super) struct ExtraHeaders {
    pub(super) origin: Option<HeaderValue>,
    /// Prefix of a unique `Idempotency-Key` per POST.
    pub(super) idempotency_prefix: Option<String>,
}

static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
static JSON_TYPE: HeaderValue = HeaderValue::from_static("application/json");

#[derive(Debug)]
pub(super) enum ReqError {
    Connect(String),
    Transport(String),
    Timeout,
}

impl ReqError {
    pub(super) fn kind(&self) -> String {
        match self {
            ReqError::Connect(_) => "connect".into(),
            ReqError::Transport(_) => "transport".into(),
            ReqError::Timeout => "timeout".into(),
        }
    }
}

impl std::fmt::Display for ReqError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReqError::Connect(e) => write!(f, "connect: {e}"),
            ReqError::Transport(e) => write!(f, "transport: {e}"),
            ReqError::Timeout => write!(f, "timed out after {}s", REQUEST_TIMEOUT.as_secs()),
        }
    }
}

/// A keep-alive connection that reconnects when it breaks.
pub(super) struct Conn {
    ep: Arc<Endpoint>,
    tx: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    pub(super) fn new(ep: Arc<Endpoint>) -> Self {
        Conn { ep, tx: None }
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, ReqError> {
        let stream = TcpStream::connect(self.ep.addr)
            .await
            .map_err(|e| ReqError::Connect(e.to_string()))?;
        stream
            .set_nodelay(true)
            .map_err(|e| ReqError::Connect(e.to_string()))?;
        let (tx, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ReqError::Connect(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(tx)
    }

    /// A sender ready for a request: the current one if it's still alive, else a new one.
    async fn ready(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, ReqError> {
        let alive = match self.tx.as_mut() {
            Some(tx) => tx.ready().await.is_ok(),
            None => false,
        };
        if !alive {
            self.tx = None;
            let mut tx = self.connect().await?;
            tx.ready()
                .await
                .map_err(|e| ReqError::Connect(e.to_string()))?;
            self.tx = Some(tx);
        }
        self.tx
            .as_mut()
            .ok_or_else(|| ReqError::Connect("no connection".into()))
    }

    /// Sends a request and reads the whole response. With `keep`, the body is returned;
    /// otherwise it's only counted.
    pub(super) async fn send(
        &mut self,
        req: Request<Full<Bytes>>,
        keep: bool,
    ) -> Result<(StatusCode, Bytes, usize), ReqError> {
        let fut = async {
            let mut req = req;
            let mut retried = false;
            let resp = loop {
                let tx = self.ready().await?;
                match tx.try_send_request(req).await {
                    Ok(resp) => break resp,
                    Err(mut e) => match e.take_message() {
                        // The server closed the idle connection just as the request went out
                        // (e.g. after `Connection: close`): the request was never sent, so
                        // resend it once on a new connection.
                        Some(r) if !retried => {
                            retried = true;
                            self.tx = None;
                            req = r;
                        }
                        _ => return Err(ReqError::Transport(e.into_error().to_string())),
                    },
                }
            };
            let status = resp.status();
            let mut body = resp.into_body();
            let mut kept = Vec::new();
            let mut len = 0usize;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| ReqError::Transport(e.to_string()))?;
                if let Some(data) = frame.data_ref() {
                    len += data.len();
                    if keep {
                        kept.extend_from_slice(data);
                    }
                }
            }
            Ok((status, Bytes::from(kept), len))
        };
        let res = match tokio::time::timeout(REQUEST_TIMEOUT, fut).await {
            Ok(r) => r,
            Err(_) => Err(ReqError::Timeout),
        };
        if res.is_err() {
            // Whatever state the connection is in, start afresh.
            self.tx = None;
        }
        res
    }
}

pub(super) fn build_request(
    t: &ReqTemplate,
    ep: &Endpoint,
    extra: &ExtraHeaders,
    key: Option<&str>,
) -> Request<Full<Bytes>> {
    let mut req = Request::new(Full::new(t.body.clone()));
    *req.method_mut() = t.method.clone();
    *req.uri_mut() = t.uri.clone();
    let h = req.headers_mut();
    h.insert(HOST, ep.host.clone());
    if t.method == Method::POST {
        h.insert(CONTENT_TYPE, JSON_TYPE.clone());
        if let (Some(k), Some(_)) = (key, &extra.idempotency_prefix) {
            if let Ok(v) = HeaderValue::from_str(k) {
                h.insert(IDEMPOTENCY_KEY.clone(), v);
            }
        }
    }
    if let Some(o) = &extra.origin {
        h.insert(ORIGIN, o.clone());
    }
    req
}
