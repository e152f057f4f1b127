//! Crashes: the `host-sim` process running a 200-contract send (`TAE_EDU_CRASH_CONTRACTS`) is
//! killed with SIGKILL at several seeded points (after a seeded number of TAE requests), then
//! restarted and the send rerun each time. At the end each contract has exactly one published
//! document, the records agree with tae-sim one to one, and no record stays in "enviando".
//!
//! tae-sim runs in this test process, so its state survives the kills; the school database is a
//! SQLite file (WAL) that the killed process was writing.

#![cfg(unix)]

#[path = "reliability_support.rs"]
mod support;

use host_sim::seed::{DEMO_PERIOD, DEMO_RM_USER_CPF};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;
use tae_sim::{FaultConfig, Latency, SimOptions, SimServer};

const SEED: u64 = 7_2026;

/// The `host-sim` binary of this build (`target/<profile>/host-sim`), built when missing or
/// older than its sources.
fn host_sim_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("HOST_SIM_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    let mut dir = exe.parent().unwrap().to_path_buf();
    if dir.file_name().and_then(|n| n.to_str()) == Some("deps") {
        dir = dir.parent().unwrap().to_path_buf();
    }
    let bin = dir.join("host-sim");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let newest_src = newest(&root.join("host-sim").join("src"));
    let stale = match std::fs::metadata(&bin).and_then(|m| m.modified()) {
        Ok(t) => newest_src.is_some_and(|s| s > t),
        Err(_) => true,
    };
    if stale {
        let profile = dir.file_name().unwrap().to_str().unwrap().to_string();
        let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cmd.current_dir(root)
            .args(["build", "-p", "host-sim", "--bin", "host-sim"])
            .env("CARGO_TARGET_DIR", dir.parent().unwrap());
        if profile == "release" {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build -p host-sim");
        assert!(status.success(), "cargo build -p host-sim failed");
    }
    bin
}

fn newest(path: &Path) -> Option<std::time::SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    let mut t = meta.modified().ok();
    if meta.is_dir() {
        for e in std::fs::read_dir(path).ok()?.flatten() {
            if let Some(x) = newest(&e.path()) {
                t = Some(t.map_or(x, |y| y.max(x)));
            }
        }
    }
    t
}

fn send_command(bin: &Path, lib: &Path, db: &Path, sim: &SimServer) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("--lib")
        .arg(lib)
        .args(["execute", "--option", "send", "--period", DEMO_PERIOD])
        .arg("--db")
        .arg(db)
        .args(["--tae-url", &sim.base_url()])
        .args(["--email", tae_sim::ADMIN_EMAIL])
        .args(["--password", tae_sim::ADMIN_PASSWORD])
        .args(["--cpf", DEMO_RM_USER_CPF])
        .args(["--session", "rm-sessao-crash", "--json", "--log-level", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

#[test]
fn sigkill_during_send_then_rerun_never_duplicates() {
    let n: usize = std::env::var("TAE_EDU_CRASH_CONTRACTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let kills: usize = std::env::var("TAE_EDU_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let bin = host_sim_bin();
    let started = Instant::now();
    let mut rng = fastrand_like(SEED);
    let lib = host_sim::locate_plugin().expect("plugin");
    let sim = SimServer::start(SimOptions {
        seed: SEED,
        faults: FaultConfig {
            latency_ms: Some(Latency::Range { min: 0, max: 5 }),
            ..FaultConfig::default()
        },
        ..SimOptions::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("escola.db");
    {
        let db = open_db(&db_path);
        let keys = host_sim::seed_bulk(&db, n).unwrap();
        assert_eq!(keys.len(), n);
        configure_db(&db, &sim);
        db.set_param("lease_ttl_secs", &serde_json::json!(10))
            .unwrap();
    }
    // A send takes about 5 TAE requests per contract; each round is killed after a seeded
    // number of requests drawn within its share of the remaining work, so the kills spread
    // over the whole batch and each lands inside it.
    let mut killed = 0usize;
    let mut kill_log = Vec::new();
    let mut stuck_total = 0usize;
    for round in 0..kills {
        let base = sim.state().total_requests();
        let published_before = published(&sim);
        let remaining = n.saturating_sub(published_before) as u64;
        let window = (4 * remaining / (kills - round) as u64).max(10);
        let target = base + 5 + rng.next() % window;
        let mut child = send_command(&bin, &lib, &db_path, &sim).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut exited = None;
        while Instant::now() < deadline {
            if let Some(st) = child.try_wait().unwrap() {
                exited = Some(st);
                break;
            }
            if sim.state().total_requests() >= target {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        match exited {
            Some(st) => {
                let out = child.wait_with_output().unwrap();
                println!(
                    "round {round}: finished before its kill point ({st}); {} {}",
                    String::from_utf8_lossy(&out.stderr),
                    String::from_utf8_lossy(&out.stdout)
                        .chars()
                        .take(600)
                        .collect::<String>()
                );
                kill_log.push(format!("r{round}:exit"));
            }
            None => {
                child.kill().unwrap(); // SIGKILL on Unix
                let st = child.wait().unwrap();
                assert!(!st.success());
                killed += 1;
                let at = sim.state().total_requests() - base;
                // A killed process never releases its leases: they expire after the lease
                // time (the wait is proven in integrity_multiprocess.rs); end them now, as
                // that time passing does, so the rerun takes the contracts at once.
                expire_leases(&db_path);
                // What the killed process left mid-send (the rerun must reconcile these).
                let stuck = open_db(&db_path)
                    .all_records()
                    .unwrap()
                    .iter()
                    .filter(|r| {
                        ["enviando", "rascunho"].contains(&r["status"].as_str().unwrap_or(""))
                    })
                    .count();
                stuck_total += stuck;
                kill_log.push(format!("r{round}:{at}req/{stuck}stuck"));
                println!(
                    "round {round}: SIGKILL after {at} TAE requests; published {} → {}",
                    published_before,
                    published(&sim)
                );
            }
        }
    }
    // The final rerun runs to the end.
    let out = send_command(&bin, &lib, &db_path, &sim).output().unwrap();
    assert!(
        out.status.success(),
        "final rerun failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And one more sends nothing.
    let before = sim.state().counter("POST", tae_sim::api::UPLOAD);
    let out = send_command(&bin, &lib, &db_path, &sim).output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        sim.state().counter("POST", tae_sim::api::UPLOAD),
        before,
        "a complete rerun uploads nothing"
    );

    let db = open_db(&db_path);
    let a = audit(&db, &sim);
    let keys: Vec<String> = db
        .all_contracts()
        .unwrap()
        .iter()
        .map(|c| c.key())
        .collect();
    let missing: Vec<&String> = keys.iter().filter(|k| a.published_count(k) == 0).collect();
    assert!(a.duplicates.is_empty(), "duplicates: {:?}", a.duplicates);
    assert!(
        missing.is_empty(),
        "contracts without a document: {missing:?}"
    );
    assert!(
        a.enviando.is_empty(),
        "records left enviando: {:?}",
        a.enviando
    );
    assert!(a.is_clean(), "{a:?}");
    for k in &keys {
        assert_eq!(a.published_count(k), 1, "{k}");
    }
    figures(&format!(
        "crash contracts={n} kills={killed}/{kills} points=[{}] left_mid_send={stuck_total} published={} duplicates={} lost={} enviando={} orphan_drafts={} elapsed_s={}",
        kill_log.join(","),
        a.published.values().map(Vec::len).sum::<usize>(),
        a.duplicates.len(),
        missing.len(),
        a.enviando.len(),
        a.orphan_drafts,
        started.elapsed().as_secs()
    ));
    assert!(
        killed >= 3,
        "at least 3 kills landed inside the batch ({killed})"
    );
}

fn published(sim: &SimServer) -> usize {
    sim.state()
        .documents()
        .iter()
        .filter(|d| d["status"].as_i64() != Some(TAE_DRAFT))
        .count()
}

/// A tiny seeded generator (splitmix64), so the kill points are reproducible.
struct SplitMix(u64);

fn fastrand_like(seed: u64) -> SplitMix {
    SplitMix(seed)
}

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The secretary cancels a 60-contract send from the progress callback after 10 contracts: the
/// run stops cleanly (`cancelled`), the contracts in flight finish, the rest are
/// `not_processed`, no record is left "enviando", and a rerun completes the batch with exactly
/// one document per contract.
#[test]
fn cancel_from_progress_then_rerun_never_duplicates() {
    let w = World::new(60, SimOptions::default());
    w.host
        .set_progress(host_sim::ProgressSink::Observe(Box::new(|ev| {
            ev.done >= 10
        })));
    let (status, first) = w.execute(
        "send",
        serde_json::json!({"kind": "contract_view", "contract_keys": w.keys}),
        report_source(),
    );
    assert!(status == 0 || status == 8, "status {status}: {first}");
    if status == 0 {
        assert_eq!(first["summary"]["cancelled"], true, "{}", first["summary"]);
        let counts = outcome_counts(&first);
        let sent = *counts.get("sent").unwrap_or(&0);
        let not_processed = *counts.get("not_processed").unwrap_or(&0);
        assert!((10..60).contains(&sent), "{counts:?}");
        assert_eq!(sent + not_processed, 60, "{counts:?}");
        for r in first["results"].as_array().unwrap() {
            if r["outcome"] == "not_processed" {
                assert!(r["message"].as_str().unwrap().contains("cancelad"), "{r}");
            }
        }
    }
    let a = audit(w.host.db(), &w.sim);
    assert!(a.is_clean(), "after the cancel: {a:?}");
    let published_at_cancel: usize = a.published.values().map(Vec::len).sum();
    w.host.set_progress(host_sim::ProgressSink::Silent);
    let second = w.send(&w.keys);
    let counts = outcome_counts(&second);
    assert_eq!(counts.get("failed"), None, "{second}");
    assert_eq!(
        *counts.get("skipped").unwrap_or(&0),
        published_at_cancel,
        "{counts:?}"
    );
    let a = audit(w.host.db(), &w.sim);
    assert!(a.is_clean(), "{a:?}");
    for k in &w.keys {
        assert_eq!(a.published_count(k), 1, "{k}");
    }
    figures(&format!(
        "cancel contracts=60 cancelled_after=10 published_at_cancel={published_at_cancel} rerun={counts:?} duplicates={}",
        a.duplicates.len()
    ));
}
