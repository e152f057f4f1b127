//! The TAE routes (TAE-API.md): envelopes, authentication, permissions and the fault layer.

use crate::api;
use crate::pdf::{self, ManifestLine};
use crate::render::{document_json_with, profile_json, search_record_json};
use crate::state::{
    Document, Inner, Need, NewRecipient, Publication, SimError, SimState, StoredFile, User,
};
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Multipart, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, MethodRouter};
use axum::Router;
use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

/// Marker in a response's extensions: close the connection instead of answering.
#[derive(Debug, Clone, Copy)]
pub struct DropConnection;

/// Route options fixed at start.
#[derive(Debug, Clone)]
pub struct RouteOptions {
    pub max_upload_bytes: usize,
    /// One stderr line per TAE request (method, path, status, time, injected fault).
    pub log_requests: bool,
}

#[derive(Clone)]
pub(crate) struct AppState {
    pub sim: SimState,
    pub options: RouteOptions,
}

// ---------- envelopes ----------

fn status_code(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// `{success, data, errors, code}` with 200.
fn ok(data: Value) -> Response {
    (
        StatusCode::OK,
        axum::Json(json!({"success": true, "data": data, "errors": [], "code": 200})),
    )
        .into_response()
}

/// `{success:false, data:null, errors:[message], code}` with the error's status.
fn fail(err: SimError) -> Response {
    (
        status_code(err.status),
        axum::Json(
            json!({"success": false, "data": null, "errors": [err.message], "code": err.status}),
        ),
    )
        .into_response()
}

/// Identity envelope `{succeeded, description, data, messages}` with 200.
fn id_ok(data: Value) -> Response {
    (
        StatusCode::OK,
        axum::Json(json!({"succeeded": true, "description": "", "data": data, "messages": []})),
    )
        .into_response()
}

fn id_fail(err: SimError) -> Response {
    (
        status_code(err.status),
        axum::Json(json!({
            "succeeded": false, "description": err.message, "data": null,
            "messages": [{"description": err.message}],
        })),
    )
        .into_response()
}

/// Which envelope a route answers in: `{success, data, errors, code}` (documents and
/// signintegration) or `{succeeded, description, data, messages}` (identityintegration).
pub(crate) trait Envelope {
    fn fail(err: SimError) -> Response;
}

/// The documents/signintegration envelope.
pub(crate) struct Documents;
/// The identityintegration envelope.
pub(crate) struct Identity;

impl Envelope for Documents {
    fn fail(err: SimError) -> Response {
        fail(err)
    }
}

impl Envelope for Identity {
    fn fail(err: SimError) -> Response {
        id_fail(err)
    }
}

/// A route's error: a [`SimError`] answered in the envelope `E` of the route's service. Every
/// handler returns `Result<Response, ApiError<E>>`, so `?` on a `SimResult` answers the error.
pub(crate) struct ApiError<E>(SimError, std::marker::PhantomData<E>);

impl<E> From<SimError> for ApiError<E> {
    fn from(err: SimError) -> Self {
        ApiError(err, std::marker::PhantomData)
    }
}

impl<E: Envelope> IntoResponse for ApiError<E> {
    fn into_response(self) -> Response {
        E::fail(self.0)
    }
}

/// What a TAE handler answers.
type Reply<E = Documents> = Result<Response, ApiError<E>>;

/// The error envelope that fits the route's service.
fn fail_for(path: &str, err: SimError) -> Response {
    if path.starts_with("/identityintegration") {
        id_fail(err)
    } else {
        fail(err)
    }
}

// ---------- request helpers ----------

/// A property of a JSON object, compared case-insensitively (ASP.NET style).
fn ci<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    value
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

fn ci_str(value: &Value, name: &str) -> String {
    match ci(value, name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// An integer given as a number or a numeric string.
fn as_int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn ci_int(value: &Value, name: &str) -> Option<i64> {
    ci(value, name).and_then(as_int)
}

fn ci_bool(value: &Value, name: &str, default: bool) -> bool {
    match ci(value, name) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        Some(Value::Number(n)) => n.as_i64() != Some(0),
        _ => default,
    }
}

fn parse_body(body: &Bytes) -> Result<Value, SimError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body)
        .map_err(|e| SimError::bad_request(format!("Corpo da requisição inválido: {e}")))
}

/// Query parameters with lower-cased names.
fn query_ci(query: &HashMap<String, String>, name: &str) -> Option<String> {
    query
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn caller(state: &AppState, headers: &HeaderMap) -> Result<User, SimError> {
    state.sim.inner.lock().authenticate(bearer(headers))
}

fn caller_with(state: &AppState, headers: &HeaderMap, need: Need) -> Result<User, SimError> {
    let user = caller(state, headers)?;
    Inner::require(&user, need)?;
    Ok(user)
}

fn document_id(raw: &str) -> Result<u64, SimError> {
    raw.trim().parse().map_err(|_| SimError::not_found())
}

// ---------- A: identity ----------

async fn login(State(state): State<AppState>, body: Bytes) -> Reply<Identity> {
    let body = parse_body(&body)?;
    let user = ci_str(&body, "userName");
    let password = ci_str(&body, "password");
    if user.trim().is_empty() || password.is_empty() {
        return Err(SimError::bad_request("Informe o usuário e a senha.").into());
    }
    let (token, expiration) = state.sim.inner.lock().login(user.trim(), &password)?;
    Ok(id_ok(json!({
        "token": token, "refreshToken": null, "expirationDate": expiration,
    })))
}

async fn profile(State(state): State<AppState>, headers: HeaderMap) -> Reply<Identity> {
    Ok(id_ok(profile_json(&caller(&state, &headers)?)))
}

async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply<Identity> {
    let user = caller(&state, &headers)?;
    let body = parse_body(&body)?;
    let password = Some(ci_str(&body, "password")).filter(|p| !p.is_empty());
    let user = state.sim.inner.lock().register(
        &user,
        &ci_str(&body, "email"),
        &ci_str(&body, "fullName"),
        &ci_str(&body, "cpf"),
        ci_int(&body, "tipoIdentificacao").unwrap_or(api::IDENT_CPF),
        password,
    )?;
    Ok(id_ok(
        json!({"id": user.id, "email": user.email, "fullName": user.name}),
    ))
}

async fn email_list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Reply {
    caller(&state, &headers)?;
    let filter = query_ci(&query, api::Q_FILTER).unwrap_or_default();
    if filter.trim().is_empty() {
        return Err(SimError::bad_request("Informe o filtro (Filter).").into());
    }
    let take = match query_ci(&query, api::Q_TAKE) {
        None => 10,
        Some(t) => t
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|t| (1..=100).contains(t))
            .ok_or_else(|| SimError::bad_request("Take deve estar entre 1 e 100."))?,
    };
    let users = state.sim.inner.lock().find_users(filter.trim(), take);
    Ok(ok(Value::Array(
        users
            .iter()
            .map(|u| json!({"id": u.id, "email": u.email, "nome": u.name, "fullName": u.name}))
            .collect(),
    )))
}

// ---------- D: documents ----------

async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Reply {
    let user = caller_with(&state, &headers, Need::Publish)?;
    let mut multipart = multipart.map_err(|e| {
        SimError::bad_request(format!("Envie o arquivo como multipart/form-data ({e})."))
    })?;
    let invalid = |e: axum::extract::multipart::MultipartError| {
        SimError::bad_request(format!("Corpo multipart inválido: {e}"))
    };
    let mut name = String::new();
    let mut files = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(invalid)? {
        let field_name = field.name().unwrap_or_default().to_string();
        let file_name = field.file_name().map(str::to_string);
        let bytes = field.bytes().await.map_err(invalid)?;
        if field_name.eq_ignore_ascii_case(api::FIELD_ENVELOPE_NAME) {
            name = String::from_utf8_lossy(&bytes).trim().to_string();
        } else if field_name.eq_ignore_ascii_case(api::FIELD_ENVELOPE_FILE) {
            let file_name = file_name.unwrap_or_else(|| "documento.pdf".to_string());
            if !bytes.starts_with(b"%PDF-") {
                return Err(
                    SimError::bad_request(format!("{} ({file_name})", api::MSG_ONLY_PDF)).into(),
                );
            }
            if bytes.len() > state.options.max_upload_bytes {
                return Err(SimError::bad_request(format!(
                    "O arquivo {file_name} excede o tamanho máximo de {} MB.",
                    state.options.max_upload_bytes / (1024 * 1024)
                ))
                .into());
            }
            files.push(StoredFile::new(file_name, bytes.to_vec()));
        }
    }
    if files.is_empty() {
        return Err(SimError::bad_request(api::MSG_NO_FILE).into());
    }
    if name.is_empty() {
        return Err(SimError::bad_request("Informe o nome do envelope (NomeEnvelope).").into());
    }
    let id = state.sim.inner.lock().upload(&user, name, files);
    Ok(ok(json!(id)))
}

fn parse_recipients(body: &Value) -> Result<Vec<NewRecipient>, SimError> {
    let list = match ci(body, "destinatarios") {
        Some(Value::Array(list)) => list,
        None => return Ok(Vec::new()),
        Some(_) => return Err(SimError::bad_request("destinatarios deve ser uma lista.")),
    };
    list.iter()
        .map(|r| {
            if !r.is_object() {
                return Err(SimError::bad_request("Destinatário inválido."));
            }
            Ok(NewRecipient {
                email: ci_str(r, "email").trim().to_string(),
                name: ci_str(r, "nomeCompleto"),
                acao: ci_int(r, "acao").unwrap_or(api::ACAO_SIGN),
                workflow: ci_int(r, "workflow").unwrap_or(0),
                role: ci_str(r, "papelAssinante"),
                auth_type: ci_int(r, "tipoAutenticacao").unwrap_or(api::AUTH_LOGIN),
                identification: ci_str(r, "identificacao"),
            })
        })
        .collect()
}

fn body_document_id(body: &Value) -> Result<u64, SimError> {
    ci_int(body, "idDocumento")
        .filter(|id| *id > 0)
        .map(|id| id as u64)
        .ok_or_else(|| SimError::bad_request("Informe o documento (idDocumento)."))
}

async fn publish(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Reply {
    let user = caller_with(&state, &headers, Need::Publish)?;
    let body = parse_body(&body)?;
    let document_id = body_document_id(&body)?;
    let observers = match ci(&body, "observadores") {
        Some(Value::Array(list)) => list
            .iter()
            .map(|o| match o {
                Value::String(s) => s.clone(),
                other => ci_str(other, "email"),
            })
            .filter(|e| !e.is_empty())
            .collect(),
        _ => Vec::new(),
    };
    let options = ci(&body, "publicacaoOpcoes").cloned().unwrap_or(json!({}));
    let publication = Publication {
        document_id,
        use_workflow: ci_bool(&body, "utilizaWorkflow", false),
        recipients: parse_recipients(&body)?,
        observers,
        subject: Some(ci_str(&options, "assuntoMensagem")).filter(|s| !s.trim().is_empty()),
        allow_reject: ci_bool(&options, "permiteRejeitarDocumento", true),
        expires_on: Some(ci_str(&options, "dataExpiracao")).filter(|s| !s.trim().is_empty()),
    };
    state.sim.inner.lock().publish(&user, publication)?;
    Ok(ok(json!(document_id)))
}

async fn read(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Reply {
    let user = caller_with(&state, &headers, Need::Query)?;
    let id = document_id(&id)?;
    let inner = state.sim.inner.lock();
    let extras = inner.features.sim_extras;
    Ok(ok(document_json_with(
        inner.document_for(&user, id)?,
        extras,
    )))
}

fn page_param(
    query: &HashMap<String, String>,
    name: &str,
    default: usize,
    max: usize,
) -> Result<usize, SimError> {
    match query_ci(query, name) {
        None => Ok(default),
        Some(v) if v.trim().is_empty() => Ok(default),
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| SimError::bad_request(format!("{name} deve estar entre 1 e {max}."))),
    }
}

fn is_recipient(document: &Document, email: &str) -> bool {
    document
        .recipients
        .iter()
        .any(|r| r.email.eq_ignore_ascii_case(email))
}

fn pending_with(document: &Document, email: &str) -> bool {
    matches!(
        document.status,
        api::STATUS_PENDING | api::STATUS_PARTIALLY_SIGNED
    ) && document
        .recipients
        .iter()
        .any(|r| r.email.eq_ignore_ascii_case(email) && r.acted_at.is_none())
}

/// The `status` filter of a search: absent, one code or an array of codes (3 = every status,
/// 6 = pending with the caller).
fn status_filter(body: &Value) -> Result<Option<Vec<i64>>, SimError> {
    let invalid = || SimError::bad_request("status deve ser um número ou uma lista de números.");
    match ci(body, "status") {
        None => Ok(None),
        Some(Value::Array(list)) if list.is_empty() => Ok(None),
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| as_int(v).ok_or_else(invalid))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(v) => as_int(v).map(|s| Some(vec![s])).ok_or_else(invalid),
    }
}

fn status_matches(filter: &Option<Vec<i64>>, document: &Document, caller: &User) -> bool {
    let Some(codes) = filter else {
        return true;
    };
    codes.iter().any(|code| match *code {
        api::FILTER_ALL => true,
        api::FILTER_PENDING_WITH_ME => pending_with(document, &caller.email),
        s => document.status == s,
    })
}

/// One page of found documents, newest first: `{total, registro:[…]}`.
fn search_page(
    query: &HashMap<String, String>,
    mut found: Vec<&Document>,
    extras: bool,
) -> Result<Value, SimError> {
    let page = page_param(query, api::Q_PAGE, 1, usize::MAX)?;
    let page_size = page_param(query, api::Q_PAGE_SIZE, 10, 100)?;
    found.sort_by_key(|d| std::cmp::Reverse(d.id));
    let total = found.len();
    let registro: Vec<Value> = found
        .iter()
        .skip((page - 1).saturating_mul(page_size))
        .take(page_size)
        .map(|d| search_record_json(d, extras))
        .collect();
    Ok(json!({"total": total, "registro": registro}))
}

/// D4: the caller's documents (created by or addressed to them), or with
/// `pesquisarEmTodaEmpresa` the company's; `email` keeps those the sender created; `status` a
/// code or an array of codes; `nomeDocumento` only with the `search_by_name` feature.
async fn search(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Reply {
    let user = caller_with(&state, &headers, Need::Query)?;
    let body = parse_body(&body)?;
    let whole_company = ci_bool(&body, "pesquisarEmTodaEmpresa", false);
    let sender = ci_str(&body, "email").trim().to_string();
    let status = status_filter(&body)?;
    let inner = state.sim.inner.lock();
    let name = if inner.features.search_by_name {
        ci_str(&body, "nomeDocumento").trim().to_lowercase()
    } else {
        String::new()
    };
    let found: Vec<&Document> = inner
        .company_documents(&user)
        .filter(|d| {
            whole_company
                || d.created_by.eq_ignore_ascii_case(&user.email)
                || is_recipient(d, &user.email)
        })
        .filter(|d| sender.is_empty() || d.created_by.eq_ignore_ascii_case(&sender))
        .filter(|d| name.is_empty() || d.name.to_lowercase().contains(&name))
        .filter(|d| status_matches(&status, d, &user))
        .collect();
    Ok(ok(search_page(&query, found, inner.features.sim_extras)?))
}

/// The recipient search: the company's documents addressed to `destinatarioEmail` (default:
/// the caller), filtered by `status` (a code or an array), paged like D4.
async fn search_by_recipient(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Reply {
    let user = caller_with(&state, &headers, Need::Query)?;
    let body = parse_body(&body)?;
    let recipient = Some(ci_str(&body, "destinatarioEmail").trim().to_string())
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| user.email.clone());
    let status = status_filter(&body)?;
    let inner = state.sim.inner.lock();
    let found: Vec<&Document> = inner
        .company_documents(&user)
        .filter(|d| is_recipient(d, &recipient))
        .filter(|d| status_matches(&status, d, &user))
        .collect();
    Ok(ok(search_page(&query, found, inner.features.sim_extras)?))
}

async fn many_documents(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Reply {
    if !state.sim.features().many_ids {
        return Ok(StatusCode::NOT_FOUND.into_response());
    }
    let user = caller_with(&state, &headers, Need::Query)?;
    let body = parse_body(&body)?;
    let Value::Array(ids) = body else {
        return Err(
            SimError::bad_request("Envie uma lista JSON com os ids dos documentos.").into(),
        );
    };
    if ids.len() > api::MANY_IDS_MAX {
        return Err(SimError::bad_request(api::MSG_TOO_MANY_IDS).into());
    }
    let ids: Vec<u64> = ids
        .iter()
        .map(|v| as_int(v).map(|i| i.max(0) as u64))
        .collect::<Option<_>>()
        .ok_or_else(|| SimError::bad_request("Os ids dos documentos devem ser números."))?;
    let inner = state.sim.inner.lock();
    let mut seen = std::collections::HashSet::new();
    Ok(ok(Value::Array(
        ids.into_iter()
            .filter(|id| seen.insert(*id))
            .filter_map(|id| {
                let document = inner.document_for(&user, id).ok()?;
                Some(document_json_with(document, inner.features.sim_extras))
            })
            .collect(),
    )))
}

async fn add_recipients(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Reply {
    let user = caller_with(&state, &headers, Need::Publish)?;
    let body = parse_body(&body)?;
    let id = body_document_id(&body)?;
    let recipients = parse_recipients(&body)?;
    state
        .sim
        .inner
        .lock()
        .add_recipients(&user, id, recipients)?;
    Ok(ok(Value::Null))
}

async fn remove_recipient(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Reply {
    let user = caller_with(&state, &headers, Need::Publish)?;
    let body = parse_body(&body)?;
    let id = body_document_id(&body)?;
    let email = ci_str(&body, "emailDestinatario");
    if email.trim().is_empty() {
        return Err(
            SimError::bad_request("Informe o e-mail do destinatário (emailDestinatario).").into(),
        );
    }
    state.sim.inner.lock().remove_recipient(&user, id, &email)?;
    Ok(ok(Value::Null))
}

async fn cancel(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let user = caller_with(&state, &headers, Need::Delete)?;
    let id = document_id(&id)?;
    state.sim.inner.lock().cancel(&user, id)?;
    Ok(ok(Value::Null))
}

fn acao_name(acao: i64) -> &'static str {
    match acao {
        api::ACAO_VALIDATE => "Validação",
        api::ACAO_WITNESS => "Testemunha",
        _ => "Assinatura",
    }
}

fn manifest_lines(document: &Document) -> Vec<ManifestLine> {
    let mut lines = vec![
        ManifestLine(format!("Documento: {} (id {})", document.name, document.id)),
        ManifestLine(format!("Situação: {}", api::status_name(document.status))),
        ManifestLine(format!("Enviado por: {}", document.created_by)),
    ];
    if let Some(file) = document.files.first() {
        lines.push(ManifestLine(format!(
            "Arquivo: {} ({} bytes)",
            file.name, file.size
        )));
        lines.push(ManifestLine(format!("SHA-256: {}", file.sha256)));
    }
    for r in &document.recipients {
        lines.push(ManifestLine(match r.acted_at {
            Some(at) if r.state != crate::state::RecipientState::Rejected => format!(
                "{}: {} <{}> em {} UTC",
                acao_name(r.acao),
                r.name,
                r.email,
                at.format("%d/%m/%Y %H:%M:%S")
            ),
            Some(_) => format!("Rejeitado por {} <{}>", r.name, r.email),
            None => format!("Pendente ({}): {} <{}>", acao_name(r.acao), r.name, r.email),
        }));
    }
    if let Some(reason) = &document.rejection_reason {
        lines.push(ManifestLine(format!("Motivo da rejeição: {reason}")));
    }
    lines
}

fn file_stem(name: &str) -> &str {
    name.rsplit_once('.').map(|(stem, _)| stem).unwrap_or(name)
}

async fn download(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Reply {
    let user = caller_with(&state, &headers, Need::Query)?;
    let id = document_id(&id)?;
    let kind = match query_ci(&query, api::Q_DOWNLOAD_KIND) {
        None => 1,
        Some(k) => k.trim().parse::<i64>().unwrap_or(0),
    };
    let document = state.sim.inner.lock().document_for(&user, id)?.clone();
    let file = document
        .files
        .first()
        .ok_or_else(|| SimError::bad_request(api::MSG_NO_FILE))?;
    let stem = file_stem(&file.name).to_string();
    let title = "Manifesto de assinaturas - TOTVS Assinatura Eletrônica (simulador)";
    let signed = || pdf::with_manifest(&file.bytes, title, &manifest_lines(&document));
    let (name, bytes) = match kind {
        1 => (file.name.clone(), file.bytes.as_ref().clone()),
        2 => (format!("{stem}_assinado.pdf"), signed()),
        3 => {
            if document.status != api::STATUS_FINALISED {
                return Err(SimError::bad_request(
                    "O documento ainda não foi finalizado: não há versão assinada digitalmente.",
                )
                .into());
            }
            (format!("{stem}_assinado_digitalmente.pdf"), signed())
        }
        4 => {
            let mut entries: Vec<(String, Vec<u8>)> = document
                .files
                .iter()
                .map(|f| (f.name.clone(), f.bytes.as_ref().clone()))
                .collect();
            entries.push((format!("{stem}_assinado.pdf"), signed()));
            (format!("{stem}.zip"), pdf::zip(&entries))
        }
        _ => return Err(SimError::bad_request("tipoDownload inválido: use 1, 2, 3 ou 4.").into()),
    };
    Ok(ok(json!({
        "fileName": name,
        "fileBytes": base64::engine::general_purpose::STANDARD.encode(bytes),
    })))
}

// ---------- fault layer ----------

/// Sleeps, ending early when the server shuts down.
pub(crate) async fn sleep_or_shutdown(sim: &SimState, duration: Duration) {
    let mut shutdown = sim.shutdown.clone();
    tokio::select! {
        _ = tokio::time::sleep(duration) => {}
        _ = shutdown.wait_for(|stopping| *stopping) => {}
    }
}

/// Sleeps until `deadline`, ending early when the server shuts down.
pub(crate) async fn sleep_until_or_shutdown(sim: &SimState, deadline: std::time::Instant) {
    let mut shutdown = sim.shutdown.clone();
    tokio::select! {
        _ = crate::timer::sleep_until(deadline) => {}
        _ = shutdown.wait_for(|stopping| *stopping) => {}
    }
}

fn dropped() -> Response {
    let mut response = Response::new(Body::empty());
    response.extensions_mut().insert(DropConnection);
    response
}

async fn faults_layer(
    State(state): State<AppState>,
    matched: MatchedPath,
    request: Request,
    next: Next,
) -> Response {
    let started = std::time::Instant::now();
    let arrival_us = if state.sim.timeline_recording() {
        Some(crate::state::unix_micros())
    } else {
        None
    };
    let connection = request
        .extensions()
        .get::<crate::server::ConnectionId>()
        .map(|c| c.0)
        .unwrap_or(0);
    let method = request.method().as_str().to_string();
    let path = request.uri().path().to_string();
    let template = matched.as_str().to_string();
    let decision = state.sim.inner.lock().count_and_decide(&method, &template);
    let (fault, mut response) =
        apply_faults(&state, &decision, &template, started, request, next).await;
    // The `Date` header on TAE's clock (the clock offset), as a skewed server would send it.
    let date = state
        .sim
        .now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    if let Ok(v) = HeaderValue::from_str(&date) {
        response.headers_mut().insert(header::DATE, v);
    }
    if state.options.log_requests {
        let status = if response.extensions().get::<DropConnection>().is_some() {
            "dropped".to_string()
        } else {
            response.status().as_u16().to_string()
        };
        eprintln!(
            "tae-sim: {method} {path} -> {status} ({} ms){}",
            started.elapsed().as_millis(),
            fault.map(|f| format!(" [fault: {f}]")).unwrap_or_default()
        );
    }
    if let Some(arrival_us) = arrival_us {
        state.sim.record(crate::state::TimelineEntry {
            route: format!("{method} {template}"),
            arrival_us,
            answer_us: crate::state::unix_micros(),
            status: response.status().as_u16(),
            connection,
        });
    }
    response
}

async fn apply_faults(
    state: &AppState,
    decision: &crate::faults::FaultDecision,
    template: &str,
    started: std::time::Instant,
    request: Request,
    next: Next,
) -> (Option<&'static str>, Response) {
    let latency = Duration::from_millis(decision.latency_ms);
    let only_latency = decision.rate_limited.is_none()
        && decision.error_status.is_none()
        && decision.hostile.is_none()
        && decision.hang_ms.is_none()
        && decision.drop_after.is_none();
    if decision.latency_ms > 0 && only_latency {
        // The answer leaves at arrival + L: the handler runs first and the rest of L is slept
        // after it, on a timer with microsecond resolution (`timer.rs`), so the answer is never
        // early and late only by a thread wake-up. Sleeping L with tokio's timer and then
        // handling added the handling time and the millisecond tick to every request.
        let response = next.run(request).await;
        sleep_until_or_shutdown(&state.sim, started + latency).await;
        return (None, response);
    }
    if decision.latency_ms > 0 {
        sleep_until_or_shutdown(&state.sim, started + latency).await;
    }
    if let Some(retry_after) = decision.rate_limited {
        let mut response = fail_for(
            template,
            SimError {
                status: 429,
                message: api::MSG_RATE_LIMITED.to_string(),
            },
        );
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_str(&retry_after.to_string())
                .unwrap_or(HeaderValue::from_static("1")),
        );
        return (Some("429"), response);
    }
    if let Some(status) = decision.error_status {
        let response = fail_for(
            template,
            SimError {
                status,
                message: api::MSG_INTERNAL.to_string(),
            },
        );
        return (Some("5xx"), response);
    }
    if let Some(mode) = decision.hostile {
        let response = crate::hostile::answer(state, mode, template, request, next).await;
        return (Some(mode.name()), response);
    }
    let mut fault = None;
    let mut _hang_guard = None;
    if let Some(hang_ms) = decision.hang_ms {
        fault = Some("hang");
        _hang_guard = Some(state.sim.hang_started());
        sleep_or_shutdown(&state.sim, Duration::from_millis(hang_ms)).await;
        if state.sim.is_shutting_down() {
            return (fault, dropped());
        }
    }
    match decision.drop_after {
        Some(false) => (Some("drop before processing"), dropped()),
        Some(true) => {
            let _ = next.run(request).await;
            (Some("drop after processing"), dropped())
        }
        None => (fault, next.run(request).await),
    }
}

/// The handler of one route of [`api::ROUTES`].
fn handler(template: &str) -> MethodRouter<AppState> {
    match template {
        api::LOGIN_V3 | api::LOGIN_V2 | api::LOGIN_API => post(login),
        api::PROFILE => get(profile),
        api::REGISTER => post(register),
        api::USER_EMAIL_LIST => get(email_list),
        api::UPLOAD => post(upload),
        api::PUBLISH_V1 | api::PUBLISH_V2 => post(publish),
        api::READ_V2 | api::READ_V1 => get(read),
        api::SEARCH => post(search),
        api::SEARCH_RECIPIENT => post(search_by_recipient),
        api::MANY_DOCUMENTS => post(many_documents),
        api::ADD_RECIPIENTS => post(add_recipients),
        api::REMOVE_RECIPIENT => delete(remove_recipient),
        api::CANCEL => post(cancel),
        api::DOWNLOAD => get(download),
        other => panic!("tae-sim: no handler for the listed route {other}"),
    }
}

/// The TAE routes: exactly those of [`api::ROUTES`]. Unauthenticated identity routes answer 401
/// in their own envelope; the others in theirs.
pub(crate) fn router(state: AppState) -> Router {
    api::ROUTES
        .iter()
        .fold(Router::new(), |router, (_, template)| {
            router.route(template, handler(template))
        })
        .route_layer(middleware::from_fn_with_state(state.clone(), faults_layer))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;
    use tower_service::Service;

    /// Every listed route answers on its method (never 404 or 405) and only on it (405).
    #[tokio::test]
    async fn the_router_serves_exactly_the_listed_routes_on_their_methods() {
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let state = AppState {
            sim: SimState::new(0, crate::faults::FaultConfig::default(), rx),
            options: RouteOptions {
                max_upload_bytes: 1024,
                log_requests: false,
            },
        };
        let mut router = router(state);
        for (method, template) in api::ROUTES {
            let path = template.replace("{id}", "1");
            for other in ["GET", "POST", "DELETE", "PUT"] {
                let request = axum::http::Request::builder()
                    .method(Method::from_bytes(other.as_bytes()).unwrap())
                    .uri(&path)
                    .body(Body::empty())
                    .unwrap();
                let status = router.call(request).await.unwrap().status();
                if other == *method {
                    assert!(
                        status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
                        "{method} {template}: {status}"
                    );
                } else {
                    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{other} {template}");
                }
            }
        }
        let request = axum::http::Request::builder()
            .uri("/documents/v9/nada")
            .body(Body::empty())
            .unwrap();
        assert_eq!(
            router.call(request).await.unwrap().status(),
            StatusCode::NOT_FOUND
        );
    }
}
