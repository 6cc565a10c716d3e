//! Plain HTTP/1.1 to the daemon's web UI for system tests: one request per connection
//! (`Connection: close`), chunked bodies decoded, first-boot setup from the daemon's
//! `webui` event line and login.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test support; each test file uses part of it"
)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::daemon::Daemon;

/// The administrator password the tests set.
pub const PASSWORD: &str = "correct horse battery";

/// One HTTP/1.1 response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("JSON body ({e}): {:?}", self.body))
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A request by hand over a fresh connection.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Response {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    exchange(&mut stream, addr, method, path, headers, body)
}

/// One request and its response over `stream` (plain TCP, or TLS in the HTTPS tests).
pub fn exchange(
    stream: &mut (impl Read + Write),
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Response {
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!(
            "Content-Type: application/json\r\nOrigin: http://{addr}\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    stream.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    // A TLS peer closing without close_notify is an error at the very end: keep what came.
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8(raw).unwrap();
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("an HTTP response: {text:?}"));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    Response {
        status,
        headers,
        body,
    }
}

pub fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

/// Waits until the UI accepts connections.
pub fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "the web UI listens on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// First-boot setup with the code from the daemon's event line, then login: `(cookie,
/// csrf)`.
pub fn set_up_and_log_in(daemon: &mut Daemon, addr: SocketAddr) -> (String, String) {
    let code = daemon.first(Duration::from_secs(20), |v| v["type"] == "webui")["setup_code"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_listening(addr);
    let body = json!({"setup_code": code, "password": PASSWORD});
    assert_eq!(
        http(addr, "POST", "/api/setup", &[], Some(&body)).status,
        200
    );
    log_in(addr)
}

/// Logs in with [`PASSWORD`]: `(cookie, csrf)`.
pub fn log_in(addr: SocketAddr) -> (String, String) {
    let r = http(
        addr,
        "POST",
        "/api/login",
        &[],
        Some(&json!({"password": PASSWORD})),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let cookie = r
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    (cookie, r.json()["csrf_token"].as_str().unwrap().to_owned())
}

/// GETs `path` until `ready` holds for its JSON body, or `within` passes: the last body.
/// (History is written in batches a moment after what it records.)
pub fn json_when(
    addr: SocketAddr,
    path: &str,
    auth: &[(&str, &str)],
    within: Duration,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let r = http(addr, "GET", path, auth, None);
        let v = if r.status == 200 {
            r.json()
        } else {
            Value::Null
        };
        if ready(&v) || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
