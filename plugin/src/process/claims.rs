//! Who may work on a contract: the contracts held by the runs of this process, and — when the
//! host supports them — leases in the host's database, shared by every RM application server
//! and the job server (`docs/abi.md`, "Leases").
//!
//! Two runs over the same contract (two secretaries, the menu and the contract view, or a
//! secretary and the scheduled job on another server) must not interleave: the second would act
//! on records read before the first one's send, delete or update finished, and could send a
//! contract twice. So a run takes all its contracts at once, before it reads their records,
//! and never waits: a contract another run holds is answered at once with its holder, reported
//! as its own outcome, and picked up by a rerun later.
//!
//! The interface the options use: `Claim::new`, `Claim::take`, `Claim::lease_token`,
//! `Claim::renew_if_due`, `Claim::renew_interval`, `Claim::release`, `probe_host`,
//! `machine_name` (for `Owner::machine`).
//!
//! A host with the lease methods is the one judge: `take` asks `leases.acquire` and answers the
//! contracts the host says another run holds (in this process or on another server) with their
//! holder; nothing is held in-process then — two RM databases served by one process (tests do
//! that) never block each other. A host answering `unknown method` is coordinated in-process
//! only (logged once per process); any other failure is HOST_ERROR naming the method.

use crate::error::PluginError;
use crate::host::{Host, HostCallError};
use crate::tae::gate::{write_margin, WriteGate};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// (DataServer, record key) of a contract.
pub type ContractId = (String, String);

/// Default time to live of a host lease (a global parameter may override it).
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

/// The host methods of leases (`docs/abi.md`, "Leases").
pub const ACQUIRE: &str = "leases.acquire";
pub const RENEW: &str = "leases.renew";
pub const RELEASE: &str = "leases.release";
pub const LEASE_METHODS: [&str; 3] = [ACQUIRE, RENEW, RELEASE];

/// The run that holds (or asks for) contracts: shown to the other runs it blocks.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Owner {
    pub run_id: String,
    pub session: String,
    pub user: String,
    pub machine: String,
    pub option: String,
}

/// Who holds a contract this run asked for, and since when (RFC 3339, UTC).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Holder {
    pub owner: Owner,
    pub since: String,
    /// `None` for a run of this same process (in-process claim).
    pub expires_at: Option<String>,
}

/// The name of this machine, for [`Owner::machine`]: the OS host name
/// (`/proc/sys/kernel/hostname`, else the `HOSTNAME` or `COMPUTERNAME` environment variable),
/// else "desconhecida".
pub fn machine_name() -> String {
    static NAME: LazyLock<String> = LazyLock::new(|| {
        let from_proc = std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
        let from_env = || {
            std::env::var("HOSTNAME")
                .ok()
                .or_else(|| std::env::var("COMPUTERNAME").ok())
        };
        from_proc
            .map(|name| name.trim().to_string())
            .filter(|name| !name.is_empty())
            .or_else(|| {
                from_env()
                    .map(|name| name.trim().to_string())
                    .filter(|name| !name.is_empty())
            })
            .unwrap_or_else(|| "desconhecida".to_string())
    });
    NAME.clone()
}

struct InProcess {
    owner: Owner,
    since: String,
}

/// The contracts held by the runs of this process, with their owner.
static HELD: LazyLock<Mutex<HashMap<ContractId, InProcess>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// A warning given once per process (the host lacks the lease methods). Counts how often the
/// condition was met, for the tests.
pub(crate) struct Notice {
    seen: AtomicU32,
}

impl Notice {
    pub(crate) const fn new() -> Notice {
        Notice {
            seen: AtomicU32::new(0),
        }
    }

    /// True the first time only.
    fn first(&self) -> bool {
        self.seen.fetch_add(1, Ordering::SeqCst) == 0
    }
}

static NO_HOST_LEASES: Notice = Notice::new();

/// A host that does not know a method answers `{"message": "unknown method"}` (`docs/abi.md`,
/// "Host methods"); a message that starts so (any case) is taken as that answer.
fn is_unknown_method(error: &HostCallError) -> bool {
    error
        .message
        .trim()
        .to_ascii_lowercase()
        .starts_with("unknown method")
}

/// The ids of a request as `[ContractRef]`, written from borrowed ids.
struct Refs<'a, T>(&'a [T]);

impl<T: std::borrow::Borrow<ContractId>> Serialize for Refs<'_, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Ref<'a> {
            data_server: &'a str,
            key: &'a str,
        }
        s.collect_seq(self.0.iter().map(|id| {
            let (data_server, key) = id.borrow();
            Ref { data_server, key }
        }))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
struct ContractRef {
    data_server: String,
    key: String,
}

impl ContractRef {
    fn id(self) -> ContractId {
        (self.data_server, self.key)
    }
}

#[derive(Deserialize)]
struct HeldByOther {
    data_server: String,
    key: String,
    holder: Owner,
    since: String,
    expires_at: String,
}

#[derive(Deserialize)]
struct AcquireAnswer {
    token: String,
    granted: Vec<ContractRef>,
    held: Vec<HeldByOther>,
}

#[derive(Deserialize)]
struct RenewAnswer {
    renewed: Vec<ContractRef>,
    lost: Vec<ContractRef>,
}

fn parse<T: serde::de::DeserializeOwned>(method: &str, bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("host method {method}: invalid answer: {e}"))
}

fn ttl_secs(ttl: Duration) -> u64 {
    ttl.as_secs().max(1)
}

/// The contracts one run holds. In-process claims are released when dropped (also while
/// unwinding from a panic); host leases by [`Claim::release`] (or they expire).
pub struct Claim {
    owner: Owner,
    ttl: Duration,
    ids: HashSet<ContractId>,
    /// The host's lease token, once the host granted leases.
    token: Option<String>,
    /// Contracts leased in the host's database.
    leased: HashSet<ContractId>,
    last_renew: Instant,
    /// A failed renewal was logged (once per run).
    renew_failure_logged: bool,
    notice: &'static Notice,
    /// Whether the host has the lease methods (`None` until the first `take` asks).
    host_leases: Option<bool>,
    /// Open until the host leases' deadline (moved at each grant and renewal): the run's TAE
    /// client writes no request that changes TAE once it passed (see `tae::gate`).
    gate: WriteGate,
}

impl Claim {
    /// A run's claim. An empty `owner.machine` is filled with [`machine_name`] (the holder's
    /// machine is what another server's user is shown).
    pub fn new(mut owner: Owner, ttl: Duration) -> Claim {
        if owner.machine.trim().is_empty() {
            owner.machine = machine_name();
        }
        Claim {
            owner,
            ttl,
            ids: HashSet::new(),
            token: None,
            leased: HashSet::new(),
            last_renew: Instant::now(),
            renew_failure_logged: false,
            notice: &NO_HOST_LEASES,
            host_leases: None,
            gate: WriteGate::open(),
        }
    }

    /// The run's write gate, for its TAE client: open while the run holds no host lease (or
    /// holds its contracts in this process only), then until the leases' deadline.
    pub fn gate(&self) -> WriteGate {
        self.gate.clone()
    }

    /// Whether the write gate is open now.
    pub fn writes_open(&self) -> bool {
        self.gate.is_open()
    }

    /// The last moment a write may leave under leases granted or renewed at `asked_at` (the
    /// moment before the host was asked: the host's expiry is later).
    fn write_deadline(&self, asked_at: Instant) -> Instant {
        asked_at + self.ttl.saturating_sub(write_margin(self.ttl))
    }

    pub fn owner(&self) -> &Owner {
        &self.owner
    }

    /// Takes every contract of `ids` nobody else holds and answers the others with their
    /// holder. Never waits. A host with the lease methods is the one judge (its database is
    /// shared by every application server, and by every run of this process); a host without
    /// them (`unknown method`, logged once per process) gets in-process claims only. Any other
    /// failure of `leases.acquire`: HOST_ERROR naming it.
    pub fn take(
        &mut self,
        host: &dyn Host,
        ids: impl IntoIterator<Item = ContractId>,
    ) -> Result<BTreeMap<ContractId, Holder>, PluginError> {
        let mut wanted: Vec<ContractId> = ids
            .into_iter()
            .filter(|id| !self.ids.contains(id) && !self.leased.contains(id))
            .collect();
        // First of each id kept, in the order given (no second copy of the ids for the check).
        let first: Vec<bool> = {
            let mut seen = HashSet::with_capacity(wanted.len());
            wanted.iter().map(|id| seen.insert(id)).collect()
        };
        let mut first = first.into_iter();
        wanted.retain(|_| first.next().unwrap_or(false));
        if wanted.is_empty() {
            return Ok(BTreeMap::new());
        }
        if self.host_leases != Some(false) {
            match self.acquire(host, &wanted)? {
                Some(in_host) => {
                    self.host_leases = Some(true);
                    return Ok(in_host.into_iter().collect());
                }
                None => self.host_leases = Some(false),
            }
        }
        Ok(self.take_in_process(wanted))
    }

    /// In-process claims, for a host without leases.
    fn take_in_process(&mut self, wanted: Vec<ContractId>) -> BTreeMap<ContractId, Holder> {
        let mut held_by_others = BTreeMap::new();
        let mut held = HELD.lock();
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        for id in wanted {
            match held.get(&id) {
                Some(other) => {
                    held_by_others.insert(
                        id,
                        Holder {
                            owner: other.owner.clone(),
                            since: other.since.clone(),
                            expires_at: None,
                        },
                    );
                }
                None => {
                    held.insert(
                        id.clone(),
                        InProcess {
                            owner: self.owner.clone(),
                            since: now.clone(),
                        },
                    );
                    self.ids.insert(id);
                }
            }
        }
        held_by_others
    }

    /// `leases.acquire` for `ids`: records the granted ones and answers the ones another run
    /// holds in the host's database; `None` when the host has no lease methods.
    fn acquire(
        &mut self,
        host: &dyn Host,
        ids: &[ContractId],
    ) -> Result<Option<Vec<(ContractId, Holder)>>, PluginError> {
        // Written straight to bytes: one request names every contract of the batch.
        #[derive(Serialize)]
        struct Request<'a> {
            owner: &'a Owner,
            ttl_secs: u64,
            contracts: Refs<'a, ContractId>,
        }
        let request = serde_json::to_vec(&Request {
            owner: &self.owner,
            ttl_secs: ttl_secs(self.ttl),
            contracts: Refs(ids),
        })
        .map_err(|e| PluginError::internal(format!("{ACQUIRE} request: {e}")))?;
        let asked_at = Instant::now();
        let bytes = match host.call(ACQUIRE, &request) {
            Ok(bytes) => bytes,
            Err(error) if is_unknown_method(&error) => {
                if self.notice.first() {
                    log::warn!(
                        "O sistema hospedeiro (RM) não oferece reservas de contratos no banco de \
                         dados: as execuções deste processo não se sobrepõem, mas outro servidor \
                         de aplicação pode trabalhar nos mesmos contratos ao mesmo tempo. \
                         (host answered \"{}\" to {ACQUIRE}; in-process claims only; see \
                         docs/abi.md, \"Leases\")",
                        error.message
                    );
                }
                return Ok(None);
            }
            Err(error) => return Err(PluginError::host(error.to_string())),
        };
        let answer: AcquireAnswer = parse(ACQUIRE, &bytes).map_err(PluginError::host)?;
        if let Some(token) = &self.token {
            if *token != answer.token {
                let detail = format!(
                    "host method {ACQUIRE} answered token {:?}; this run's token is {token:?}",
                    answer.token
                );
                self.abandon(host, &answer.token);
                return Err(PluginError::host(detail));
            }
        }
        // The checks borrow the ids (asked) and the answer (granted, held): no copy of either.
        let asked: HashSet<(&str, &str)> = ids
            .iter()
            .map(|(ds, key)| (ds.as_str(), key.as_str()))
            .collect();
        let granted: HashSet<(&str, &str)> = answer
            .granted
            .iter()
            .map(|r| (r.data_server.as_str(), r.key.as_str()))
            .collect();
        let mut held_asked: HashSet<(&str, &str)> = HashSet::new();
        for other in &answer.held {
            let reference = (other.data_server.as_str(), other.key.as_str());
            if granted.contains(&reference) {
                let detail = format!(
                    "host method {ACQUIRE} answered contract {}/{} both granted and held",
                    reference.0, reference.1
                );
                self.abandon(host, &answer.token);
                return Err(PluginError::host(detail));
            }
            if asked.contains(&reference) {
                held_asked.insert(reference);
            }
        }
        if let Some(missing) = ids
            .iter()
            .map(|(ds, key)| (ds.as_str(), key.as_str()))
            .find(|r| !granted.contains(r) && !held_asked.contains(r))
        {
            let detail = format!(
                "host method {ACQUIRE} answered contract {}/{} neither granted nor held",
                missing.0, missing.1
            );
            self.abandon(host, &answer.token);
            return Err(PluginError::host(detail));
        }
        drop(held_asked);
        drop(granted);
        let mut in_host = Vec::new();
        let mut seen_held: HashSet<ContractId> = HashSet::new();
        for other in answer.held {
            let reference = (other.data_server, other.key);
            if asked.contains(&(reference.0.as_str(), reference.1.as_str()))
                && seen_held.insert(reference.clone())
            {
                in_host.push((
                    reference,
                    Holder {
                        owner: other.holder,
                        since: other.since,
                        expires_at: Some(other.expires_at),
                    },
                ));
            }
        }
        let mut granted_asked: Vec<ContractId> = answer
            .granted
            .into_iter()
            .filter(|r| asked.contains(&(r.data_server.as_str(), r.key.as_str())))
            .map(ContractRef::id)
            .collect();
        drop(asked);
        granted_asked.sort();
        granted_asked.dedup();
        if !granted_asked.is_empty() {
            if self.leased.is_empty() {
                self.last_renew = Instant::now();
                self.gate.hold_until(self.write_deadline(asked_at));
            } else {
                // The leases held already expire first (they are renewed together).
                self.gate.hold_at_most_until(self.write_deadline(asked_at));
            }
            self.token = Some(answer.token);
            self.leased.extend(granted_asked);
        }
        Ok(Some(in_host))
    }

    /// Best effort, for an answer this run cannot use (the run stops with a host error): gives
    /// back every lease of `token` (also ones a faulty answer did not list).
    fn abandon(&mut self, host: &dyn Host, token: &str) {
        if self.token.as_deref() == Some(token) {
            self.token = None;
            self.leased.clear();
            self.gate.close();
        }
        let request = json!({ "token": token });
        if let Err(error) = host.call(RELEASE, request.to_string().as_bytes()) {
            log::warn!(
                "Não foi possível liberar as reservas de contratos no RM; elas expiram sozinhas. \
                 ({error})"
            );
        }
    }

    fn give_back_in_process(&mut self, ids: &[ContractId]) {
        let mut held = HELD.lock();
        for id in ids {
            if self.ids.remove(id) {
                held.remove(id);
            }
        }
    }

    /// The token to send with `records.put` once the host granted this run leases — also after
    /// every one of them was lost: a write of a run presumed dead must reach the host fenced
    /// (and be refused), never unfenced.
    pub fn lease_token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Whether this run may still act on `id`: called before each remote call that changes
    /// TAE. With host leases it renews first when a third of the time to live has passed (a run
    /// frozen or slowed past its ttl learns that it lost the lease before it acts, not after),
    /// then answers whether the lease is still this run's. In-process claims are held until the
    /// run ends.
    pub fn still_holds(&mut self, host: &dyn Host, id: &ContractId) -> bool {
        if self.host_leases != Some(true) {
            return true;
        }
        self.renew_if_due(host);
        self.leased.contains(id)
    }

    /// How often the run must call [`Claim::renew_if_due`] at the least.
    pub fn renew_interval(&self) -> Duration {
        self.ttl / 3
    }

    /// Renews the host leases when a third of their time to live has passed; answers the
    /// contracts whose lease was lost (taken by another run after expiring, or released), which
    /// this run must no longer act on. A failed renewal is logged (once per run) and retried at
    /// the next call; once the whole time to live passed without a renewal, every lease is
    /// answered lost (it may have expired and been taken).
    pub fn renew_if_due(&mut self, host: &dyn Host) -> Vec<ContractId> {
        self.renew_if_due_at(host, Instant::now())
    }

    /// [`Claim::renew_if_due`] with the plugin's clock given (tests).
    pub(crate) fn renew_if_due_at(&mut self, host: &dyn Host, now: Instant) -> Vec<ContractId> {
        let Some(token) = self.token.clone() else {
            return Vec::new();
        };
        let since_renew = now.saturating_duration_since(self.last_renew);
        if self.leased.is_empty() || since_renew < self.renew_interval() {
            return Vec::new();
        }
        let mut contracts: Vec<&ContractId> = self.leased.iter().collect();
        contracts.sort();
        #[derive(Serialize)]
        struct Request<'a> {
            token: &'a str,
            ttl_secs: u64,
            contracts: Refs<'a, &'a ContractId>,
        }
        let request = serde_json::to_vec(&Request {
            token: &token,
            ttl_secs: ttl_secs(self.ttl),
            contracts: Refs(&contracts),
        })
        .map_err(|e| e.to_string());
        drop(contracts);
        let answer = request
            .and_then(|request| host.call(RENEW, &request).map_err(|e| e.to_string()))
            .and_then(|bytes| parse::<RenewAnswer>(RENEW, &bytes));
        let lost: Vec<ContractId> = match answer {
            Ok(answer) => {
                self.last_renew = now;
                let renewed: HashSet<ContractId> =
                    answer.renewed.into_iter().map(ContractRef::id).collect();
                let mut lost: BTreeSet<ContractId> =
                    answer.lost.into_iter().map(ContractRef::id).collect();
                // Not answered renewed = not held: lost, whatever else the host said.
                lost.extend(
                    self.leased
                        .iter()
                        .filter(|id| !renewed.contains(*id))
                        .cloned(),
                );
                lost.retain(|id| self.leased.contains(id));
                if self.leased.len() > lost.len() {
                    // Some are still this run's: writes may leave until the new deadline.
                    self.gate.hold_until(self.write_deadline(now));
                }
                lost.into_iter().collect()
            }
            Err(detail) => {
                if !self.renew_failure_logged {
                    self.renew_failure_logged = true;
                    log::warn!(
                        "Não foi possível renovar no RM as reservas dos contratos desta \
                         execução; nova tentativa em seguida. ({detail})"
                    );
                }
                if since_renew < self.ttl {
                    return Vec::new();
                }
                let mut all: Vec<ContractId> = self.leased.iter().cloned().collect();
                all.sort();
                all
            }
        };
        for id in &lost {
            self.leased.remove(id);
        }
        if !lost.is_empty() {
            // What was handed over may be for a lost contract: refused at its write.
            if self.leased.is_empty() {
                self.gate.close();
            } else {
                self.gate.revoke();
            }
        }
        self.give_back_in_process(&lost);
        if !lost.is_empty() {
            log::warn!(
                "{} contrato(s) desta execução passaram a outra execução (reserva expirada): \
                 não serão mais alterados por esta. (lost leases: {:?})",
                lost.len(),
                lost
            );
        }
        lost
    }

    /// Releases the host leases (in-process claims are released on drop). Best effort: a
    /// failure is logged and the leases expire after their time to live. A run dropped without
    /// calling it has its leases released by [`release_leftovers`] at the end of the export.
    pub fn release(&mut self, host: &dyn Host) {
        let Some(token) = self.token.take() else {
            return;
        };
        self.leased.clear();
        self.gate.close();
        let request = json!({ "token": token });
        match host.call(RELEASE, request.to_string().as_bytes()) {
            Ok(_) => {}
            Err(error) if is_unknown_method(&error) => {
                log::debug!("{RELEASE}: the host does not know it; the leases expire ({error})")
            }
            Err(error) => log::warn!(
                "Não foi possível liberar no RM as reservas dos contratos desta execução; elas \
                 expiram sozinhas em até {} s. ({error})",
                ttl_secs(self.ttl)
            ),
        }
    }
}

/// Host leases of runs that ended without [`Claim::release`] (an early return, an error, a
/// panic), with the thread the run was on: the export that ran them releases them before it
/// returns ([`release_leftovers`], called by `ffi`), so a finished run never blocks the next one
/// until its leases expire. (After a panic, the next export on that thread releases them, or
/// they expire.)
static UNRELEASED: Mutex<Vec<(std::thread::ThreadId, String)>> = Mutex::new(Vec::new());

/// Releases the host leases of the runs that ended on this thread without [`Claim::release`]
/// (best effort, logged). Called at the end of every JSON export, on the calling thread.
pub fn release_leftovers(host: &dyn Host) {
    let here = std::thread::current().id();
    let tokens: Vec<String> = {
        let mut unreleased = UNRELEASED.lock();
        if unreleased.is_empty() {
            return;
        }
        let (mine, others): (Vec<_>, Vec<_>) = unreleased
            .drain(..)
            .partition(|(thread, _)| *thread == here);
        *unreleased = others;
        mine.into_iter().map(|(_, token)| token).collect()
    };
    for token in tokens {
        let request = json!({ "token": token });
        match host.call(RELEASE, request.to_string().as_bytes()) {
            Ok(_) => log::debug!("{RELEASE}: released the leases of {token} at the end of its run"),
            Err(error) => log::warn!(
                "Não foi possível liberar no RM as reservas dos contratos de uma execução \
                 encerrada; elas expiram sozinhas. ({error})"
            ),
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(token) = self.token.take() {
            if !self.leased.is_empty() {
                UNRELEASED.lock().push((std::thread::current().id(), token));
            }
        }
        if self.ids.is_empty() {
            return;
        }
        let mut held = HELD.lock();
        for id in &self.ids {
            held.remove(id);
        }
    }
}

/// The lease methods the host lacks (empty when it supports them all): for `configure test`.
/// Changes nothing in the host: each method is called with an empty `contracts` list and a
/// fresh token nobody holds anything with, which a host answers with success and no effect
/// (`docs/abi.md`, "Leases", "Probe"); `unknown method` marks the method missing. Another
/// failure is logged and does not count as missing.
pub fn probe_host(host: &dyn Host) -> Vec<&'static str> {
    let token = format!(
        "probe-{}",
        (0..16)
            .map(|_| fastrand::alphanumeric().to_ascii_lowercase())
            .collect::<String>()
    );
    let owner = Owner {
        run_id: token.clone(),
        session: String::new(),
        user: String::new(),
        machine: machine_name(),
        option: "probe".into(),
    };
    let probes = [
        (
            ACQUIRE,
            json!({"owner": owner, "ttl_secs": 1, "contracts": []}),
        ),
        (
            RENEW,
            json!({"token": token, "ttl_secs": 1, "contracts": []}),
        ),
        (RELEASE, json!({"token": token, "contracts": []})),
    ];
    let mut missing = Vec::new();
    for (method, request) in probes {
        match host.call(method, request.to_string().as_bytes()) {
            Ok(_) => {}
            Err(error) if is_unknown_method(&error) => missing.push(method),
            Err(error) => log::warn!(
                "O RM respondeu com erro à verificação de {method} (reservas de contratos). \
                 ({error})"
            ),
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::LogLevel;
    use crate::logging;
    use chrono::{DateTime, Utc};
    use serde_json::Value;
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;

    struct NoLeases;
    impl Host for NoLeases {
        fn call(&self, method: &str, _r: &[u8]) -> Result<Vec<u8>, crate::host::HostCallError> {
            Err(crate::host::HostCallError {
                method: method.into(),
                status: 1,
                message: "unknown method".into(),
            })
        }
        fn log(&self, _l: crate::host::LogLevel, _m: &str) {}
        fn progress(&self, _d: u32, _t: u32, _j: &str) -> bool {
            false
        }
    }

    struct Lease {
        token: String,
        owner: Owner,
        since: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    }

    /// The host's half of docs/abi.md, "Leases", in memory: one database shared by "several
    /// processes", with its own clock that the test moves.
    struct LeaseHost {
        clock: Cell<DateTime<Utc>>,
        leases: RefCell<BTreeMap<ContractId, Lease>>,
        calls: RefCell<Vec<(String, Value)>>,
        /// Methods this host does not know (answered `unknown method`).
        unknown: Vec<&'static str>,
        /// A method that fails with (status, message).
        failing: RefCell<Option<(&'static str, i32, &'static str)>>,
    }

    fn rfc3339(t: DateTime<Utc>) -> String {
        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    impl LeaseHost {
        fn new() -> LeaseHost {
            LeaseHost {
                clock: Cell::new(
                    DateTime::parse_from_rfc3339("2026-12-02T10:00:00Z")
                        .unwrap()
                        .with_timezone(&Utc),
                ),
                leases: RefCell::new(BTreeMap::new()),
                calls: RefCell::new(Vec::new()),
                unknown: Vec::new(),
                failing: RefCell::new(None),
            }
        }

        fn advance(&self, secs: i64) {
            self.clock
                .set(self.clock.get() + chrono::Duration::seconds(secs));
        }

        fn calls_of(&self, method: &str) -> Vec<Value> {
            self.calls
                .borrow()
                .iter()
                .filter(|(m, _)| m == method)
                .map(|(_, r)| r.clone())
                .collect()
        }

        /// `leases.acquire` in one "transaction" (also called directly by the test as another
        /// process would).
        fn acquire(&self, owner: &Owner, ttl: i64, ids: &[ContractId]) -> Value {
            let now = self.clock.get();
            let mut leases = self.leases.borrow_mut();
            let (mut granted, mut held) = (Vec::new(), Vec::new());
            for id in ids {
                let live = leases
                    .get(id)
                    .filter(|l| l.expires_at > now && l.owner.run_id != owner.run_id);
                match live {
                    Some(l) => held.push(json!({"data_server": id.0, "key": id.1,
                        "holder": l.owner, "since": rfc3339(l.since), "expires_at": rfc3339(l.expires_at)})),
                    None => {
                        let since = leases
                            .get(id)
                            .filter(|l| l.owner.run_id == owner.run_id && l.expires_at > now)
                            .map_or(now, |l| l.since);
                        leases.insert(
                            id.clone(),
                            Lease {
                                token: owner.run_id.clone(),
                                owner: owner.clone(),
                                since,
                                expires_at: now + chrono::Duration::seconds(ttl),
                            },
                        );
                        granted.push(json!({"data_server": id.0, "key": id.1}));
                    }
                }
            }
            json!({"token": owner.run_id, "granted": granted, "held": held})
        }

        fn refs(request: &Value) -> Vec<ContractId> {
            request["contracts"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|c| {
                            (
                                c["data_server"].as_str().unwrap().to_string(),
                                c["key"].as_str().unwrap().to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default()
        }

        fn holds(&self, id: &ContractId, token: &str) -> bool {
            self.leases
                .borrow()
                .get(id)
                .is_some_and(|l| l.token == token && l.expires_at > self.clock.get())
        }
    }

    impl Host for LeaseHost {
        fn call(&self, method: &str, r: &[u8]) -> Result<Vec<u8>, HostCallError> {
            let request: Value = serde_json::from_slice(r).unwrap();
            self.calls
                .borrow_mut()
                .push((method.to_string(), request.clone()));
            let fail = |status: i32, message: &str| HostCallError {
                method: method.into(),
                status,
                message: message.into(),
            };
            if self.unknown.contains(&method) {
                return Err(fail(1, "unknown method"));
            }
            if let Some((m, status, message)) = *self.failing.borrow() {
                if m == method {
                    return Err(fail(status, message));
                }
            }
            let now = self.clock.get();
            let answer = match method {
                ACQUIRE => {
                    let owner: Owner = serde_json::from_value(request["owner"].clone()).unwrap();
                    let ttl = request["ttl_secs"].as_i64().unwrap();
                    self.acquire(&owner, ttl, &Self::refs(&request))
                }
                RENEW => {
                    let token = request["token"].as_str().unwrap();
                    let ttl = request["ttl_secs"].as_i64().unwrap();
                    let (mut renewed, mut lost) = (Vec::new(), Vec::new());
                    for id in Self::refs(&request) {
                        let reference = json!({"data_server": id.0, "key": id.1});
                        if self.holds(&id, token) {
                            self.leases.borrow_mut().get_mut(&id).unwrap().expires_at =
                                now + chrono::Duration::seconds(ttl);
                            renewed.push(reference);
                        } else {
                            lost.push(reference);
                        }
                    }
                    json!({"renewed": renewed, "lost": lost})
                }
                RELEASE => {
                    let token = request["token"].as_str().unwrap().to_string();
                    let only = request.get("contracts").map(|_| Self::refs(&request));
                    self.leases.borrow_mut().retain(|id, l| {
                        l.token != token || only.as_ref().is_some_and(|o| !o.contains(id))
                    });
                    json!({})
                }
                _ => return Err(fail(1, "unknown method")),
            };
            Ok(answer.to_string().into_bytes())
        }
        fn log(&self, _l: LogLevel, _m: &str) {}
        fn progress(&self, _d: u32, _t: u32, _j: &str) -> bool {
            false
        }
    }

    fn id(key: &str) -> ContractId {
        ("EduContratoData".to_string(), key.to_string())
    }

    fn owner(run: &str) -> Owner {
        Owner {
            run_id: run.into(),
            session: "s".into(),
            user: "secretaria".into(),
            machine: "rm-app-1".into(),
            option: "send".into(),
        }
    }

    fn in_process(id: &ContractId) -> Option<String> {
        HELD.lock().get(id).map(|h| h.owner.run_id.clone())
    }

    /// Runs `f` with the plugin's logger delivering this thread's lines into a vector.
    fn capture_logs<R>(f: impl FnOnce() -> R) -> (R, Vec<(LogLevel, String)>) {
        logging::install();
        let lines = Rc::new(RefCell::new(Vec::new()));
        let sink_lines = lines.clone();
        let result = logging::with_sink(
            Rc::new(move |level, line: &str| {
                sink_lines.borrow_mut().push((level, line.to_string()))
            }),
            f,
        );
        let lines = lines.borrow().clone();
        (result, lines)
    }

    #[test]
    fn a_run_never_waits_and_names_who_holds_the_others() {
        let host = NoLeases;
        let mut first = Claim::new(owner("run-a"), DEFAULT_TTL);
        let held = first.take(&host, [id("claims-1"), id("claims-2")]).unwrap();
        assert!(held.is_empty());
        // Taking its own contracts again is a no-op.
        assert!(first.take(&host, [id("claims-1")]).unwrap().is_empty());
        let mut second = Claim::new(owner("run-b"), DEFAULT_TTL);
        let held = second
            .take(&host, [id("claims-2"), id("claims-3")])
            .unwrap();
        assert_eq!(held.len(), 1);
        assert_eq!(held[&id("claims-2")].owner.run_id, "run-a");
        // claims-3 was taken by the second run; claims-2 is free once the first one ends.
        drop(first);
        let mut third = Claim::new(owner("run-c"), DEFAULT_TTL);
        let held = third.take(&host, [id("claims-2"), id("claims-3")]).unwrap();
        assert_eq!(held.len(), 1);
        assert_eq!(held[&id("claims-3")].owner.run_id, "run-b");
    }

    #[test]
    fn the_host_grants_free_contracts_to_the_run() {
        let host = LeaseHost::new();
        let mut claim = Claim::new(owner("run-grant"), Duration::from_secs(90));
        let held = claim.take(&host, [id("lease-g1"), id("lease-g2")]).unwrap();
        assert!(held.is_empty(), "{held:?}");
        assert_eq!(claim.lease_token(), Some("run-grant"));
        let acquires = host.calls_of(ACQUIRE);
        assert_eq!(acquires.len(), 1);
        assert_eq!(acquires[0]["ttl_secs"], 90);
        assert_eq!(acquires[0]["owner"]["user"], "secretaria");
        assert_eq!(acquires[0]["owner"]["machine"], "rm-app-1");
        assert_eq!(
            acquires[0]["contracts"],
            json!([{"data_server": "EduContratoData", "key": "lease-g1"},
                   {"data_server": "EduContratoData", "key": "lease-g2"}])
        );
        assert!(
            host.holds(&id("lease-g1"), "run-grant") && host.holds(&id("lease-g2"), "run-grant")
        );
        // Contracts this run already leased are not asked for again; with a host that has
        // leases nothing is held in-process (the host's database is the one judge).
        claim.take(&host, [id("lease-g1")]).unwrap();
        assert_eq!(host.calls_of(ACQUIRE).len(), 1);
        assert_eq!(in_process(&id("lease-g1")), None);
    }

    #[test]
    fn a_contract_another_process_holds_is_answered_with_its_holder_and_since() {
        let host = LeaseHost::new();
        // Another RM application server took lease-h1 two minutes ago.
        let mut other = owner("run-other-server");
        other.machine = "rm-app-2".into();
        other.user = "tesouraria".into();
        host.acquire(&other, 300, &[id("lease-h1")]);
        let since = rfc3339(host.clock.get());
        host.advance(120);
        let mut claim = Claim::new(owner("run-here"), DEFAULT_TTL);
        let held = claim.take(&host, [id("lease-h1"), id("lease-h2")]).unwrap();
        assert_eq!(held.len(), 1, "{held:?}");
        let holder = &held[&id("lease-h1")];
        assert_eq!(holder.owner, other);
        assert_eq!(holder.since, since);
        assert_eq!(holder.expires_at.as_deref(), Some("2026-12-02T10:05:00Z"));
        // Neither is kept in-process (the host is the one judge); the free one is this run's
        // in the host.
        assert_eq!(in_process(&id("lease-h1")), None);
        assert_eq!(in_process(&id("lease-h2")), None);
        assert!(host.holds(&id("lease-h1"), "run-other-server"));
        assert!(host.holds(&id("lease-h2"), "run-here"));
        assert_eq!(claim.lease_token(), Some("run-here"));
    }

    #[test]
    fn an_expired_lease_is_taken_over_and_the_old_run_learns_it_lost_it_on_renew() {
        let host = LeaseHost::new();
        let ttl = Duration::from_secs(30);
        let mut first = Claim::new(owner("run-crashed"), ttl);
        assert!(first
            .take(&host, [id("lease-e1"), id("lease-e2")])
            .unwrap()
            .is_empty());
        let started = Instant::now();
        let gate = first.gate();
        assert!(first.writes_open(), "granted: the run's writes may leave");
        let handed_over = gate.ticket();
        // While the lease is live, another process is answered "held".
        let answer = host.acquire(&owner("run-next"), 30, &[id("lease-e1")]);
        assert_eq!(answer["granted"], json!([]));
        assert_eq!(answer["held"][0]["holder"]["run_id"], "run-crashed");
        // The first run stops renewing (as a hung server would); its leases expire and the next
        // run (another process) takes lease-e1 over.
        host.advance(31);
        let answer = host.acquire(&owner("run-next"), 30, &[id("lease-e1")]);
        assert_eq!(answer["granted"].as_array().unwrap().len(), 1, "{answer}");
        // The first run renews: lease-e1 is lost (taken), lease-e2 lost too (expired, released
        // by nobody — the host answers it not held by the token any more).
        let lost = first.renew_if_due_at(&host, started + ttl + Duration::from_secs(1));
        assert_eq!(lost, vec![id("lease-e1"), id("lease-e2")]);
        // The write gate is closed: nothing handed over before (or after) is written.
        assert!(!first.writes_open());
        assert!(!gate.admits(handed_over));
        assert!(!gate.admits(gate.ticket()));
        // Its writes stay fenced by the lost token (refused by the host, never unfenced), and it
        // knows it may no longer act on either contract.
        assert_eq!(first.lease_token(), Some("run-crashed"));
        assert!(!first.still_holds(&host, &id("lease-e1")));
        assert!(!first.still_holds(&host, &id("lease-e2")));
        assert_eq!(in_process(&id("lease-e1")), None);
        assert!(host.holds(&id("lease-e1"), "run-next"));
    }

    #[test]
    fn leases_are_renewed_after_a_third_of_their_time_to_live() {
        let host = LeaseHost::new();
        let ttl = Duration::from_secs(60);
        let mut claim = Claim::new(owner("run-renew"), ttl);
        claim.take(&host, [id("lease-r1"), id("lease-r2")]).unwrap();
        let taken_at = Instant::now();
        assert_eq!(claim.renew_interval(), Duration::from_secs(20));
        // Not due yet: no host call.
        assert!(claim.renew_if_due_at(&host, taken_at).is_empty());
        assert!(host.calls_of(RENEW).is_empty());
        // Due: renewed by the host's clock (now + ttl), nothing lost.
        let handed_over = claim.gate().ticket();
        host.advance(25);
        let lost = claim.renew_if_due_at(&host, taken_at + Duration::from_secs(25));
        assert!(lost.is_empty(), "{lost:?}");
        assert!(
            claim.gate().admits(handed_over),
            "a renewal in time refuses nothing handed over before it"
        );
        let renews = host.calls_of(RENEW);
        assert_eq!(renews.len(), 1);
        assert_eq!(renews[0]["token"], "run-renew");
        assert_eq!(renews[0]["ttl_secs"], 60);
        assert_eq!(renews[0]["contracts"].as_array().unwrap().len(), 2);
        assert_eq!(
            host.leases.borrow()[&id("lease-r1")].expires_at,
            host.clock.get() + chrono::Duration::seconds(60)
        );
        // The interval restarts from the renewal.
        assert!(claim
            .renew_if_due_at(&host, taken_at + Duration::from_secs(30))
            .is_empty());
        assert_eq!(host.calls_of(RENEW).len(), 1);
        // Past the original expiry, still held thanks to the renewal.
        host.advance(50);
        assert!(host.holds(&id("lease-r1"), "run-renew"));
    }

    #[test]
    fn a_failing_renewal_is_retried_and_after_the_whole_ttl_every_lease_counts_as_lost() {
        let host = LeaseHost::new();
        let ttl = Duration::from_secs(30);
        let mut claim = Claim::new(owner("run-renew-fails"), ttl);
        claim.take(&host, [id("lease-f1")]).unwrap();
        let taken_at = Instant::now();
        *host.failing.borrow_mut() = Some((RENEW, 5, "banco indisponível"));
        let (lost, logs) =
            capture_logs(|| claim.renew_if_due_at(&host, taken_at + Duration::from_secs(11)));
        assert!(lost.is_empty());
        assert!(
            logs.iter().any(|(level, l)| *level == LogLevel::Warn
                && l.contains("Não foi possível renovar")
                && l.contains("banco indisponível")),
            "{logs:?}"
        );
        // Retried at the next call; once the ttl passed without a renewal: all lost.
        let lost = claim.renew_if_due_at(&host, taken_at + Duration::from_secs(31));
        assert_eq!(host.calls_of(RENEW).len(), 2);
        assert_eq!(lost, vec![id("lease-f1")]);
        assert_eq!(claim.lease_token(), Some("run-renew-fails"));
        assert!(!claim.still_holds(&host, &id("lease-f1")));
    }

    #[test]
    fn release_gives_the_leases_back_at_once() {
        let host = LeaseHost::new();
        let mut claim = Claim::new(owner("run-release"), DEFAULT_TTL);
        claim.take(&host, [id("lease-x1"), id("lease-x2")]).unwrap();
        assert!(claim.writes_open());
        claim.release(&host);
        assert!(
            !claim.writes_open(),
            "released: no write of this run leaves"
        );
        assert_eq!(
            host.calls_of(RELEASE),
            vec![json!({"token": "run-release"})]
        );
        assert!(host.leases.borrow().get(&id("lease-x1")).is_none());
        assert_eq!(claim.lease_token(), None);
        // Another process takes them at once, without waiting for the ttl.
        let answer = host.acquire(&owner("run-after"), 300, &[id("lease-x1"), id("lease-x2")]);
        assert_eq!(answer["granted"].as_array().unwrap().len(), 2, "{answer}");
        // Releasing again calls nothing; nothing was held in-process.
        claim.release(&host);
        assert_eq!(host.calls_of(RELEASE).len(), 1);
        assert_eq!(in_process(&id("lease-x1")), None);
        drop(claim);
        assert_eq!(in_process(&id("lease-x1")), None);
    }

    #[test]
    fn a_run_dropped_without_release_has_its_leases_released_by_release_leftovers() {
        let host = LeaseHost::new();
        {
            let mut claim = Claim::new(owner("run-dropped"), DEFAULT_TTL);
            claim.take(&host, [id("lease-d1")]).unwrap();
            // Ends without release (an error path): in-process claims go at once ...
        }
        assert_eq!(in_process(&id("lease-d1")), None);
        assert!(host.holds(&id("lease-d1"), "run-dropped"));
        // ... a leftover of another thread is not this thread's to release ...
        std::thread::spawn(|| release_leftovers(&NoLeases))
            .join()
            .unwrap();
        assert!(host.calls_of(RELEASE).is_empty());
        // ... and the export releases the host leases before it returns.
        release_leftovers(&host);
        assert_eq!(
            host.calls_of(RELEASE),
            vec![json!({"token": "run-dropped"})]
        );
        assert!(host.leases.borrow().is_empty());
        release_leftovers(&host);
        assert_eq!(host.calls_of(RELEASE).len(), 1, "released once");
        // A run that released its leases leaves nothing behind.
        let mut claim = Claim::new(owner("run-released"), DEFAULT_TTL);
        claim.take(&host, [id("lease-d2")]).unwrap();
        claim.release(&host);
        drop(claim);
        release_leftovers(&host);
        assert_eq!(host.calls_of(RELEASE).len(), 2);
    }

    #[test]
    fn a_host_without_leases_falls_back_to_in_process_claims_and_says_so_once() {
        static NOTICE: Notice = Notice::new();
        let host = NoLeases;
        let ((first, second), logs) = capture_logs(|| {
            let mut a = Claim::new(owner("run-nl-a"), DEFAULT_TTL);
            a.notice = &NOTICE;
            let first = a.take(&host, [id("nolease-1")]).unwrap();
            assert_eq!(a.lease_token(), None);
            let mut b = Claim::new(owner("run-nl-b"), DEFAULT_TTL);
            b.notice = &NOTICE;
            let second = b.take(&host, [id("nolease-1"), id("nolease-2")]).unwrap();
            assert_eq!(b.lease_token(), None);
            let mut c = Claim::new(owner("run-nl-c"), DEFAULT_TTL);
            c.notice = &NOTICE;
            c.take(&host, [id("nolease-3")]).unwrap();
            (first, second)
        });
        assert!(first.is_empty());
        // In-process claims still coordinate the runs of this process.
        assert_eq!(second.len(), 1);
        assert_eq!(second[&id("nolease-1")].owner.run_id, "run-nl-a");
        assert_eq!(second[&id("nolease-1")].expires_at, None);
        let notices: Vec<&(LogLevel, String)> = logs
            .iter()
            .filter(|(_, l)| l.contains("reservas de contratos"))
            .collect();
        assert_eq!(notices.len(), 1, "logged once for three runs: {logs:?}");
        assert_eq!(notices[0].0, LogLevel::Warn);
        assert!(notices[0].1.contains("leases.acquire"), "{notices:?}");
        assert_eq!(NOTICE.seen.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn a_failing_host_stops_the_take_with_host_error_naming_the_method() {
        let host = LeaseHost::new();
        *host.failing.borrow_mut() = Some((ACQUIRE, 7, "deadlock no banco de dados"));
        let mut claim = Claim::new(owner("run-fail"), DEFAULT_TTL);
        let error = claim.take(&host, [id("lease-err1")]).unwrap_err();
        assert_eq!(error.status, crate::error::Status::HostError);
        assert!(
            error.detail.contains("leases.acquire") && error.detail.contains("deadlock"),
            "{}",
            error.detail
        );
        // Nothing is kept: another run of this process may take the contract.
        assert_eq!(in_process(&id("lease-err1")), None);
        assert_eq!(claim.lease_token(), None);
        // An answer missing a contract is a host error too, and what was granted is given back.
        *host.failing.borrow_mut() = None;
        struct Forgetful(LeaseHost);
        impl Host for Forgetful {
            fn call(&self, method: &str, r: &[u8]) -> Result<Vec<u8>, HostCallError> {
                let mut answer: Value = serde_json::from_slice(&self.0.call(method, r)?).unwrap();
                if method == ACQUIRE {
                    answer["granted"].as_array_mut().unwrap().truncate(1);
                }
                Ok(answer.to_string().into_bytes())
            }
            fn log(&self, _l: LogLevel, _m: &str) {}
            fn progress(&self, _d: u32, _t: u32, _j: &str) -> bool {
                false
            }
        }
        let host = Forgetful(host);
        let mut claim = Claim::new(owner("run-forgetful"), DEFAULT_TTL);
        let error = claim
            .take(&host, [id("lease-err2"), id("lease-err3")])
            .unwrap_err();
        assert_eq!(error.status, crate::error::Status::HostError);
        assert!(
            error.detail.contains("neither granted nor held"),
            "{}",
            error.detail
        );
        assert_eq!(host.0.calls_of(RELEASE).len(), 1);
        assert!(host.0.leases.borrow().is_empty());
        assert_eq!(in_process(&id("lease-err2")), None);
    }

    #[test]
    fn the_probe_names_the_missing_methods_and_changes_nothing() {
        assert_eq!(
            probe_host(&NoLeases),
            vec!["leases.acquire", "leases.renew", "leases.release"]
        );
        let host = LeaseHost::new();
        host.acquire(&owner("run-existing"), 300, &[id("lease-p1")]);
        assert!(probe_host(&host).is_empty());
        // Each method was called once, with an empty contract list, and nothing changed.
        for method in LEASE_METHODS {
            let calls = host.calls_of(method);
            assert_eq!(calls.len(), 1, "{method}");
            assert_eq!(calls[0]["contracts"], json!([]), "{method}");
        }
        let leases = host.leases.borrow();
        assert_eq!(leases.len(), 1);
        assert_eq!(leases[&id("lease-p1")].token, "run-existing");
        drop(leases);
        let mut partial = LeaseHost::new();
        partial.unknown = vec![RENEW, RELEASE];
        assert_eq!(probe_host(&partial), vec!["leases.renew", "leases.release"]);
    }

    #[test]
    fn the_machine_name_is_never_empty_and_fills_an_owner_without_one() {
        let name = machine_name();
        assert!(!name.trim().is_empty());
        assert_eq!(name, name.trim());
        let mut nameless = owner("run-nameless");
        nameless.machine = String::new();
        assert_eq!(Claim::new(nameless, DEFAULT_TTL).owner().machine, name);
        assert_eq!(
            Claim::new(owner("run-named"), DEFAULT_TTL).owner().machine,
            "rm-app-1"
        );
    }
}
