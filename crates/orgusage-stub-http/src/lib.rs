//! A loopback HTTP/1.1 stub server for tests.
//!
//! [`StubServer::start`] binds `127.0.0.1:0`, serves from a background thread and answers every
//! request with a caller-supplied handler `Fn(&Request) -> Response`. Every request is recorded
//! (in arrival order) before it is answered, so a test can count and inspect what a client sent.
//!
//! Bounded: it serves on 127.0.0.1 only, reads each request for at most two seconds, answers with
//! `Connection: close`, stops when dropped and stops by itself after its lifetime
//! ([`DEFAULT_LIFETIME`] unless told otherwise) even if a test forgets it.
//!
//! ```
//! use orgusage_stub_http::{Response, StubServer};
//!
//! let server = StubServer::start(|request| Response::new(200, format!("you asked for {}", request.path)));
//! assert!(server.url("/api").starts_with("http://127.0.0.1:"));
//! assert_eq!(server.request_count(), 0);
//! ```
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "capture")]
#[cfg_attr(docsrs, doc(cfg(feature = "capture")))]
pub mod capture;
#[cfg(feature = "nbp")]
#[cfg_attr(docsrs, doc(cfg(feature = "nbp")))]
pub mod nbp;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a server serves when no lifetime is given.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(30);

/// How long the server waits for a request's line and headers.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the accept loop idles between polls, so it notices a stop promptly.
const POLL: Duration = Duration::from_millis(2);

/// One request the server saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Arrival order, from 0: the number of requests recorded before this one.
    pub index: usize,
    /// The method, e.g. `GET`.
    pub method: String,
    /// Path and query as sent, e.g. `/api/v1/generation?id=gen-1`.
    pub target: String,
    /// The target up to `?`, e.g. `/api/v1/generation`.
    pub path: String,
    /// The target after `?` (empty without one), not percent-decoded, e.g. `id=gen-1`.
    pub query: String,
    /// Header names lower-cased, values trimmed, in the order sent.
    pub headers: Vec<(String, String)>,
    /// The body, as far as `Content-Length` announced it (lossy UTF-8; empty without one).
    pub body: String,
}

impl Request {
    /// The first value of header `name` (give it lower-cased).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The query's `name=value` pairs in order, not percent-decoded; a pair without `=` has an
    /// empty value.
    pub fn query_pairs(&self) -> Vec<(&str, &str)> {
        self.query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
            .collect()
    }

    /// The first value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query_pairs()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }
}

/// The answer to one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code, e.g. 200.
    pub status: u16,
    /// Headers sent before `Content-Length` and `Connection: close`, which the server adds.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
    /// How long the server waits before answering.
    pub delay: Duration,
}

impl Response {
    /// `status` with `body`, no extra headers and no delay.
    pub fn new(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    /// The same with header `name: value` added.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The same, answered after `delay`.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// Header name and value pairs.
type Headers = Vec<(String, String)>;

type Handler = dyn Fn(&Request) -> Response + Send + Sync;

struct Shared {
    handler: Box<Handler>,
    seen: Mutex<Vec<Request>>,
}

impl Shared {
    fn seen(&self) -> std::sync::MutexGuard<'_, Vec<Request>> {
        // A handler that panicked leaves the record intact; keep serving it.
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running loopback server; stops when dropped.
pub struct StubServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    accept_loop: Option<JoinHandle<()>>,
}

impl StubServer {
    /// A server answering with `handler`, stopping by itself after [`DEFAULT_LIFETIME`].
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub fn start<H>(handler: H) -> Self
    where
        H: Fn(&Request) -> Response + Send + Sync + 'static,
    {
        Self::start_with_lifetime(DEFAULT_LIFETIME, handler)
    }

    /// A server answering with `handler`, stopping by itself after `lifetime`.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub fn start_with_lifetime<H>(lifetime: Duration, handler: H) -> Self
    where
        H: Fn(&Request) -> Response + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            handler: Box::new(handler),
            seen: Mutex::new(Vec::new()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let accept_loop = {
            let shared = shared.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                while !stop.load(Ordering::Relaxed) && started.elapsed() < lifetime {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let shared = shared.clone();
                            std::thread::spawn(move || serve(stream, &shared));
                        }
                        Err(_) => std::thread::sleep(POLL),
                    }
                }
            })
        };
        Self {
            addr,
            shared,
            stop,
            accept_loop: Some(accept_loop),
        }
    }

    /// The address it listens on (127.0.0.1, some free port).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:{port}` followed by `path`, e.g. `url("/api")`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The requests seen so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.seen().clone()
    }

    /// How many requests it has seen.
    pub fn request_count(&self) -> usize {
        self.shared.seen().len()
    }
}

impl Drop for StubServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.accept_loop.take() {
            let _ = handle.join();
        }
    }
}

/// Reads one request from `stream`, records it, and answers it with the handler's response.
fn serve(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let Some((method, target, headers, body)) = read_request(&stream) else {
        return;
    };
    let (path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
    let request = {
        let mut seen = shared.seen();
        let request = Request {
            index: seen.len(),
            method,
            path: path.to_string(),
            query: query.to_string(),
            target,
            headers,
            body,
        };
        seen.push(request.clone());
        request
    };
    let response = (shared.handler)(&request);
    if !response.delay.is_zero() {
        std::thread::sleep(response.delay);
    }
    let headers: String = response
        .headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let head = format!(
        "HTTP/1.1 {} {}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        response.status,
        reason(response.status),
        response.body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(response.body.as_bytes());
    let _ = stream.flush();
}

/// Bodies above this are cut (tests send small JSON documents).
const MAX_BODY: usize = 1024 * 1024;

/// The request line's method and target, the headers and the body (read through the same
/// buffer, which may already hold its start); `None` if the line cannot be read.
fn read_request(stream: &TcpStream) -> Option<(String, String, Headers, String)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line.trim().is_empty() => break,
            Ok(_) => {
                if let Some((name, value)) = line.trim_end().split_once(':') {
                    headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
                }
            }
        }
    }
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_BODY);
    let mut body = vec![0; length];
    // A client that sends less than it announced leaves the body short, not the test hung.
    let read = std::io::Read::read_exact(&mut reader, &mut body).is_ok();
    let body = if read {
        String::from_utf8_lossy(&body).into_owned()
    } else {
        String::new()
    };
    let mut words = request_line.split_whitespace();
    let method = words.next().unwrap_or_default().to_string();
    let target = words.next().unwrap_or_default().to_string();
    Some((method, target, headers, body))
}

/// A reason phrase for the status line (clients go by the code).
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::io::Read;

    fn get(server: &StubServer, target: &str) -> String {
        let mut stream = TcpStream::connect(server.addr()).unwrap();
        write!(
            stream,
            "GET {target} HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    }

    #[test]
    fn answers_with_the_handler_and_records_requests() {
        let server = StubServer::start(|request| {
            Response::new(201, format!("{}:{}", request.index, request.path))
                .with_header("X-Test", "yes")
        });
        let answer = get(&server, "/a/b?x=1&y&z=2");
        assert!(answer.starts_with("HTTP/1.1 201 "), "{answer}");
        assert!(answer.contains("X-Test: yes\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\n0:/a/b"), "{answer}");
        get(&server, "/c");
        assert_eq!(server.request_count(), 2);
        let seen = server.requests();
        assert_eq!(seen[0].method, "GET");
        assert_eq!(seen[0].target, "/a/b?x=1&y&z=2");
        assert_eq!(seen[0].query_pairs(), [("x", "1"), ("y", ""), ("z", "2")]);
        assert_eq!(seen[0].query_param("z"), Some("2"));
        assert_eq!(seen[0].header("accept"), Some("text/plain"));
        assert_eq!((seen[1].index, seen[1].query.as_str()), (1, ""));
    }

    #[test]
    fn stops_after_its_lifetime() {
        let server =
            StubServer::start_with_lifetime(Duration::from_millis(50), |_| Response::new(200, ""));
        let started = Instant::now();
        while !server.accept_loop.as_ref().unwrap().is_finished() {
            assert!(started.elapsed() < Duration::from_secs(5), "still serving");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
