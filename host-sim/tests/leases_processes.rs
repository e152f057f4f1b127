//! Leases across OS processes over one SQLite file, as several RM application servers over one
//! RM database (`docs/abi.md`, "Leases").
//!
//! This test binary has its own `main` (`harness = false`): run plainly it is the parent and
//! runs the scenarios; run with `HOST_SIM_LEASE_CHILD` set it is one host process of a
//! scenario (the parent re-executes this same executable), talking to the parent through
//! stdout lines and the database.

use host_sim::db::{ContractRef, DbErrorKind, LeaseOwner, SchoolDb, CONTRACT_DATA_SERVER};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "HOST_SIM_LEASE_CHILD";
const CONTRACTS: usize = 200;
const PROCESSES: usize = 4;

fn owner(run: &str) -> LeaseOwner {
    LeaseOwner {
        run_id: run.into(),
        session: format!("sessao-{run}"),
        user: "secretaria".into(),
        machine: format!("rm-app-{}", std::process::id()),
        option: "send".into(),
        other: Default::default(),
    }
}

fn keys() -> Vec<String> {
    (0..CONTRACTS)
        .map(|i| format!("1;B{i:06};{}", 100_000 + i))
        .collect()
}

fn record(id: &str, key: &str, status: &str) -> Value {
    json!({
        "id": id, "data_server": CONTRACT_DATA_SERVER, "record_key": key, "status": status,
        "created_at": "2026-12-02T10:00:00Z", "updated_at": "2026-12-02T10:00:00Z",
        "events": [{"at": "2026-12-02T10:00:00Z", "by": "secretaria", "kind": "created", "detail": id}],
    })
}

/// Polls `cond` every 10 ms until it holds, failing after `limit`.
fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ------------------------------------------------------------------------------------ child

fn child(role: &str) {
    let db_path = PathBuf::from(std::env::var("LEASE_DB").expect("LEASE_DB"));
    let run = std::env::var("LEASE_RUN").expect("LEASE_RUN");
    let db = SchoolDb::open_existing(&db_path).expect("open the shared database");
    match role {
        // Waits for the go file, then takes every contract it can, in batches of 2 starting at
        // its own offset, and writes one record per contract it got under its token.
        "race" => {
            let go = PathBuf::from(std::env::var("LEASE_GO").expect("LEASE_GO"));
            let offset: usize = std::env::var("LEASE_OFFSET").unwrap().parse().unwrap();
            println!("ready");
            let deadline = Instant::now() + Duration::from_secs(30);
            while !go.exists() {
                assert!(
                    Instant::now() < deadline,
                    "timed out waiting for the go file"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            let mut all: Vec<ContractRef> =
                keys().iter().map(|k| ContractRef::contract(k)).collect();
            all.rotate_left(offset);
            let mut granted = Vec::new();
            let mut held = Vec::new();
            for chunk in all.chunks(2) {
                let g = db.acquire_leases(&owner(&run), 60, chunk).expect("acquire");
                assert_eq!(g.token, run);
                granted.extend(g.granted.into_iter().map(|c| c.key));
                held.extend(
                    g.held
                        .into_iter()
                        .map(|h| json!({"key": h.key, "holder": h.holder.run_id})),
                );
            }
            let records: Vec<Value> = granted
                .iter()
                .map(|k| record(&format!("{run}:{k}"), k, "enviando"))
                .collect();
            db.put_records_leased(&records, Some(&run))
                .expect("a put under leases the run holds");
            println!("{}", json!({"run": run, "granted": granted, "held": held}));
        }
        // Takes the first ten contracts with a one-second lease, writes under it, says so and
        // then waits to be killed (a crashed application server never releases).
        "hold" => {
            let first: Vec<ContractRef> = keys()[..10]
                .iter()
                .map(|k| ContractRef::contract(k))
                .collect();
            let g = db.acquire_leases(&owner(&run), 1, &first).expect("acquire");
            assert_eq!(g.granted.len(), 10, "{g:?}");
            let records: Vec<Value> = keys()[..10]
                .iter()
                .map(|k| record(&format!("{run}:{k}"), k, "enviando"))
                .collect();
            db.put_records_leased(&records, Some(&run)).expect("put");
            println!("held");
            loop {
                std::thread::park();
            }
        }
        other => panic!("unknown child role {other}"),
    }
}

// ----------------------------------------------------------------------------------- parent

fn spawn(
    role: &str,
    db: &Path,
    run: &str,
    extra: &[(&str, String)],
) -> (Child, BufReader<ChildStdout>) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env(CHILD_ENV, role)
        .env("LEASE_DB", db)
        .env("LEASE_RUN", run)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn a host process");
    let out = BufReader::new(child.stdout.take().unwrap());
    (child, out)
}

fn line(out: &mut BufReader<ChildStdout>) -> String {
    let mut s = String::new();
    out.read_line(&mut s).expect("read a child's line");
    s.trim().to_string()
}

/// Four processes race for the same 200 contracts: each contract is granted to exactly one,
/// every other process is told that one holds it, and the records agree.
fn processes_race_for_the_same_contracts() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("escola.db");
    let go = dir.path().join("go");
    let parent_db = SchoolDb::open(&db_path).unwrap();
    let mut children: Vec<_> = (0..PROCESSES)
        .map(|i| {
            spawn(
                "race",
                &db_path,
                &format!("run-{i}"),
                &[
                    ("LEASE_GO", go.display().to_string()),
                    ("LEASE_OFFSET", (i * CONTRACTS / PROCESSES + 3).to_string()),
                ],
            )
        })
        .collect();
    for (_, out) in children.iter_mut() {
        assert_eq!(line(out), "ready");
    }
    std::fs::write(&go, b"go").unwrap();
    let results: Vec<Value> = children
        .iter_mut()
        .map(|(child, out)| {
            let v: Value = serde_json::from_str(&line(out)).expect("a child's result");
            assert!(child.wait().unwrap().success());
            v
        })
        .collect();
    let mut winners_total = 0;
    let mut contested = 0;
    for key in keys() {
        let winners: Vec<&str> = results
            .iter()
            .filter(|r| {
                r["granted"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k == &json!(key))
            })
            .map(|r| r["run"].as_str().unwrap())
            .collect();
        assert_eq!(winners.len(), 1, "{key} granted to {winners:?}");
        winners_total += 1;
        for r in &results {
            if r["run"] != winners[0] {
                let h = r["held"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|h| h["key"] == json!(key))
                    .unwrap_or_else(|| panic!("{key}: {} was not told who holds it", r["run"]));
                assert_eq!(h["holder"], winners[0]);
                contested += 1;
            }
        }
    }
    assert_eq!(winners_total, CONTRACTS);
    // The database agrees: one lease and one record per contract, both of the winner.
    let leases = parent_db.leases().unwrap();
    assert_eq!(leases.len(), CONTRACTS);
    let records = parent_db.all_records().unwrap();
    assert_eq!(records.len(), CONTRACTS);
    for l in &leases {
        let rec = records
            .iter()
            .find(|r| r["record_key"] == json!(l.contract.key))
            .unwrap();
        assert_eq!(rec["id"], json!(format!("{}:{}", l.token, l.contract.key)));
    }
    let per_run: Vec<usize> = results
        .iter()
        .map(|r| r["granted"].as_array().unwrap().len())
        .collect();
    println!(
        "processes_race_for_the_same_contracts: {PROCESSES} processes x {CONTRACTS} contracts, granted per process {per_run:?}, held answers {contested}: ok"
    );
}

/// A process holding leases is killed; after the lease time (judged on the database's clock)
/// another process takes its contracts, and the dead run's stale write is refused whole.
fn a_killed_process_leases_expire_and_its_stale_write_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("escola.db");
    let db = SchoolDb::open(&db_path).unwrap();
    let first: Vec<ContractRef> = keys()[..10]
        .iter()
        .map(|k| ContractRef::contract(k))
        .collect();

    let (mut holder, mut out) = spawn("hold", &db_path, "run-crashed", &[]);
    assert_eq!(line(&mut out), "held");
    // While the lease is live, another run is told who holds it.
    let early = db.acquire_leases(&owner("run-rerun"), 60, &first).unwrap();
    let expires = db
        .leases()
        .unwrap()
        .iter()
        .map(|l| l.expires_at_ms)
        .max()
        .unwrap();
    if db.db_now_ms().unwrap() < expires - 200 {
        assert!(early.granted.is_empty(), "{early:?}");
        assert_eq!(early.held.len(), 10);
        assert_eq!(early.held[0].holder.run_id, "run-crashed");
    }
    holder.kill().unwrap(); // SIGKILL: no release, no cleanup.
    holder.wait().unwrap();

    wait_until(
        "the lease to expire on the database clock",
        Duration::from_secs(10),
        || db.db_now_ms().unwrap() > expires,
    );
    let taken = db.acquire_leases(&owner("run-rerun"), 60, &first).unwrap();
    assert_eq!(taken.granted, first, "{taken:?}");
    db.put_records_leased(
        &keys()[..10]
            .iter()
            .map(|k| record(&format!("run-crashed:{k}"), k, "pendente"))
            .collect::<Vec<_>>(),
        Some("run-rerun"),
    )
    .unwrap();

    // The run presumed dead comes back (another process, the old token): refused, nothing written.
    let stale = SchoolDb::open_existing(&db_path).unwrap();
    let before = stale.all_records().unwrap();
    let e = stale
        .put_records_leased(
            &[record("run-crashed:late", &keys()[0], "falhou")],
            Some("run-crashed"),
        )
        .unwrap_err();
    assert_eq!(e.kind, DbErrorKind::LeaseLost(vec![first[0].clone()]));
    assert_eq!(stale.all_records().unwrap(), before);
    assert!(before.iter().all(|r| r["status"] == "pendente"));
    let renew = stale.renew_leases("run-crashed", 60, &first).unwrap();
    assert_eq!(renew.lost, first);
    println!("a_killed_process_leases_expire_and_its_stale_write_is_refused: ok");
}

fn main() {
    if let Ok(role) = std::env::var(CHILD_ENV) {
        child(&role);
        return;
    }
    processes_race_for_the_same_contracts();
    a_killed_process_leases_expire_and_its_stale_write_is_refused();
}
