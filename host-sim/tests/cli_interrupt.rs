//! Ctrl-C during a bulk send: SIGINT to a running `host-sim` child process mid-batch. The
//! first asks the plugin to stop — the contracts in flight finish, the rest come back not
//! processed, the summary prints and no record is left "enviando"; the second exits at once.
#![cfg(unix)]

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const CONTRACTS: usize = 300;

fn slow_sim() -> tae_sim::SimServer {
    let sim = tae_sim::SimServer::start(tae_sim::SimOptions::default()).unwrap();
    // Every TAE route answers after 40 ms, so the batch lasts several seconds.
    sim.state().set_faults(tae_sim::FaultConfig {
        latency_ms: Some(tae_sim::Latency::Fixed(40)),
        ..Default::default()
    });
    sim
}

/// Starts a bulk send; answers the child and a channel of its stderr lines.
fn start_send(db: &std::path::Path, url: &str) -> (Child, mpsc::Receiver<String>) {
    let mut child = host_sim()
        .args(["execute", "--option", "send", "--db"])
        .arg(db)
        .args(["--tae-url", url, "--email", tae_sim::ADMIN_EMAIL])
        .args(["--password", tae_sim::ADMIN_PASSWORD])
        .args(["--cpf", host_sim::seed::DEMO_RM_USER_CPF])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Waits (deadline) for a stderr line containing `needle`; answers every line read.
fn wait_for(rx: &mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let hit = line.contains(needle);
                seen.push(line);
                if hit {
                    return;
                }
            }
            Err(_) => panic!(
                "no stderr line with {needle:?} in time; seen:\n{}",
                seen.join("\n")
            ),
        }
    }
}

fn sigint(child: &Child) {
    let st = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

/// The counts of the summary line `resumo: N contratos: 3 enviados, 2 com falha, …`.
fn summary_counts(stdout: &str) -> (i64, Vec<(i64, String)>) {
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("resumo:"))
        .unwrap_or_else(|| panic!("no summary in:\n{stdout}"));
    let rest = line.trim_start().trim_start_matches("resumo: ");
    let (total, parts) = rest.split_once(" contratos: ").expect("N contratos:");
    let parts = parts
        .split(" (")
        .next()
        .unwrap()
        .split(" — ")
        .next()
        .unwrap();
    let counts = parts
        .split(", ")
        .map(|p| {
            let (n, words) = p.split_once(' ').unwrap();
            (n.parse().unwrap(), words.to_string())
        })
        .collect();
    (total.parse().unwrap(), counts)
}

fn records_by_status(db: &std::path::Path) -> Vec<(String, i64)> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut st = c
        .prepare("SELECT status, count(*) FROM integration_records GROUP BY status ORDER BY status")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn the_first_ctrl_c_stops_the_batch_and_prints_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let db = seed(dir.path(), "escola.db", Some(CONTRACTS));
    let sim = slow_sim();
    let (child, rx) = start_send(&db, &sim.base_url());
    let mut seen = Vec::new();
    // Mid-batch: the first progress line (the first contract is done).
    wait_for(&rx, "andamento:", &mut seen);
    sigint(&child);
    wait_for(&rx, "interrupção pedida", &mut seen);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    seen.extend(rx.try_iter());
    let stderr = seen.join("\n");
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("execução interrompida a pedido"),
        "{stdout}"
    );
    let (total, counts) = summary_counts(&stdout);
    assert_eq!(total, CONTRACTS as i64, "{stdout}");
    let count = |w: &str| {
        counts
            .iter()
            .filter(|(_, words)| words.starts_with(w))
            .map(|(n, _)| *n)
            .sum::<i64>()
    };
    let sent = count("enviado");
    let not_processed = count("não processado");
    assert!(sent >= 1, "{stdout}");
    assert!(not_processed >= 1, "nothing was left unprocessed: {stdout}");
    assert_eq!(
        counts.iter().map(|(n, _)| n).sum::<i64>(),
        total,
        "the counts do not add up: {stdout}"
    );
    // The records agree: one published record per contract sent, none left "enviando".
    let records = records_by_status(&db);
    assert!(
        !records.iter().any(|(s, _)| s == "enviando"),
        "a record was left enviando: {records:?}"
    );
    let published: i64 = records
        .iter()
        .filter(|(s, _)| s == "pendente")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(published, sent, "{records:?}\n{stdout}");
    assert_eq!(
        records.iter().map(|(_, n)| n).sum::<i64>(),
        sent + count("com falha"),
        "{records:?}\n{stdout}"
    );
    let english = english_words(&format!("{stdout}\n{stderr}"));
    assert!(english.is_empty(), "{english:#?}");
}

#[test]
fn a_second_ctrl_c_exits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = seed(dir.path(), "escola.db", Some(CONTRACTS));
    let sim = slow_sim();
    let (mut child, rx) = start_send(&db, &sim.base_url());
    let mut seen = Vec::new();
    wait_for(&rx, "andamento:", &mut seen);
    sigint(&child);
    wait_for(&rx, "interrupção pedida", &mut seen);
    sigint(&child);
    let started = Instant::now();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{}", seen.join("\n"));
    // At once: well before the contracts in flight (40 ms per TAE call) could all finish.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(!out.contains("resumo:"), "{out}");
}
