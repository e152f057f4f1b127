//! The reference host: [`RmHost`] serves every host method of `docs/abi.md` over a
//! [`SchoolDb`], the way TOTVS RM serves them over its own database and screens.
//!
//! - [`RmHost::handle`] is the dispatch: one method name and its JSON request in, the response
//!   bytes (JSON, or raw bytes for `file.read` and `report.render`) or a [`MethodError`] out.
//!   Read it to see what each method must do; the storage behind it is in [`crate::db`]
//!   (school data, parameters, integration records, leases).
//! - [`c_abi`] is the C side: the `#[repr(C)]` [`TaeEduHost`] table and the `extern "C"`
//!   trampolines that check pointers and threads, catch panics and hand out host-owned buffers.
//!
//! An `RmHost` lives on the thread that calls the plugin (not `Sync`): every callback must
//! arrive on the thread that entered the plugin, while the export runs, and is refused
//! otherwise. Around each export [`crate::Plugin`] calls [`RmHost::begin_call`] and
//! [`RmHost::end_call`]. Besides serving the plugin it records what happened (screens asked,
//! progress, log lines, call counts, warnings about records off the ABI's shape) and lets a
//! test replace any method ([`RmHost::set_override`]) to inject faults.

pub mod c_abi;

pub use c_abi::{
    table_for, CHost, HostCallFn, HostFreeFn, HostLogFn, HostProgressFn, TaeEduHost,
    HOST_ABI_VERSION,
};

use crate::db::records::raw_str;
use crate::db::{
    ContractFilter, ContractRef, DbError, DbErrorKind, LeaseOwner, RecordFilter, RecordsIn,
    SchoolDb, CONTRACT_DATA_SERVER,
};
use crate::pdf::{render_contract_pdf, ReportOptions, CONTRACT_REPORT_CODE};
use crate::ui::UiScript;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

/// A host method's failure: the `message` of the error JSON the plugin receives, and any
/// further fields (`"code": "lease_lost", "contracts": [...]` for a fenced `records.put`).
#[derive(Clone, Debug, PartialEq)]
pub struct MethodError {
    pub message: String,
    pub fields: Map<String, Value>,
}

impl MethodError {
    /// The error JSON: `{"message", ...fields}`.
    pub fn to_json(&self) -> Value {
        let mut obj = self.fields.clone();
        obj.insert("message".into(), Value::String(self.message.clone()));
        Value::Object(obj)
    }
}

impl From<String> for MethodError {
    fn from(message: String) -> Self {
        MethodError {
            message,
            fields: Map::new(),
        }
    }
}

impl From<&str> for MethodError {
    fn from(message: &str) -> Self {
        message.to_string().into()
    }
}

impl From<DbError> for MethodError {
    fn from(e: DbError) -> Self {
        let mut fields = Map::new();
        if let DbErrorKind::LeaseLost(contracts) = &e.kind {
            fields.insert("code".into(), json!("lease_lost"));
            fields.insert("contracts".into(), json!(contracts));
        }
        MethodError {
            message: e.message,
            fields,
        }
    }
}

/// `leases.acquire` request.
#[derive(Deserialize)]
struct AcquireRequest {
    owner: LeaseOwner,
    ttl_secs: u64,
    contracts: Vec<ContractRef>,
}

/// `leases.renew` request.
#[derive(Deserialize)]
struct RenewRequest {
    token: String,
    ttl_secs: u64,
    contracts: Vec<ContractRef>,
}

/// `leases.release` request.
#[derive(Deserialize)]
struct ReleaseRequest {
    token: String,
    #[serde(default)]
    contracts: Option<Vec<ContractRef>>,
}

/// One log line the plugin sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub level: i32,
    pub message: String,
}

/// One progress report of the plugin.
#[derive(Clone, Debug, PartialEq)]
pub struct ProgressEvent {
    pub done: u32,
    pub total: u32,
    pub detail: Value,
}

/// One progress report as received: (done, total, the detail's JSON text).
type RawProgress = (u32, u32, Box<[u8]>);

/// Where progress goes.
pub enum ProgressSink {
    /// Not shown (recorded only after [`RmHost::keep_progress_events`]).
    Silent,
    /// An indicatif progress bar on the terminal.
    Bar,
    /// A closure that sees each report; answering `true` asks the plugin to cancel.
    Observe(Box<dyn FnMut(&ProgressEvent) -> bool>),
}

/// An override of one host method (fault injection in tests): gets the request bytes; answers
/// `None` to fall through to the normal behaviour, or the response / failure message.
pub type MethodOverride = Box<dyn FnMut(&[u8]) -> Option<Result<Vec<u8>, String>>>;

/// The simulated RM host. Not `Sync`: it lives on the thread that calls the plugin.
pub struct RmHost {
    db: SchoolDb,
    default_login: RefCell<String>,
    sessions: RefCell<HashMap<String, String>>,
    ui: RefCell<UiScript>,
    ui_requests: RefCell<Vec<(String, Value)>>,
    progress: RefCell<ProgressSink>,
    progress_events: RefCell<Vec<RawProgress>>,
    /// Whether every progress report is kept for [`RmHost::progress_events`] (tests): off by
    /// default, as an RM host keeps none (10,000 reports of a batch are megabytes).
    keep_progress: Cell<bool>,
    bar: RefCell<Option<indicatif::ProgressBar>>,
    logs: Arc<Mutex<Vec<LogLine>>>,
    echo_log_level: Cell<i32>,
    host_warnings: RefCell<Vec<String>>,
    counters: RefCell<BTreeMap<String, u64>>,
    overrides: RefCell<HashMap<String, MethodOverride>>,
    report_options: RefCell<ReportOptions>,
    pdf_dir: RefCell<Option<PathBuf>>,
    files_dir: RefCell<Option<PathBuf>>,
    owner_thread: Cell<Option<ThreadId>>,
    foreign_thread_calls: AtomicU64,
    outstanding_buffers: AtomicI64,
    in_call: Cell<bool>,
    calls_outside_export: AtomicU64,
}

impl RmHost {
    /// A host over `db`, logged in as `login` (the RM user of every session unless
    /// [`RmHost::set_session_user`]), with screens cancelled until [`RmHost::set_ui`].
    pub fn new(db: SchoolDb, login: &str) -> Self {
        RmHost {
            db,
            default_login: RefCell::new(login.to_string()),
            sessions: RefCell::new(HashMap::new()),
            ui: RefCell::new(UiScript::cancel_all()),
            ui_requests: RefCell::new(Vec::new()),
            progress: RefCell::new(ProgressSink::Silent),
            progress_events: RefCell::new(Vec::new()),
            keep_progress: Cell::new(false),
            bar: RefCell::new(None),
            logs: Arc::new(Mutex::new(Vec::new())),
            echo_log_level: Cell::new(0),
            host_warnings: RefCell::new(Vec::new()),
            counters: RefCell::new(BTreeMap::new()),
            overrides: RefCell::new(HashMap::new()),
            report_options: RefCell::new(ReportOptions::default()),
            pdf_dir: RefCell::new(None),
            files_dir: RefCell::new(None),
            owner_thread: Cell::new(None),
            foreign_thread_calls: AtomicU64::new(0),
            outstanding_buffers: AtomicI64::new(0),
            in_call: Cell::new(false),
            calls_outside_export: AtomicU64::new(0),
        }
    }

    pub fn db(&self) -> &SchoolDb {
        &self.db
    }

    pub fn set_default_user(&self, login: &str) {
        *self.default_login.borrow_mut() = login.to_string();
    }

    /// The RM user of one session.
    pub fn set_session_user(&self, session: &str, login: &str) {
        self.sessions
            .borrow_mut()
            .insert(session.to_string(), login.to_string());
    }

    pub fn set_ui(&self, script: UiScript) {
        *self.ui.borrow_mut() = script;
    }

    /// Every screen the plugin asked for: (method, request), in order.
    pub fn ui_requests(&self) -> Vec<(String, Value)> {
        self.ui_requests.borrow().clone()
    }

    pub fn clear_ui_requests(&self) {
        self.ui_requests.borrow_mut().clear();
    }

    pub fn set_progress(&self, sink: ProgressSink) {
        *self.progress.borrow_mut() = sink;
    }

    /// Keeps every progress report from now on, for [`RmHost::progress_events`].
    pub fn keep_progress_events(&self) {
        self.keep_progress.set(true);
    }

    /// The progress reports kept since [`RmHost::keep_progress_events`].
    pub fn progress_events(&self) -> Vec<ProgressEvent> {
        self.progress_events
            .borrow()
            .iter()
            .map(|(done, total, detail)| ProgressEvent {
                done: *done,
                total: *total,
                detail: parse_detail(detail),
            })
            .collect()
    }

    /// Shared handle on the collected log lines.
    pub fn log_sink(&self) -> Arc<Mutex<Vec<LogLine>>> {
        self.logs.clone()
    }

    pub fn logs(&self) -> Vec<LogLine> {
        self.logs.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Every log line joined by newlines (for "no secret in the logs" checks).
    pub fn log_text(&self) -> String {
        self.logs()
            .iter()
            .map(|l| l.message.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Echo log lines up to `level` (1 error … 5 trace) to stderr; 0 = none.
    pub fn echo_logs(&self, level: i32) {
        self.echo_log_level.set(level);
    }

    /// Problems the host noticed in what the plugin sent (e.g. rewritten event history).
    pub fn host_warnings(&self) -> Vec<String> {
        self.host_warnings.borrow().clone()
    }

    /// How many times each host method was called.
    pub fn call_counts(&self) -> BTreeMap<String, u64> {
        self.counters.borrow().clone()
    }

    pub fn call_count(&self, method: &str) -> u64 {
        self.counters.borrow().get(method).copied().unwrap_or(0)
    }

    /// Replaces one host method's behaviour (fault injection).
    pub fn set_override(&self, method: &str, f: MethodOverride) {
        self.overrides.borrow_mut().insert(method.to_string(), f);
    }

    pub fn clear_overrides(&self) {
        self.overrides.borrow_mut().clear();
    }

    pub fn set_report_options(&self, opts: ReportOptions) {
        *self.report_options.borrow_mut() = opts;
    }

    /// Keep a copy of every rendered contract PDF in `dir`.
    pub fn set_pdf_dir(&self, dir: Option<PathBuf>) {
        *self.pdf_dir.borrow_mut() = dir;
    }

    /// Write the files the plugin stores on records (`records.store_file`) under `dir`.
    pub fn set_files_dir(&self, dir: Option<PathBuf>) {
        *self.files_dir.borrow_mut() = dir;
    }

    /// Callbacks that arrived on a thread other than the one that entered the plugin.
    pub fn foreign_thread_calls(&self) -> u64 {
        self.foreign_thread_calls.load(Ordering::SeqCst)
    }

    /// Callbacks that arrived while no export was running.
    pub fn calls_outside_export(&self) -> u64 {
        self.calls_outside_export.load(Ordering::SeqCst)
    }

    /// Host buffers handed to the plugin and not yet freed.
    pub fn outstanding_buffers(&self) -> i64 {
        self.outstanding_buffers.load(Ordering::SeqCst)
    }

    /// Called by [`crate::Plugin`] around each export.
    pub fn begin_call(&self) {
        self.owner_thread.set(Some(std::thread::current().id()));
        self.in_call.set(true);
    }

    pub fn end_call(&self) {
        self.in_call.set(false);
        if let Some(bar) = self.bar.borrow_mut().take() {
            bar.finish_and_clear();
        }
    }

    fn check_thread(&self) -> Result<(), String> {
        let here = std::thread::current().id();
        if let Some(owner) = self.owner_thread.get() {
            if owner != here {
                self.foreign_thread_calls.fetch_add(1, Ordering::SeqCst);
                return Err(
                    "host callback called from a thread other than the one that entered the plugin"
                        .into(),
                );
            }
        }
        if !self.in_call.get() {
            self.calls_outside_export.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }

    fn login_for(&self, request: &Value) -> String {
        let session = request.get("session").and_then(Value::as_str).unwrap_or("");
        self.sessions
            .borrow()
            .get(session)
            .cloned()
            .unwrap_or_else(|| self.default_login.borrow().clone())
    }

    /// Serves one host method: the dispatch of every method of `docs/abi.md`. `Ok` bytes are
    /// the response (JSON, or raw bytes for `file.read`/`report.render`); `Err` is the failure,
    /// sent to the plugin as `{"message", ...}` with a non-zero status.
    pub fn handle(&self, method: &str, request: &[u8]) -> Result<Vec<u8>, MethodError> {
        {
            let mut counters = self.counters.borrow_mut();
            match counters.get_mut(method) {
                Some(n) => *n += 1,
                None => {
                    counters.insert(method.to_string(), 1);
                }
            }
        }
        // Take the override out while it runs, so it may use the host itself.
        let ov = self.overrides.borrow_mut().remove(method);
        if let Some(mut f) = ov {
            let answer = f(request);
            self.overrides
                .borrow_mut()
                .entry(method.to_string())
                .or_insert(f);
            if let Some(answer) = answer {
                return answer.map_err(MethodError::from);
            }
        }
        // The methods called per contract read their request into typed fields straight from
        // the bytes (no tree) and write their answer straight from the database.
        match method {
            "records.put" => return self.records_put(request),
            "records.get" => return self.records_get(request),
            // The lease methods carry every contract of a batch: read straight into their types
            // and answered straight to bytes (a tree of 10,000 contracts was the host's peak).
            // A request that does not read cleanly goes the generic way below, for its message.
            "leases.acquire" | "leases.renew" | "leases.release"
                if request.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') =>
            {
                let answer = match method {
                    "leases.acquire" => {
                        serde_json::from_slice::<AcquireRequest>(request)
                            .ok()
                            .map(|r| {
                                let grant =
                                    self.db.acquire_leases(&r.owner, r.ttl_secs, &r.contracts)?;
                                Ok::<_, MethodError>(
                                    serde_json::to_vec(&grant).expect("serialising a grant"),
                                )
                            })
                    }
                    "leases.renew" => {
                        serde_json::from_slice::<RenewRequest>(request)
                            .ok()
                            .map(|r| {
                                let renewal =
                                    self.db.renew_leases(&r.token, r.ttl_secs, &r.contracts)?;
                                Ok::<_, MethodError>(
                                    serde_json::to_vec(&renewal).expect("serialising a renewal"),
                                )
                            })
                    }
                    _ => serde_json::from_slice::<ReleaseRequest>(request)
                        .ok()
                        .map(|r| {
                            self.db.release_leases(&r.token, r.contracts.as_deref())?;
                            Ok::<_, MethodError>(b"{}".to_vec())
                        }),
                };
                if let Some(answer) = answer {
                    return answer;
                }
            }
            "file.read" => {
                let r: PathRequest = typed_request(method, request)?;
                let path = r
                    .path
                    .and_then(raw_str)
                    .ok_or_else(|| format!("{method}: missing string field `path`"))?;
                return read_file(Path::new(path.as_ref()));
            }
            _ => {}
        }
        let req: Value = serde_json::from_slice(request)
            .map_err(|e| format!("invalid JSON request for {method}: {e}"))?;
        if !req.is_object() {
            return Err(format!("the request of {method} must be a JSON object").into());
        }
        let json_ok = |v: Value| Ok(serde_json::to_vec(&v).expect("serialising a Value"));
        let str_field = |name: &str| -> Result<String, String> {
            req.get(name)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("{method}: missing string field `{name}`"))
        };
        let string_list = |name: &str| -> Result<Vec<String>, String> {
            let arr = req
                .get(name)
                .and_then(Value::as_array)
                .ok_or_else(|| format!("{method}: missing array field `{name}`"))?;
            arr.iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| format!("{method}: `{name}` must hold strings"))
                })
                .collect()
        };
        match method {
            "user.current" => {
                let login = self.login_for(&req);
                let user = self
                    .db
                    .user(&login)?
                    .ok_or_else(|| format!("usuário do RM não cadastrado: {login}"))?;
                json_ok(json!({
                    "login": user.login, "name": user.name, "email": user.email,
                    "interactive": user.interactive,
                }))
            }
            "user.has_permission" => {
                let login = self.login_for(&req);
                let permission = str_field("permission")?;
                let granted = self.db.user_has_permission(&login, &permission)?;
                json_ok(json!({ "granted": granted }))
            }
            "params.get" => json_ok(json!({ "values": self.db.params()? })),
            "contracts.get" => {
                let keys = string_list("keys")?;
                let (found, missing) = self.db.contracts_by_keys(&keys)?;
                // Written straight to bytes (the menu's batch reads its contracts again a
                // chunk at a time through this method).
                let mut out = Vec::with_capacity(512 * found.len() + 64);
                out.extend_from_slice(br#"{"contracts":["#);
                for (i, c) in found.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    serde_json::to_writer(&mut out, &c.abi()).expect("serialising a contract");
                }
                out.extend_from_slice(br#"],"missing":"#);
                serde_json::to_writer(&mut out, &missing).expect("serialising keys");
                out.push(b'}');
                Ok(out)
            }
            "contracts.find" => {
                let filter = ContractFilter::from_json(req.get("filter").unwrap_or(&Value::Null))?;
                // Pages (`docs/abi.md`): optional; without `limit` every contract at once.
                let page = match req.get("limit") {
                    None | Some(Value::Null) => None,
                    Some(l) => {
                        let limit = l
                            .as_u64()
                            .filter(|n| (1..=100_000).contains(n))
                            .ok_or("contracts.find: limit deve ser um inteiro de 1 a 100000")?;
                        let cursor = match req.get("cursor") {
                            None | Some(Value::Null) => None,
                            Some(Value::String(c)) => Some(c.clone()),
                            Some(_) => return Err("contracts.find: cursor deve ser texto".into()),
                        };
                        Some(crate::db::ContractPage {
                            limit: limit as usize,
                            cursor,
                        })
                    }
                };
                Ok(self.db.find_contracts_json(&filter, page.as_ref())?)
            }
            "contracts.set_status" => {
                let key = str_field("key")?;
                let status = str_field("status")?;
                let by = req
                    .get("by")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                self.db.set_contract_status(&key, &status, &by)?;
                json_ok(json!({}))
            }
            "report.render" => {
                let code = str_field("report_code")?;
                let key = str_field("contract_key")?;
                if !code.eq_ignore_ascii_case(CONTRACT_REPORT_CODE) {
                    return Err(format!(
                        "relatório desconhecido: {code} (este host gera o relatório {CONTRACT_REPORT_CODE})"
                    )
                    .into());
                }
                let contract = self
                    .db
                    .contract(&key)?
                    .ok_or_else(|| format!("contrato não encontrado: {key}"))?;
                let pdf = render_contract_pdf(&contract, &self.report_options.borrow());
                if let Some(dir) = self.pdf_dir.borrow().as_ref() {
                    let _ = std::fs::create_dir_all(dir);
                    let name = format!(
                        "contrato-{}-{}.pdf",
                        safe_file_name(&contract.codcontrato),
                        safe_file_name(&contract.ra)
                    );
                    if let Err(e) = std::fs::write(dir.join(&name), &pdf) {
                        self.host_warnings
                            .borrow_mut()
                            .push(format!("could not keep a copy of {name}: {e}"));
                    }
                }
                Ok(pdf)
            }
            "ui.authenticate" => {
                self.ui_requests
                    .borrow_mut()
                    .push((method.to_string(), req.clone()));
                let answer = self.ui.borrow_mut().authenticate(&req);
                json_ok(answer)
            }
            "ui.ask_cpf" => {
                self.ui_requests
                    .borrow_mut()
                    .push((method.to_string(), req.clone()));
                let answer = self.ui.borrow_mut().ask_cpf(&req);
                json_ok(answer)
            }
            "records.query" => {
                let filter = RecordFilter::from_json(req.get("filter").unwrap_or(&Value::Null))?;
                let offset = req.get("offset").and_then(Value::as_i64).unwrap_or(0);
                let limit = req.get("limit").and_then(Value::as_i64).unwrap_or(50);
                if offset < 0 || limit < 0 {
                    return Err("records.query: offset and limit must not be negative".into());
                }
                Ok(self.db.query_records_json(&filter, offset, limit)?)
            }
            "leases.acquire" => {
                let r: AcquireRequest = parse_request(method, &req)?;
                let grant = self.db.acquire_leases(&r.owner, r.ttl_secs, &r.contracts)?;
                json_ok(serde_json::to_value(grant).expect("serialising a grant"))
            }
            "leases.renew" => {
                let r: RenewRequest = parse_request(method, &req)?;
                let renewal = self.db.renew_leases(&r.token, r.ttl_secs, &r.contracts)?;
                json_ok(serde_json::to_value(renewal).expect("serialising a renewal"))
            }
            "leases.release" => {
                let r: ReleaseRequest = parse_request(method, &req)?;
                self.db.release_leases(&r.token, r.contracts.as_deref())?;
                json_ok(json!({}))
            }
            "records.store_file" => {
                let record_id = str_field("record_id")?;
                let file_name = str_field("file_name")?;
                let content = base64::engine::general_purpose::STANDARD
                    .decode(str_field("content_base64")?.as_bytes())
                    .map_err(|e| format!("records.store_file: invalid base64: {e}"))?;
                let mut path = None;
                if let Some(dir) = self.files_dir.borrow().as_ref() {
                    let dir = dir.join(safe_file_name(&record_id));
                    std::fs::create_dir_all(&dir)
                        .map_err(|e| io_failure("criar a pasta", &dir, &e))?;
                    let p = dir.join(safe_file_name(&file_name));
                    std::fs::write(&p, &content)
                        .map_err(|e| io_failure("gravar o arquivo", &p, &e))?;
                    path = Some(p.display().to_string());
                }
                self.db
                    .store_record_file(&record_id, &file_name, &content, path.as_deref())?;
                match path {
                    Some(p) => json_ok(json!({ "path": p })),
                    None => json_ok(json!({})),
                }
            }
            _ => Err("unknown method".into()),
        }
    }

    /// `records.put`: `{"records": [...], "lease_token"?}` read in one pass into
    /// [`RecordIn`]s (typed fields borrowed from the request, the body kept as its JSON text).
    fn records_put(&self, request: &[u8]) -> Result<Vec<u8>, MethodError> {
        let r: PutRequest = typed_request("records.put", request)?;
        let Some(RecordsIn::Array(records)) = r.records else {
            return Err("records.put: missing array field `records`".into());
        };
        // With a lease token the write is fenced: refused whole, with
        // {"code": "lease_lost", "contracts"}, when a contract's lease was lost.
        let lease_token = match r.lease_token {
            None => None,
            Some(raw) => Some(raw_str(raw).ok_or("records.put: `lease_token` must be a string")?),
        };
        let warnings = self.db.put_records_in(&records, lease_token.as_deref())?;
        if !warnings.is_empty() {
            self.host_warnings.borrow_mut().extend(warnings);
        }
        Ok(b"{}".to_vec())
    }

    /// `records.get`: `{"data_server"?, "keys": [...]}`; the answer is written from the stored
    /// bodies.
    fn records_get(&self, request: &[u8]) -> Result<Vec<u8>, MethodError> {
        let method = "records.get";
        let r: GetRequest = typed_request(method, request)?;
        let data_server = r.data_server.and_then(raw_str);
        let data_server = data_server.as_deref().unwrap_or(CONTRACT_DATA_SERVER);
        let keys: Vec<&RawValue> = match r.keys {
            Some(raw) if raw.get().starts_with('[') => serde_json::from_str(raw.get())
                .map_err(|e| format!("invalid JSON request for {method}: {e}"))?,
            _ => return Err(format!("{method}: missing array field `keys`").into()),
        };
        let keys = keys
            .into_iter()
            .map(|k| {
                raw_str(k)
                    .map(Cow::into_owned)
                    .ok_or_else(|| format!("{method}: `keys` must hold strings"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.db.records_for_keys_json(data_server, &keys)?)
    }

    fn on_log(&self, level: i32, message: String) {
        if level <= self.echo_log_level.get() {
            let name = match level {
                1 => "ERRO",
                2 => "AVISO",
                3 => "INFO",
                4 => "DEBUG",
                _ => "TRACE",
            };
            match self.bar.borrow().as_ref() {
                Some(bar) => bar.println(format!("[plugin {name}] {message}")),
                None => eprintln!("[plugin {name}] {message}"),
            }
        }
        if let Ok(mut logs) = self.logs.lock() {
            logs.push(LogLine { level, message });
        }
    }

    /// One progress report: kept as the detail's JSON text (read into a tree only for a sink
    /// that looks at it, or by [`RmHost::progress_events`]).
    fn on_progress(&self, done: u32, total: u32, detail: &[u8]) -> bool {
        if self.keep_progress.get() {
            self.progress_events
                .borrow_mut()
                .push((done, total, detail.into()));
        }
        let mut sink = self.progress.borrow_mut();
        if matches!(&*sink, ProgressSink::Silent) {
            return false;
        }
        let ev = ProgressEvent {
            done,
            total,
            detail: parse_detail(detail),
        };
        match &mut *sink {
            ProgressSink::Silent => false,
            ProgressSink::Bar => {
                let mut bar = self.bar.borrow_mut();
                let bar = bar.get_or_insert_with(|| {
                    let b = indicatif::ProgressBar::new(total as u64);
                    if let Ok(style) = indicatif::ProgressStyle::with_template(
                        "  {bar:30.cyan/blue} {pos}/{len} contratos {wide_msg}",
                    ) {
                        b.set_style(style);
                    }
                    b
                });
                bar.set_length(total as u64);
                bar.set_position(done as u64);
                if let Some(m) = ev.detail.get("message").and_then(Value::as_str) {
                    bar.set_message(m.to_string());
                }
                false
            }
            ProgressSink::Observe(f) => f(&ev),
        }
    }
}

/// A progress detail as JSON (`null` when the plugin sent something that is not JSON).
fn parse_detail(detail: &[u8]) -> Value {
    serde_json::from_slice(detail).unwrap_or(Value::Null)
}

/// A file-system failure in Portuguese, naming the path (the plugin puts it in the message the
/// user reads): never an English OS message inside a Portuguese sentence.
pub fn io_failure(action: &str, path: &Path, e: &std::io::Error) -> String {
    let why = match e.kind() {
        std::io::ErrorKind::NotFound => "não encontrado".to_string(),
        std::io::ErrorKind::PermissionDenied => "sem permissão de acesso".to_string(),
        std::io::ErrorKind::IsADirectory => "é uma pasta, não um arquivo".to_string(),
        std::io::ErrorKind::NotADirectory => "um dos nomes no caminho não é uma pasta".to_string(),
        std::io::ErrorKind::StorageFull => "disco cheio".to_string(),
        std::io::ErrorKind::AlreadyExists => "já existe".to_string(),
        _ => format!("erro do sistema ({e})"),
    };
    format!("não foi possível {action} {}: {why}", path.display())
}

/// A typed request, or a failure naming the method and the problem.
fn parse_request<'v, T: Deserialize<'v>>(method: &str, req: &'v Value) -> Result<T, MethodError> {
    T::deserialize(req).map_err(|e| format!("{method}: invalid request: {e}").into())
}

/// A request read straight from its bytes into `T` (whose fields are all optional raw values or
/// lenient types, so only a syntax error fails here): the same failures as the generic path,
/// "invalid JSON request" and "must be a JSON object".
fn typed_request<'a, T: Deserialize<'a>>(
    method: &str,
    request: &'a [u8],
) -> Result<T, MethodError> {
    let invalid = |e: serde_json::Error| format!("invalid JSON request for {method}: {e}");
    // A struct also reads from an array; the request must be an object.
    if request.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        serde_json::from_slice::<serde::de::IgnoredAny>(request).map_err(invalid)?;
        return Err(format!("the request of {method} must be a JSON object").into());
    }
    Ok(serde_json::from_slice(request).map_err(invalid)?)
}

/// `file.read`: the file's bytes, in the buffer handed to the plugin as it is (`std::fs::read`
/// sizes it to the file, so no copy follows; see `into_host_buffer`).
fn read_file(path: &Path) -> Result<Vec<u8>, MethodError> {
    Ok(std::fs::read(path).map_err(|e| io_failure("ler o arquivo", path, &e))?)
}

/// `records.put` request (a repeated member: the last one counts, as in a JSON tree).
struct PutRequest<'a> {
    records: Option<RecordsIn<'a>>,
    lease_token: Option<&'a RawValue>,
}

impl<'de> Deserialize<'de> for PutRequest<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = PutRequest<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a records.put request object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut r = PutRequest {
                    records: None,
                    lease_token: None,
                };
                while let Some(k) = map.next_key::<Cow<'de, str>>()? {
                    match k.as_ref() {
                        "records" => r.records = map.next_value()?,
                        "lease_token" => r.lease_token = map.next_value()?,
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(r)
            }
        }
        d.deserialize_map(V)
    }
}

/// `records.get` request.
#[derive(Deserialize)]
struct GetRequest<'a> {
    #[serde(borrow, default)]
    data_server: Option<&'a RawValue>,
    #[serde(borrow, default)]
    keys: Option<&'a RawValue>,
}

/// `file.read` request.
#[derive(Deserialize)]
struct PathRequest<'a> {
    #[serde(borrow, default)]
    path: Option<&'a RawValue>,
}

/// A file name without path separators or parent references.
pub fn safe_file_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| match c {
            '/' | '\\' | ':' | '\0' => '_',
            c => c,
        })
        .collect();
    let trimmed = cleaned.trim_matches('.');
    if trimmed.is_empty() {
        "arquivo".into()
    } else {
        trimmed.to_string()
    }
}

/// Reads a file the way `file.read` does (used by the CLI to check paths early).
pub fn file_exists(path: &Path) -> bool {
    path.is_file()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::{seed_demo, DEMO_RM_USER, DEMO_RM_USER_NO_PERMISSION};

    fn host() -> RmHost {
        let db = SchoolDb::in_memory().unwrap();
        seed_demo(&db).unwrap();
        RmHost::new(db, DEMO_RM_USER)
    }

    /// Calls a method through the C table, like the plugin does.
    fn call(host: &RmHost, method: &str, req: &Value) -> (i32, Vec<u8>) {
        let t = host.table();
        let req = serde_json::to_vec(req).unwrap();
        let mut out: *mut u8 = std::ptr::null_mut();
        let mut len = 0usize;
        host.begin_call();
        // SAFETY: the table's ctx is `host`, alive here; pointers are to locals.
        let status = unsafe {
            (t.call.unwrap())(
                t.ctx,
                method.as_ptr(),
                method.len(),
                req.as_ptr(),
                req.len(),
                &mut out,
                &mut len,
            )
        };
        assert!(!out.is_null());
        // SAFETY: the host wrote a buffer of `len` bytes.
        let bytes = unsafe { std::slice::from_raw_parts(out, len) }.to_vec();
        // SAFETY: freeing the buffer the host gave us.
        unsafe { (t.free_buffer.unwrap())(t.ctx, out, len) };
        host.end_call();
        (status, bytes)
    }

    fn call_json(host: &RmHost, method: &str, req: Value) -> (i32, Value) {
        let (s, b) = call(host, method, &req);
        (s, serde_json::from_slice(&b).unwrap())
    }

    #[test]
    fn user_and_permission() {
        let h = host();
        let (s, v) = call_json(&h, "user.current", json!({"session": "s1"}));
        assert_eq!(s, 0);
        assert_eq!(v["login"], DEMO_RM_USER);
        assert_eq!(v["interactive"], true);
        let perm = crate::db::PROCESS_PERMISSION;
        let (_, v) = call_json(
            &h,
            "user.has_permission",
            json!({"session": "s1", "permission": perm}),
        );
        assert_eq!(v["granted"], true);
        h.set_session_user("s2", DEMO_RM_USER_NO_PERMISSION);
        let (_, v) = call_json(
            &h,
            "user.has_permission",
            json!({"session": "s2", "permission": perm}),
        );
        assert_eq!(v["granted"], false);
        assert_eq!(h.outstanding_buffers(), 0);
    }

    #[test]
    fn unknown_method_and_bad_json() {
        let h = host();
        let (s, v) = call_json(&h, "nao.existe", json!({}));
        assert_ne!(s, 0);
        assert_eq!(v["message"], "unknown method");
        let t = h.table();
        let mut out: *mut u8 = std::ptr::null_mut();
        let mut len = 0usize;
        h.begin_call();
        // SAFETY: valid pointers to locals and a live host.
        let s = unsafe {
            (t.call.unwrap())(
                t.ctx,
                b"params.get".as_ptr(),
                10,
                b"{nope".as_ptr(),
                5,
                &mut out,
                &mut len,
            )
        };
        assert_ne!(s, 0);
        // SAFETY: freeing what the host gave.
        unsafe { (t.free_buffer.unwrap())(t.ctx, out, len) };
        h.end_call();
        assert_eq!(h.outstanding_buffers(), 0);
    }

    /// `contracts.find` in pages: the pages together are the whole answer in the same order;
    /// a contract that stops matching the filter between pages skips no other; a bad cursor
    /// or limit is refused with a message.
    #[test]
    fn contracts_find_in_pages() {
        let h = host();
        let filter = json!({"codcoligada": 1, "status": "Ativo"});
        let keys = |v: &Value| -> Vec<String> {
            v["contracts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["key"].as_str().unwrap().to_string())
                .collect()
        };
        let (s, all) = call_json(&h, "contracts.find", json!({"filter": filter}));
        assert_eq!(s, 0);
        assert!(all.get("next_cursor").is_none());
        let all = keys(&all);
        assert!(all.len() >= 8, "{all:?}");
        let mut paged = Vec::new();
        let mut cursor = Value::Null;
        let mut pages = 0;
        loop {
            let (s, v) = call_json(
                &h,
                "contracts.find",
                json!({"filter": filter, "limit": 3, "cursor": cursor}),
            );
            assert_eq!(s, 0, "{v}");
            let page = keys(&v);
            assert!(page.len() <= 3);
            pages += 1;
            if pages == 1 {
                // The next page's first contract stops matching (as when it is signed): the
                // rest still come, none twice.
                let (s, _) = call_json(
                    &h,
                    "contracts.set_status",
                    json!({"key": all[3], "status": "Assinado", "by": "t"}),
                );
                assert_eq!(s, 0);
            }
            paged.extend(page);
            match v.get("next_cursor") {
                Some(Value::String(c)) => cursor = json!(c),
                _ => break,
            }
        }
        let expected: Vec<String> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 3)
            .map(|(_, k)| k.clone())
            .collect();
        assert_eq!(paged, expected);
        assert_eq!(pages, expected.len().div_ceil(3));
        let (s, v) = call_json(
            &h,
            "contracts.find",
            json!({"filter": filter, "limit": 3, "cursor": "x"}),
        );
        assert_ne!(s, 0);
        assert!(
            v["message"].as_str().unwrap().contains("cursor inválido"),
            "{v}"
        );
        let (s, v) = call_json(&h, "contracts.find", json!({"filter": filter, "limit": 0}));
        assert_ne!(s, 0);
        assert!(v["message"].as_str().unwrap().contains("limit"), "{v}");
    }

    #[test]
    fn contracts_and_status_and_report() {
        let h = host();
        let (s, v) = call_json(
            &h,
            "contracts.find",
            json!({"filter": {"codcoligada": 1, "period": "2026/1"}}),
        );
        assert_eq!(s, 0);
        let contracts = v["contracts"].as_array().unwrap();
        assert!(contracts.len() >= 12);
        let key = contracts[0]["key"].as_str().unwrap().to_string();
        let (s, v) = call_json(&h, "contracts.get", json!({"keys": [key, "1;x;0"]}));
        assert_eq!(s, 0);
        assert_eq!(v["missing"], json!(["1;x;0"]));
        let (s, _) = call_json(
            &h,
            "contracts.set_status",
            json!({"key": key, "status": "Assinado", "by": "secretaria"}),
        );
        assert_eq!(s, 0);
        assert_eq!(h.db().contract(&key).unwrap().unwrap().status, "Assinado");
        let (s, pdf) = call(
            &h,
            "report.render",
            &json!({"report_code": "EDU.CONTRATO", "contract_key": key}),
        );
        assert_eq!(s, 0);
        assert!(pdf.starts_with(b"%PDF-"));
        let (s, v) = call_json(
            &h,
            "report.render",
            json!({"report_code": "EDU.OUTRO", "contract_key": key}),
        );
        assert_ne!(s, 0);
        let m = v["message"].as_str().unwrap();
        assert!(
            m.contains("relatório desconhecido: EDU.OUTRO") && m.contains("EDU.CONTRATO"),
            "{m}"
        );
        let (s, _) = call_json(&h, "contracts.find", json!({"filter": {"curso": "x"}}));
        assert_ne!(s, 0);
        // The answer written row by row is the ABI's Contract JSON of every contract found.
        let filter = ContractFilter {
            codcoligada: Some(1),
            ..Default::default()
        };
        let (s, v) = call_json(&h, "contracts.find", json!({"filter": {"codcoligada": 1}}));
        assert_eq!(s, 0);
        let expected: Vec<Value> = h
            .db()
            .find_contracts(&filter)
            .unwrap()
            .iter()
            .map(|c| c.to_json())
            .collect();
        assert!(expected.len() >= 12);
        assert_eq!(v, json!({ "contracts": expected }));
        assert!(expected
            .iter()
            .any(|c| c["financial_responsible"]["cpf"].is_string()));
    }

    #[test]
    fn file_read_raw_bytes() {
        let h = host();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.pdf");
        std::fs::write(&p, b"%PDF-1.4 raw").unwrap();
        let (s, b) = call(&h, "file.read", &json!({"path": p}));
        assert_eq!((s, b.as_slice()), (0, &b"%PDF-1.4 raw"[..]));
        let (s, v) = call_json(
            &h,
            "file.read",
            json!({"path": dir.path().join("nada.pdf")}),
        );
        assert_ne!(s, 0);
        let m = v["message"].as_str().unwrap();
        assert!(
            m.starts_with("não foi possível ler o arquivo")
                && m.contains("nada.pdf")
                && m.ends_with("não encontrado")
                && !m.contains("No such file"),
            "{m}"
        );
    }

    #[test]
    fn leases_through_the_table_and_a_fenced_put() {
        let h = host();
        let owner = |run: &str| json!({"run_id": run, "session": "s", "user": "secretaria", "machine": "rm-1", "option": "send"});
        let c = |k: &str| json!({"data_server": CONTRACT_DATA_SERVER, "key": k});
        let (s, v) = call_json(
            &h,
            "leases.acquire",
            json!({"owner": owner("run-1"), "ttl_secs": 60, "contracts": [c("1;a;1"), c("1;b;2")]}),
        );
        assert_eq!(s, 0, "{v}");
        assert_eq!(v["token"], "run-1");
        assert_eq!(v["granted"], json!([c("1;a;1"), c("1;b;2")]));
        assert_eq!(v["held"], json!([]));
        let (_, v) = call_json(
            &h,
            "leases.acquire",
            json!({"owner": owner("run-2"), "ttl_secs": 60, "contracts": [c("1;a;1"), c("1;c;3")]}),
        );
        assert_eq!(v["granted"], json!([c("1;c;3")]));
        let held = &v["held"][0];
        assert_eq!(
            (&held["data_server"], &held["key"], &held["holder"]),
            (
                &json!(CONTRACT_DATA_SERVER),
                &json!("1;a;1"),
                &owner("run-1")
            )
        );
        assert!(held["since"].as_str().unwrap().ends_with('Z'));
        assert!(held["expires_at"].as_str().unwrap() > held["since"].as_str().unwrap());
        // Run 1 releases 1;b;2, then writes a record of it under its token: refused whole.
        let (s, _) = call_json(
            &h,
            "leases.release",
            json!({"token": "run-1", "contracts": [c("1;b;2")]}),
        );
        assert_eq!(s, 0);
        let rec = |id: &str, key: &str| {
            json!({"id": id, "data_server": CONTRACT_DATA_SERVER, "record_key": key,
                "status": "enviando", "created_at": "2026-11-28T10:00:00Z", "updated_at": "2026-11-28T10:00:00Z",
                "events": [{"at": "2026-11-28T10:00:00Z", "by": "s", "kind": "created", "detail": ""}]})
        };
        let (s, v) = call_json(
            &h,
            "records.put",
            json!({"lease_token": "run-1", "records": [rec("r-a", "1;a;1"), rec("r-b", "1;b;2")]}),
        );
        assert_ne!(s, 0);
        assert_eq!(v["code"], "lease_lost");
        assert_eq!(v["contracts"], json!([c("1;b;2")]));
        assert!(
            v["message"].as_str().unwrap().contains("nada foi gravado"),
            "{v}"
        );
        assert!(h.db().all_records().unwrap().is_empty());
        let (s, _) = call_json(
            &h,
            "records.put",
            json!({"lease_token": "run-1", "records": [rec("r-a", "1;a;1")]}),
        );
        assert_eq!(s, 0);
        // Renew: 1;b;2 was released, so it is lost.
        let (s, v) = call_json(
            &h,
            "leases.renew",
            json!({"token": "run-1", "ttl_secs": 60, "contracts": [c("1;a;1"), c("1;b;2")]}),
        );
        assert_eq!(s, 0);
        assert_eq!(v, json!({"renewed": [c("1;a;1")], "lost": [c("1;b;2")]}));
        // Release all of the token's leases.
        let (s, _) = call_json(&h, "leases.release", json!({"token": "run-1"}));
        assert_eq!(s, 0);
        assert!(h.db().leases().unwrap().iter().all(|l| l.token == "run-2"));
        // Bad requests are failures with a message, never a panic.
        for bad in [
            json!({"owner": owner("x"), "ttl_secs": 0, "contracts": []}),
            json!({"owner": {"session": "s"}, "ttl_secs": 5, "contracts": []}),
            json!({"owner": owner("x"), "ttl_secs": 5, "contracts": [{"key": "1;a;1"}]}),
            json!({"owner": owner("x"), "ttl_secs": -1, "contracts": []}),
        ] {
            let (s, v) = call_json(&h, "leases.acquire", bad.clone());
            assert_eq!(s, 1, "{bad}: {v}");
            assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
        let (s, _) = call_json(&h, "records.put", json!({"lease_token": 5, "records": []}));
        assert_eq!(s, 1);
        assert_eq!(h.outstanding_buffers(), 0);
    }

    /// Bad records in a `records.put` are refused whole with a message naming the problem,
    /// read from the typed request as from a tree.
    #[test]
    fn records_put_refusals_name_the_problem() {
        let h = host();
        let cases = [
            (json!({}), "records.put: missing array field `records`"),
            (
                json!({"records": {"id": "x"}}),
                "records.put: missing array field `records`",
            ),
            (
                json!({"records": [], "lease_token": 5}),
                "records.put: `lease_token` must be a string",
            ),
            (
                json!({"records": [5]}),
                "registro de integração: deve ser um objeto JSON",
            ),
            (
                json!({"records": [{"id": 5}]}),
                "registro de integração sem `id`",
            ),
            (
                json!({"records": [{"id": ""}]}),
                "registro de integração sem `id`",
            ),
            (
                json!({"records": [{"id": "r", "data_server": "E", "record_key": "k"}]}),
                "registro de integração r sem `status`",
            ),
            (
                json!({"records": [{"id": "r", "record_key": "k", "status": "pendente"}]}),
                "registro de integração r sem `data_server`",
            ),
        ];
        for (req, message) in cases {
            let (s, v) = call_json(&h, "records.put", req.clone());
            assert_eq!((s, v["message"].as_str()), (1, Some(message)), "{req}");
        }
        let (s, v) = call(&h, "records.put", &json!([1]));
        let v: Value = serde_json::from_slice(&v).unwrap();
        assert_eq!(
            (s, v["message"].as_str()),
            (1, Some("the request of records.put must be a JSON object"))
        );
        assert!(h.db().all_records().unwrap().is_empty());
        // A record that is fine but off the ABI's shape is stored, with host warnings.
        let rec = json!({"id": "r", "data_server": "E", "record_key": "k", "status": "assinado",
            "created_at": "ontem", "updated_at": "2026-11-28T10:00:00Z",
            "events": [{"at": "2026-11-28T10:00:00Z", "by": "s", "kind": "mágica", "detail": ""}]});
        let (s, _) = call_json(
            &h,
            "records.put",
            json!({"records": [rec], "lease_token": null}),
        );
        assert_eq!(s, 0);
        let w = h.host_warnings();
        assert!(
            w.iter().any(|m| m.contains("unknown status `assinado`")),
            "{w:?}"
        );
        assert!(
            w.iter()
                .any(|m| m.contains("`created_at` is not an RFC 3339")),
            "{w:?}"
        );
        assert!(
            w.iter().any(|m| m.contains("unknown event kind `mágica`")),
            "{w:?}"
        );
        assert_eq!(h.db().all_records().unwrap().len(), 1);
    }

    #[test]
    fn ui_is_scripted_and_recorded() {
        let h = host();
        h.set_ui(UiScript::with_credentials("a@example.com", "segredo").then_cpf("529.982.247-25"));
        let (_, v) = call_json(
            &h,
            "ui.authenticate",
            json!({"session": "s", "reason": "first"}),
        );
        assert_eq!(v["email"], "a@example.com");
        let (_, v) = call_json(
            &h,
            "ui.ask_cpf",
            json!({"session": "s", "name": "n", "email": "e"}),
        );
        assert_eq!(v["cpf"], "529.982.247-25");
        assert_eq!(h.ui_requests().len(), 2);
    }

    #[test]
    fn records_round_trip_and_store_file() {
        let h = host();
        let dir = tempfile::tempdir().unwrap();
        h.set_files_dir(Some(dir.path().to_path_buf()));
        let rec = json!({"id": "r-1", "data_server": CONTRACT_DATA_SERVER, "record_key": "1;2026001;145",
            "status": "pendente", "created_at": "2026-11-28T10:00:00Z", "updated_at": "2026-11-28T10:00:00Z",
            "sent_at": "2026-11-28T10:00:01Z", "events": [{"at": "2026-11-28T10:00:00Z", "by": "s", "kind": "created", "detail": ""}]});
        let (s, _) = call_json(&h, "records.put", json!({"records": [rec]}));
        assert_eq!(s, 0);
        let (_, v) = call_json(
            &h,
            "records.get",
            json!({"data_server": CONTRACT_DATA_SERVER, "keys": ["1;2026001;145"]}),
        );
        assert_eq!(v["records"][0]["id"], "r-1");
        assert_eq!(v["records"][0]["events"].as_array().unwrap().len(), 1);
        let (_, v) = call_json(
            &h,
            "records.query",
            json!({"filter": {"status": "pendente"}, "offset": 0, "limit": 10}),
        );
        assert_eq!(v["total"], 1);
        let b64 = base64::engine::general_purpose::STANDARD.encode(b"%PDF-signed");
        let (s, v) = call_json(
            &h,
            "records.store_file",
            json!({"record_id": "r-1", "file_name": "../x.pdf", "content_base64": b64}),
        );
        assert_eq!(s, 0);
        let p = PathBuf::from(v["path"].as_str().unwrap());
        assert!(p.starts_with(dir.path()));
        assert_eq!(std::fs::read(p).unwrap(), b"%PDF-signed");
    }

    #[test]
    fn override_and_progress_and_log() {
        let h = host();
        h.set_override(
            "params.get",
            Box::new(|_| Some(Err("banco fora do ar".into()))),
        );
        let (s, v) = call_json(&h, "params.get", json!({}));
        assert_ne!(s, 0);
        assert_eq!(v["message"], "banco fora do ar");
        let seen = std::rc::Rc::new(Cell::new(0u32));
        let seen2 = seen.clone();
        h.set_progress(ProgressSink::Observe(Box::new(move |ev| {
            seen2.set(ev.done);
            ev.done >= 3
        })));
        h.keep_progress_events();
        let t = h.table();
        h.begin_call();
        let detail = br#"{"contract_key":"k","outcome":"sent","message":"m"}"#;
        // SAFETY: live host, valid local buffers.
        let r1 = unsafe { (t.progress.unwrap())(t.ctx, 1, 5, detail.as_ptr(), detail.len()) };
        // SAFETY: as above.
        let r3 = unsafe { (t.progress.unwrap())(t.ctx, 3, 5, detail.as_ptr(), detail.len()) };
        // SAFETY: as above.
        unsafe { (t.log.unwrap())(t.ctx, 3, b"ola".as_ptr(), 3) };
        h.end_call();
        assert_eq!((r1, r3, seen.get()), (0, 1, 3));
        assert_eq!(h.progress_events()[0].detail["outcome"], "sent");
        assert_eq!(h.log_text(), "ola");
    }

    #[test]
    fn malformed_requests_never_panic() {
        let h = host();
        let methods = [
            "user.current",
            "user.has_permission",
            "params.get",
            "contracts.get",
            "contracts.find",
            "contracts.set_status",
            "file.read",
            "report.render",
            "ui.authenticate",
            "ui.ask_cpf",
            "records.get",
            "records.query",
            "records.put",
            "records.store_file",
            "leases.acquire",
            "leases.renew",
            "leases.release",
            "x",
        ];
        let inputs: [&[u8]; 12] = [
            b"",
            b"null",
            b"[]",
            b"{}",
            b"\xff\xfe",
            b"{\"keys\": 5}",
            b"{\"keys\": [1, null]}",
            b"{\"records\": [1]}",
            b"{\"records\": [{\"id\": \"\"}]}",
            b"{\"filter\": 3, \"offset\": -1, \"limit\": \"a\"}",
            b"{\"path\": \"/\"}",
            b"{\"key\": \"1;;\", \"status\": \"Assinado\"}",
        ];
        for m in methods {
            for input in inputs {
                let t = h.table();
                let mut out: *mut u8 = std::ptr::null_mut();
                let mut len = 0usize;
                h.begin_call();
                // SAFETY: live host, valid local buffers.
                let s = unsafe {
                    (t.call.unwrap())(
                        t.ctx,
                        m.as_ptr(),
                        m.len(),
                        input.as_ptr(),
                        input.len(),
                        &mut out,
                        &mut len,
                    )
                };
                assert!(
                    s == 0 || !out.is_null(),
                    "{m} {input:?}: failure without a message"
                );
                if !out.is_null() {
                    // SAFETY: freeing the host's own buffer.
                    unsafe { (t.free_buffer.unwrap())(t.ctx, out, len) };
                }
                h.end_call();
                assert_ne!(s, 3, "{m} {input:?}: the host panicked");
            }
        }
        assert_eq!(h.outstanding_buffers(), 0);
    }

    #[test]
    fn foreign_thread_is_refused() {
        let h = host();
        h.begin_call();
        let t = h.table();
        let ctx = t.ctx as usize;
        let call = t.call.unwrap();
        let status = std::thread::spawn(move || {
            let mut out: *mut u8 = std::ptr::null_mut();
            let mut len = 0usize;
            // SAFETY: the host outlives this joined thread; the host refuses the call before
            // touching any non-thread-safe state.
            unsafe {
                call(
                    ctx as *mut std::ffi::c_void,
                    b"params.get".as_ptr(),
                    10,
                    b"{}".as_ptr(),
                    2,
                    &mut out,
                    &mut len,
                )
            }
        })
        .join()
        .unwrap();
        h.end_call();
        assert_ne!(status, 0);
        assert_eq!(h.foreign_thread_calls(), 1);
    }
}
