//! HTTP client for TAE: one `reqwest::Client` per (timeout, CA file), envelopes decoded into
//! `data` or a [`TaeError`], transient failures retried with exponential backoff and jitter
//! within a bounded budget (see [`RetryPolicy`]).

use super::api;
use chrono::{DateTime, NaiveDateTime, Utc};
use parking_lot::RwLock;
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};
use std::sync::LazyLock;
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// 401: the token is missing, invalid or expired.
    Unauthorized,
    /// 403: a permission is missing.
    Forbidden,
    /// The document (or route) does not exist.
    NotFound,
    /// 400 or another business refusal (`success: false`), with TAE's message.
    Rejected,
    /// Connection errors, timeouts, 5xx, 429: still failing after the retry budget (or not
    /// retried because the call is not idempotent — its outcome is then unknown).
    Transient,
    /// An answer the client could not understand.
    Protocol,
    /// The server's TLS certificate is not trusted (or does not match its name).
    Certificate,
}

/// A failed TAE call. `message` is TAE's own text (Portuguese) when it sent one.
#[derive(Clone, Debug)]
pub struct TaeError {
    pub kind: ErrorKind,
    pub http_status: Option<u16>,
    pub message: String,
    pub detail: String,
}

impl std::fmt::Display for TaeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.kind)?;
        if let Some(s) = self.http_status {
            write!(f, " (HTTP {s})")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if !self.detail.is_empty() {
            write!(f, " [{}]", self.detail)?;
        }
        Ok(())
    }
}

impl TaeError {
    fn new(kind: ErrorKind, status: Option<u16>, message: String, detail: String) -> Self {
        TaeError {
            kind,
            http_status: status,
            message,
            detail: crate::redact::redact(&detail),
        }
    }

    /// A short Portuguese text for a per-contract message.
    pub fn user_text(&self) -> String {
        match self.kind {
            ErrorKind::Transient => format!(
                "o TOTVS Assinatura Eletrônica não respondeu a tempo ou está indisponível{}",
                if self.message.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", self.message)
                }
            ),
            ErrorKind::Unauthorized => "a sessão no TOTVS Assinatura Eletrônica expirou".into(),
            ErrorKind::Forbidden if self.message.is_empty() => {
                "o usuário do TOTVS Assinatura Eletrônica não tem permissão para esta operação"
                    .into()
            }
            ErrorKind::Certificate => {
                "o certificado de segurança (TLS) do servidor não é confiável; confira o endereço ou informe o arquivo de certificados da autoridade certificadora (ca_file) nos Parâmetros Globais".into()
            }
            ErrorKind::Protocol => {
                "o TOTVS Assinatura Eletrônica respondeu de forma inesperada".into()
            }
            _ if self.message.is_empty() => {
                "o TOTVS Assinatura Eletrônica recusou a operação".into()
            }
            _ => format!(
                "o TOTVS Assinatura Eletrônica recusou a operação: {}",
                self.message.trim_end_matches('.')
            ),
        }
    }
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
}

/// Builds a `reqwest::Client`: rustls (ring) with the platform roots plus the PEM CA file.
pub fn build_http(timeout: Duration, ca_file: Option<&str>) -> Result<reqwest::Client, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("tae-edu/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| format!("cannot read ca_file {path}: {e}"))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("invalid PEM in ca_file {path}: {e}"))?;
        if certs.is_empty() {
            return Err(format!("no certificate in ca_file {path}"));
        }
        builder = builder.tls_certs_merge(certs);
    }
    builder
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

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

/// A TLS verification failure, from the text of the error chain (rustls/webpki wording).
fn is_certificate_error(detail: &str) -> bool {
    let d = detail.to_lowercase();
    d.contains("certificate") || d.contains("unknownissuer") || d.contains("notvalidforname")
}

fn looks_not_found(msg: &str) -> bool {
    let m = msg.to_lowercase();
    m.contains("não encontrad") || m.contains("nao encontrad") || m.contains("not found")
}

fn backoff(attempt: u32, base: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.min(5));
    let capped = exp.min(Duration::from_secs(5));
    capped.mul_f64(0.5 + fastrand::f64())
}

impl TaeClient {
    pub fn new(http: reqwest::Client, auth_url: &str, api_url: &str) -> Self {
        TaeClient {
            http,
            auth_url: auth_url.trim_end_matches('/').to_string(),
            api_url: api_url.trim_end_matches('/').to_string(),
        }
    }

    pub fn api_url(&self) -> &str {
        &self.api_url
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
    /// answered as `Transient` at once so that the caller checks the remote state.
    pub async fn send(
        &self,
        what: &str,
        idempotent: bool,
        build: &(dyn Fn() -> RequestBuilder + Sync),
    ) -> Result<Value, TaeError> {
        let policy = retry_policy();
        let started = Instant::now();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let (err, retry_after) = match build().send().await {
                Err(e) => {
                    let detail = format!("{what}: {}", without_url(&e));
                    if is_certificate_error(&detail) {
                        // Not an outage and not worth retrying: the server is not trusted.
                        return Err(TaeError::new(
                            ErrorKind::Certificate,
                            None,
                            String::new(),
                            detail,
                        ));
                    }
                    (
                        TaeError::new(ErrorKind::Transient, None, String::new(), detail),
                        None,
                    )
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|s| s.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let bytes = match resp.bytes().await {
                        Ok(b) => b,
                        Err(e) => {
                            let detail = format!("{what}: reading the answer: {}", without_url(&e));
                            let err = TaeError::new(
                                ErrorKind::Transient,
                                Some(status),
                                String::new(),
                                detail,
                            );
                            if !idempotent || !self.may_retry(&policy, started, attempt, None) {
                                return Err(err);
                            }
                            tokio::time::sleep(backoff(attempt - 1, policy.base_delay)).await;
                            continue;
                        }
                    };
                    let body: Value = if bytes.is_empty() {
                        Value::Null
                    } else {
                        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
                    };
                    let msg = error_message(&body);
                    match status {
                        200..=299 => return decode_success(what, status, body, &bytes),
                        429 => (
                            TaeError::new(
                                ErrorKind::Transient,
                                Some(status),
                                msg,
                                format!("{what}: HTTP 429"),
                            ),
                            retry_after.or(Some(Duration::ZERO)),
                        ),
                        500..=599 => (
                            TaeError::new(
                                ErrorKind::Transient,
                                Some(status),
                                msg,
                                format!("{what}: HTTP {status}"),
                            ),
                            retry_after,
                        ),
                        401 => {
                            return Err(TaeError::new(
                                ErrorKind::Unauthorized,
                                Some(status),
                                msg,
                                format!("{what}: HTTP 401"),
                            ))
                        }
                        403 => {
                            return Err(TaeError::new(
                                ErrorKind::Forbidden,
                                Some(status),
                                msg,
                                format!("{what}: HTTP 403"),
                            ))
                        }
                        404 | 405 => {
                            return Err(TaeError::new(
                                ErrorKind::NotFound,
                                Some(status),
                                msg,
                                format!("{what}: HTTP {status}"),
                            ))
                        }
                        _ => {
                            let kind = if looks_not_found(&msg) {
                                ErrorKind::NotFound
                            } else {
                                ErrorKind::Rejected
                            };
                            return Err(TaeError::new(
                                kind,
                                Some(status),
                                msg,
                                format!("{what}: HTTP {status}"),
                            ));
                        }
                    }
                }
            };
            let is_429 = err.http_status == Some(429);
            if !(idempotent || is_429) || !self.may_retry(&policy, started, attempt, retry_after) {
                return Err(err);
            }
            let wait = match retry_after {
                Some(d) if !d.is_zero() => d,
                _ => backoff(attempt - 1, policy.base_delay),
            };
            log::debug!("TAE {what}: transient failure ({err}); retrying in {wait:?}");
            tokio::time::sleep(wait).await;
        }
    }

    fn may_retry(
        &self,
        p: &RetryPolicy,
        started: Instant,
        attempt: u32,
        wait: Option<Duration>,
    ) -> bool {
        attempt < p.attempts && started.elapsed() + wait.unwrap_or(Duration::ZERO) < p.budget
    }

    /// A1: logs in; answers the token and its expiry.
    pub async fn login(&self, email: &str, password: &str) -> Result<Token, TaeError> {
        let url = self.auth(api::LOGIN);
        let body = json!({"userName": email, "password": password});
        let data = self
            .send("login", true, &|| {
                self.request(Method::POST, &url, None).json(&body)
            })
            .await?;
        let token = data
            .get("token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| protocol("login", "no token in the answer"))?
            .to_string();
        crate::redact::register_secret(&token);
        if let Some(rt) = data.get("refreshToken").and_then(Value::as_str) {
            crate::redact::register_secret(rt);
        }
        let expires_at = data
            .get("expirationDate")
            .and_then(Value::as_str)
            .and_then(parse_tae_time)
            // RM documents a 12-hour login when the service does not say.
            .unwrap_or_else(|| Utc::now() + chrono::Duration::hours(12));
        Ok(Token { token, expires_at })
    }

    /// A2: the caller's profile (`data`).
    pub async fn profile(&self, token: &str) -> Result<Value, TaeError> {
        let url = self.auth(api::PROFILE);
        self.send("profile", true, &|| {
            self.request(Method::GET, &url, Some(token))
        })
        .await
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
        let items = data
            .as_array()
            .or_else(|| data.get("items").and_then(Value::as_array))
            .cloned()
            .unwrap_or_default();
        Ok(items.iter().any(|u| {
            u.get("email")
                .and_then(Value::as_str)
                .is_some_and(|e| crate::validate::same_email(e, email))
        }))
    }

    /// A3: registers a user; TAE e-mails them to confirm the address and set a password.
    /// "Already registered" counts as success.
    pub async fn register_user(
        &self,
        token: &str,
        email: &str,
        full_name: &str,
        cpf: &str,
    ) -> Result<(), TaeError> {
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
        let body = json!({
            "email": email, "password": password, "fullName": full_name, "cpf": cpf,
            "userType": api::USER_TYPE_SIGNER, "changePassword": true,
            "cnpjLicensedCompany": Value::Null, "phoneNumber": Value::Null,
            "position": Value::Null, "acceptedTerm": false
        });
        let res = self
            // Retrying is safe: a registration that went through answers "already exists",
            // which counts as success.
            .send("register user", true, &|| {
                self.request(Method::POST, &url, Some(token)).json(&body)
            })
            .await;
        crate::redact::forget_secret(&password);
        match res {
            Ok(_) => Ok(()),
            Err(e)
                if e.kind == ErrorKind::Rejected && {
                    let m = e.message.to_lowercase();
                    m.contains("já")
                        && (m.contains("cadastr") || m.contains("existe") || m.contains("registr"))
                } =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// D1: uploads a PDF as a draft; answers the new document id.
    pub async fn upload(
        &self,
        token: &str,
        name: &str,
        file_name: &str,
        pdf: &bytes::Bytes,
    ) -> Result<i64, TaeError> {
        let url = self.api(api::UPLOAD);
        let data = self
            .send("upload", true, &|| {
                // A reference-counted view of the PDF: no copy per attempt.
                let part = reqwest::multipart::Part::stream_with_length(
                    reqwest::Body::from(pdf.clone()),
                    pdf.len() as u64,
                )
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
        as_id(&data)
            .or_else(|| data.get("idDocumento").and_then(as_id))
            .or_else(|| data.get("id").and_then(as_id))
            .ok_or_else(|| protocol("upload", "no document id in the answer"))
    }

    /// D2: publishes a draft. Not retried on ambiguous failures: the caller reads D3 first.
    pub async fn publish(&self, token: &str, body: &Value) -> Result<(), TaeError> {
        let url = self.api(api::PUBLISH);
        self.send("publish", false, &|| {
            self.request(Method::POST, &url, Some(token)).json(body)
        })
        .await
        .map(|_| ())
    }

    /// D3: one publication (`data`).
    pub async fn document(&self, token: &str, id: i64) -> Result<Value, TaeError> {
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
        Ok(data)
    }

    /// D4: the company's documents with this name (all pages, client-side filtered too).
    pub async fn search_by_name(&self, token: &str, name: &str) -> Result<Vec<Value>, TaeError> {
        let url = self.api(api::SEARCH);
        let mut out = Vec::new();
        let page_size = 100usize;
        for page in 1..=50usize {
            let body = json!({"pesquisarEmTodaEmpresa": true, "nomeDocumento": name});
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
                        .json(&body)
                })
                .await?;
            let items = data
                .get("registro")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let total = data.get("total").and_then(Value::as_u64).unwrap_or(0) as usize;
            let n = items.len();
            out.extend(
                items
                    .into_iter()
                    .filter(|d| d.get("nomeDocumento").and_then(Value::as_str) == Some(name)),
            );
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
    ) -> Result<Option<Vec<Value>>, TaeError> {
        let url = self.api(api::MANY_DOCUMENTS);
        let mut out = Vec::new();
        for chunk in ids.chunks(api::MANY_IDS_MAX) {
            let body = json!(chunk);
            match self
                .send("read many documents", true, &|| {
                    self.request(Method::POST, &url, Some(token)).json(&body)
                })
                .await
            {
                Ok(data) => out.extend(data.as_array().cloned().unwrap_or_default()),
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
        recipients: &[Value],
    ) -> Result<(), TaeError> {
        let url = self.api(api::ADD_RECIPIENTS);
        let body = json!({"idDocumento": id, "destinatarios": recipients});
        self.send("add recipients", false, &|| {
            self.request(Method::POST, &url, Some(token)).json(&body)
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
        let body = json!({"idDocumento": id, "emailDestinatario": email});
        self.send("remove recipient", true, &|| {
            self.request(Method::DELETE, &url, Some(token)).json(&body)
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
        self.send("cancel", false, &|| {
            self.request(Method::POST, &url, Some(token))
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
            .send("download", true, &|| {
                self.request(Method::GET, &url, Some(token))
            })
            .await?;
        let b64 = data
            .get("fileBytes")
            .and_then(Value::as_str)
            .ok_or_else(|| protocol("download", "no fileBytes in the answer"))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| protocol("download", &format!("invalid base64: {e}")))?;
        let name = data
            .get("fileName")
            .and_then(Value::as_str)
            .map(str::to_string);
        Ok((bytes, name))
    }
}

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

fn as_id(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
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

fn decode_success(what: &str, status: u16, body: Value, raw: &[u8]) -> Result<Value, TaeError> {
    if body.is_null() {
        if raw.is_empty() {
            return Ok(Value::Null);
        }
        return Err(protocol(
            what,
            &format!("HTTP {status} with a non-JSON body"),
        ));
    }
    let ok = body
        .get("success")
        .or_else(|| body.get("succeeded"))
        .and_then(Value::as_bool);
    match ok {
        Some(false) => {
            let msg = error_message(&body);
            let kind = if looks_not_found(&msg) {
                ErrorKind::NotFound
            } else {
                ErrorKind::Rejected
            };
            Err(TaeError::new(
                kind,
                Some(status),
                msg,
                format!("{what}: success=false"),
            ))
        }
        Some(true) => Ok(body.get("data").cloned().unwrap_or(Value::Null)),
        // Not an envelope (a bare value): answer it as is.
        None => Ok(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let v = decode_success("x", 200, json!({"success": true, "data": 5}), b"1").unwrap();
        assert_eq!(v, json!(5));
        let e = decode_success(
            "x",
            200,
            json!({"success": false, "errors": ["Documento não encontrado."]}),
            b"1",
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        let e = decode_success("x", 200, json!({"succeeded": false, "description": "", "messages": [{"description": "Senha inválida"}]}), b"1").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Rejected);
        assert_eq!(e.message, "Senha inválida");
        assert_eq!(
            decode_success("x", 204, Value::Null, b"").unwrap(),
            Value::Null
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let b = Duration::from_millis(100);
        assert!(backoff(0, b) <= Duration::from_millis(150));
        assert!(backoff(10, b) <= Duration::from_millis(7500));
    }
}
