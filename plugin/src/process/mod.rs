//! `execute`: one option over many contracts. Parses the request, checks the RM permission,
//! takes the contracts (claims), authenticates the session, resolves the contracts (menu
//! filter, contract view keys or integration record ids) and runs the option's per-contract
//! work concurrently on the calling thread's `block_on` (host callbacks never leave that
//! thread). `docs/ARCHITECTURE.md` walks through one call.

pub mod check;
pub mod claims;
pub mod delete;
pub mod download;
pub mod outcome;
pub mod reconcile;
pub mod request;
pub mod run;
pub mod send;
pub mod update_emails;

use crate::error::PluginError;
use crate::host::Host;
use crate::hostcalls::HostApi;
use crate::records::{Contract, Record, RecordStatus};
use crate::session::Session;
use crate::tae::{DocStatus, Document, ErrorKind, TaeClient, TaeError};
use futures_util::stream::{FuturesUnordered, StreamExt};
pub use outcome::{ContractError, Outcome, OutcomeKind, Response};
pub use request::ExecuteRequest;
use request::{InvokedFrom, OptionRequest};
pub use run::Run;
use serde_json::json;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::task::Poll;
use std::time::Instant;

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
    /// The (DataServer, key) the run's claim holds the contract by, when known.
    pub fn claim_id(&self) -> Option<claims::ContractId> {
        if let Some(c) = &self.contract {
            return Some((c.data_server().to_string(), c.key.clone()));
        }
        self.records
            .first()
            .map(|r| (r.data_server.clone(), r.record_key.clone()))
    }

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

/// The option with its parsed, validated parameters (before any screen or request).
enum Plan {
    Send(Box<send::SendPlan>),
    Delete,
    UpdateEmails(update_emails::UpdatePlan),
    Check,
    Download(u8),
    Reconcile(reconcile::ReconcilePlan),
}

/// A unique id for one run (shown to the runs it blocks, and the owner of its leases).
fn run_id() -> String {
    format!(
        "run-{}",
        (0..16)
            .map(|_| fastrand::alphanumeric().to_ascii_lowercase())
            .collect::<String>()
    )
}

/// Runs one parsed execute request (`api::execute` parses it before any host call).
pub fn execute(host: &dyn Host, req: ExecuteRequest) -> Result<Response, PluginError> {
    let started = Instant::now();
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
    let params =
        crate::config::parse(&api.params()?, false).map_err(crate::config::invalid_config)?;
    let plan = match &req.option {
        OptionRequest::Send(p) => Plan::Send(Box::new(send::SendPlan::new(api, &params, p)?)),
        OptionRequest::UpdateEmails(p) => Plan::UpdateEmails(update_emails::UpdatePlan::new(p)?),
        OptionRequest::Delete(_) => Plan::Delete,
        OptionRequest::Check(_) => Plan::Check,
        OptionRequest::Download(p) => Plan::Download(p.kind()?),
        OptionRequest::Reconcile(p) => Plan::Reconcile(reconcile::ReconcilePlan {
            fix: p.fix,
            window: p.window()?,
            scan_unknown: matches!(req.invoked_from, InvokedFrom::Menu { .. }),
        }),
    };
    let option = req.option.name();
    let user = api.user_current(&req.session)?;
    let state = crate::state::get()?;
    let http = state.http(params.request_timeout_secs, params.ca_file.as_deref())?;
    let client = TaeClient::new(http, &params.auth_url, &params.api_url);
    // The contracts and their records first: an empty selection never prompts. Taken before
    // their records are read, held until this function returns: no other run touches them.
    let mut claim = claims::Claim::new(
        claims::Owner {
            run_id: run_id(),
            session: req.session.clone(),
            user: user.who(),
            machine: machine_name(),
            option: option.to_string(),
        },
        std::time::Duration::from_secs(params.lease_ttl_secs),
    );
    let (items, held) = resolve_items(api, &req.invoked_from, &req.option, &mut claim)?;
    // Every request that changes TAE is written only while the run's leases hold.
    let client = client.with_gate(claim.gate());
    // Results come back in the selection's order, held contracts among the others.
    let order: HashMap<String, usize> = match &req.invoked_from {
        InvokedFrom::ContractView { contract_keys } => contract_keys
            .iter()
            .enumerate()
            .rev()
            .map(|(i, k)| (k.clone(), i))
            .collect(),
        _ => HashMap::new(),
    };
    log::info!(
        "execute {option} requested by {} over {} contract(s){}",
        user.who(),
        items.len() + held.len(),
        if held.is_empty() {
            String::new()
        } else {
            format!(", {} held by other runs", held.len())
        }
    );
    if items.is_empty() {
        claim.release(host);
        let results = held;
        return Ok(response(option, results, false, Vec::new(), started));
    }
    let needs = req.option.needs(params.recipient_auth());
    let session = req.session.clone();
    let fut = async move {
        let ready = async {
            let tae = Session::establish(
                api,
                state.clone(),
                params.clone(),
                client,
                &session,
                user.clone(),
            )
            .await?;
            // The permissions and the RM user's presence, read together.
            let notice = tae.check_ready(&needs).await?;
            Ok::<_, PluginError>((tae, notice))
        };
        let (tae, notice) = match ready.await {
            Ok(x) => x,
            Err(e) => {
                // Nothing was done: the contracts are free for another run at once.
                claim.release(host);
                return Err(e);
            }
        };
        // The screens may have taken long: renew before the first contract.
        let lost = claim.renew_if_due(host);
        let run = Run::new(api, params, tae, user, claim);
        if !lost.is_empty() {
            log::warn!("{} lease(s) lost during authentication", lost.len());
            run.stop(format!(
                "a reserva de {} contrato(s) expirou durante a autenticação e foi assumida por outra execução",
                lost.len()
            ));
        }
        run.notices.borrow_mut().extend(notice);
        // Each contract's future owns its item: the contract and its records are dropped as
        // soon as its outcome exists.
        let run = &run;
        let (mut results, cancelled) = match &plan {
            Plan::Send(p) => {
                run_batch(run, items, |it| async move { send::run(run, p, &it).await }).await
            }
            Plan::Delete => {
                run_batch(run, items, |it| async move { delete::run(run, &it).await }).await
            }
            Plan::UpdateEmails(p) => {
                run_batch(run, items, |it| async move {
                    update_emails::run(run, p, &it).await
                })
                .await
            }
            Plan::Check => {
                // The whole batch's documents are read in one call first.
                let items = items.read_all()?;
                let prefetched = check::prefetch(run, &items).await;
                let prefetched = &prefetched;
                run_batch(run, Queue::of_items(api, items), |it| async move {
                    check::run(run, prefetched, &it).await
                })
                .await
            }
            Plan::Download(kind) => {
                let kind = *kind;
                run_batch(run, items, |it| async move {
                    download::run(run, kind, &it).await
                })
                .await
            }
            Plan::Reconcile(p) => {
                let items = items.read_all()?;
                let prepared = reconcile::prepare(run, p, &items).await;
                let prepared = &prepared;
                let (results, cancelled) =
                    run_batch(run, Queue::of_items(api, items), |it| async move {
                        reconcile::run(run, p, prepared, &it).await
                    })
                    .await;
                // Each finding is a result of its own, after its contract's first one.
                let mut flat: Vec<Outcome> = Vec::with_capacity(results.len());
                for mut o in results {
                    let more = std::mem::take(&mut o.more);
                    flat.push(o);
                    flat.extend(more);
                }
                if !cancelled && run.stop_reason().is_none() {
                    flat.extend(reconcile::unknown_documents(run, prepared));
                }
                (flat, cancelled)
            }
        };
        run.claim.borrow_mut().release(api.host);
        results.extend(held);
        if !order.is_empty() {
            results.sort_by_key(|o| order.get(&o.contract_key).copied().unwrap_or(usize::MAX));
        }
        let notices = run.notices.borrow().clone();
        log::info!(
            "execute {option}: {} contract(s) in {} ms{}",
            results.len(),
            started.elapsed().as_millis(),
            if cancelled { " (cancelled)" } else { "" }
        );
        Ok::<_, PluginError>(response(option, results, cancelled, notices, started))
    };
    let state = crate::state::get()?;
    state.block_on(fut)?
}

/// This machine's name, for the message another run shows.
fn machine_name() -> String {
    std::env::var("COMPUTERNAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .ok()
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_default()
}

fn response(
    option: &'static str,
    results: Vec<Outcome>,
    cancelled: bool,
    notices: Vec<String>,
    started: Instant,
) -> Response {
    Response {
        ok: true,
        option,
        summary: outcome::Summary::of(&results, cancelled, started.elapsed().as_millis() as u64),
        results,
        notices,
    }
}

/// The outcome of a contract another run holds.
fn held_outcome(key: &str, contract: Option<&Contract>, holder: &claims::Holder) -> Outcome {
    let item = Item {
        key: key.to_string(),
        contract: contract.cloned(),
        records: Vec::new(),
        target_record: None,
    };
    let who = if holder.owner.user.is_empty() {
        "outro usuário".to_string()
    } else {
        format!("usuário {}", holder.owner.user)
    };
    let machine = if holder.owner.machine.is_empty() {
        String::new()
    } else {
        format!(", máquina {}", holder.owner.machine)
    };
    let since = chrono::DateTime::parse_from_rfc3339(&holder.since)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%d/%m/%Y %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| holder.since.clone());
    Outcome::labelled(
        &item,
        OutcomeKind::Held,
        format!(
            "em processamento por outra execução ({who}{machine}, desde {since}); nada foi feito neste contrato. Execute novamente mais tarde."
        ),
    )
}

type Resolved<'h> = (Queue<'h>, Vec<Outcome>);

/// Resolves the contracts (and their records) the option runs over; those another run holds
/// are answered at once as `held`.
fn resolve_items<'h>(
    api: HostApi<'h>,
    from: &InvokedFrom,
    option: &OptionRequest,
    claim: &mut claims::Claim,
) -> Result<Resolved<'h>, PluginError> {
    match from {
        InvokedFrom::Menu { filter } => {
            let filter = serde_json::to_value(filter.as_ref().unwrap_or(&Default::default()))
                .map_err(|e| PluginError::internal(e.to_string()))?;
            // Page by page: each page is taken (the claim) as it comes, and only its keys are
            // kept; each contract is read again with its chunk's records (`Queue`), so the
            // batch never holds every contract at once.
            let mut waiting = VecDeque::new();
            let mut held = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let (contracts, next) =
                    api.contracts_find_page(&filter, CONTRACTS_PAGE, cursor.as_deref())?;
                let (contracts, page_held) = take_contracts(api, contracts, claim)?;
                held.extend(page_held);
                waiting.extend(contracts.into_iter().map(|c| Waiting::Key(c.key)));
                match next {
                    Some(c) if Some(&c) != cursor.as_ref() => cursor = Some(c),
                    _ => break,
                }
            }
            let mut items = Queue {
                api,
                waiting,
                ready: VecDeque::new(),
            };
            items.read_first_chunk()?;
            Ok((items, held))
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
            let (mut items, mut held) = items_for_contracts(api, contracts, missing, claim)?;
            // Keep the order the user selected.
            let pos: HashMap<&String, usize> =
                keys.iter().enumerate().map(|(i, k)| (k, i)).collect();
            items.sort_by_key(|key| pos.get(key).copied().unwrap_or(usize::MAX));
            held.sort_by_key(|o| pos.get(&o.contract_key).copied().unwrap_or(usize::MAX));
            items.read_first_chunk()?;
            Ok((items, held))
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
            if matches!(option, OptionRequest::Send(_)) {
                let contracts: Vec<Contract> =
                    keys.iter().filter_map(|k| by_key.get(k).cloned()).collect();
                let missing = keys
                    .iter()
                    .filter(|k| !by_key.contains_key(*k))
                    .cloned()
                    .collect();
                let (mut items, held) = items_for_contracts(api, contracts, missing, claim)?;
                items.read_first_chunk()?;
                return Ok((items, held));
            }
            // Take the contracts, then read their records again: another run may have changed
            // them before this one took them.
            let held_map = claim.take(
                api.host,
                records
                    .iter()
                    .map(|r| (r.data_server.clone(), r.record_key.clone()))
                    .collect::<Vec<_>>(),
            )?;
            let is_held = |r: &Record| held_map.get(&(r.data_server.clone(), r.record_key.clone()));
            let (_, records) =
                api.records_query(&json!({"record_ids": record_ids}), 0, record_ids.len())?;
            let mut items = Vec::new();
            let mut held = Vec::new();
            for id in record_ids {
                match records.iter().find(|r| &r.id == id) {
                    Some(r) => match is_held(r) {
                        Some(h) => {
                            let mut o = held_outcome(&r.record_key, by_key.get(&r.record_key), h);
                            o.record_id = Some(r.id.clone());
                            o.document_id = r.document_id;
                            held.push(o)
                        }
                        None => items.push(Item {
                            key: r.record_key.clone(),
                            contract: by_key.get(&r.record_key).cloned(),
                            records: vec![r.clone()],
                            target_record: Some(r.id.clone()),
                        }),
                    },
                    None => items.push(Item {
                        key: id.clone(),
                        contract: None,
                        records: Vec::new(),
                        target_record: Some(id.clone()),
                    }),
                }
            }
            Ok((Queue::of_items(api, items), held))
        }
    }
}

/// Takes the contracts (the claim) and queues the ones this run holds; their records are read
/// a chunk at a time as the batch reaches them ([`Queue`]).
fn items_for_contracts<'h>(
    api: HostApi<'h>,
    contracts: Vec<Contract>,
    missing: Vec<String>,
    claim: &mut claims::Claim,
) -> Result<Resolved<'h>, PluginError> {
    let (contracts, held) = take_contracts(api, contracts, claim)?;
    let waiting = contracts
        .into_iter()
        .map(|c| Waiting::Contract(Box::new(c)))
        .chain(missing.into_iter().map(Waiting::Missing))
        .collect();
    Ok((
        Queue {
            api,
            waiting,
            ready: VecDeque::new(),
        },
        held,
    ))
}

/// Contracts `contracts.find` answers per page (the menu's selection).
const CONTRACTS_PAGE: usize = 500;

/// Takes the contracts (the claim): answers those this run holds, and the `held` outcomes of
/// the others.
fn take_contracts(
    api: HostApi<'_>,
    mut contracts: Vec<Contract>,
    claim: &mut claims::Claim,
) -> Result<(Vec<Contract>, Vec<Outcome>), PluginError> {
    // Taken before the records are read, so they cannot change under this run.
    let held_map = claim.take(
        api.host,
        contracts
            .iter()
            .map(|c| (c.data_server().to_string(), c.key.clone()))
            .collect::<Vec<_>>(),
    )?;
    let mut held = Vec::new();
    if !held_map.is_empty() {
        contracts.retain(
            |c| match held_map.get(&(c.data_server().to_string(), c.key.clone())) {
                Some(holder) => {
                    held.push(held_outcome(&c.key, Some(c), holder));
                    false
                }
                None => true,
            },
        );
    }
    Ok((contracts, held))
}

/// Contracts whose records one `records.get` reads (per DataServer) as the batch reaches them.
const RECORDS_CHUNK: usize = 256;

/// A contract of the batch not started yet. Boxed: the queue's own buffer (one slot per
/// contract, kept until the batch ends) stays a pointer wide, and each contract's memory is
/// freed when its item is done.
enum Waiting {
    /// Its records are not read yet.
    Contract(Box<Contract>),
    /// Taken, from the menu's selection: the contract itself is read again (`contracts.get`)
    /// with its chunk's records.
    Key(String),
    /// A key the host does not know.
    Missing(String),
    /// Ready to start (records read, or invoked from the attachment).
    Item(Box<Item>),
}

impl Waiting {
    fn key(&self) -> &String {
        match self {
            Waiting::Contract(c) => &c.key,
            Waiting::Missing(k) | Waiting::Key(k) => k,
            Waiting::Item(it) => &it.key,
        }
    }

    /// The item without reading its records (for a contract that will not be started).
    fn unread(self) -> Item {
        match self {
            Waiting::Contract(c) => Item {
                key: c.key.clone(),
                contract: Some(*c),
                records: Vec::new(),
                target_record: None,
            },
            Waiting::Missing(key) | Waiting::Key(key) => Item {
                key,
                contract: None,
                records: Vec::new(),
                target_record: None,
            },
            Waiting::Item(it) => *it,
        }
    }
}

/// The batch's contracts in order, not started yet. The claim holds all of them before any
/// record is read; the records are read a chunk at a time just before the chunk starts, so a
/// batch never holds the records of every contract at once (and a contract's own are dropped
/// with its item once its outcome exists).
pub struct Queue<'h> {
    api: HostApi<'h>,
    waiting: VecDeque<Waiting>,
    /// Items of the chunk read last (or whose records could not be read: the error).
    ready: VecDeque<Result<Item, (Item, String)>>,
}

impl<'h> Queue<'h> {
    /// Items whose records were already read (invoked from the attachment).
    fn of_items(api: HostApi<'h>, items: Vec<Item>) -> Queue<'h> {
        Queue {
            api,
            waiting: items
                .into_iter()
                .map(|it| Waiting::Item(Box::new(it)))
                .collect(),
            ready: VecDeque::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.waiting.len() + self.ready.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn sort_by_key(&mut self, mut position: impl FnMut(&String) -> usize) {
        self.waiting
            .make_contiguous()
            .sort_by_key(|w| position(w.key()));
    }

    /// Reads the records of the next chunk into `ready` (and the contracts of the keys in it).
    fn read_chunk(&mut self) -> Result<(), PluginError> {
        let n = self.waiting.len().min(RECORDS_CHUNK);
        let mut chunk: Vec<Waiting> = self.waiting.drain(..n).collect();
        let keys: Vec<String> = chunk
            .iter()
            .filter_map(|w| match w {
                Waiting::Key(k) => Some(k.clone()),
                _ => None,
            })
            .collect();
        if !keys.is_empty() {
            match self.api.contracts_get(&keys) {
                Ok((contracts, _missing)) => {
                    let mut by_key: HashMap<String, Contract> =
                        contracts.into_iter().map(|c| (c.key.clone(), c)).collect();
                    for w in &mut chunk {
                        if let Waiting::Key(k) = w {
                            // A contract gone from RM since the selection: "não encontrado".
                            *w = match by_key.remove(k.as_str()) {
                                Some(c) => Waiting::Contract(Box::new(c)),
                                None => Waiting::Missing(std::mem::take(k)),
                            };
                        }
                    }
                }
                Err(e) => {
                    for w in chunk.into_iter().rev() {
                        self.waiting.push_front(w);
                    }
                    return Err(e);
                }
            }
        }
        let mut by_ds: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for w in &chunk {
            if let Waiting::Contract(c) = w {
                by_ds
                    .entry(c.data_server())
                    .or_default()
                    .push(c.key.clone());
            }
        }
        let mut records_by_key: HashMap<(String, String), Vec<Record>> = HashMap::new();
        let mut failed = None;
        for (ds, keys) in &by_ds {
            match self.api.records_get(ds, keys) {
                Ok(records) => {
                    for r in records {
                        records_by_key
                            .entry((r.data_server.clone(), r.record_key.clone()))
                            .or_default()
                            .push(r);
                    }
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        drop(by_ds);
        if let Some(e) = failed {
            // Nothing is started without its records (a send could duplicate a document).
            for w in chunk.into_iter().rev() {
                self.waiting.push_front(w);
            }
            return Err(e);
        }
        for w in chunk {
            let item = match w {
                Waiting::Contract(c) => {
                    let mut records = records_by_key
                        .remove(&(c.data_server().to_string(), c.key.clone()))
                        .unwrap_or_default();
                    Record::sort_newest_first(&mut records);
                    Item {
                        key: c.key.clone(),
                        contract: Some(*c),
                        records,
                        target_record: None,
                    }
                }
                other => other.unread(),
            };
            self.ready.push_back(Ok(item));
        }
        Ok(())
    }

    /// Reads the first chunk before the batch starts: a host that cannot read records fails
    /// the call before any contract, as it always did.
    fn read_first_chunk(&mut self) -> Result<(), PluginError> {
        self.read_chunk()
    }

    /// Every item with its records, read now (options that look at the whole batch first:
    /// check, reconcile).
    pub fn read_all(mut self) -> Result<Vec<Item>, PluginError> {
        let mut items = Vec::with_capacity(self.len());
        loop {
            while let Some(next) = self.ready.pop_front() {
                match next {
                    Ok(it) => items.push(it),
                    Err((_, message)) => {
                        return Err(PluginError::host(message));
                    }
                }
            }
            if self.waiting.is_empty() {
                return Ok(items);
            }
            self.read_chunk()?;
        }
    }

    /// The next item to start; its records are read with its chunk's. A chunk whose records
    /// cannot be read answers each of its contracts with the error.
    fn next_item(&mut self) -> Option<Result<Item, (Item, String)>> {
        if self.ready.is_empty() && !self.waiting.is_empty() {
            if let Err(e) = self.read_chunk() {
                log::error!("records.get failed mid-batch: {}", e.detail);
                let n = self.waiting.len().min(RECORDS_CHUNK);
                let message = format!(
                    "não foi possível ler os registros de integração deste contrato no RM ({} — {}); nada foi feito neste contrato. Execute novamente.",
                    e.message.trim_end_matches('.'),
                    e.detail
                );
                for w in self.waiting.drain(..n) {
                    self.ready.push_back(Err((w.unread(), message.clone())));
                }
            }
        }
        self.ready.pop_front()
    }

    /// The items never started, in order, without reading their records.
    fn rest(self) -> impl Iterator<Item = Item> {
        self.ready
            .into_iter()
            .map(|r| match r {
                Ok(it) | Err((it, _)) => it,
            })
            .chain(self.waiting.into_iter().map(Waiting::unread))
    }
}

/// Renews the run's leases when due; stops the run when some were lost.
fn renew_leases(run: &Run<'_>) {
    let lost = run.claim.borrow_mut().renew_if_due(run.host.host);
    if !lost.is_empty() {
        log::warn!("{} lease(s) lost mid-run; stopping", lost.len());
        run.stop(format!(
            "a reserva de {} contrato(s) expirou e foi assumida por outra execução",
            lost.len()
        ));
    }
}

/// Runs `work` over the items, at most `max_concurrency` at a time, on the calling thread.
/// Reports progress after each contract; a cancel (or a stop set by the run or its session)
/// stops starting new contracts — in-flight ones finish — and the rest are `not_processed`.
/// Renews the run's leases at least every `renew_interval` while it works.
async fn run_batch<F, Fut>(run: &Run<'_>, mut queue: Queue<'_>, work: F) -> (Vec<Outcome>, bool)
where
    F: Fn(Item) -> Fut,
    Fut: Future<Output = Outcome>,
{
    use futures_util::future::{ready, Either};
    let total = queue.len();
    let limit = run.params.max_concurrency.max(1);
    let mut results: Vec<Option<Outcome>> = vec![None; total];
    let mut inflight = FuturesUnordered::new();
    let mut next = 0usize;
    let mut done = 0u32;
    let mut cancelled = false;
    // The answers already arrived were gathered before the next group commit.
    let mut gathered = false;
    let renew_every = run.claim.borrow().renew_interval();
    let mut renew =
        tokio::time::interval_at(tokio::time::Instant::now() + renew_every, renew_every);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    run.batching(true);
    loop {
        if !run.claim.borrow().writes_open() {
            // Past the leases' write deadline (the run was frozen or starved): renew now, and
            // stop if that does not bring them back, before any other contract starts.
            renew_leases(run);
            if !run.claim.borrow().writes_open() {
                run.stop(
                    "a reserva dos contratos desta execução venceu sem ser renovada; os contratos que faltam ficam para outra execução"
                        .to_string(),
                );
            }
        }
        while !cancelled && run.stop_reason().is_none() && inflight.len() < limit && next < total {
            let i = next;
            next += 1;
            // Each item moves into its future when it starts.
            let fut = match queue.next_item() {
                Some(Ok(item)) => Either::Left(work(item)),
                Some(Err((item, message))) => Either::Right(ready(Outcome::failed(&item, message))),
                None => break,
            };
            inflight.push(async move { (i, fut.await) });
        }
        // Drive the contracts until one finishes, or until all in flight wait and some wait
        // for their record writes (then write those in one group commit), or until the leases
        // are due for renewal.
        enum Step<T> {
            Finished(Option<T>),
            Flush,
            Renew,
        }
        let step = std::future::poll_fn(|cx| {
            if renew.poll_tick(cx).is_ready() {
                return Poll::Ready(Step::Renew);
            }
            match inflight.poll_next_unpin(cx) {
                Poll::Ready(done) => Poll::Ready(Step::Finished(done)),
                Poll::Pending if run.writes_waiting() => Poll::Ready(Step::Flush),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        let (i, outcome) = match step {
            Step::Flush if !gathered => {
                // Every contract waits and some wait for their writes. Before writing, let the
                // runtime read the answers that have already arrived (a yield lets it poll the
                // sockets): their contracts' writes join this group commit instead of waiting
                // for the next one, which would block the thread again.
                gathered = true;
                tokio::task::yield_now().await;
                continue;
            }
            Step::Flush => {
                gathered = false;
                run.flush_writes();
                continue;
            }
            Step::Renew => {
                renew_leases(run);
                continue;
            }
            Step::Finished(None) => break,
            Step::Finished(Some(x)) => x,
        };
        done += 1;
        run.observe(&outcome);
        let detail = json!({"contract_key": outcome.contract_key, "outcome": outcome.outcome, "message": outcome.message});
        if run
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
    run.flush_writes();
    run.batching(false);
    let stop = run.stop_reason();
    // Every contract that finished has its outcome; the ones never started are the tail.
    let mut waiting = queue.rest();
    let results = results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                let item = waiting.next().expect("an outcome or an item not started");
                let reason = match &stop {
                    Some(s) if !cancelled => format!("não processado: {}", s.trim_end_matches('.')),
                    _ => "não processado: execução cancelada pelo usuário".into(),
                };
                Outcome::labelled(&item, OutcomeKind::NotProcessed, format!("{reason}."))
            })
        })
        .collect();
    (results, cancelled)
}

/// Where a record's document is in TAE: its id, status, and the document when it was read.
pub struct Located {
    pub id: i64,
    pub status: DocStatus,
    pub document: Option<Document>,
}

/// Finds the record's document in TAE: by `document_id` (D3) or, for a record that crashed
/// before learning the id, among the documents the session's TAE user created (D4, compared on
/// this side): only one whose kept name carries the record's send identity and whose author is
/// that same TAE user is this record's — never one found by name alone (it may be another RM
/// environment's on the same TAE account, or a person's). Answers `None` when TAE has nothing.
pub async fn locate_document(run: &Run<'_>, rec: &Record) -> Result<Option<Located>, TaeError> {
    let tae = &run.tae;
    if let Some(id) = rec.document_id {
        return match tae
            .call(|t| async move { tae.client.document(&t, id).await })
            .await
        {
            Ok(doc) => Ok(Some(Located {
                id,
                status: doc.status,
                document: Some(doc),
            })),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        };
    }
    let (Some(send_id), Some(me)) = (rec.send_id.as_deref(), tae.tae_user()) else {
        // A record of an earlier version (no send identity): no TAE document can be proven its.
        log::warn!(
            "record {} has no send identity; no TAE document is adopted for it",
            rec.id
        );
        return Ok(None);
    };
    let found = run.own_documents(&me).await?;
    let mut candidates: Vec<(i64, DocStatus, String)> = found
        .iter()
        .filter(|d| d.kept_names().any(|n| rec.carries_send_id(n)))
        .filter(|d| {
            d.author_email()
                .is_some_and(|a| crate::validate::same_email(a, &me))
        })
        // A cancelled copy is never adopted.
        .filter(|d| d.status != DocStatus::Cancelled)
        .map(|d| (d.id, d.status, d.created().unwrap_or("").to_string()))
        .collect();
    log::debug!(
        "record {} (send {send_id}): {} of {} own TAE documents carry its identity",
        rec.id,
        candidates.len(),
        found.len()
    );
    // A published one wins (adopt it); else the newest draft.
    candidates.sort_by(|a, b| {
        let pa = a.1 != DocStatus::Draft;
        let pb = b.1 != DocStatus::Draft;
        pb.cmp(&pa).then(b.2.cmp(&a.2))
    });
    Ok(candidates.first().map(|(id, status, _)| Located {
        id: *id,
        status: *status,
        document: None,
    }))
}
