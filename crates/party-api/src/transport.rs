//! A small HTTP/1.1 JSON client: `http://` or `https://` (rustls, trusting only the roots it is
//! given), kept-alive connections reused across calls, a timeout per call, and the answer
//! mapped to the caller's type or to [`ClientError::Refused`] with the server's stable code.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use pki::{PartyId, UnixTime};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::TcpStream;

use crate::{ClientError, PartySigner, PARTY_REQUEST_HEADER};

/// The methods the APIs use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
        }
    }
}

/// How a call authenticates itself.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    /// A public route (terminals are never trusted for anything).
    None,
    /// An operator's bearer token `cwo_…`.
    Operator(&'a str),
    /// A party request signed by `signer` for the server of `audience`, at `now`.
    Party {
        signer: &'a PartySigner,
        audience: &'a PartyId,
        now: UnixTime,
    },
}

#[derive(Debug, Clone)]
struct Origin {
    https: bool,
    host: String,
    port: u16,
    /// The base path without a trailing slash ("" or "/prefix").
    base_path: String,
}

fn parse_base_url(url: &str) -> Result<Origin, ClientError> {
    let invalid = |detail: &str| ClientError::InvalidUrl {
        url: url.to_string(),
        detail: detail.to_string(),
    };
    let (https, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else {
        return Err(invalid("the URL must start with http:// or https://"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    if path.contains(['?', '#']) {
        return Err(invalid("a base URL has no query or fragment"));
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let end = bracketed
            .find(']')
            .ok_or_else(|| invalid("unclosed [ in the host"))?;
        let port = &bracketed[end + 1..];
        (&bracketed[..end], port.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() || host.contains('@') {
        return Err(invalid("the URL needs a host (and no user information)"));
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| invalid("the port is not a number 0..=65535"))?,
        None if https => 443,
        None => 80,
    };
    Ok(Origin {
        https,
        host: host.to_string(),
        port,
        base_path: path.to_string(),
    })
}

/// A client of one server (one base URL). Cheap to clone; clones share idle connections.
#[derive(Clone)]
pub struct HttpClient {
    url: String,
    origin: Origin,
    tls: Option<tokio_rustls::TlsConnector>,
    timeout: Duration,
    idle: Arc<Mutex<Vec<SendRequest<Full<Bytes>>>>>,
    rng: Arc<Mutex<Box<dyn crypto::Rng + Send>>>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("url", &self.url)
            .finish()
    }
}

/// Idle connections kept per client.
const MAX_IDLE: usize = 16;

impl HttpClient {
    /// A client of `base_url` (`http://host:port[/base]`). An `https://` URL needs
    /// [`HttpClient::with_roots_pem`]: there is no default trust store.
    pub fn new(base_url: &str) -> Result<HttpClient, ClientError> {
        let origin = parse_base_url(base_url)?;
        if origin.https {
            return Err(ClientError::InvalidUrl {
                url: base_url.to_string(),
                detail: "https needs the server's root certificates (--tls-roots)".to_string(),
            });
        }
        Ok(HttpClient::build(base_url, origin, None))
    }

    /// [`HttpClient::with_roots_pem`] when `roots_pem` is given, else [`HttpClient::new`]: how a
    /// server makes the client of a peer it may reach over `https://` or not.
    pub fn with_optional_roots(
        base_url: &str,
        roots_pem: Option<&[u8]>,
    ) -> Result<HttpClient, ClientError> {
        match roots_pem {
            Some(pem) => HttpClient::with_roots_pem(base_url, pem),
            None => HttpClient::new(base_url),
        }
    }

    /// A client of `base_url` trusting, for `https://`, only the PEM certificates given.
    pub fn with_roots_pem(base_url: &str, roots_pem: &[u8]) -> Result<HttpClient, ClientError> {
        let origin = parse_base_url(base_url)?;
        let invalid = |detail: String| ClientError::InvalidUrl {
            url: base_url.to_string(),
            detail,
        };
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(roots_pem) {
            let cert = cert.map_err(|e| invalid(format!("TLS roots: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| invalid(format!("TLS root: {e}")))?;
        }
        if roots.is_empty() {
            return Err(invalid("TLS roots: no PEM certificate found".to_string()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(format!("TLS: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tls = origin
            .https
            .then(|| tokio_rustls::TlsConnector::from(Arc::new(config)));
        Ok(HttpClient::build(base_url, origin, tls))
    }

    fn build(url: &str, origin: Origin, tls: Option<tokio_rustls::TlsConnector>) -> HttpClient {
        HttpClient {
            url: url.trim_end_matches('/').to_string(),
            origin,
            tls,
            timeout: Duration::from_secs(30),
            idle: Arc::new(Mutex::new(Vec::new())),
            rng: Arc::new(Mutex::new(Box::new(crypto::OsRng))),
        }
    }

    /// The same client with another per-call timeout (connect + request + answer).
    pub fn with_timeout(mut self, timeout: Duration) -> HttpClient {
        self.timeout = timeout;
        self
    }

    pub fn base_url(&self) -> &str {
        &self.url
    }

    /// Calls `method path` with an optional JSON body and decodes a 2xx JSON answer as `R`.
    /// `path` is the route (with its query) below the base URL.
    pub async fn call<B: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        auth: Auth<'_>,
    ) -> Result<R, ClientError> {
        let (status, bytes) = self.call_raw(method, path, body, auth).await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::InvalidResponse {
            method: method.as_str().to_string(),
            url: format!("{}{path}", self.url),
            status,
            detail: e.to_string(),
        })
    }

    /// Like [`HttpClient::call`], returning the 2xx status and the raw body.
    pub async fn call_raw<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        auth: Auth<'_>,
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let url = format!("{}{path}", self.url);
        let body = match body {
            Some(b) => serde_json::to_vec(b).map_err(|e| ClientError::InvalidRequest {
                detail: e.to_string(),
            })?,
            None => Vec::new(),
        };
        let target = format!("{}{path}", self.origin.base_path);
        let mut builder = hyper::Request::builder()
            .method(method.as_str())
            .uri(&target)
            .header("host", self.host_header())
            .header("accept", "application/json");
        if !body.is_empty() || method != Method::Get {
            builder = builder.header("content-type", "application/json");
        }
        match auth {
            Auth::None => {}
            Auth::Operator(token) => {
                builder = builder.header("authorization", format!("Bearer {token}"));
            }
            Auth::Party {
                signer,
                audience,
                now,
            } => {
                let header = {
                    let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
                    signer.sign_request(
                        method.as_str(),
                        &target,
                        &body,
                        audience,
                        now,
                        rng.as_mut(),
                    )?
                };
                builder = builder.header(PARTY_REQUEST_HEADER, header);
            }
        }
        let request = builder.body(Full::new(Bytes::from(body))).map_err(|e| {
            ClientError::InvalidRequest {
                detail: e.to_string(),
            }
        })?;
        let transport = |detail: String| ClientError::Transport {
            url: url.clone(),
            detail,
        };
        let (status, bytes) = tokio::time::timeout(self.timeout, self.send(request))
            .await
            .map_err(|_| transport(format!("no answer within {:?}", self.timeout)))?
            .map_err(transport)?;
        if (200..300).contains(&status) {
            return Ok((status, bytes));
        }
        #[derive(serde::Deserialize)]
        struct ErrorBody {
            code: String,
            #[serde(default)]
            message: Option<String>,
            #[serde(default)]
            request_id: Option<String>,
        }
        let refused = match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(e) => ClientError::Refused {
                method: method.as_str().to_string(),
                url,
                status,
                code: e.code,
                message: e
                    .message
                    .or(e.request_id.map(|id| format!("request id {id}")))
                    .unwrap_or_default(),
            },
            Err(_) => ClientError::Refused {
                method: method.as_str().to_string(),
                url,
                status,
                code: "unexpected_answer".to_string(),
                message: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
            },
        };
        Err(refused)
    }

    fn host_header(&self) -> String {
        let default = if self.origin.https { 443 } else { 80 };
        let host = if self.origin.host.contains(':') {
            format!("[{}]", self.origin.host)
        } else {
            self.origin.host.clone()
        };
        if self.origin.port == default {
            host
        } else {
            format!("{host}:{}", self.origin.port)
        }
    }

    /// Sends on an idle connection if one is ready, else on a new one; keeps it afterwards.
    async fn send(&self, request: hyper::Request<Full<Bytes>>) -> Result<(u16, Vec<u8>), String> {
        let mut sender = loop {
            let candidate = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            match candidate {
                Some(mut s) => {
                    if s.ready().await.is_ok() {
                        break s;
                    }
                }
                None => break self.connect().await?,
            }
        };
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes()
            .to_vec();
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(sender);
        }
        Ok((status, bytes))
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        let tcp = TcpStream::connect((self.origin.host.as_str(), self.origin.port))
            .await
            .map_err(|e| e.to_string())?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => handshake(tcp).await,
            Some(connector) => {
                let name = ServerName::try_from(self.origin.host.clone())
                    .map_err(|e| format!("TLS server name: {e}"))?;
                let stream = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS: {e}"))?;
                handshake(stream).await
            }
        }
    }
}

async fn handshake<S>(stream: S) -> Result<SendRequest<Full<Bytes>>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        // The connection ends when the server closes it or the sender is dropped.
        let _ = connection.await;
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        let o = parse_base_url("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            (o.https, o.host.as_str(), o.port),
            (false, "127.0.0.1", 8080)
        );
        let o = parse_base_url("https://issuer.example/api/").unwrap();
        assert_eq!((o.port, o.base_path.as_str()), (443, "/api"));
        let o = parse_base_url("http://[::1]:9/").unwrap();
        assert_eq!((o.host.as_str(), o.port), ("::1", 9));
        for bad in [
            "ftp://x",
            "http://",
            "http://x:99999",
            "http://u@x",
            "http://x/?a",
        ] {
            assert!(parse_base_url(bad).is_err(), "{bad}");
        }
        assert!(HttpClient::new("https://x").is_err());
    }
}
