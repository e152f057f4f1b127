//! `execute`: one option over many contracts. Parses the request, checks the RM permission,
//! authenticates the session, resolves the contracts (menu filter, contract view keys or
//! integration record ids) and runs the option's per-contract work concurrently on the calling
//! thread's `block_on` (host callbacks never leave that thread).

pub mod check;
pub mod claims;
pub mod delete;
pub mod download;
pub mod send;
pub mod update_emails;

use crate::config::{self, Person};
use crate::error::PluginError;
use crate::host::Host;
use crate::hostcalls::HostApi;
use crate::records::{Contract, Record, RecordStatus};
use crate::session::{Auth, Need};
use crate::tae::{TaeClient, TaeError};
use futures_util::stream::{FuturesUnordered, StreamExt};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::task::Poll;
use std::time::Instant;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecuteRequest {
    session: String,
    invoked_from: InvokedFrom,
    option: OptionKind,
    #[serde(default)]
    params: Value,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum InvokedFrom {
    Menu {
        #[serde(default)]
        filter: Value,
    },
    ContractView {
        contract_keys: Vec<String>,
    },
    Attachment {
        record_ids: Vec<String>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptionKind {
    Send,
    Delete,
    UpdateEmails,
    Check,
    Download,
}

impl OptionKind {
    fn as_str(self) -> &'static str {
        match self {
            OptionKind::Send => "send",
            OptionKind::Delete => "delete",
            OptionKind::UpdateEmails => "update_emails",
            OptionKind::Check => "check",
            OptionKind::Download => "download",
        }
    }

    /// The TAE permissions the option needs. Registering recipients (create users) is only
    /// needed when they authenticate with a TAE login.
    fn needs(self, auth_type: config::RecipientAuthType) -> Vec<Need> {
        let mut needs = match self {
            OptionKind::Send | OptionKind::UpdateEmails => vec![Need::Send, Need::Query],
            OptionKind::Delete => vec![Need::Delete, Need::Query],
            OptionKind::Check | OptionKind::Download => vec![Need::Query],
        };
        if matches!(self, OptionKind::Send | OptionKind::UpdateEmails)
            && auth_type == config::RecipientAuthType::Login
        {
            needs.push(Need::CreateUsers);
        }
        needs
    }
}

/// One contract to process (or one integration record, when invoked from the attachment).
#[derive(Debug, Clone)]
pub struct Item {
    pub key: String,
    pub contract: Option<Contract>,
    /// Every record of the contract, newest first.
    pub records: Vec<Record>,
    /// Invoked from the attachment: the record to act on.
    pub target_record: Option<String>,
}

impl Item {
    pub fn label(&self) -> String {
        match &self.contract {
            Some(c) => c.label(),
            None => format!("Contrato {}", self.key),
        }
    }

    /// The record an option acts on: the one chosen in the attachment, else the newest that
    /// has (or may have) a document in TAE and is not cancelled or failed.
    pub fn working_record(&self) -> Option<&Record> {
        if let Some(id) = &self.target_record {
            return self.records.iter().find(|r| &r.id == id);
        }
        self.records
            .iter()
            .find(|r| !matches!(r.status, RecordStatus::Cancelado | RecordStatus::Falhou))
    }
}

/// One contract's result (`docs/abi.md`, execute response).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub contract_key: String,
    pub record_id: Option<String>,
    pub outcome: &'static str,
    pub document_id: Option<i64>,
    pub field: Option<String>,
    pub message: String,
}

impl Outcome {
    pub fn new(item: &Item, outcome: &'static str, message: impl Into<String>) -> Outcome {
        Outcome {
            contract_key: item.key.clone(),
            record_id: None,
            outcome,
            document_id: None,
            field: None,
            message: crate::redact::redact(&message.into()),
        }
    }

    pub fn failed(item: &Item, message: impl AsRef<str>) -> Outcome {
        Outcome::new(
            item,
            "failed",
            format!("{}: {}", item.label(), message.as_ref()),
        )
    }

    pub fn failed_field(item: &Item, field: &str, message: impl AsRef<str>) -> Outcome {
        let mut o = Outcome::new(
            item,
            "failed",
            format!(
                "{}: {} (campo {field}).",
                item.label(),
                message.as_ref().trim_end_matches('.')
            ),
        );
        o.field = Some(field.to_string());
        o
    }

    pub fn with_record(mut self, r: &Record) -> Outcome {
        self.record_id = Some(r.id.clone());
        self.document_id = r.document_id;
        self
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("contract_key".into(), json!(self.contract_key));
        m.insert("record_id".into(), json!(self.record_id));
        m.insert("outcome".into(), json!(self.outcome));
        m.insert("document_id".into(), json!(self.document_id));
        if let Some(f) = &self.field {
            m.insert("field".into(), json!(f));
        }
        m.insert("message".into(), json!(self.message));
        Value::Object(m)
    }
}

/// A failed TAE call as a per-contract result.
pub fn tae_failed(item: &Item, what: &str, e: &TaeError) -> Outcome {
    Outcome::failed(item, format!("{what}: {}.", e.user_text()))
}

/// Writes records through the host; a failure becomes the contract's error text.
fn put_now(auth: &Auth<'_>, records: &[&Record]) -> Result<(), String> {
    auth.host.records_put(records).map_err(|e| {
        log::error!("records.put failed: {}", e.detail);
        format!(
            "não foi possível gravar o registro de integração no RM ({})",
            e.message
        )
    })
}

type PutReply = tokio::sync::oneshot::Sender<Result<(), String>>;

/// Record writes of the contracts in flight, waiting for the batch's next group commit: when
/// every contract in flight is waiting (on TAE or on its write), `run_batch` writes all the
/// queued records in one `records.put` (one host transaction) and then lets each contract go
/// on. A write still completes before the contract's next remote call, as with one write each.
#[derive(Default)]
pub struct PutQueue {
    /// Set while `run_batch` drives the contracts (else `put` writes at once).
    active: std::cell::Cell<bool>,
    pending: std::cell::RefCell<Vec<(Vec<Record>, PutReply)>>,
}

impl PutQueue {
    fn is_empty(&self) -> bool {
        self.pending.borrow().is_empty()
    }

    /// Writes every queued record in one host call. If that fails, each contract's records are
    /// written on their own, so one bad record fails only its own contract.
    fn flush(&self, auth: &Auth<'_>) {
        let pending = std::mem::take(&mut *self.pending.borrow_mut());
        if pending.is_empty() {
            return;
        }
        let all: Vec<&Record> = pending.iter().flat_map(|(recs, _)| recs.iter()).collect();
        if pending.len() > 1 && auth.host.records_put(&all).is_ok() {
            for (_, reply) in pending {
                let _ = reply.send(Ok(()));
            }
            return;
        }
        for (recs, reply) in pending {
            let refs: Vec<&Record> = recs.iter().collect();
            let _ = reply.send(put_now(auth, &refs));
        }
    }
}

/// Writes records through the host (in the batch's next group commit when a batch is running);
/// answers once they are durable. A failure becomes the contract's error text.
pub async fn put(auth: &Auth<'_>, records: &[&Record]) -> Result<(), String> {
    let queue = &auth.put_queue;
    if !queue.active.get() {
        return put_now(auth, records);
    }
    let (reply, answer) = tokio::sync::oneshot::channel();
    queue
        .pending
        .borrow_mut()
        .push((records.iter().map(|r| (*r).clone()).collect(), reply));
    answer.await.unwrap_or_else(|_| {
        Err("não foi possível gravar o registro de integração no RM (gravação interrompida)".into())
    })
}

/// Parses a list of people from the option's parameters (`None` when omitted).
pub fn people_param(
    params: &Value,
    name: &str,
    cpf_required: bool,
) -> Result<Option<Vec<Person>>, PluginError> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => config::check_people(v, cpf_required)
            .map(Some)
            .map_err(|m| {
                PluginError::new(
                    crate::error::Status::InvalidRequest,
                    format!("Parâmetro \"{name}\" do processo inválido: {m}"),
                    format!("params.{name}: {m}"),
                )
            }),
    }
}

fn check_keys(params: &Value, allowed: &[&str]) -> Result<(), PluginError> {
    match params {
        Value::Null => Ok(()),
        Value::Object(m) => {
            for k in m.keys() {
                if !allowed.contains(&k.as_str()) {
                    return Err(PluginError::invalid_request(format!(
                        "unknown field params.{k}"
                    )));
                }
            }
            Ok(())
        }
        _ => Err(PluginError::invalid_request("params must be an object")),
    }
}

/// The menu filter: only the fields the host knows (`docs/abi.md`, `contracts.find`).
fn check_filter(filter: &Value) -> Result<(), PluginError> {
    const KEYS: &[&str] = &["codcoligada", "codfilial", "period", "course", "status"];
    match filter {
        Value::Null => Ok(()),
        Value::Object(m) => match m.keys().find(|k| !KEYS.contains(&k.as_str())) {
            Some(k) => Err(PluginError::invalid_request(format!(
                "unknown field invoked_from.filter.{k}"
            ))),
            None => Ok(()),
        },
        _ => Err(PluginError::invalid_request(
            "invoked_from.filter must be an object",
        )),
    }
}

fn download_kind(params: &Value) -> Result<u8, PluginError> {
    match params.get("kind") {
        None | Some(Value::Null) => Ok(2),
        Some(v) => match v.as_u64() {
            Some(k @ 1..=4) => Ok(k as u8),
            _ => Err(PluginError::invalid_request(
                "params.kind must be 1, 2, 3 or 4",
            )),
        },
    }
}

/// Checks the option's parameters as far as possible without the host: unknown fields, shapes,
/// people lists, the download kind.
fn precheck(option: OptionKind, params: &Value) -> Result<(), PluginError> {
    match option {
        OptionKind::Send => {
            check_keys(params, send::PARAM_KEYS)?;
            send::precheck(params)
        }
        OptionKind::UpdateEmails => {
            check_keys(params, update_emails::PARAM_KEYS)?;
            update_emails::UpdatePlan::new(params).map(|_| ())
        }
        OptionKind::Delete | OptionKind::Check => check_keys(params, &[]),
        OptionKind::Download => {
            check_keys(params, &["kind"])?;
            download_kind(params).map(|_| ())
        }
    }
}

/// The option with its parsed, validated parameters (before any screen or request).
enum Plan {
    Send(Box<send::SendPlan>),
    Delete,
    UpdateEmails(update_emails::UpdatePlan),
    Check,
    Download(u8),
}

pub fn execute(host: &dyn Host, request: Value) -> Result<Value, PluginError> {
    let started = Instant::now();
    let req: ExecuteRequest = serde_json::from_value(request)
        .map_err(|e| PluginError::invalid_request(format!("execute request: {e}")))?;
    if req.session.trim().is_empty() {
        return Err(PluginError::invalid_request(
            "execute request: empty session",
        ));
    }
    // The request's own shape is checked before any host call or screen.
    precheck(req.option, &req.params)?;
    if let InvokedFrom::Menu { filter } = &req.invoked_from {
        check_filter(filter)?;
    }
    let api = HostApi::new(host);
    if !api.has_permission(&req.session)? {
        return Err(PluginError::permission(
            format!(
                "Seu perfil no RM não concede o processo \"{}\". Peça ao administrador do sistema para liberá-lo.",
                crate::hostcalls::PROCESS_PERMISSION
            ),
            "user.has_permission answered granted=false",
        ));
    }
    let params = config::parse(&api.params()?, false).map_err(config::invalid_config)?;
    let plan = match req.option {
        OptionKind::Send => Plan::Send(Box::new(send::SendPlan::new(api, &params, &req.params)?)),
        OptionKind::UpdateEmails => {
            Plan::UpdateEmails(update_emails::UpdatePlan::new(&req.params)?)
        }
        OptionKind::Delete => Plan::Delete,
        OptionKind::Check => Plan::Check,
        OptionKind::Download => Plan::Download(download_kind(&req.params)?),
    };
    let user = api.user_current(&req.session)?;
    let state = crate::state::get()?;
    let http = state.http(params.request_timeout_secs, params.ca_file.as_deref())?;
    let client = TaeClient::new(http, &params.auth_url, &params.api_url);
    let option = req.option;
    let session = req.session.clone();
    // The contracts and their records first: an empty selection never prompts.
    // Held until this function returns: no other run in this process touches these contracts.
    let mut claim = claims::Claim::new(
        claims::Owner {
            run_id: format!(
                "run-{}",
                (0..16)
                    .map(|_| fastrand::alphanumeric().to_ascii_lowercase())
                    .collect::<String>()
            ),
            session: req.session.clone(),
            user: user.login.clone(),
            machine: String::new(),
            option: option.as_str().to_string(),
        },
        claims::DEFAULT_TTL,
    );
    let items = resolve_items(api, &req.invoked_from, option, &mut claim)?;
    log::info!(
        "execute {} requested by {} over {} contract(s)",
        option.as_str(),
        user.who(),
        items.len()
    );
    if items.is_empty() {
        return Ok(response(option, Vec::new(), false, Vec::new(), started));
    }
    let fut = async move {
        let auth = Auth::establish(api, state.clone(), params, client, &session, user).await?;
        auth.check_permissions(&option.needs(auth.params.recipient_auth_type))
            .await?;
        auth.ensure_rm_user().await?;
        let (results, cancelled) = match &plan {
            Plan::Send(p) => run_batch(&auth, &items, |it| send::run(&auth, p, it)).await,
            Plan::Delete => run_batch(&auth, &items, |it| delete::run(&auth, it)).await,
            Plan::UpdateEmails(p) => {
                run_batch(&auth, &items, |it| update_emails::run(&auth, p, it)).await
            }
            Plan::Check => {
                let prefetched = check::prefetch(&auth, &items).await;
                run_batch(&auth, &items, |it| check::run(&auth, &prefetched, it)).await
            }
            Plan::Download(kind) => {
                run_batch(&auth, &items, |it| download::run(&auth, *kind, it)).await
            }
        };
        let notices = auth.notices.borrow().clone();
        log::info!(
            "execute {}: {} contract(s) in {} ms{}",
            option.as_str(),
            results.len(),
            started.elapsed().as_millis(),
            if cancelled { " (cancelled)" } else { "" }
        );
        Ok::<_, PluginError>(response(option, results, cancelled, notices, started))
    };
    let state = crate::state::get()?;
    state.block_on(fut)?
}

fn response(
    option: OptionKind,
    results: Vec<Outcome>,
    cancelled: bool,
    notices: Vec<String>,
    started: Instant,
) -> Value {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for k in ["sent", "skipped", "failed", "not_processed"] {
        counts.insert(k, 0);
    }
    for r in &results {
        // `summary.cancelled` is the run's cancel flag; documents found cancelled are counted
        // under their own name.
        let key = match r.outcome {
            "cancelled" => "documents_cancelled",
            other => other,
        };
        *counts.entry(key).or_insert(0) += 1;
    }
    let mut summary = Map::new();
    summary.insert("total".into(), json!(results.len()));
    for (k, v) in counts {
        summary.insert(k.into(), json!(v));
    }
    summary.insert("cancelled".into(), json!(cancelled));
    summary.insert(
        "elapsed_ms".into(),
        json!(started.elapsed().as_millis() as u64),
    );
    let mut out = json!({
        "ok": true,
        "option": option.as_str(),
        "summary": summary,
        "results": results.iter().map(Outcome::to_json).collect::<Vec<_>>(),
    });
    if !notices.is_empty() {
        out["notices"] = json!(notices);
    }
    out
}

/// Resolves the contracts (and their records) the option runs over.
fn resolve_items(
    api: HostApi<'_>,
    from: &InvokedFrom,
    option: OptionKind,
    claim: &mut claims::Claim,
) -> Result<Vec<Item>, PluginError> {
    match from {
        InvokedFrom::Menu { filter } => {
            let filter = if filter.is_null() {
                json!({})
            } else {
                filter.clone()
            };
            let contracts = api.contracts_find(&filter)?;
            items_for_contracts(api, contracts, Vec::new(), claim)
        }
        InvokedFrom::ContractView { contract_keys } => {
            if contract_keys.is_empty() {
                return Err(PluginError::invalid_request(
                    "invoked_from.contract_keys is empty",
                ));
            }
            let mut keys = contract_keys.clone();
            let mut seen = std::collections::HashSet::new();
            keys.retain(|k| seen.insert(k.clone()));
            let (contracts, missing) = api.contracts_get(&keys)?;
            let mut items = items_for_contracts(api, contracts, missing, claim)?;
            // Keep the order the user selected.
            let pos: HashMap<&String, usize> =
                keys.iter().enumerate().map(|(i, k)| (k, i)).collect();
            items.sort_by_key(|it| pos.get(&it.key).copied().unwrap_or(usize::MAX));
            Ok(items)
        }
        InvokedFrom::Attachment { record_ids } => {
            if record_ids.is_empty() {
                return Err(PluginError::invalid_request(
                    "invoked_from.record_ids is empty",
                ));
            }
            let (_, records) =
                api.records_query(&json!({"record_ids": record_ids}), 0, record_ids.len())?;
            let mut keys: Vec<String> = records.iter().map(|r| r.record_key.clone()).collect();
            keys.sort();
            keys.dedup();
            let (contracts, _) = api.contracts_get(&keys)?;
            let by_key: HashMap<String, Contract> =
                contracts.into_iter().map(|c| (c.key.clone(), c)).collect();
            if option == OptionKind::Send {
                let contracts: Vec<Contract> =
                    keys.iter().filter_map(|k| by_key.get(k).cloned()).collect();
                let missing = keys
                    .iter()
                    .filter(|k| !by_key.contains_key(*k))
                    .cloned()
                    .collect();
                return items_for_contracts(api, contracts, missing, claim);
            }
            // Claim the contracts, then read their records again: another run may have
            // changed them while this one waited.
            take(
                api,
                claim,
                records
                    .iter()
                    .map(|r| (r.data_server.clone(), r.record_key.clone())),
            )?;
            let (_, records) =
                api.records_query(&json!({"record_ids": record_ids}), 0, record_ids.len())?;
            let mut items = Vec::new();
            for id in record_ids {
                match records.iter().find(|r| &r.id == id) {
                    Some(r) => items.push(Item {
                        key: r.record_key.clone(),
                        contract: by_key.get(&r.record_key).cloned(),
                        records: vec![r.clone()],
                        target_record: Some(r.id.clone()),
                    }),
                    None => items.push(Item {
                        key: id.clone(),
                        contract: None,
                        records: Vec::new(),
                        target_record: Some(id.clone()),
                    }),
                }
            }
            Ok(items)
        }
    }
}

/// Takes the contracts; those another run holds stop the call with BUSY for now.
/// (Being replaced by a per-contract "held by another run" outcome: issue 13.)
fn take(
    api: HostApi<'_>,
    claim: &mut claims::Claim,
    ids: impl IntoIterator<Item = claims::ContractId>,
) -> Result<(), PluginError> {
    let held = claim.take(api.host, ids)?;
    if held.is_empty() {
        return Ok(());
    }
    let blocked = held.len();
    Err(PluginError::new(
        crate::error::Status::Busy,
        format!(
            "Outra execução do processo ainda está trabalhando em {blocked} destes contratos. Execute novamente quando ela terminar."
        ),
        format!("{blocked} contract(s) held by another run"),
    ))
}

fn items_for_contracts(
    api: HostApi<'_>,
    contracts: Vec<Contract>,
    missing: Vec<String>,
    claim: &mut claims::Claim,
) -> Result<Vec<Item>, PluginError> {
    // Claimed before the records are read, so they cannot change under this run.
    take(
        api,
        claim,
        contracts
            .iter()
            .map(|c| (c.data_server().to_string(), c.key.clone())),
    )?;
    let mut by_ds: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in &contracts {
        by_ds
            .entry(c.data_server().to_string())
            .or_default()
            .push(c.key.clone());
    }
    let mut records_by_key: HashMap<(String, String), Vec<Record>> = HashMap::new();
    for (ds, keys) in &by_ds {
        for r in api.records_get(ds, keys)? {
            records_by_key
                .entry((r.data_server.clone(), r.record_key.clone()))
                .or_default()
                .push(r);
        }
    }
    let mut items: Vec<Item> = contracts
        .into_iter()
        .map(|c| {
            let mut records = records_by_key
                .remove(&(c.data_server().to_string(), c.key.clone()))
                .unwrap_or_default();
            Record::sort_newest_first(&mut records);
            Item {
                key: c.key.clone(),
                contract: Some(c),
                records,
                target_record: None,
            }
        })
        .collect();
    items.extend(missing.into_iter().map(|k| Item {
        key: k,
        contract: None,
        records: Vec::new(),
        target_record: None,
    }));
    Ok(items)
}

/// Runs `work` over the items, at most `max_concurrency` at a time, on the calling thread.
/// Reports progress after each contract; a cancel (or a stop set by the auth context) stops
/// starting new contracts — in-flight ones finish — and the rest are `not_processed`.
async fn run_batch<'a, F, Fut>(auth: &Auth<'_>, items: &'a [Item], work: F) -> (Vec<Outcome>, bool)
where
    F: Fn(&'a Item) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let total = items.len();
    let limit = auth.params.max_concurrency.max(1);
    let mut results: Vec<Option<Outcome>> = vec![None; total];
    let mut inflight = FuturesUnordered::new();
    let mut next = 0usize;
    let mut done = 0u32;
    let mut cancelled = false;
    auth.put_queue.active.set(true);
    loop {
        while !cancelled && auth.stop.borrow().is_none() && inflight.len() < limit && next < total {
            let i = next;
            next += 1;
            let fut = work(&items[i]);
            inflight.push(async move { (i, fut.await) });
        }
        // Drive the contracts until one finishes, or until all in flight wait and some wait
        // for their record writes: then write those in one group commit.
        let step = std::future::poll_fn(|cx| match inflight.poll_next_unpin(cx) {
            Poll::Ready(done) => Poll::Ready(Some(done)),
            Poll::Pending if !auth.put_queue.is_empty() => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        })
        .await;
        let Some(finished) = step else {
            auth.put_queue.flush(auth);
            continue;
        };
        let Some((i, outcome)) = finished else {
            break;
        };
        done += 1;
        let detail = json!({"contract_key": outcome.contract_key, "outcome": outcome.outcome, "message": outcome.message});
        if auth
            .host
            .host
            .progress(done, total as u32, &detail.to_string())
            && !cancelled
        {
            log::info!("cancel requested after {done} of {total} contracts");
            cancelled = true;
        }
        results[i] = Some(outcome);
    }
    auth.put_queue.flush(auth);
    auth.put_queue.active.set(false);
    let stop = auth.stop.borrow().clone();
    let results = results
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.unwrap_or_else(|| {
                let reason = match &stop {
                    Some(s) if !cancelled => format!("não processado: {}", s.trim_end_matches('.')),
                    _ => "não processado: execução cancelada pelo usuário".into(),
                };
                Outcome::new(
                    &items[i],
                    "not_processed",
                    format!("{}: {reason}.", items[i].label()),
                )
            })
        })
        .collect();
    (results, cancelled)
}

/// Finds the record's document in TAE: by `document_id` (D3) or, for a record that crashed
/// before learning the id, by name among the documents created after the record (D4).
/// Answers the document's id and status, or `None` when TAE has nothing.
pub async fn locate_document(
    auth: &Auth<'_>,
    rec: &Record,
) -> Result<Option<(i64, i64, Value)>, TaeError> {
    if let Some(id) = rec.document_id {
        return match auth
            .call(|t| async move { auth.client.document(&t, id).await })
            .await
        {
            Ok(doc) => Ok(Some((
                id,
                doc.get("status").and_then(Value::as_i64).unwrap_or(-1),
                doc,
            ))),
            Err(e) if e.kind == crate::tae::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        };
    }
    if rec.document_name.is_empty() {
        return Ok(None);
    }
    let name = rec.document_name.clone();
    let found = auth
        .call(|t| {
            let name = name.clone();
            async move { auth.client.search_by_name(&t, &name).await }
        })
        .await?;
    // Only documents created after the record (minus clock skew) can be ours.
    let since = chrono::DateTime::parse_from_rfc3339(&rec.created_at)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc) - chrono::Duration::minutes(10));
    let mut candidates: Vec<(i64, i64, String)> = found
        .iter()
        .filter_map(|d| {
            let id = d.get("id").and_then(Value::as_i64)?;
            let status = d.get("status").and_then(Value::as_i64).unwrap_or(-1);
            let created = d
                .get("recCreatedOn")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if let (Some(since), Some(c)) = (since, crate::tae::client::parse_tae_time(&created)) {
                if c < since {
                    return None;
                }
            }
            // A cancelled copy is never adopted.
            if status == crate::tae::api::STATUS_CANCELLED {
                return None;
            }
            Some((id, status, created))
        })
        .collect();
    // A published one wins (adopt it); else the newest draft.
    candidates.sort_by(|a, b| {
        let pa = a.1 != crate::tae::api::STATUS_DRAFT;
        let pb = b.1 != crate::tae::api::STATUS_DRAFT;
        pb.cmp(&pa).then(b.2.cmp(&a.2))
    });
    Ok(candidates
        .first()
        .map(|(id, status, _)| (*id, *status, Value::Null)))
}
