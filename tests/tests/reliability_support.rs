//! Shared helpers of the reliability, ABI and security tests (included with `#[path]` by
//! `reliability_*.rs`, `abi_*.rs` and `security_*.rs`; compiled on its own it holds no test).
//!
//! A [`World`] is one school database (seeded with `seed_bulk`), one tae-sim on loopback and one
//! simulated RM host, all driving the built plugin through host-sim's library, exactly as the
//! RM host would through P/Invoke.
#![allow(dead_code)]

use host_sim::seed::{DEMO_PERIOD, DEMO_RM_USER, DEMO_RM_USER_CPF};
use host_sim::{Plugin, RmHost, SchoolDb, UiScript};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use tae_sim::faults::FaultEngine;
use tae_sim::{FaultConfig, SimOptions, SimServer};

/// TAE status codes of a publication (`TAE-API.md`).
pub const TAE_PENDING: i64 = 0;
pub const TAE_DRAFT: i64 = 5;
pub const TAE_CANCELLED: i64 = 7;

/// The plugin of this build (built by host-sim's `locate_plugin` when missing).
pub fn plugin() -> Plugin {
    host_sim::install_crypto_provider();
    Plugin::load_default().expect("the plugin library loads")
}

/// A session id unique in this process (the plugin's token cache is process-wide).
pub fn unique_session(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A school database, a tae-sim and a host over them.
/// Waits until no request held by tae-sim's hang fault is still open (the client gave up on
/// them; they finish on the server and may still change its state). Polls the sim's own count,
/// with a deadline.
pub fn wait_for_hung_requests(sim: &SimServer) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while sim.state().hangs_in_progress() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} request(s) still held by a hang fault after 60 s",
            sim.state().hangs_in_progress()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

pub struct World {
    pub plugin: Plugin,
    pub sim: SimServer,
    pub host: RmHost,
    pub keys: Vec<String>,
    pub session: String,
    pub dir: tempfile::TempDir,
    pub db_path: PathBuf,
}

/// Opens the world's database again (another connection, e.g. for another thread's host).
pub fn open_db(path: &Path) -> SchoolDb {
    SchoolDb::open(path).expect("open the school database")
}

/// Points a database at `sim` with short client timeouts.
pub fn configure_db(db: &SchoolDb, sim: &SimServer) {
    db.configure_tae(
        &sim.base_url(),
        tae_sim::ADMIN_EMAIL,
        tae_sim::ADMIN_PASSWORD,
    )
    .expect("configure TAE");
    db.set_param("request_timeout_secs", &json!(1))
        .expect("set timeout");
    db.set_param("max_concurrency", &json!(8))
        .expect("set concurrency");
}

/// A host logged in as the demo secretary, whose screens answer tae-sim's administrator and the
/// secretary's CPF.
pub fn scripted_host(db: SchoolDb) -> RmHost {
    let host = RmHost::new(db, DEMO_RM_USER);
    host.set_ui(
        UiScript::with_credentials(tae_sim::ADMIN_EMAIL, tae_sim::ADMIN_PASSWORD)
            .then_cpf(DEMO_RM_USER_CPF),
    );
    host
}

impl World {
    /// `n` bulk contracts; tae-sim with `options` (faults usually set later with
    /// [`World::set_faults`], after the session authenticated).
    pub fn new(n: usize, options: SimOptions) -> World {
        let plugin = plugin();
        let sim = SimServer::start(options).expect("start tae-sim");
        let dir = tempfile::tempdir().expect("tempdir");
        let db_path = dir.path().join("escola.db");
        let db = open_db(&db_path);
        let keys = host_sim::seed_bulk(&db, n).expect("seed");
        configure_db(&db, &sim);
        let host = scripted_host(db);
        host.set_files_dir(Some(dir.path().join("arquivos")));
        World {
            plugin,
            sim,
            host,
            keys,
            session: unique_session("rel"),
            dir,
            db_path,
        }
    }

    pub fn execute(&self, option: &str, invoked_from: Value, params: Value) -> (i32, Value) {
        self.plugin.execute(
            &self.host,
            &json!({"session": self.session, "invoked_from": invoked_from, "option": option, "params": params}),
        )
    }

    /// Runs `option` over `keys` from the contract view; the run itself must succeed.
    pub fn run_keys(&self, option: &str, keys: &[String], params: Value) -> Value {
        let (status, response) = self.execute(
            option,
            json!({"kind": "contract_view", "contract_keys": keys}),
            params,
        );
        assert_eq!(
            status,
            0,
            "{option} over {} contracts: {response}",
            keys.len()
        );
        response
    }

    /// Sends `keys` with the contract report.
    pub fn send(&self, keys: &[String]) -> Value {
        self.run_keys("send", keys, report_source())
    }

    /// Authenticates the session (and registers the RM user in TAE) with a tiny run that
    /// touches no document: a check of one contract that was never sent.
    pub fn warm_up(&self) {
        let (status, response) = self.execute(
            "check",
            json!({"kind": "contract_view", "contract_keys": [self.keys[0]]}),
            json!({}),
        );
        assert_eq!(status, 0, "warm-up: {response}");
    }

    pub fn set_faults(&self, faults: FaultConfig) {
        self.sim.state().set_faults(faults);
    }

    pub fn records(&self) -> Vec<Value> {
        self.host.db().all_records().expect("records")
    }
}

pub fn report_source() -> Value {
    json!({"source": {"kind": "report", "report_code": host_sim::CONTRACT_REPORT_CODE}})
}

pub fn menu_filter() -> Value {
    json!({"kind": "menu", "filter": {"codcoligada": 1, "period": DEMO_PERIOD}})
}

/// `results` of an execute response by contract key (each key must appear once).
pub fn results_by_key(response: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for r in response["results"].as_array().expect("results array") {
        let key = r["contract_key"]
            .as_str()
            .expect("contract_key")
            .to_string();
        assert!(
            out.insert(key.clone(), r.clone()).is_none(),
            "contract {key} appears twice in the results"
        );
    }
    out
}

/// Count of each outcome.
pub fn outcome_counts(response: &Value) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in response["results"].as_array().into_iter().flatten() {
        *out.entry(r["outcome"].as_str().unwrap_or("?").to_string())
            .or_insert(0) += 1;
    }
    out
}

/// What the records and tae-sim say, side by side.
#[derive(Debug, Default)]
pub struct Audit {
    /// Contracts with more than one published (non-draft) document in TAE.
    pub duplicates: Vec<(String, Vec<u64>)>,
    /// Published documents in TAE that no record knows (by document id).
    pub unknown_to_records: Vec<u64>,
    /// Records whose document id is missing in TAE, or whose status disagrees with TAE's.
    pub disagreements: Vec<String>,
    /// Contracts with more than one active record.
    pub multiple_active: Vec<String>,
    /// Records stuck in "enviando".
    pub enviando: Vec<String>,
    /// Published documents per contract key.
    pub published: HashMap<String, Vec<u64>>,
    /// Drafts never published (left by failed or ambiguous uploads; harmless).
    pub orphan_drafts: usize,
    /// Cancelled documents no record knows (orphan drafts cancelled by reconcile): not live,
    /// so neither unknown nor duplicates; counted apart.
    pub cancelled_unknown: Vec<u64>,
}

impl Audit {
    pub fn is_clean(&self) -> bool {
        self.duplicates.is_empty()
            && self.unknown_to_records.is_empty()
            && self.disagreements.is_empty()
            && self.multiple_active.is_empty()
            && self.enviando.is_empty()
    }

    pub fn published_count(&self, key: &str) -> usize {
        self.published.get(key).map_or(0, Vec::len)
    }
}

/// The record status that mirrors a TAE status.
pub fn record_status_for(tae: i64) -> &'static str {
    match tae {
        0 => "pendente",
        1 => "assinado_parcialmente",
        2 => "finalizado",
        4 => "rejeitado",
        5 => "rascunho",
        7 => "cancelado",
        _ => "?",
    }
}

const ACTIVE: [&str; 4] = ["enviando", "rascunho", "pendente", "assinado_parcialmente"];

/// Compares the integration records of `db` with tae-sim's documents.
pub fn audit(db: &SchoolDb, sim: &SimServer) -> Audit {
    let records = db.all_records().expect("records");
    let docs = sim.state().documents();
    let mut audit = Audit::default();
    // Document name → contract key, from the records (each send writes its record, with the
    // document name, before uploading).
    let mut key_by_name: HashMap<String, String> = HashMap::new();
    let mut record_by_doc: HashMap<u64, Vec<&Value>> = HashMap::new();
    let mut active_by_key: HashMap<String, usize> = HashMap::new();
    for r in &records {
        let key = r["record_key"].as_str().unwrap_or("").to_string();
        if let Some(name) = r["document_name"].as_str() {
            key_by_name.insert(name.to_string(), key.clone());
        }
        if let Some(id) = r["document_id"].as_u64() {
            record_by_doc.entry(id).or_default().push(r);
        }
        let status = r["status"].as_str().unwrap_or("");
        if ACTIVE.contains(&status) {
            *active_by_key.entry(key.clone()).or_insert(0) += 1;
        }
        if status == "enviando" {
            audit.enviando.push(key);
        }
    }
    let mut doc_status: HashMap<u64, i64> = HashMap::new();
    for d in &docs {
        let id = d["id"].as_u64().expect("document id");
        let status = d["status"].as_i64().expect("document status");
        doc_status.insert(id, status);
        if status == TAE_DRAFT {
            if !record_by_doc.contains_key(&id) {
                audit.orphan_drafts += 1;
            }
            continue;
        }
        let name = d["name"].as_str().unwrap_or("");
        if status == TAE_CANCELLED && !record_by_doc.contains_key(&id) {
            audit.cancelled_unknown.push(id);
            continue;
        }
        match key_by_name.get(name) {
            Some(key) => audit.published.entry(key.clone()).or_default().push(id),
            None => audit.unknown_to_records.push(id),
        }
        if !record_by_doc.contains_key(&id) && key_by_name.contains_key(name) {
            audit.unknown_to_records.push(id);
        }
    }
    // A duplicate is a second live (not cancelled) document of one contract: a cancelled one
    // (deleted through the plugin) may be followed by a new send.
    for (key, ids) in &audit.published {
        let live: Vec<u64> = ids
            .iter()
            .copied()
            .filter(|id| doc_status.get(id) != Some(&TAE_CANCELLED))
            .collect();
        if live.len() > 1 {
            audit.duplicates.push((key.clone(), live));
        }
    }
    for (key, n) in &active_by_key {
        if *n > 1 {
            audit.multiple_active.push(key.clone());
        }
    }
    for r in &records {
        let Some(id) = r["document_id"].as_u64() else {
            continue;
        };
        let rs = r["status"].as_str().unwrap_or("");
        match doc_status.get(&id) {
            None => audit.disagreements.push(format!(
                "record {} ({}) points at document {id}, unknown to TAE",
                r["id"], r["record_key"]
            )),
            Some(ts) if record_status_for(*ts) != rs && !(rs == "falhou" && *ts == TAE_DRAFT) => {
                audit.disagreements.push(format!(
                    "record {} ({}) says {rs}, TAE says {} for document {id}",
                    r["id"],
                    r["record_key"],
                    record_status_for(*ts)
                ))
            }
            _ => {}
        }
    }
    audit.duplicates.sort();
    audit.unknown_to_records.sort();
    audit.unknown_to_records.dedup();
    audit
}

/// Replays tae-sim's seeded fault engine to count the faults it injected: the engine draws the
/// same number of values per request whatever the configuration, so `(requests, config)` phases
/// in order reproduce every decision when the rates do not depend on the route.
#[derive(Debug, Default, Clone, Copy)]
pub struct FaultTally {
    pub requests: u64,
    pub errors_5xx: u64,
    pub rate_limited_429: u64,
    pub hangs: u64,
    pub drops: u64,
}

impl FaultTally {
    pub fn total(&self) -> u64 {
        self.errors_5xx + self.rate_limited_429 + self.hangs + self.drops
    }
}

pub fn replay_faults(seed: u64, phases: &[(u64, FaultConfig)]) -> Vec<FaultTally> {
    let mut engine = FaultEngine::new(seed);
    phases
        .iter()
        .map(|(n, config)| {
            let mut t = FaultTally {
                requests: *n,
                ..FaultTally::default()
            };
            for _ in 0..*n {
                let d = engine.decide(config, "GET", "/x");
                t.errors_5xx += d.error_status.is_some() as u64;
                t.rate_limited_429 += d.rate_limited.is_some() as u64;
                t.hangs += d.hang_ms.is_some() as u64;
                t.drops += d.drop_after.is_some() as u64;
            }
            t
        })
        .collect()
}

/// Every string in a JSON value, and every key, for secret scans.
pub fn json_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| json_strings(x, out)),
        Value::Object(m) => m.iter().for_each(|(k, x)| {
            out.push(k.clone());
            json_strings(x, out)
        }),
        _ => {}
    }
}

/// A set of contract keys.
pub fn key_set<'a>(keys: impl IntoIterator<Item = &'a String>) -> BTreeSet<String> {
    keys.into_iter().cloned().collect()
}

/// Appends a line to the figures file of the last run (`$TAE_EDU_FIGURES`, when set), which
/// `docs/RELIABILITY.md` quotes.
pub fn figures(line: &str) {
    println!("FIGURES {line}");
    if let Some(path) = std::env::var_os("TAE_EDU_FIGURES") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// A size knob: `$name` when set and valid, else `default`; `TAE_EDU_LONG=1` picks `long`.
pub fn size_knob(name: &str, default: usize, long: usize) -> usize {
    if let Some(n) = std::env::var(name).ok().and_then(|v| v.parse().ok()) {
        return n;
    }
    if std::env::var("TAE_EDU_LONG").is_ok_and(|v| v == "1") {
        long
    } else {
        default
    }
}

/// Whether the plugin under test offers the option `reconcile` ("Conciliar com o TOTVS
/// Assinatura Eletrônica"), asked with a dry run (`fix: false`: nothing changes anywhere) over
/// the contract `key`: `Ok(response)` when it answered, `Err(reason)` when the plugin refused
/// the option as unknown. Any other refusal panics: the option exists but this probe's request
/// no longer fits it, and the tests that run reconcile must be brought up to date rather than
/// skip it silently.
pub fn probe_reconcile(
    plugin: &Plugin,
    host: &RmHost,
    session: &str,
    key: &str,
) -> Result<Value, String> {
    let (status, response) = plugin.execute(
        host,
        &json!({"session": session, "invoked_from": {"kind": "contract_view", "contract_keys": [key]},
                "option": "reconcile", "params": {"fix": false}}),
    );
    if status == 0 {
        return Ok(response);
    }
    let text = response.to_string();
    let lower = text.to_lowercase();
    let unknown = lower.contains("reconcile")
        && [
            "unknown variant",
            "unknown option",
            "desconhecid",
            "não existe",
        ]
        .iter()
        .any(|w| lower.contains(w));
    assert!(
        unknown,
        "the plugin seems to offer `reconcile` but refused the probe (status {status}): {text} — \
         bring the reconcile steps of the reliability tests up to date with its request"
    );
    Err(text)
}

/// Prints the line that says a reconcile step did not run because the plugin lacks the option.
pub fn reconcile_skipped(what: &str, reason: &str) {
    println!("SKIPPED {what}: the plugin does not offer the option `reconcile` yet ({reason})");
}

/// Records and TAE one to one: every TAE document that is not cancelled (drafts included) is
/// referenced by exactly one record, and every record with a document id points at a document
/// TAE has. Answers the problems found.
pub fn one_to_one_problems(db: &SchoolDb, sim: &SimServer) -> Vec<String> {
    let records = db.all_records().expect("records");
    let docs = sim.state().documents();
    let mut by_doc: HashMap<u64, Vec<String>> = HashMap::new();
    for r in &records {
        if let Some(id) = r["document_id"].as_u64() {
            by_doc
                .entry(id)
                .or_default()
                .push(r["id"].as_str().unwrap_or("?").to_string());
        }
    }
    let mut problems = Vec::new();
    let mut ids = BTreeSet::new();
    for d in &docs {
        let id = d["id"].as_u64().expect("document id");
        ids.insert(id);
        if d["status"].as_i64() == Some(TAE_CANCELLED) {
            continue;
        }
        match by_doc.get(&id).map(Vec::len).unwrap_or(0) {
            1 => {}
            0 => problems.push(format!(
                "TAE document {id} ({}, status {}) has no record",
                d["name"], d["status"]
            )),
            n => problems.push(format!(
                "TAE document {id} has {n} records: {:?}",
                by_doc[&id]
            )),
        }
    }
    for (id, recs) in &by_doc {
        if !ids.contains(id) {
            problems.push(format!(
                "records {recs:?} point at document {id}, unknown to TAE"
            ));
        }
    }
    problems.sort();
    problems
}

/// Ends every lease in the database at `path` (`expires_at_ms = 0`): what the lease time
/// passing does to the leases of a killed process, which never releases them. Answers how many.
pub fn expire_leases(path: &Path) -> usize {
    let c = rusqlite::Connection::open(path).expect("open the database");
    c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    c.execute("UPDATE leases SET expires_at_ms = 0", [])
        .expect("expire the leases")
}
