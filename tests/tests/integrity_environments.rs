//! Two RM environments on one TAE account — a test RM and a production RM, as many schools run:
//! two school databases seeded alike (the same contract keys, the same document names) over
//! one tae-sim company and one TAE user. Both send at once, each in its own process
//! (`proof-host`), and both are SIGKILLed mid-send, several rounds; then both rerun. (A run
//! that finds its contracts still leased by the run killed before it — lease time 10 s — is
//! started again a second later.)
//!
//! Each environment sends its own PDF file (same file name, different bytes), so every TAE
//! document can be traced to the environment that uploaded it by its content. At the end:
//! - each record points at a document of its own environment: **0 adopted across
//!   environments**;
//! - each contract has exactly one live document of its own environment, known to its record;
//! - no document of an environment — draft or not — is unknown to that environment's records;
//! - no record is left `enviando`.
//!
//! Sizes: `TAE_EDU_ENV_CONTRACTS` (default 100 per environment; 400 with `TAE_EDU_LONG=1`),
//! `TAE_EDU_ENV_ROUNDS` (crash rounds, default 3).

#![cfg(unix)]

#[path = "integrity_support.rs"]
mod integrity;

use integrity::support::*;
use integrity::{few, SplitMix};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tae_edu_tests::proofs::{size, HostProcess, HostRun, HostSpec};
use tae_sim::{FaultConfig, Latency, SimOptions, SimServer};

const BIN: &str = env!("CARGO_BIN_EXE_proof-host");
const RUN_TIMEOUT: Duration = Duration::from_secs(180);
/// The lease time to live (global parameter `lease_ttl_secs`; 10 s is its minimum).
const LEASE_TTL_SECS: u64 = 10;

/// One environment's process in a crash round.
enum Slot {
    Running(HostProcess, usize),
    /// Its contracts were still held: start again at this instant (attempt number).
    Waiting(Instant, usize),
    Done,
}

struct Environment {
    name: &'static str,
    _dir: tempfile::TempDir,
    db_path: PathBuf,
    pdf_path: PathBuf,
    /// SHA-256 of this environment's PDF: the mark of its documents in TAE.
    pdf_sha: String,
    keys: Vec<String>,
}

impl Environment {
    fn new(name: &'static str, n: usize, sim: &SimServer) -> Environment {
        let dir = tempfile::tempdir().unwrap();
        let db_path = dir.path().join("escola.db");
        let keys = {
            let db = open_db(&db_path);
            let keys = host_sim::seed_bulk(&db, n).unwrap();
            configure_db(&db, sim);
            db.set_param("request_timeout_secs", &json!(15)).unwrap();
            db.set_param("lease_ttl_secs", &json!(LEASE_TTL_SECS))
                .unwrap();
            keys
        };
        let pdf = tae_sim::sample_pdf(
            "Contrato de prestação de serviços educacionais",
            &[&format!("Ambiente RM: {name}")],
        );
        let pdf_dir = dir.path().join("modelo");
        std::fs::create_dir_all(&pdf_dir).unwrap();
        let pdf_path = pdf_dir.join("contrato.pdf");
        std::fs::write(&pdf_path, &pdf).unwrap();
        Environment {
            name,
            pdf_sha: tae_sim::state::sha256_hex(&pdf),
            _dir: dir,
            db_path,
            pdf_path,
            keys,
        }
    }

    fn send_spec(&self, session: &str) -> HostSpec {
        let mut spec = HostSpec::send(&self.db_path, session, &self.keys);
        spec.params =
            json!({"source": {"kind": "file", "path": self.pdf_path.display().to_string()}});
        spec
    }

    fn records(&self) -> Vec<Value> {
        open_db(&self.db_path).all_records().unwrap()
    }
}

/// Which environment uploaded each TAE document (by its content), with its status.
fn documents_by_environment(sim: &SimServer, envs: &[&Environment]) -> HashMap<u64, (usize, i64)> {
    let state = sim.state();
    let mut out = HashMap::new();
    for d in state.documents() {
        let id = d["id"].as_u64().unwrap();
        let bytes = state.document_file(id).unwrap_or_default();
        let sha = tae_sim::state::sha256_hex(&bytes);
        let env = envs
            .iter()
            .position(|e| e.pdf_sha == sha)
            .unwrap_or_else(|| panic!("document {id} is neither environment's file"));
        out.insert(id, (env, d["status"].as_i64().unwrap()));
    }
    out
}

/// What is wrong in one environment, as lists (all must be empty).
#[derive(Debug, Default)]
struct EnvAudit {
    /// Records pointing at the other environment's document.
    adopted_across: Vec<String>,
    /// Records pointing at a document TAE does not have, or whose status disagrees.
    disagreements: Vec<String>,
    /// Contracts without exactly one active record pointing at a live document of its own.
    wrong_live: Vec<String>,
    /// Documents of this environment (drafts included) no record of it knows.
    unknown_to_records: Vec<u64>,
    /// Contracts with more than one live document of this environment.
    duplicates: Vec<String>,
    enviando: Vec<String>,
}

impl EnvAudit {
    fn is_clean(&self) -> bool {
        self.adopted_across.is_empty()
            && self.disagreements.is_empty()
            && self.wrong_live.is_empty()
            && self.unknown_to_records.is_empty()
            && self.duplicates.is_empty()
            && self.enviando.is_empty()
    }
}

fn audit_environment(
    index: usize,
    env: &Environment,
    docs: &HashMap<u64, (usize, i64)>,
) -> EnvAudit {
    let records = env.records();
    let mut a = EnvAudit::default();
    let mut known: HashSet<u64> = HashSet::new();
    let mut live_of_key: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for r in &records {
        let key = r["record_key"].as_str().unwrap_or("").to_string();
        let status = r["status"].as_str().unwrap_or("");
        if status == "enviando" {
            a.enviando.push(key.clone());
        }
        let Some(id) = r["document_id"].as_u64() else {
            continue;
        };
        known.insert(id);
        match docs.get(&id) {
            None => a
                .disagreements
                .push(format!("{key}: document {id} unknown to TAE")),
            Some((owner, tae_status)) => {
                if *owner != index {
                    a.adopted_across.push(format!("{key} → document {id}"));
                }
                if record_status_for(*tae_status) != status
                    && !(status == "falhou" && *tae_status == TAE_DRAFT)
                {
                    a.disagreements.push(format!(
                        "{key}: record {status}, TAE {} (document {id})",
                        record_status_for(*tae_status)
                    ));
                }
                if ["pendente", "assinado_parcialmente", "rascunho"].contains(&status) {
                    live_of_key.entry(key).or_default().push(id);
                }
            }
        }
    }
    for k in &env.keys {
        let live = live_of_key.get(k).cloned().unwrap_or_default();
        let ok = live.len() == 1
            && docs
                .get(&live[0])
                .is_some_and(|(o, s)| *o == index && *s == TAE_PENDING);
        if !ok {
            a.wrong_live.push(format!("{k}: active documents {live:?}"));
        }
    }
    // Live documents of this environment per contract, by the record that knows them.
    let mut key_of_doc: HashMap<u64, String> = HashMap::new();
    for r in &records {
        if let Some(id) = r["document_id"].as_u64() {
            key_of_doc.insert(id, r["record_key"].as_str().unwrap_or("").to_string());
        }
    }
    let mut live_per_key: BTreeMap<String, usize> = BTreeMap::new();
    for (id, (owner, status)) in docs {
        if *owner != index {
            continue;
        }
        if !known.contains(id) {
            a.unknown_to_records.push(*id);
        }
        if *status != TAE_DRAFT && *status != TAE_CANCELLED {
            if let Some(k) = key_of_doc.get(id) {
                *live_per_key.entry(k.clone()).or_insert(0) += 1;
            }
        }
    }
    a.duplicates = live_per_key
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(k, _)| k)
        .collect();
    a.unknown_to_records.sort();
    a
}

#[test]
fn two_environments_on_one_tae_account_crash_and_rerun_never_adopt_each_others_documents() {
    let n = size("TAE_EDU_ENV_CONTRACTS", 100, 400);
    let rounds = size("TAE_EDU_ENV_ROUNDS", 3, 3);
    let started = Instant::now();
    let lib = host_sim::locate_plugin().expect("plugin");
    let sim = SimServer::start(SimOptions {
        seed: 2,
        faults: FaultConfig {
            latency_ms: Some(Latency::Range { min: 2, max: 10 }),
            ..FaultConfig::default()
        },
        ..SimOptions::default()
    })
    .unwrap();
    let envs = [
        Environment::new("teste", n, &sim),
        Environment::new("producao", n, &sim),
    ];
    assert_eq!(envs[0].keys, envs[1].keys, "the same contract keys");
    let mut rng = SplitMix(0x13_2026);
    let mut kills = Vec::new();
    let mut stuck_total = 0usize;
    // Each round, each environment sends until it is killed after a seeded number of contracts
    // sent. A run that finds its contracts still held by the run killed in the round before
    // (its leases live for the lease time) does nothing: it is started again a second later,
    // until the leases expired and it works.
    let mut held_waits = 0usize;
    for round in 0..rounds {
        let targets: Vec<usize> = (0..envs.len())
            .map(|_| rng.between(3, (n / rounds).max(4) as u64) as usize)
            .collect();
        let spawn = |env: usize, attempt: usize| {
            HostProcess::spawn(
                BIN,
                &lib,
                &format!("{}-r{round}-{attempt}", envs[env].name),
                &envs[env].send_spec(&format!("rm-{}-{round}-{attempt}", envs[env].name)),
            )
        };
        let mut state: Vec<Slot> = (0..envs.len())
            .map(|env| Slot::Running(spawn(env, 0), 0))
            .collect();
        let deadline = Instant::now() + Duration::from_secs(120 + LEASE_TTL_SECS);
        while state.iter().any(|s| !matches!(s, Slot::Done)) {
            assert!(
                Instant::now() < deadline,
                "round {round} did not end in time"
            );
            for env in 0..envs.len() {
                let next = match std::mem::replace(&mut state[env], Slot::Done) {
                    Slot::Running(mut p, attempt) => {
                        let target = targets[env];
                        let hit = p.pump_until(Instant::now() + Duration::from_millis(10), |p| {
                            p.progress_with("sent") >= target
                        });
                        if hit && !p.finished() {
                            let sent = p.progress_with("sent");
                            let killed = p.sigkill();
                            let stuck = envs[env]
                                .records()
                                .iter()
                                .filter(|r| {
                                    ["enviando", "rascunho"]
                                        .contains(&r["status"].as_str().unwrap_or(""))
                                })
                                .count();
                            stuck_total += stuck;
                            kills.push(format!(
                                "{}-r{round}:{}{sent}sent/{stuck}stuck",
                                envs[env].name,
                                if killed { "" } else { "exited-" }
                            ));
                            Slot::Done
                        } else if p.finished() {
                            let run = p.finish(RUN_TIMEOUT);
                            assert_eq!(run.status, 0, "{}: {}", run.name, run.response);
                            if run.counts().contains_key("held") {
                                held_waits += 1;
                                Slot::Waiting(Instant::now() + Duration::from_secs(1), attempt + 1)
                            } else {
                                kills.push(format!("{}-r{round}:completed", envs[env].name));
                                Slot::Done
                            }
                        } else {
                            Slot::Running(p, attempt)
                        }
                    }
                    Slot::Waiting(at, attempt) if Instant::now() >= at => {
                        Slot::Running(spawn(env, attempt), attempt)
                    }
                    other => other,
                };
                state[env] = next;
            }
            if state
                .iter()
                .all(|s| matches!(s, Slot::Waiting(..) | Slot::Done))
            {
                // Nothing running: poll again shortly (the leases expire by the database's
                // clock; a new run is the observation).
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    // Final reruns, both environments at once, again a second later while the last round's
    // leases still hold their contracts; then once more each (nothing to upload).
    let mut finals: Vec<Option<HostRun>> = vec![None, None];
    let deadline = Instant::now() + Duration::from_secs(120 + LEASE_TTL_SECS);
    for attempt in 0.. {
        let runs: Vec<(usize, HostRun)> = (0..envs.len())
            .filter(|env| finals[*env].is_none())
            .map(|env| {
                let e = &envs[env];
                let p = HostProcess::spawn(
                    BIN,
                    &lib,
                    &format!("{}-final-{attempt}", e.name),
                    &e.send_spec(&format!("rm-{}-final-{attempt}", e.name)),
                );
                (env, p)
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|(env, p)| (env, p.finish(RUN_TIMEOUT)))
            .collect();
        for (env, run) in runs {
            if run.counts().contains_key("held") {
                held_waits += 1;
            } else {
                finals[env] = Some(run);
            }
        }
        if finals.iter().all(Option::is_some) {
            break;
        }
        assert!(Instant::now() < deadline, "the final reruns stayed held");
        std::thread::sleep(Duration::from_secs(1));
    }
    let finals: Vec<HostRun> = finals.into_iter().flatten().collect();
    for run in &finals {
        assert_eq!(run.status, 0, "{}: {}", run.name, run.response);
        let bad: Vec<_> = run
            .outcomes()
            .into_iter()
            .filter(|(_, o)| o != "sent" && o != "skipped")
            .collect();
        assert!(bad.is_empty(), "{}: {}", run.name, few(&bad));
    }
    let uploads = sim.state().counter("POST", tae_sim::api::UPLOAD);
    for e in &envs {
        let run = HostProcess::spawn(
            BIN,
            &lib,
            &format!("{}-again", e.name),
            &e.send_spec(&format!("rm-{}-again", e.name)),
        )
        .finish(RUN_TIMEOUT);
        assert_eq!(run.status, 0, "{}: {}", run.name, run.response);
        assert_eq!(
            run.counts().get("skipped"),
            Some(&n),
            "{}: {:?}",
            run.name,
            run.counts()
        );
    }
    assert_eq!(
        sim.state().counter("POST", tae_sim::api::UPLOAD),
        uploads,
        "complete reruns upload nothing"
    );

    let docs = documents_by_environment(&sim, &[&envs[0], &envs[1]]);
    let drafts = docs.values().filter(|(_, s)| *s == TAE_DRAFT).count();
    let audits: Vec<EnvAudit> = envs
        .iter()
        .enumerate()
        .map(|(i, e)| audit_environment(i, e, &docs))
        .collect();
    for (e, a) in envs.iter().zip(&audits) {
        assert!(
            a.adopted_across.is_empty(),
            "{}: records adopted the other environment's documents: {}",
            e.name,
            few(&a.adopted_across)
        );
        assert!(
            a.unknown_to_records.is_empty(),
            "{}: documents (drafts included) unknown to its records: {}",
            e.name,
            few(&a.unknown_to_records)
        );
        assert!(
            a.enviando.is_empty(),
            "{}: enviando {}",
            e.name,
            few(&a.enviando)
        );
        assert!(
            a.duplicates.is_empty(),
            "{}: duplicates {}",
            e.name,
            few(&a.duplicates)
        );
        assert!(
            a.wrong_live.is_empty(),
            "{}: {}",
            e.name,
            few(&a.wrong_live)
        );
        assert!(
            a.disagreements.is_empty(),
            "{}: {}",
            e.name,
            few(&a.disagreements)
        );
        assert!(a.is_clean());
    }
    figures(&format!(
        "environments contracts={n}x2 rounds={rounds} kills=[{}] runs_held_by_a_killed_one={held_waits} left_mid_send={stuck_total} documents={} drafts={drafts} adopted_across={} unknown_to_records={} duplicates={} enviando={} elapsed_s={}",
        kills.join(","),
        docs.len(),
        audits.iter().map(|a| a.adopted_across.len()).sum::<usize>(),
        audits.iter().map(|a| a.unknown_to_records.len()).sum::<usize>(),
        audits.iter().map(|a| a.duplicates.len()).sum::<usize>(),
        audits.iter().map(|a| a.enviando.len()).sum::<usize>(),
        started.elapsed().as_secs()
    ));
}
