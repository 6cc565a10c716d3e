//! The daemon's HTTP client pieces, shared by the DM-D.S.S ticket requests and the
//! operator's webhook: one rustls client configuration per process (ring; Mozilla's
//! roots from `webpki-roots`, so the appliance does not depend on the system's CA
//! bundle) and one HTTP/1.1 exchange on a fresh connection (hyper).

use std::sync::{Arc, OnceLock};

use anyhow::anyhow;
use tokio::io::{AsyncRead, AsyncWrite};

/// The rustls client configuration, with `http/1.1` as ALPN or without ALPN.
pub(crate) fn tls_config(alpn_http1: bool) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    static PLAIN: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    static HTTP1: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    let cell = if alpn_http1 { &HTTP1 } else { &PLAIN };
    cell.get_or_init(|| {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        if alpn_http1 {
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
        }
        Ok(Arc::new(config))
    })
    .clone()
    .map_err(|e| anyhow!("TLS setup failed: {e}"))
}

/// Sends one request on `stream` (HTTP/1.1) and reads the response: its status and at
/// most `max_body` bytes of its body.
pub(crate) async fn exchange<S>(
    stream: S,
    request: hyper::Request<http_body_util::Full<hyper::body::Bytes>>,
    max_body: usize,
) -> anyhow::Result<(u16, Vec<u8>)>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    use http_body_util::BodyExt as _;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    let driver = tokio::spawn(conn);
    let result = async {
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let body = http_body_util::Limited::new(response.into_body(), max_body)
            .collect()
            .await
            .map_err(|e| anyhow!("reading the response: {e}"))?
            .to_bytes()
            .to_vec();
        Ok((status, body))
    }
    .await;
    driver.abort();
    result
}

/// An `http(s)://host[:port]…` URL taken apart and checked: a scheme of the two, a host,
/// no credentials in it (they belong in a secret file, never in a settings value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HttpUrl {
    /// https.
    pub(crate) tls: bool,
    /// Host name or address (IPv6 without brackets).
    pub(crate) host: String,
    /// Port (the scheme's default when not given).
    pub(crate) port: u16,
    /// The whole URI, for its path and query.
    pub(crate) uri: hyper::Uri,
}

impl HttpUrl {
    /// Parses `s`; `credentials` says where credentials go instead (for the message).
    pub(crate) fn parse(s: &str, credentials: &str) -> Result<Self, String> {
        let uri: hyper::Uri = s
            .trim()
            .parse()
            .map_err(|e| format!("{s:?} is not a URL: {e}"))?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(format!("{s:?} must start with https://")),
        };
        let Some(authority) = uri.authority() else {
            return Err(format!("{s:?} names no host"));
        };
        if authority.as_str().contains('@') {
            return Err(format!("{s:?} must not carry credentials; {credentials}"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err(format!("{s:?} names no host"));
        }
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Ok(Self {
            tls,
            host,
            port,
            uri,
        })
    }
}

/// `host[:port]` for a Host header (brackets around IPv6, the default port left out).
pub(crate) fn authority(tls: bool, host: &str, port: u16) -> String {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    if port == if tls { 443 } else { 80 } {
        host
    } else {
        format!("{host}:{port}")
    }
}
