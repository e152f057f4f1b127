//! A small HTTP/1.1 proxy on loopback between the plugin and tae-sim, for the integrity tests:
//!
//! - it notes every exchange as it passes (when the request arrived, method, path, a hash of
//!   the body, when the answer came back from tae-sim, its status and `Retry-After`), so a test
//!   can measure how long the plugin waited before repeating a request that got a 429;
//! - it can be **stopped** — its listening socket closed and every open connection cut, so the
//!   plugin sees "connection refused" exactly as when TAE goes down — and **restarted** on the
//!   same port, while tae-sim (behind it, in the test process) keeps every document.
//!
//! It understands just enough HTTP/1.1 for the plugin's client (reqwest over plain HTTP):
//! requests and answers one after the other on a connection, bodies by `Content-Length` or
//! chunked, or (answers only) until the connection closes.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

/// One request and its answer, as seen by the proxy.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// Which client connection (numbered from 0 in order of arrival).
    pub conn: u64,
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// Hash of the body (for multipart bodies with the boundary replaced by a constant, so a
    /// repeated upload of the same file hashes the same): same request ⇔ same
    /// (method, path, body_hash).
    pub body_hash: u64,
    /// When the first byte of the request reached the proxy.
    pub arrived: Instant,
    /// When the whole answer head came back from tae-sim (`None`: no answer, e.g. cut).
    pub answered: Option<Instant>,
    pub status: Option<u16>,
    /// The `Retry-After` header of the answer, as sent.
    pub retry_after: Option<String>,
}

impl Exchange {
    /// (method, path, body hash): equal for a request and its repetitions.
    pub fn identity(&self) -> (String, String, u64) {
        (self.method.clone(), self.path.clone(), self.body_hash)
    }
}

struct Shared {
    upstream: SocketAddr,
    exchanges: Mutex<Vec<Exchange>>,
    /// Both ends of every connection open through the proxy (cut on stop).
    sockets: Mutex<Vec<TcpStream>>,
    next_conn: AtomicU64,
    stopping: AtomicBool,
}

/// The running proxy. Stops (for good) when dropped.
pub struct TapProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl TapProxy {
    /// Listens on a free loopback port and forwards to `upstream` (tae-sim's address).
    pub fn start(upstream: SocketAddr) -> io::Result<TapProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            exchanges: Mutex::new(Vec::new()),
            sockets: Mutex::new(Vec::new()),
            next_conn: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
        });
        let accept = Some(spawn_accept(listener, shared.clone()));
        Ok(TapProxy {
            addr,
            shared,
            accept,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, for the plugin's `api_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Whether the proxy is listening.
    pub fn is_running(&self) -> bool {
        self.accept.is_some()
    }

    /// Closes the listening socket (new connections are refused) and cuts every open
    /// connection in both directions. Returns once nothing listens on the port any more.
    pub fn stop(&mut self) {
        let Some(accept) = self.accept.take() else {
            return;
        };
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the accept loop, which then drops the listener.
        let _ = TcpStream::connect(self.addr);
        let _ = accept.join();
        for s in self.shared.sockets.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Listens again on the same port (after [`TapProxy::stop`]).
    pub fn restart(&mut self) -> io::Result<()> {
        if self.accept.is_some() {
            return Ok(());
        }
        let listener = TcpListener::bind(self.addr)?;
        self.shared.stopping.store(false, Ordering::SeqCst);
        self.accept = Some(spawn_accept(listener, self.shared.clone()));
        Ok(())
    }

    /// Every exchange so far, in order of arrival.
    pub fn exchanges(&self) -> Vec<Exchange> {
        let mut v = self.shared.exchanges.lock().unwrap().clone();
        v.sort_by_key(|e| e.arrived);
        v
    }

    /// Requests seen so far.
    pub fn request_count(&self) -> usize {
        self.shared.exchanges.lock().unwrap().len()
    }
}

impl Drop for TapProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn_accept(listener: TcpListener, shared: Arc<Shared>) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("tap-proxy-accept".into())
        .spawn(move || {
            for client in listener.incoming() {
                if shared.stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(shared.upstream) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                {
                    let mut sockets = shared.sockets.lock().unwrap();
                    sockets.retain(|s| s.peer_addr().is_ok());
                    if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) {
                        sockets.push(c);
                        sockets.push(s);
                    }
                }
                let conn = shared.next_conn.fetch_add(1, Ordering::SeqCst);
                let shared = shared.clone();
                std::thread::spawn(move || {
                    let _ = relay(conn, client, server, &shared);
                });
            }
            // The listener is dropped here: the port refuses connections from now on.
        })
        .expect("spawn the proxy's accept thread")
}

/// Buffered reads that keep the raw bytes, so they can be forwarded unchanged.
struct Reader {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Reader {
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// The head (up to and including the blank line); `None` at a clean end of stream.
    fn head(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                return Ok(Some(self.buf.drain(..i + 4).collect()));
            }
            if self.fill()? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(io::ErrorKind::UnexpectedEof.into())
                };
            }
        }
    }

    fn exact(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill()? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    fn line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n") {
                return Ok(self.buf.drain(..i + 2).collect());
            }
            if self.fill()? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// A chunked body, raw (chunk sizes, data, trailers), and the data alone.
    fn chunked(&mut self) -> io::Result<(Vec<u8>, Vec<u8>)> {
        let mut raw = Vec::new();
        let mut data = Vec::new();
        loop {
            let line = self.line()?;
            raw.extend_from_slice(&line);
            let text = String::from_utf8_lossy(&line);
            let size_text = text
                .trim()
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            let size = usize::from_str_radix(&size_text, 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            if size == 0 {
                loop {
                    let trailer = self.line()?;
                    raw.extend_from_slice(&trailer);
                    if trailer == b"\r\n" {
                        return Ok((raw, data));
                    }
                }
            }
            let chunk = self.exact(size + 2)?;
            data.extend_from_slice(&chunk[..size]);
            raw.extend_from_slice(&chunk);
        }
    }

    fn until_close(&mut self) -> io::Result<Vec<u8>> {
        while self.fill()? > 0 {}
        Ok(std::mem::take(&mut self.buf))
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// (first line, headers with lower-case names).
fn parse_head(head: &[u8]) -> (String, Vec<(String, String)>) {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or("").to_string();
    let headers = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect();
    (first, headers)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn is_chunked(headers: &[(String, String)]) -> bool {
    header(headers, "transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
}

fn content_length(headers: &[(String, String)]) -> Option<usize> {
    header(headers, "content-length").and_then(|v| v.parse().ok())
}

fn body_hash(headers: &[(String, String)], body: &[u8]) -> u64 {
    let mut body = body.to_vec();
    if let Some(ct) = header(headers, "content-type") {
        if let Some(b) = ct
            .split(';')
            .find_map(|p| p.trim().strip_prefix("boundary="))
        {
            let boundary = b.trim_matches('"').as_bytes().to_vec();
            if !boundary.is_empty() {
                let mut out = Vec::with_capacity(body.len());
                let mut i = 0;
                while i < body.len() {
                    if body[i..].starts_with(&boundary) {
                        out.extend_from_slice(b"BOUNDARY");
                        i += boundary.len();
                    } else {
                        out.push(body[i]);
                        i += 1;
                    }
                }
                body = out;
            }
        }
    }
    let mut h = DefaultHasher::new();
    body.hash(&mut h);
    h.finish()
}

fn relay(conn: u64, client: TcpStream, server: TcpStream, shared: &Shared) -> io::Result<()> {
    let mut from_client = Reader {
        stream: client.try_clone()?,
        buf: Vec::new(),
    };
    let mut from_server = Reader {
        stream: server.try_clone()?,
        buf: Vec::new(),
    };
    let mut to_server = server;
    let mut to_client = client;
    loop {
        // The request.
        if from_client.buf.is_empty() && from_client.fill()? == 0 {
            let _ = to_server.shutdown(Shutdown::Write);
            return Ok(());
        }
        let arrived = Instant::now();
        let Some(head) = from_client.head()? else {
            return Ok(());
        };
        let (first, headers) = parse_head(&head);
        let mut parts = first.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let (raw_body, data) = if is_chunked(&headers) {
            from_client.chunked()?
        } else {
            let n = content_length(&headers).unwrap_or(0);
            let b = from_client.exact(n)?;
            (b.clone(), b)
        };
        let index = {
            let mut ex = shared.exchanges.lock().unwrap();
            ex.push(Exchange {
                conn,
                method: method.clone(),
                path,
                body_hash: body_hash(&headers, &data),
                arrived,
                answered: None,
                status: None,
                retry_after: None,
            });
            ex.len() - 1
        };
        to_server.write_all(&head)?;
        to_server.write_all(&raw_body)?;
        to_server.flush()?;
        // The answer (skipping 1xx heads).
        let (resp_head, resp_headers, status) = loop {
            let Some(h) = from_server.head()? else {
                let _ = to_client.shutdown(Shutdown::Both);
                return Ok(());
            };
            let (first, hs) = parse_head(&h);
            let status: u16 = first
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            if (100..200).contains(&status) {
                to_client.write_all(&h)?;
                continue;
            }
            break (h, hs, status);
        };
        {
            let mut ex = shared.exchanges.lock().unwrap();
            let e = &mut ex[index];
            e.answered = Some(Instant::now());
            e.status = Some(status);
            e.retry_after = header(&resp_headers, "retry-after").map(str::to_string);
        }
        let no_body = method == "HEAD" || status == 204 || status == 304;
        let (raw, until_close) = if no_body {
            (Vec::new(), false)
        } else if is_chunked(&resp_headers) {
            (from_server.chunked()?.0, false)
        } else if let Some(n) = content_length(&resp_headers) {
            (from_server.exact(n)?, false)
        } else {
            (from_server.until_close()?, true)
        };
        to_client.write_all(&resp_head)?;
        to_client.write_all(&raw)?;
        to_client.flush()?;
        if until_close {
            let _ = to_client.shutdown(Shutdown::Both);
            return Ok(());
        }
    }
}
