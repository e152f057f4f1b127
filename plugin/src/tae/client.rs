//! HTTP client for TAE: one `reqwest::Client` per (timeout, CA file), envelopes decoded into
//! `data` or a [`TaeError`], transient failures retried with exponential backoff and jitter
//! within a bounded budget (see [`RetryPolicy`]).

use super::error::{kind_from_message, BadAnswer, ErrorKind, TaeError};
use super::gate::{is_lease_lapsed, GatedBody, WriteGate};
use super::wire::{self, decode, Document, Profile, SearchPage, SearchRecord};
use super::{api, Publication, RecipientAuth};
use crate::host::HostBytes;
use chrono::{DateTime, NaiveDateTime, Utc};
use parking_lot::RwLock;
use reqwest::{Method, RequestBuilder};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

/// Bounded retry budget of one call. Tests shorten it with [`set_retry_policy`].
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Total attempts (first try included).
    pub attempts: u32,
    /// Wall-clock budget of all attempts and waits of one call.
    pub budget: Duration,
    /// First backoff; doubled after each failure (with ±50 % jitter), capped at 5 s.
    pub base_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            budget: Duration::from_secs(30),
            base_delay: Duration::from_millis(250),
        }
    }
}

/// The policy at start: the defaults, or (for end-to-end tests and benchmarks through the
/// built library) `TAE_EDU_RETRY_ATTEMPTS`, `TAE_EDU_RETRY_BUDGET_MS`, `TAE_EDU_RETRY_BASE_MS`.
fn initial_policy() -> RetryPolicy {
    let env = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let d = RetryPolicy::default();
    RetryPolicy {
        attempts: env("TAE_EDU_RETRY_ATTEMPTS").map_or(d.attempts, |a| a.clamp(1, 20) as u32),
        budget: env("TAE_EDU_RETRY_BUDGET_MS").map_or(d.budget, Duration::from_millis),
        base_delay: env("TAE_EDU_RETRY_BASE_MS").map_or(d.base_delay, Duration::from_millis),
    }
}

static RETRY: LazyLock<RwLock<RetryPolicy>> = LazyLock::new(|| RwLock::new(initial_policy()));

/// Replaces the process-wide retry policy (tests use short budgets).
pub fn set_retry_policy(policy: RetryPolicy) {
    *RETRY.write() = policy;
}

pub fn retry_policy() -> RetryPolicy {
    *RETRY.read()
}

/// A TAE session token (a JWE, opaque) and its expiry.
#[derive(Clone, Debug)]
pub struct Token {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

impl Token {
    /// Expired, with one minute of margin.
    pub fn is_expired(&self) -> bool {
        Utc::now() + chrono::Duration::seconds(60) >= self.expires_at
    }
}

/// Parses TAE's zone-less UTC timestamps (`yyyy-MM-ddTHH:mm:ss[.fff]`, or RFC 3339).
pub fn parse_tae_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc())
}

/// The HTTP side of TAE for one configuration.
#[derive(Clone)]
pub struct TaeClient {
    http: reqwest::Client,
    auth_url: String,
    api_url: String,
    /// What this client saw of TAE's reachability, and whether the run gave up on it.
    health: Arc<Health>,
    /// The run's write gate: every request that changes TAE is written only while it is open.
    gate: WriteGate,
}

/// The circuit breaker's view from inside the client: calls that ended (after their retries)
/// because TAE could not be reached, and the halt that stops every retry and wait at once.
pub struct Health {
    halted: AtomicBool,
    refused: AtomicU32,
    mismatch: AtomicU32,
    wake: tokio::sync::Notify,
    /// TAE's clock minus this host's (ms), from the `Date` header of TAE's last answer
    /// ([`i64::MIN`]: no answer carried one yet).
    clock_offset_ms: AtomicI64,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            halted: AtomicBool::new(false),
            refused: AtomicU32::new(0),
            mismatch: AtomicU32::new(0),
            wake: tokio::sync::Notify::new(),
            clock_offset_ms: AtomicI64::new(i64::MIN),
        }
    }
}

/// Builds a `reqwest::Client`: rustls (ring) with the platform roots plus the PEM CA file.
/// A CA file that cannot be used is a `Certificate` error.
pub fn build_http(timeout: Duration, ca_file: Option<&str>) -> Result<reqwest::Client, TaeError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fail = |kind: ErrorKind, detail: String| TaeError::new(kind, None, String::new(), detail);
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .pool_idle_timeout(Duration::from_secs(60))
        // HTTP/1.1 only: there a request's head and body leave together, in the poll that asks
        // its body for bytes, so the write gate (`gate`) can still refuse a request whole. With
        // HTTP/2 the head leaves before the body is asked for.
        .http1_only()
        // Answers are never decompressed (nothing asks for compression, and a compressed answer
        // is refused in `send`), whatever features another crate turns on in reqwest: a small
        // gzip answer could otherwise expand to gigabytes.
        .no_gzip()
        .no_brotli()
        .no_deflate()
        .no_zstd()
        // A redirect is followed only within the same scheme, host and port (at most 3); one
        // to another address is answered as is and refused in `send` (the token never leaves).
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            let same = attempt.previous().first().is_some_and(|first| {
                first.scheme() == attempt.url().scheme()
                    && first.host_str() == attempt.url().host_str()
                    && first.port_or_known_default() == attempt.url().port_or_known_default()
            });
            if same && attempt.previous().len() <= 3 {
                attempt.follow()
            } else {
                attempt.stop()
            }
        }))
        .user_agent(concat!("tae-edu/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            fail(
                ErrorKind::Certificate,
                format!("cannot read ca_file {path}: {e}"),
            )
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            fail(
                ErrorKind::Certificate,
                format!("invalid PEM in ca_file {path}: {e}"),
            )
        })?;
        if certs.is_empty() {
            return Err(fail(
                ErrorKind::Certificate,
                format!("no certificate in ca_file {path}"),
            ));
        }
        builder = builder.tls_certs_merge(certs);
    }
    builder.build().map_err(|e| {
        fail(
            ErrorKind::Protocol,
            format!("cannot build the HTTP client: {e}"),
        )
    })
}

/// TAE's error text from an envelope (`errors`, `messages`, `description`, `message`, `title`).
fn error_message(body: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(errors) = body.get("errors").and_then(Value::as_array) {
        parts.extend(errors.iter().filter_map(|e| {
            match e {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => o
                    .get("message")
                    .or_else(|| o.get("description"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
                _ => None,
            }
        }));
    }
    if let Some(msgs) = body.get("messages").and_then(Value::as_array) {
        parts.extend(msgs.iter().filter_map(|m| {
            m.get("description")
                .and_then(Value::as_str)
                .or_else(|| m.as_str())
                .map(str::to_string)
        }));
    }
    if parts.is_empty() {
        for k in ["description", "message", "title"] {
            if let Some(s) = body.get(k).and_then(Value::as_str) {
                if !s.is_empty() {
                    parts.push(s.to_string());
                    break;
                }
            }
        }
    }
    parts.join(" ")
}

/// The kind of a transport failure, from reqwest's flags and the text of its error chain
/// (hyper, rustls and webpki wording).
fn transport_kind(e: &reqwest::Error, detail: &str) -> ErrorKind {
    let d = detail.to_lowercase();
    if d.contains("certificate") || d.contains("unknownissuer") || d.contains("notvalidforname") {
        return ErrorKind::Certificate;
    }
    if d.contains("invalidcontenttype")
        || d.contains("corrupt message")
        || d.contains("wrong version number")
        || d.contains("invalid http version")
        || d.contains("http/0.9")
    {
        return ErrorKind::ProtocolMismatch;
    }
    if e.is_timeout() {
        return ErrorKind::Timeout;
    }
    if e.is_connect()
        && (d.contains("refused") || d.contains("dns error") || d.contains("failed to lookup"))
    {
        return ErrorKind::ConnectionRefused;
    }
    ErrorKind::Unavailable
}

fn backoff(attempt: u32, base: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.min(5));
    let capped = exp.min(Duration::from_secs(5));
    capped.mul_f64(0.5 + fastrand::f64())
}

/// The wait before the next attempt: the backoff, never less than TAE's `Retry-After`.
pub fn retry_wait(attempt: u32, base: Duration, retry_after: Option<Duration>) -> Duration {
    let b = backoff(attempt, base);
    retry_after.map_or(b, |r| r.max(b))
}

/// The most bytes of one answer the client reads (any route but the download): TAE's JSON
/// answers are a few kilobytes (a search page of 100 documents, about 100 KB).
pub const ANSWER_MAX_BYTES: u64 = 8 * 1024 * 1024;
/// The most bytes of a download's answer: the PDF in base64 (4/3 of its size) in JSON; TAE
/// takes at most 10 MB per envelope, and a signed PDF grows with its signature pages.
pub const DOWNLOAD_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// What went wrong reading an answer's body.
enum ReadFailure {
    Transport(reqwest::Error),
    TooLarge,
}

/// Reads an answer's body, at most `limit` bytes: an announced `Content-Length` above it is
/// refused before reading, and the read stops as soon as the bytes pass it (never buffered).
/// The client's request timeout covers the whole body (a slow drip ends with it).
async fn read_capped(mut resp: reqwest::Response, limit: u64) -> Result<Vec<u8>, ReadFailure> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(ReadFailure::TooLarge);
    }
    let mut out: Vec<u8> = Vec::with_capacity(resp.content_length().unwrap_or(0) as usize);
    while let Some(chunk) = resp.chunk().await.map_err(ReadFailure::Transport)? {
        if out.len() as u64 + chunk.len() as u64 > limit {
            return Err(ReadFailure::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// An HTML page (by its `Content-Type`, or by its first bytes when that is missing or wrong).
fn looks_like_html(content_type: Option<&str>, raw: &[u8]) -> bool {
    if content_type.is_some_and(|c| c.to_ascii_lowercase().contains("html")) {
        return true;
    }
    let start: Vec<u8> = raw
        .iter()
        .copied()
        .skip_while(u8::is_ascii_whitespace)
        .take(15)
        .map(|b| b.to_ascii_lowercase())
        .collect();
    start.starts_with(b"<!doctype html") || start.starts_with(b"<html")
}

/// Decodes an answer's bytes (HTTP status 2xx) into its envelope's `data`: a bare JSON value is
/// answered as is; `success:false` is a [`TaeError`] of the kind TAE's text tells; an envelope
/// without `data`, an HTML page, a truncated or non-JSON body are errors naming the answer.
pub(crate) fn decode_answer(
    what: &str,
    status: u16,
    content_type: Option<&str>,
    raw: &[u8],
) -> Result<Value, TaeError> {
    if raw.is_empty() {
        return Ok(Value::Null);
    }
    let body: Value = match serde_json::from_slice(raw) {
        Ok(v) => v,
        Err(e) => {
            let (kind, answer) = if looks_like_html(content_type, raw) {
                // A proxy's or web server's page: an outage, not TAE's answer.
                (ErrorKind::Unavailable, BadAnswer::Html)
            } else if e.is_eof() {
                (ErrorKind::Protocol, BadAnswer::Truncated)
            } else {
                (ErrorKind::Protocol, BadAnswer::NotJson)
            };
            return Err(TaeError::bad_answer(
                kind,
                Some(status),
                answer,
                format!(
                    "{what}: HTTP {status} with a body that is not JSON ({e}; {} bytes, content-type {})",
                    raw.len(),
                    content_type.unwrap_or("none")
                ),
            ));
        }
    };
    let ok = body
        .get("success")
        .or_else(|| body.get("succeeded"))
        .and_then(Value::as_bool);
    match ok {
        Some(false) => {
            let msg = error_message(&body);
            Err(TaeError::new(
                kind_from_message(&msg),
                Some(status),
                msg,
                format!("{what}: success=false"),
            ))
        }
        Some(true) => match body {
            Value::Object(mut m) => m.remove("data").ok_or_else(|| {
                TaeError::bad_answer(
                    ErrorKind::Protocol,
                    Some(status),
                    BadAnswer::MissingField("data".into()),
                    format!("{what}: HTTP {status}, an envelope without data"),
                )
            }),
            _ => Ok(Value::Null),
        },
        // Not an envelope (a bare value): answer it as is.
        None => Ok(body),
    }
}

/// An answer refused from its head alone, before reading its body: a redirect that was not
/// followed (to another address) and a compressed body (never asked for, never decompressed).
fn refused_answer(what: &str, resp: &reqwest::Response) -> Option<TaeError> {
    let status = resp.status().as_u16();
    if resp.status().is_redirection() {
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let target = resp.url().join(location).ok();
        let host = target
            .as_ref()
            .and_then(|t| t.host_str())
            .filter(|h| Some(*h) != resp.url().host_str())
            .map(str::to_string);
        return Some(TaeError::bad_answer(
            ErrorKind::Protocol,
            Some(status),
            BadAnswer::Redirect { host: host.clone() },
            format!(
                "{what}: HTTP {status} redirect to {} refused",
                host.as_deref()
                    .unwrap_or("the same host (too many redirects)")
            ),
        ));
    }
    let encoding = resp
        .headers()
        .get(reqwest::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty() && v != "identity")?;
    Some(TaeError::bad_answer(
        ErrorKind::Protocol,
        Some(status),
        BadAnswer::Compressed(encoding.clone()),
        format!(
            "{what}: HTTP {status} with Content-Encoding {encoding}, not asked for; refused unread"
        ),
    ))
}

/// The kind of an HTTP error status with TAE's message.
fn status_kind(status: u16, msg: &str) -> ErrorKind {
    match status {
        401 => ErrorKind::Unauthorized,
        403 => ErrorKind::PermissionDenied,
        404 | 405 => ErrorKind::NotFound,
        429 => ErrorKind::RateLimited,
        500..=599 => ErrorKind::Unavailable,
        _ => kind_from_message(msg),
    }
}

fn parse_retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let v = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // An HTTP date.
    let at = DateTime::parse_from_rfc2822(v).ok()?.with_timezone(&Utc);
    Some((at - Utc::now()).to_std().unwrap_or(Duration::ZERO))
}

impl TaeClient {
    pub fn new(http: reqwest::Client, auth_url: &str, api_url: &str) -> Self {
        TaeClient {
            http,
            auth_url: auth_url.trim_end_matches('/').to_string(),
            api_url: api_url.trim_end_matches('/').to_string(),
            health: Arc::new(Health::default()),
            gate: WriteGate::open(),
        }
    }

    /// The client with the run's write gate (the claim moves its deadline).
    pub fn with_gate(mut self, gate: WriteGate) -> Self {
        self.gate = gate;
        self
    }

    /// A request that changes TAE, with `body` written only while the run's gate is open.
    fn gated(&self, rb: RequestBuilder, body: reqwest::Body) -> RequestBuilder {
        rb.body(reqwest::Body::wrap(GatedBody::new(body, self.gate.clone())))
    }

    /// [`Self::gated`] with a JSON body (serialised once, before the first attempt).
    fn gated_json(&self, rb: RequestBuilder, json: &bytes::Bytes) -> RequestBuilder {
        self.gated(
            rb.header(reqwest::header::CONTENT_TYPE, "application/json"),
            reqwest::Body::from(json.clone()),
        )
    }

    /// Why TAE is clearly unusable, when a call ended on it: nothing listening at the address
    /// (connection refused, after the call's retries) or the wrong protocol (https/http).
    pub fn unreachable(&self) -> Option<ErrorKind> {
        if self.health.refused.load(Ordering::SeqCst) > 0 {
            Some(ErrorKind::ConnectionRefused)
        } else if self.health.mismatch.load(Ordering::SeqCst) > 0 {
            Some(ErrorKind::ProtocolMismatch)
        } else {
            None
        }
    }

    pub fn is_halted(&self) -> bool {
        self.health.halted.load(Ordering::SeqCst)
    }

    /// Notes a call's final error for the breaker; a refused connection halts the client.
    fn ended(&self, err: TaeError) -> TaeError {
        match err.kind {
            ErrorKind::ConnectionRefused => {
                self.health.refused.fetch_add(1, Ordering::SeqCst);
                self.halt();
            }
            ErrorKind::ProtocolMismatch => {
                self.health.mismatch.fetch_add(1, Ordering::SeqCst);
                self.halt();
            }
            _ => {}
        }
        err
    }

    /// Notes TAE's clock from an answer's `Date` header (second precision).
    fn note_server_date(&self, resp: &reqwest::Response) {
        let at = resp
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| DateTime::parse_from_rfc2822(v.trim()).ok());
        if let Some(at) = at {
            let offset = (at.with_timezone(&Utc) - Utc::now()).num_milliseconds();
            self.health.clock_offset_ms.store(offset, Ordering::SeqCst);
        }
    }

    /// TAE's clock minus this host's, as TAE's last `Date` header told (`None` before any).
    pub fn clock_offset(&self) -> Option<chrono::Duration> {
        match self.health.clock_offset_ms.load(Ordering::SeqCst) {
            i64::MIN => None,
            ms => Some(chrono::Duration::milliseconds(ms)),
        }
    }

    /// A time on TAE's clock expressed on this host's clock: TAE's `expirationDate` minus the
    /// offset its `Date` header showed. Offsets under 5 s (the header's precision and the
    /// request's own time) are ignored.
    pub fn to_local_time(&self, tae_time: DateTime<Utc>) -> DateTime<Utc> {
        match self.clock_offset() {
            Some(off) if off.num_seconds().abs() >= 5 => tae_time - off,
            _ => tae_time,
        }
    }

    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// Stops retrying and waiting: every call in flight answers its current failure at once
    /// (the run gave up on TAE).
    pub fn halt(&self) {
        self.health.halted.store(true, Ordering::SeqCst);
        self.health.wake.notify_waiters();
    }

    fn api(&self, path: &str) -> String {
        format!("{}{}", self.api_url, path)
    }

    fn auth(&self, path: &str) -> String {
        format!("{}{}", self.auth_url, path)
    }

    fn request(&self, method: Method, url: &str, token: Option<&str>) -> RequestBuilder {
        let rb = self
            .http
            .request(method, url)
            .header(reqwest::header::ACCEPT, "application/json");
        match token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    /// Sends a request (rebuilt by `build` on each attempt) and decodes the envelope into
    /// `data`. `idempotent` calls are retried on any transient failure; others only on 429
    /// (refused before processing) — a connection error or 5xx of a non-idempotent call is
    /// answered at once so that the caller checks the remote state. A `Retry-After` is a floor
    /// on the wait before the next attempt, and it travels in the error when no attempt is left.
    async fn send(
        &self,
        what: &str,
        idempotent: bool,
        build: &(dyn Fn() -> RequestBuilder + Sync),
    ) -> Result<Value, TaeError> {
        self.send_limited(what, idempotent, ANSWER_MAX_BYTES, build)
            .await
    }

    /// [`Self::send`] reading at most `limit` bytes of the answer.
    async fn send_limited(
        &self,
        what: &str,
        idempotent: bool,
        limit: u64,
        build: &(dyn Fn() -> RequestBuilder + Sync),
    ) -> Result<Value, TaeError> {
        let policy = retry_policy();
        let started = Instant::now();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let mut err = match build().send().await {
                Err(e) if is_lease_lapsed(&e) => {
                    // Refused by the write gate: nothing was sent, nothing to retry.
                    return Err(TaeError::new(
                        ErrorKind::LeaseLapsed,
                        None,
                        String::new(),
                        format!("{what}: {}", without_url(&e)),
                    ));
                }
                Err(e) => {
                    let detail = format!("{what}: {}", without_url(&e));
                    let kind = transport_kind(&e, &detail);
                    let err = TaeError::new(kind, None, String::new(), detail);
                    if matches!(kind, ErrorKind::Certificate | ErrorKind::ProtocolMismatch) {
                        // Not an outage and not worth retrying.
                        return Err(self.ended(err));
                    }
                    err
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = parse_retry_after(&resp);
                    self.note_server_date(&resp);
                    if let Some(err) = refused_answer(what, &resp) {
                        return Err(self.ended(err));
                    }
                    let content_type = resp
                        .headers()
                        .get(reqwest::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    match read_capped(resp, limit).await {
                        Err(ReadFailure::TooLarge) => {
                            return Err(self.ended(TaeError::bad_answer(
                                ErrorKind::Protocol,
                                Some(status),
                                BadAnswer::TooLarge {
                                    limit_mb: limit / (1024 * 1024),
                                },
                                format!("{what}: HTTP {status}, the answer passed {limit} bytes (read no further)"),
                            )))
                        }
                        Err(ReadFailure::Transport(e)) => {
                            let detail = format!("{what}: reading the answer: {}", without_url(&e));
                            let mut err = TaeError::new(
                                transport_kind(&e, &detail),
                                Some(status),
                                String::new(),
                                detail,
                            );
                            err.retry_after = retry_after;
                            err
                        }
                        Ok(bytes) if (200..=299).contains(&status) => {
                            match decode_answer(what, status, content_type.as_deref(), &bytes) {
                                // An HTML page instead of the answer (a proxy's error page) is
                                // an outage: retried like one.
                                Err(e) if e.kind.is_transient() => e,
                                other => return other,
                            }
                        }
                        Ok(bytes) => {
                            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                            let msg = error_message(&body);
                            let mut err = TaeError::new(
                                status_kind(status, &msg),
                                Some(status),
                                msg,
                                format!("{what}: HTTP {status}"),
                            );
                            err.retry_after = retry_after;
                            if !err.kind.is_transient() {
                                return Err(err);
                            }
                            err
                        }
                    }
                }
            };
            let refused_before_processing = err.kind == ErrorKind::RateLimited;
            if !(idempotent || refused_before_processing)
                || self.is_halted()
                || attempt >= policy.attempts
            {
                return Err(self.ended(err));
            }
            let wait = retry_wait(attempt - 1, policy.base_delay, err.retry_after);
            if started.elapsed() + wait >= policy.budget {
                return Err(self.ended(err));
            }
            log::debug!("TAE {what}: transient failure ({err}); retrying in {wait:?}");
            // The wait ends early when the run gives up on TAE.
            let halted = self.health.wake.notified();
            tokio::pin!(halted);
            halted.as_mut().enable();
            if !self.is_halted() {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = &mut halted => {}
                }
            }
            if self.is_halted() {
                err.detail.push_str(" (run stopped)");
                return Err(self.ended(err));
            }
        }
    }

    /// A1: logs in; answers the token and its expiry.
    pub async fn login(&self, email: &str, password: &str) -> Result<Token, TaeError> {
        let url = self.auth(api::LOGIN);
        let body = wire::LoginRequest {
            user_name: email,
            password,
        };
        let data = self
            .send("login", true, &|| {
                self.request(Method::POST, &url, None).json(&body)
            })
            .await?;
        let answer: wire::LoginAnswer = decode("login", data)?;
        if answer.token.is_empty() {
            return Err(protocol("login", "empty token in the answer"));
        }
        crate::redact::register_secret(&answer.token);
        if let Some(rt) = &answer.refresh_token {
            crate::redact::register_secret(rt);
        }
        // TAE's expiry is on TAE's clock: moved onto this host's by the offset TAE's `Date`
        // header showed, so that a clock minutes apart neither renews too early nor trusts a
        // dead token for long (a 401 leads to one new login whatever this says).
        let expires_at = answer
            .expiration_date
            .as_deref()
            .and_then(parse_tae_time)
            .map(|t| self.to_local_time(t))
            // RM documents a 12-hour login when the service does not say.
            .unwrap_or_else(|| Utc::now() + chrono::Duration::hours(12));
        Ok(Token {
            token: answer.token,
            expires_at,
        })
    }

    /// A2: the caller's profile.
    pub async fn profile(&self, token: &str) -> Result<Profile, TaeError> {
        let url = self.auth(api::PROFILE);
        let data = self
            .send("profile", true, &|| {
                self.request(Method::GET, &url, Some(token))
            })
            .await?;
        decode("profile", data)
    }

    /// A4: is there a TAE user with exactly this e-mail (case-insensitive)?
    pub async fn user_exists(&self, token: &str, email: &str) -> Result<bool, TaeError> {
        let url = self.api(api::USER_EMAIL_LIST);
        let url = with_query(&url, &[(api::Q_FILTER, email), (api::Q_TAKE, "10")]);
        let data = self
            .send("user lookup", true, &|| {
                self.request(Method::GET, &url, Some(token))
            })
            .await?;
        let list: wire::UserList = if data.is_null() {
            wire::UserList::List(Vec::new())
        } else {
            decode("user lookup", data)?
        };
        Ok(list.items().iter().any(|u| {
            u.email
                .as_deref()
                .is_some_and(|e| crate::validate::same_email(e, email))
        }))
    }

    /// A3: registers a user; TAE e-mails them to confirm the address and set a password.
    /// "Already registered" counts as success. Answers `true` when this call created the user,
    /// `false` when TAE already had one with that e-mail (TAE's identity service compares
    /// e-mails case-insensitively, as ASP.NET Identity's normalised e-mail does).
    pub async fn register_user(
        &self,
        token: &str,
        email: &str,
        full_name: &str,
        cpf: &str,
    ) -> Result<bool, TaeError> {
        let url = self.auth(api::REGISTER);
        // The user sets their own password through TAE's confirmation e-mail; this random one is
        // never shown, stored or logged.
        let password = format!(
            "Tae#{}{}",
            (0..16)
                .map(|_| fastrand::alphanumeric())
                .collect::<String>(),
            fastrand::u32(1000..9999)
        );
        crate::redact::register_secret(&password);
        let body = wire::RegisterRequest {
            email,
            password: &password,
            full_name,
            cpf,
            user_type: api::USER_TYPE_SIGNER,
            change_password: true,
            cnpj_licensed_company: None,
            phone_number: None,
            position: None,
            accepted_term: false,
        };
        let body = json_bytes("register user", &body)?;
        let res = self
            // Retrying is safe: a registration that went through answers "already exists",
            // which counts as success.
            .send("register user", true, &|| {
                self.gated_json(self.request(Method::POST, &url, Some(token)), &body)
            })
            .await;
        crate::redact::forget_secret(&password);
        match res {
            Ok(_) => Ok(true),
            Err(e) if e.kind == ErrorKind::AlreadyRegistered => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// D1: uploads a PDF as a draft named `name` (TAE's `NomeEnvelope`); answers the new id.
    pub async fn upload(
        &self,
        token: &str,
        name: &str,
        file_name: &str,
        pdf: &HostBytes,
    ) -> Result<i64, TaeError> {
        let url = self.api(api::UPLOAD);
        let data = self
            .send("upload", true, &|| {
                // Owned bytes: a reference-counted view, no copy per attempt. A host buffer read
                // in place: streamed from it in chunks, no copy of the whole file.
                // The file's bytes go through the run's write gate: a run whose leases lapsed
                // stops mid-upload, and TAE never gets a whole draft from it.
                let body = match pdf.as_owned() {
                    Some(bytes) => reqwest::Body::from(bytes.clone()),
                    None => reqwest::Body::wrap(HostBody {
                        pdf: pdf.clone(),
                        offset: 0,
                    }),
                };
                let body = reqwest::Body::wrap(GatedBody::new(body, self.gate.clone()));
                let part = reqwest::multipart::Part::stream_with_length(body, pdf.len() as u64)
                    .file_name(file_name.to_string())
                    .mime_str("application/pdf")
                    .expect("static mime type");
                let form = reqwest::multipart::Form::new()
                    .text(api::FIELD_ENVELOPE_NAME, name.to_string())
                    .part(api::FIELD_ENVELOPE_FILE, part);
                self.request(Method::POST, &url, Some(token))
                    .multipart(form)
            })
            .await?;
        Ok(decode::<wire::UploadAnswer>("upload", data)?.0)
    }

    /// D2: publishes a draft. Not retried on ambiguous failures: the caller reads D3 first.
    pub async fn publish(&self, token: &str, publication: &Publication) -> Result<(), TaeError> {
        let url = self.api(api::PUBLISH);
        let body = json_bytes("publish", &wire::PublicationBody::new(publication))?;
        self.send("publish", false, &|| {
            self.gated_json(self.request(Method::POST, &url, Some(token)), &body)
        })
        .await
        .map(|_| ())
    }

    /// D3: one publication.
    pub async fn document(&self, token: &str, id: i64) -> Result<Document, TaeError> {
        let url = format!("{}/{id}", self.api(api::PUBLICATION_V2));
        let data = self
            .send("read document", true, &|| {
                self.request(Method::GET, &url, Some(token))
            })
            .await?;
        if data.is_null() {
            return Err(TaeError::new(
                ErrorKind::NotFound,
                None,
                "Documento não encontrado.".into(),
                format!("document {id}: empty data"),
            ));
        }
        decode("read document", data)
    }

    /// D4: one page of the documents the filter selects.
    async fn search_page(
        &self,
        token: &str,
        body: &(impl serde::Serialize + Sync),
        page: usize,
        page_size: usize,
    ) -> Result<SearchPage, TaeError> {
        let url = self.api(api::SEARCH);
        let page_s = page.to_string();
        let size_s = page_size.to_string();
        let page_url = with_query(
            &url,
            &[
                (api::Q_PAGE, page_s.as_str()),
                (api::Q_PAGE_SIZE, size_s.as_str()),
            ],
        );
        let data = self
            .send("search documents", true, &|| {
                self.request(Method::POST, &page_url, Some(token))
                    .json(body)
            })
            .await?;
        if data.is_null() {
            return Ok(SearchPage {
                total: Some(0),
                registro: Vec::new(),
            });
        }
        decode("search documents", data)
    }

    /// D4: every document the TAE user `sender` created (all pages, up to
    /// [`OWN_DOCUMENTS_MAX_PAGES`]), without cancelled ones where TAE filters by status. TAE's
    /// search most likely cannot filter by name: the caller compares on its side.
    pub async fn own_documents(
        &self,
        token: &str,
        sender: &str,
    ) -> Result<Vec<SearchRecord>, TaeError> {
        let body = wire::SearchBody {
            pesquisar_em_toda_empresa: false,
            email: Some(sender),
            status: Some(&wire::LIVE_STATUSES),
        };
        let mut out = Vec::new();
        let page_size = 100usize;
        for page in 1..=OWN_DOCUMENTS_MAX_PAGES {
            let data = self.search_page(token, &body, page, page_size).await?;
            let n = data.registro.len();
            let total = data.total.unwrap_or(0) as usize;
            out.extend(data.registro);
            if n < page_size || page * page_size >= total {
                break;
            }
        }
        Ok(out)
    }

    /// D5: many documents at once. `Ok(None)` when the service does not offer the route.
    pub async fn documents_many(
        &self,
        token: &str,
        ids: &[i64],
    ) -> Result<Option<Vec<Document>>, TaeError> {
        let url = self.api(api::MANY_DOCUMENTS);
        let mut out = Vec::new();
        for chunk in ids.chunks(api::MANY_IDS_MAX) {
            match self
                .send("read many documents", true, &|| {
                    self.request(Method::POST, &url, Some(token)).json(chunk)
                })
                .await
            {
                Ok(Value::Null) => {}
                Ok(data) => out.extend(decode::<Vec<Document>>("read many documents", data)?),
                Err(e)
                    if e.kind == ErrorKind::NotFound
                        && matches!(e.http_status, Some(404) | Some(405)) =>
                {
                    return Ok(None)
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Some(out))
    }

    /// D6: adds recipients to a published document.
    pub async fn add_recipients(
        &self,
        token: &str,
        id: i64,
        recipients: &[super::NewRecipient],
        auth: RecipientAuth,
    ) -> Result<(), TaeError> {
        let url = self.api(api::ADD_RECIPIENTS);
        let body = wire::AddRecipientsBody {
            id_documento: id,
            destinatarios: recipients
                .iter()
                .map(|r| wire::RecipientBody::new(r, auth))
                .collect(),
        };
        let body = json_bytes("add recipients", &body)?;
        self.send("add recipients", false, &|| {
            self.gated_json(self.request(Method::POST, &url, Some(token)), &body)
        })
        .await
        .map(|_| ())
    }

    /// D7: removes one recipient.
    pub async fn remove_recipient(
        &self,
        token: &str,
        id: i64,
        email: &str,
    ) -> Result<(), TaeError> {
        let url = self.api(api::REMOVE_RECIPIENT);
        let body = wire::RemoveRecipientBody {
            id_documento: id,
            email_destinatario: email,
        };
        let body = json_bytes("remove recipient", &body)?;
        self.send("remove recipient", true, &|| {
            self.gated_json(self.request(Method::DELETE, &url, Some(token)), &body)
        })
        .await
        .map(|_| ())
    }

    /// D8: cancels a document. Not retried on ambiguous failures: the caller reads D3 first.
    pub async fn cancel(&self, token: &str, id: i64) -> Result<(), TaeError> {
        let url = format!(
            "{}/{id}/{}",
            self.api(api::PUBLICATION_V1),
            api::CANCEL_SUFFIX
        );
        // No body on the wire; the gate still judges the request when it is written.
        self.send("cancel", false, &|| {
            self.gated(
                self.request(Method::POST, &url, Some(token)),
                reqwest::Body::from(bytes::Bytes::new()),
            )
        })
        .await
        .map(|_| ())
    }

    /// D9: downloads a document; answers the bytes and TAE's file name.
    pub async fn download(
        &self,
        token: &str,
        id: i64,
        kind: u8,
    ) -> Result<(Vec<u8>, Option<String>), TaeError> {
        use base64::Engine;
        let url = format!(
            "{}/{id}/{}",
            self.api(api::PUBLICATION_V1),
            api::DOWNLOAD_SUFFIX
        );
        let kind_s = kind.to_string();
        let url = with_query(&url, &[(api::Q_DOWNLOAD_KIND, kind_s.as_str())]);
        let data = self
            .send_limited("download", true, DOWNLOAD_MAX_BYTES, &|| {
                self.request(Method::GET, &url, Some(token))
            })
            .await?;
        let answer: wire::DownloadAnswer = decode("download", data)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(answer.file_bytes.trim())
            .map_err(|e| protocol("download", &format!("invalid base64: {e}")))?;
        Ok((bytes, answer.file_name))
    }
}

/// The most search pages read while looking for a document whose id was lost (10,000 documents).
pub const OWN_DOCUMENTS_MAX_PAGES: usize = 100;

/// `url?k=v&…` with the values percent-encoded.
fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = String::from(url);
    for (i, (k, v)) in pairs.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.extend(url::form_urlencoded::byte_serialize(k.as_bytes()));
        out.push('=');
        out.extend(url::form_urlencoded::byte_serialize(v.as_bytes()));
    }
    out
}

/// How much of a host buffer one frame of an upload copies.
const HOST_BODY_CHUNK: usize = 64 * 1024;

/// An upload body read from a host buffer in place, [`HOST_BODY_CHUNK`] bytes per frame (each
/// frame a copy of that chunk, taken under the buffer's guard): the file itself is never copied
/// whole. Once the host buffer is released (the export returned) the body fails instead of
/// reading it.
struct HostBody {
    pdf: HostBytes,
    offset: usize,
}

impl http_body::Body for HostBody {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if this.offset >= this.pdf.len() {
            return std::task::Poll::Ready(None);
        }
        std::task::Poll::Ready(Some(match this.pdf.chunk(this.offset, HOST_BODY_CHUNK) {
            Some(chunk) => {
                this.offset += chunk.len();
                Ok(http_body::Frame::data(chunk))
            }
            None => Err(std::io::Error::other(
                "the host's buffer was released before the upload ended",
            )),
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.offset >= self.pdf.len()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.pdf.len().saturating_sub(self.offset) as u64)
    }
}

/// A request's JSON body, serialised once for every attempt.
fn json_bytes(what: &str, body: &impl serde::Serialize) -> Result<bytes::Bytes, TaeError> {
    serde_json::to_vec(body)
        .map(bytes::Bytes::from)
        .map_err(|e| protocol(what, &format!("cannot write the request: {e}")))
}

fn protocol(what: &str, detail: &str) -> TaeError {
    TaeError::new(
        ErrorKind::Protocol,
        None,
        String::new(),
        format!("{what}: {detail}"),
    )
}

/// A reqwest error without its URL's query (never carries secrets, but keeps lines short).
fn without_url(e: &reqwest::Error) -> String {
    let mut kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_request() {
        "request error"
    } else if e.is_body() || e.is_decode() {
        "body error"
    } else {
        "error"
    }
    .to_string();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = src {
        kind.push_str(": ");
        kind.push_str(&s.to_string());
        src = s.source();
    }
    kind
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times() {
        let t = parse_tae_time("2026-02-05T17:27:35.146479").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-02-05T17:27:35.146479+00:00");
        assert!(parse_tae_time("2026-02-05T17:27:35").is_some());
        assert!(parse_tae_time("2026-02-05T17:27:35Z").is_some());
        assert!(parse_tae_time("x").is_none());
    }

    #[test]
    fn envelopes() {
        let b = |v: Value| v.to_string().into_bytes();
        let j = Some("application/json");
        let v = decode_answer("x", 200, j, &b(json!({"success": true, "data": 5}))).unwrap();
        assert_eq!(v, json!(5));
        let e = decode_answer(
            "x",
            200,
            j,
            &b(json!({"success": false, "errors": ["Documento não encontrado."]})),
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        let e = decode_answer("x", 200, j, &b(json!({"succeeded": false, "description": "", "messages": [{"description": "Senha inválida"}]}))).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Rejected);
        assert_eq!(e.message, "Senha inválida");
        assert_eq!(decode_answer("x", 204, None, b"").unwrap(), Value::Null);
        // An HTML page is an outage page (retried like a 5xx), named as such.
        let e = decode_answer("x", 200, None, b"<html>").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unavailable);
        assert_eq!(e.answer, Some(BadAnswer::Html));
        assert!(
            e.user_text().contains("página HTML em vez de JSON"),
            "{}",
            e.user_text()
        );
        let e = decode_answer("x", 200, Some("text/html; charset=utf-8"), b"Erro").unwrap_err();
        assert_eq!(e.answer, Some(BadAnswer::Html));
        // Cut short, not JSON at all, an envelope without data: protocol errors (ambiguous).
        let e = decode_answer("x", 200, j, br#"{"success":true,"data":{"id":1"#).unwrap_err();
        assert_eq!(
            (e.kind, e.answer.clone()),
            (ErrorKind::Protocol, Some(BadAnswer::Truncated))
        );
        assert!(
            e.user_text().contains("resposta truncada"),
            "{}",
            e.user_text()
        );
        let e = decode_answer("x", 200, j, b"x=1").unwrap_err();
        assert_eq!(e.answer, Some(BadAnswer::NotJson));
        let e = decode_answer("x", 200, j, &b(json!({"success": true, "errors": []}))).unwrap_err();
        assert_eq!(e.answer, Some(BadAnswer::MissingField("data".into())));
        assert!(
            e.user_text().contains("campo data ausente"),
            "{}",
            e.user_text()
        );
        // A null data is TAE's own "nothing" (not a missing field).
        assert_eq!(
            decode_answer("x", 200, j, &b(json!({"success": true, "data": null}))).unwrap(),
            Value::Null
        );
    }

    #[test]
    fn statuses_classify_before_text() {
        assert_eq!(
            status_kind(401, "Documento não encontrado"),
            ErrorKind::Unauthorized
        );
        assert_eq!(status_kind(403, ""), ErrorKind::PermissionDenied);
        assert_eq!(status_kind(404, ""), ErrorKind::NotFound);
        assert_eq!(status_kind(429, ""), ErrorKind::RateLimited);
        assert_eq!(status_kind(503, ""), ErrorKind::Unavailable);
        assert_eq!(
            status_kind(400, "Documento já publicado."),
            ErrorKind::AlreadyPublished
        );
        assert_eq!(
            status_kind(400, "Existe destinatário repetido"),
            ErrorKind::DuplicateRecipient
        );
        assert_eq!(status_kind(400, "qualquer"), ErrorKind::Rejected);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let b = Duration::from_millis(100);
        assert!(backoff(0, b) <= Duration::from_millis(150));
        assert!(backoff(10, b) <= Duration::from_millis(7500));
    }

    #[test]
    fn retry_after_is_a_floor_of_every_wait() {
        let base = Duration::from_millis(250);
        for attempt in 0..8 {
            for _ in 0..50 {
                let w = retry_wait(attempt, base, Some(Duration::from_secs(1)));
                assert!(w >= Duration::from_secs(1), "{w:?}");
                let w = retry_wait(attempt, base, Some(Duration::from_secs(7)));
                assert!(w >= Duration::from_secs(7), "{w:?}");
            }
        }
    }
}
