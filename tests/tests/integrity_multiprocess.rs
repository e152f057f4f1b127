//! Several RM application servers over one school database: separate processes
//! (`proof-host`, each loading the plugin and running one `execute` through host-sim's
//! `RmHost`) over one SQLite file (WAL), against one tae-sim with 20 ms of latency running in
//! this test process (so its state outlives every child).
//!
//! - three processes send the same contracts at once: exactly one live document per contract,
//!   each process answers every contract `sent`, `skipped` or `held` (in process by another
//!   run), and the records agree with tae-sim one to one;
//! - the process doing the work is SIGKILLed mid-batch: while its leases live (global parameter
//!   `lease_ttl_secs`, judged by the database's clock) a rerun sends nothing and waits for
//!   nothing; once they expire a rerun from another process takes its contracts over:
//!   0 duplicates, 0 lost, no record `enviando`;
//! - a run frozen (SIGSTOP) until its leases expire and woken (SIGCONT) after another process
//!   took its contracts over changes no record and nothing in TAE (fencing);
//! - the scheduled check of the non-interactive user runs alongside two interactive sends
//!   without harm.
//!
//! Sizes: `TAE_EDU_MULTI_CONTRACTS` (default 300; 1,000 with `TAE_EDU_LONG=1`).

#![cfg(unix)]

#[path = "integrity_support.rs"]
mod integrity;

use integrity::summary;
use integrity::support::*;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tae_edu_tests::proofs::{size, HostProcess, HostRun, HostSpec};
use tae_sim::{FaultConfig, Latency, SimOptions, SimServer};

const BIN: &str = env!("CARGO_BIN_EXE_proof-host");
/// The lease time to live the tests set (global parameter `lease_ttl_secs`).
const LEASE_TTL_SECS: u64 = 10;
const RUN_TIMEOUT: Duration = Duration::from_secs(180);

struct School {
    sim: SimServer,
    lib: PathBuf,
    _dir: tempfile::TempDir,
    db_path: PathBuf,
    keys: Vec<String>,
}

impl School {
    /// `n` contracts, tae-sim with a fixed latency, a short lease time, and the RM user already
    /// registered in TAE (a one-contract check run first, in its own process).
    fn new(n: usize, latency_ms: u64) -> School {
        let lib = host_sim::locate_plugin().expect("plugin");
        let sim = SimServer::start(SimOptions {
            seed: 13,
            faults: FaultConfig {
                latency_ms: Some(Latency::Fixed(latency_ms)),
                ..FaultConfig::default()
            },
            ..SimOptions::default()
        })
        .expect("tae-sim");
        let dir = tempfile::tempdir().unwrap();
        let db_path = dir.path().join("escola.db");
        let keys = {
            let db = open_db(&db_path);
            let keys = host_sim::seed_bulk(&db, n).unwrap();
            configure_db(&db, &sim);
            // Three processes share two cores with the rest of the machine: a generous client
            // timeout, so a slow moment is not mistaken for an outage.
            db.set_param("request_timeout_secs", &json!(15)).unwrap();
            db.set_param("lease_ttl_secs", &json!(LEASE_TTL_SECS))
                .unwrap();
            keys
        };
        let school = School {
            sim,
            lib,
            _dir: dir,
            db_path,
            keys,
        };
        let mut warm = HostSpec::send(&school.db_path, "warm-up", &school.keys[..1]);
        warm.option = "check".into();
        warm.params = json!({});
        let run = school.run("warm-up", &warm);
        assert_eq!(run.status, 0, "warm-up: {}", run.response);
        school
    }

    fn spawn(&self, name: &str, spec: &HostSpec) -> HostProcess {
        HostProcess::spawn(BIN, &self.lib, name, spec)
    }

    fn run(&self, name: &str, spec: &HostSpec) -> HostRun {
        self.spawn(name, spec).finish(RUN_TIMEOUT)
    }

    fn send_spec(&self, session: &str) -> HostSpec {
        HostSpec::send(&self.db_path, session, &self.keys)
    }

    fn uploads(&self) -> u64 {
        self.sim.state().counter("POST", tae_sim::api::UPLOAD)
    }

    fn live_documents(&self) -> usize {
        self.sim
            .state()
            .documents()
            .iter()
            .filter(|d| {
                let s = d["status"].as_i64();
                s != Some(TAE_DRAFT) && s != Some(TAE_CANCELLED)
            })
            .count()
    }
}

/// Every contract appears once in `run`'s results, with an outcome among `allowed`; a `held`
/// one says, in Portuguese, that another run has it.
fn check_outcomes(run: &HostRun, keys: &[String], allowed: &[&str]) {
    assert_eq!(run.status, 0, "{}: {}", run.name, run.response);
    let outcomes = run.outcomes();
    let results = run.response["results"].as_array().expect("results");
    assert_eq!(
        results.len(),
        outcomes.len(),
        "{}: a contract appears twice",
        run.name
    );
    let expected: BTreeSet<&String> = keys.iter().collect();
    let got: BTreeSet<&String> = outcomes.keys().collect();
    assert_eq!(got, expected, "{}: every contract answered once", run.name);
    for r in results {
        let outcome = r["outcome"].as_str().unwrap_or("");
        assert!(
            allowed.contains(&outcome),
            "{}: outcome {outcome} not in {allowed:?}: {r}",
            run.name
        );
        if outcome == "held" {
            let msg = r["message"].as_str().unwrap_or("");
            assert!(
                msg.contains("outra execução"),
                "{}: a held contract must say another run has it: {r}",
                run.name
            );
        }
    }
}

fn assert_one_document_each(school: &School, what: &str) -> Audit {
    let db = open_db(&school.db_path);
    let a = audit(&db, &school.sim);
    assert!(
        a.duplicates.is_empty(),
        "{what}: {} contracts with more than one live document, e.g. {:?}",
        a.duplicates.len(),
        &a.duplicates[..a.duplicates.len().min(3)]
    );
    let lost: Vec<&String> = school
        .keys
        .iter()
        .filter(|k| a.published_count(k) == 0)
        .collect();
    assert!(
        lost.is_empty(),
        "{what}: contracts without a document: {lost:?}"
    );
    assert!(
        a.enviando.is_empty(),
        "{what}: records enviando {:?}",
        a.enviando
    );
    assert!(a.is_clean(), "{what}: {}", summary(&a));
    assert_eq!(
        school.live_documents(),
        school.keys.len(),
        "{what}: one live document per contract in tae-sim"
    );
    a
}

#[test]
fn three_processes_over_one_database_send_each_contract_once() {
    let n = size("TAE_EDU_MULTI_CONTRACTS", 300, 1000);
    let started = Instant::now();
    let school = School::new(n, 20);
    let procs: Vec<HostProcess> = (0..3)
        .map(|i| {
            school.spawn(
                &format!("servidor-{i}"),
                &school.send_spec(&format!("rm-servidor-{i}")),
            )
        })
        .collect();
    let runs: Vec<HostRun> = procs.into_iter().map(|p| p.finish(RUN_TIMEOUT)).collect();
    let mut senders: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for run in &runs {
        check_outcomes(run, &school.keys, &["sent", "skipped", "held"]);
        for (k, o) in run.outcomes() {
            if o == "sent" {
                senders.entry(k).or_default().push(run.name.clone());
            }
        }
    }
    let twice: Vec<_> = senders.iter().filter(|(_, v)| v.len() > 1).collect();
    assert!(
        twice.is_empty(),
        "{} contracts sent by more than one process, e.g. {:?}",
        twice.len(),
        &twice[..twice.len().min(3)]
    );
    assert_eq!(
        senders.len(),
        n,
        "every contract sent by exactly one process"
    );
    let a = assert_one_document_each(&school, "after three processes at once");

    // A rerun from a fourth process: nothing is sent again.
    let before = school.uploads();
    let rerun = school.run("rerun", &school.send_spec("rm-rerun"));
    check_outcomes(&rerun, &school.keys, &["skipped"]);
    assert_eq!(school.uploads(), before, "the rerun uploads nothing");
    figures(&format!(
        "multiprocess contracts={n} processes=3 latency_ms=20 {} published={} duplicates={} enviando={} orphan_drafts={} elapsed_ms=[{}] elapsed_s={}",
        runs.iter()
            .map(|r| format!("{}={:?}", r.name, r.counts()))
            .collect::<Vec<_>>()
            .join(" "),
        a.published.values().map(Vec::len).sum::<usize>(),
        a.duplicates.len(),
        a.enviando.len(),
        a.orphan_drafts,
        runs.iter().map(|r| r.elapsed_ms.to_string()).collect::<Vec<_>>().join(","),
        started.elapsed().as_secs()
    ));
}

/// Reruns from other processes, one after the other, until one finds nothing held; answers
/// when (after `gone`) the run that held the contracts stopped counting, and a line per rerun.
/// That run renewed its leases at least every ttl/3, so they live at least 2/3 of the ttl after
/// it was gone; a rerun that ends within half the ttl (slack for the renewal's timing) must
/// send nothing, and none ever waits.
fn take_over(school: &School, gone: Instant, name: &str) -> (Duration, Vec<String>) {
    let live_until = gone + Duration::from_secs(LEASE_TTL_SECS) / 2;
    let give_up = gone + Duration::from_secs(LEASE_TTL_SECS + 30);
    let mut reruns = Vec::new();
    loop {
        let uploads_before = school.uploads();
        let spawned = Instant::now();
        let run = school.run(
            &format!("{name}-{}", reruns.len()),
            &school.send_spec(&format!("rm-{name}-{}", reruns.len())),
        );
        let ended = Instant::now();
        check_outcomes(&run, &school.keys, &["sent", "skipped", "held"]);
        let counts = run.counts();
        let held = counts.get("held").copied().unwrap_or(0);
        reruns.push(format!(
            "+{}ms:{:?}",
            spawned.duration_since(gone).as_millis(),
            counts
        ));
        if ended < live_until {
            assert_eq!(
                counts.get("sent"),
                None,
                "a rerun while the other run's leases live sends nothing: {counts:?}"
            );
            assert_eq!(
                school.uploads(),
                uploads_before,
                "nothing uploaded while held"
            );
        }
        if held == 0 {
            return (spawned.duration_since(gone), reruns);
        }
        assert!(
            Instant::now() < give_up,
            "the contracts were still held {} s after their run was gone (ttl {LEASE_TTL_SECS} s): {reruns:?}",
            gone.elapsed().as_secs()
        );
        // Poll again in a second: the condition is the database clock passing the leases'
        // expiry, observed through the next rerun.
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn sigkill_mid_batch_then_another_process_takes_over_once_the_leases_expire() {
    let n = size("TAE_EDU_MULTI_CONTRACTS", 300, 1000);
    let started = Instant::now();
    let school = School::new(n, 20);
    let mut procs: Vec<HostProcess> = (0..3)
        .map(|i| {
            school.spawn(
                &format!("servidor-{i}"),
                &school.send_spec(&format!("rm-kill-{i}")),
            )
        })
        .collect();
    // Kill the process that is doing the work, once it has sent a tenth of the batch (and so
    // holds leases on contracts in flight and not yet started).
    let deadline = Instant::now() + Duration::from_secs(120);
    let kill_after = (n / 10).max(5);
    let victim = loop {
        let mut found = None;
        for (i, p) in procs.iter_mut().enumerate() {
            p.pump_until(Instant::now() + Duration::from_millis(20), |p| {
                p.progress_with("sent") >= kill_after
            });
            if p.progress_with("sent") >= kill_after && !p.finished() {
                found = Some(i);
                break;
            }
        }
        if let Some(i) = found {
            break i;
        }
        assert!(
            procs.iter_mut().any(|p| !p.finished()),
            "every process finished before one had sent {kill_after} contracts"
        );
        assert!(
            Instant::now() < deadline,
            "no process sent {kill_after} contracts in 120 s"
        );
    };
    let victim = procs.remove(victim);
    let victim_name = victim.name.clone();
    let sent_by_victim = victim.progress_with("sent");
    let uploads_at_kill = school.uploads();
    assert!(victim.sigkill(), "the victim was still running");
    let killed_at = Instant::now();
    let others: Vec<HostRun> = procs.into_iter().map(|p| p.finish(RUN_TIMEOUT)).collect();
    for run in &others {
        check_outcomes(run, &school.keys, &["sent", "skipped", "held"]);
    }
    let stuck_after_kill = open_db(&school.db_path)
        .all_records()
        .unwrap()
        .iter()
        .filter(|r| ["enviando", "rascunho"].contains(&r["status"].as_str().unwrap_or("")))
        .count();

    let (takeover, reruns) = take_over(&school, killed_at, "takeover");
    let a = assert_one_document_each(&school, "after the takeover");
    let before = school.uploads();
    let last = school.run("final", &school.send_spec("rm-final"));
    check_outcomes(&last, &school.keys, &["skipped"]);
    assert_eq!(school.uploads(), before, "a complete rerun uploads nothing");
    figures(&format!(
        "multiprocess-kill contracts={n} ttl_s={LEASE_TTL_SECS} victim={victim_name} killed_after_sent={sent_by_victim} uploads_at_kill={uploads_at_kill} left_mid_send={stuck_after_kill} others=[{}] reruns=[{}] takeover_after_ms={} duplicates={} lost=0 enviando={} orphan_drafts={} elapsed_s={}",
        others.iter().map(|r| format!("{}={:?}", r.name, r.counts())).collect::<Vec<_>>().join(" "),
        reruns.join(" "),
        takeover.as_millis(),
        a.duplicates.len(),
        a.enviando.len(),
        a.orphan_drafts,
        started.elapsed().as_secs()
    ));
}

#[test]
fn scheduled_check_alongside_two_interactive_sends() {
    let n = size("TAE_EDU_MULTI_CONTRACTS", 300, 1000) / 2;
    let school = School::new(n, 20);
    // Half the contracts sent earlier; every 5th of those signed in the portal since.
    let first_half: Vec<String> = school.keys[..n / 2].to_vec();
    let first = school.run(
        "earlier",
        &HostSpec::send(&school.db_path, "rm-earlier", &first_half),
    );
    check_outcomes(&first, &first_half, &["sent"]);
    let portal = host_sim::portal::Portal::new(&school.sim.base_url()).unwrap();
    let mut signed = BTreeSet::new();
    {
        let db = open_db(&school.db_path);
        for key in first_half.iter().step_by(5) {
            let id = db
                .all_records()
                .unwrap()
                .iter()
                .find(|r| r["record_key"] == key.as_str())
                .and_then(|r| r["document_id"].as_i64())
                .expect("document id");
            portal.confirm_and_act_all(id).expect("sign in the portal");
            signed.insert(key.clone());
        }
    }
    // Two secretaries send everything while the job checks everything.
    let job = school.spawn(
        "agendador",
        &HostSpec::scheduled_check(&school.db_path, "rm-job"),
    );
    let a = school.spawn("secretaria-a", &school.send_spec("rm-sec-a"));
    let b = school.spawn("secretaria-b", &school.send_spec("rm-sec-b"));
    let (job, a, b) = (
        job.finish(RUN_TIMEOUT),
        a.finish(RUN_TIMEOUT),
        b.finish(RUN_TIMEOUT),
    );
    check_outcomes(&a, &school.keys, &["sent", "skipped", "held"]);
    check_outcomes(&b, &school.keys, &["sent", "skipped", "held"]);
    check_outcomes(
        &job,
        &school.keys,
        &["pending", "signed", "skipped", "held"],
    );
    assert_eq!(
        job.ui_requests, 0,
        "the scheduled job never asks for a screen"
    );
    for (k, o) in job.outcomes() {
        if o == "signed" {
            assert!(
                signed.contains(&k),
                "{k} reported signed but was not signed"
            );
        }
    }
    // Reruns of both (sequentially) finish the work the concurrent runs left held.
    let send = school.run("send-rerun", &school.send_spec("rm-sec-rerun"));
    check_outcomes(&send, &school.keys, &["sent", "skipped"]);
    let check = school.run(
        "check-rerun",
        &HostSpec::scheduled_check(&school.db_path, "rm-job-rerun"),
    );
    check_outcomes(&check, &school.keys, &["pending", "signed"]);
    for (k, o) in check.outcomes() {
        let expected = if signed.contains(&k) {
            "signed"
        } else {
            "pending"
        };
        assert_eq!(o, expected, "{k}");
    }
    let statuses: BTreeMap<String, String> = open_db(&school.db_path)
        .contract_statuses()
        .unwrap()
        .into_iter()
        .collect();
    for k in &signed {
        assert_eq!(statuses[k], "Assinado", "{k} marked signed in RM");
    }
    // Every contract has exactly one live document (the signed ones finalised, the rest
    // pending) and the records agree.
    let db = open_db(&school.db_path);
    let audit = audit(&db, &school.sim);
    assert!(audit.is_clean(), "{}", summary(&audit));
    for k in &school.keys {
        assert_eq!(audit.published_count(k), 1, "{k}");
    }
    figures(&format!(
        "multiprocess-job contracts={n} signed_before={} job={:?} secretaria_a={:?} secretaria_b={:?} send_rerun={:?} check_rerun={:?} duplicates={}",
        signed.len(),
        job.counts(),
        a.counts(),
        b.counts(),
        send.counts(),
        check.counts(),
        audit.duplicates.len()
    ));
}

/// A run presumed dead: the process doing the work is frozen (SIGSTOP) mid-batch, long enough
/// for its leases to expire; other processes take its contracts over and complete them; then
/// it wakes (SIGCONT) and goes on. Fencing: it changes no record (every write carries its lost
/// lease and is refused) and publishes, cancels or changes no recipient in TAE (an upload under
/// way when it froze may end as an unpublished draft); each contract still has exactly one
/// live document.
#[test]
fn a_frozen_run_woken_after_the_takeover_changes_nothing() {
    let n = size("TAE_EDU_MULTI_CONTRACTS", 300, 1000) / 3;
    let school = School::new(n, 20);
    let mut frozen = school.spawn("congelado", &school.send_spec("rm-frozen"));
    let freeze_after = (n / 5).max(3);
    assert!(
        frozen.pump_until(Instant::now() + Duration::from_secs(120), |p| {
            p.progress_with("sent") >= freeze_after
        }),
        "the run sent {freeze_after} contracts"
    );
    assert!(!frozen.finished(), "frozen mid-batch");
    frozen.signal("STOP");
    let frozen_at = Instant::now();
    let sent_before_freeze = frozen.progress_with("sent");
    let (takeover, reruns) = take_over(&school, frozen_at, "takeover");
    let a = assert_one_document_each(&school, "after the takeover");

    // What the woken run must leave alone.
    let records_before = open_db(&school.db_path).all_records().unwrap();
    // What would reach a person or undo the new owner's work. (An upload that was already
    // under way when the run froze may still complete as a draft: it is never published, is
    // counted below as an orphan draft, and carries the dead run's own send identity, so no
    // reconciliation adopts it.)
    let state_changing = [
        ("POST", tae_sim::api::PUBLISH_V1),
        ("POST", tae_sim::api::PUBLISH_V2),
        ("POST", tae_sim::api::CANCEL),
        ("POST", tae_sim::api::ADD_RECIPIENTS),
        ("DELETE", tae_sim::api::REMOVE_RECIPIENT),
    ];
    let counts_of = |school: &School| -> Vec<u64> {
        state_changing
            .iter()
            .map(|(m, r)| school.sim.state().counter(m, r))
            .collect()
    };
    let tae_before = counts_of(&school);
    let uploads_before = school.uploads();
    frozen.signal("CONT");
    let woken = frozen.finish(RUN_TIMEOUT);
    assert_eq!(woken.status, 0, "{}", woken.response);
    let records_after = open_db(&school.db_path).all_records().unwrap();
    let brief = |r: &serde_json::Value| {
        let events = r["events"].as_array().map_or(0, Vec::len);
        format!(
            "{} doc {} ({} events, last: {})",
            r["status"],
            r["document_id"],
            events,
            r["events"][events.max(1) - 1]
        )
    };
    let changed: Vec<String> = records_after
        .iter()
        .filter(|r| !records_before.contains(r))
        .map(|r| {
            let was = records_before
                .iter()
                .find(|b| b["id"] == r["id"])
                .map_or("new".to_string(), brief);
            format!(
                "{} record {}: {was} → {}",
                r["record_key"],
                r["id"],
                brief(r)
            )
        })
        .collect();
    assert!(
        changed.is_empty(),
        "records written by the run presumed dead: {}",
        integrity::few(&changed)
    );
    let tae_after = counts_of(&school);
    let deltas: Vec<String> = state_changing
        .iter()
        .zip(tae_before.iter().zip(&tae_after))
        .filter(|(_, (b, a))| a != b)
        .map(|((m, r), (b, a))| format!("{m} {r}: +{}", a - b))
        .collect();
    assert!(deltas.is_empty(), "the woken run changed TAE: {deltas:?}");
    let after = assert_one_document_each(&school, "after the woken run");
    let woken_uploads = school.uploads() - uploads_before;
    assert_eq!(
        after.orphan_drafts - a.orphan_drafts,
        woken_uploads as usize,
        "what the woken run uploaded stays an unpublished draft"
    );
    // How many of its contracts the woken run had handed a request over for before it froze,
    // refused at the write by its lapsed leases (the write gate), rather than by a lease check.
    let refused_at_write = woken.response["results"].as_array().map_or(0, |results| {
        results
            .iter()
            .filter(|r| {
                r["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("venceu antes do envio"))
            })
            .count()
    });
    figures(&format!(
        "multiprocess-frozen contracts={n} ttl_s={LEASE_TTL_SECS} frozen_after_sent={sent_before_freeze} reruns=[{}] takeover_after_ms={} woken={:?} refused_at_write={refused_at_write} records_changed_by_woken=0 woken_uploads={woken_uploads} duplicates={} orphan_drafts={}→{}",
        reruns.join(" "),
        takeover.as_millis(),
        woken.counts(),
        after.duplicates.len(),
        a.orphan_drafts,
        after.orphan_drafts
    ));
}
