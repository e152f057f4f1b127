//! A hostile TAE, through the built library with host-sim: tae-sim answers every upload of a
//! batch with one hostile answer at a time (truncated JSON, wrong types, missing fields, an HTML
//! page with status 200, a 10 MiB body, a slow drip of a byte a second, a redirect to another
//! host, a 1 GiB gzip bomb, a 200 with `success: false`), then a mix of them on every document
//! route. Each contract fails with a Portuguese message naming TAE's answer, no call outlives
//! the configured timeouts (the slow drip's wall time is measured against the 1 s request
//! timeout and the retry budget), and a clean rerun sends every contract with one published
//! document each, records and TAE in agreement. First, with tae-sim as its own process, it
//! measures the test process's peak memory (`VmHWM`, the library runs in it) while huge
//! answers come: it grows by far less than the hostile bodies.

#[path = "reliability_support.rs"]
mod support;

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::*;
use tae_sim::{FaultConfig, Hostile, HostileConfig, SimOptions};

const UPLOAD: &str = "POST /documents/v1/envelopes/upload";
/// Contracts per hostile answer.
const PER_MODE: usize = 3;

/// The test process's peak resident memory, in KiB (`VmHWM`).
fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

fn hostile(routes: &[(&str, Hostile)]) -> FaultConfig {
    FaultConfig {
        hostile: HostileConfig {
            routes: routes
                .iter()
                .map(|(r, h)| (r.to_string(), *h))
                .collect::<BTreeMap<_, _>>(),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[test]
fn every_hostile_answer_fails_its_contracts_by_name_then_the_rerun_completes() {
    let modes: [(Hostile, &str, &str); 9] = [
        (
            Hostile::TruncatedJson,
            "truncated_json",
            "resposta truncada",
        ),
        (
            Hostile::WrongTypes,
            "wrong_types",
            "campo idDocumento ausente",
        ),
        (
            Hostile::MissingFields,
            "missing_fields",
            "campo data ausente",
        ),
        (
            Hostile::HtmlError,
            "html_error",
            "respondeu com uma página HTML em vez de JSON",
        ),
        (
            Hostile::HugeBody,
            "huge_body",
            "resposta maior que o limite de 8 MB",
        ),
        (
            Hostile::SlowDrip,
            "slow_drip",
            "não respondeu dentro do tempo limite",
        ),
        (
            Hostile::Redirect,
            "redirect",
            "redirecionamento para outro endereço (tae-sim-redirect.invalid), recusado",
        ),
        (
            Hostile::GzipBomb,
            "gzip_bomb",
            "resposta compactada (gzip) que não foi pedida",
        ),
        (
            Hostile::SuccessFalse,
            "success_false",
            "recusou a operação: Não foi possível processar a solicitação",
        ),
    ];
    memory_stays_bounded_against_huge_answers();
    let mix_n = 12;
    let world = World::new(modes.len() * PER_MODE + mix_n, SimOptions::default());
    world.warm_up();
    let started_all = Instant::now();
    let mut lines = Vec::new();
    for (i, (mode, name, phrase)) in modes.iter().enumerate() {
        let keys = &world.keys[i * PER_MODE..(i + 1) * PER_MODE];
        world.set_faults(hostile(&[(UPLOAD, *mode)]));
        let started = Instant::now();
        let (status, response) = world.execute(
            "send",
            json!({"kind": "contract_view", "contract_keys": keys}),
            report_source(),
        );
        let took = started.elapsed();
        assert_eq!(status, 0, "{name}: {response}");
        // The client's whole-call bound: the retry budget (30 s) plus one request timeout
        // (1 s); a drip of a byte a second would take ~50 s per answer.
        if *mode == Hostile::SlowDrip {
            assert!(took < Duration::from_secs(31), "{took:?}");
        }
        let results = results_by_key(&response);
        assert_eq!(results.len(), PER_MODE, "{name}: {response}");
        for (key, r) in &results {
            let m = r["message"].as_str().unwrap_or("");
            match r["outcome"].as_str() {
                Some("failed") => assert!(m.contains(phrase), "{name} {key}: {m}"),
                // The breaker (timeouts on 3 contracts) may leave later ones unstarted.
                Some("not_processed") if *mode == Hostile::SlowDrip => {}
                other => panic!("{name} {key}: {other:?} {m}"),
            }
        }
        let line = format!("{name}: wall_ms={}", took.as_millis());
        println!("{line}");
        lines.push(line);
    }
    // A mix: several answers at once on the document routes, each request drawn (seeded) with
    // probability 1/2: some contracts go through, the others fail naming TAE's answer.
    let mix_keys = &world.keys[modes.len() * PER_MODE..];
    let mut mix = hostile(&[
        (UPLOAD, Hostile::TruncatedJson),
        (
            &format!("POST {}", tae_sim::api::PUBLISH_V1),
            Hostile::HtmlError,
        ),
        (
            &format!("GET {}", tae_sim::api::READ_V2),
            Hostile::MissingFields,
        ),
        (
            &format!("POST {}", tae_sim::api::SEARCH),
            Hostile::WrongTypes,
        ),
    ]);
    mix.hostile.rate = Some(0.5);
    world.set_faults(mix);
    let (status, response) = world.execute(
        "send",
        json!({"kind": "contract_view", "contract_keys": mix_keys}),
        report_source(),
    );
    assert_eq!(status, 0, "mix: {response}");
    let mix_counts = outcome_counts(&response);
    for (key, r) in results_by_key(&response) {
        let m = r["message"].as_str().unwrap_or("");
        match r["outcome"].as_str() {
            Some("sent") => {}
            Some("failed") => assert!(
                m.contains("o TOTVS Assinatura Eletrônica"),
                "mix {key}: {m}"
            ),
            other => panic!("mix {key}: {other:?} {m}"),
        }
    }
    lines.push(format!("mix(rate 0.5): {mix_counts:?}"));
    // The rerun, TAE well again: every contract sent once, records and TAE agree.
    world.set_faults(FaultConfig::default());
    let response = world.send(&world.keys);
    let counts = outcome_counts(&response);
    let mix_sent = mix_counts.get("sent").copied().unwrap_or(0);
    // The contracts the mix sent are skipped (already active); every other one is sent now.
    assert_eq!(
        (
            counts.get("sent").copied().unwrap_or(0),
            counts.get("skipped").copied().unwrap_or(0)
        ),
        (world.keys.len() - mix_sent, mix_sent),
        "{counts:?} {response}"
    );
    let a = audit(world.host.db(), &world.sim);
    assert!(a.is_clean(), "{a:#?}");
    for key in &world.keys {
        assert_eq!(a.published_count(key), 1, "{key}: {a:#?}");
    }
    let recs: Vec<Value> = world.records();
    let falhou = recs.iter().filter(|r| r["status"] == "falhou").count();
    figures(&format!(
        "hostile contracts={} {} rerun_sent={} rerun_skipped={mix_sent} duplicates={} lost=0 falhou_records_kept={falhou} orphan_drafts={} elapsed_s={}",
        world.keys.len(),
        lines.join(" | "),
        world.keys.len() - mix_sent,
        a.duplicates.len(),
        a.orphan_drafts,
        started_all.elapsed().as_secs()
    ));
}

/// tae-sim in its own process (so that the answers it builds do not count): the test process's
/// peak resident memory (`VmHWM`; the plugin runs in it) while three contracts at once get a
/// 10 MiB answer, then a gzip answer that expands to 1 GiB. Run first, alone in this test
/// binary (one test), so that nothing else raised the peak.
fn memory_stays_bounded_against_huge_answers() {
    use std::io::{BufRead, BufReader};
    let bin = tae_sim_binary();
    let mut child = std::process::Command::new(&bin)
        .args(["--addr", "127.0.0.1:0", "--seed", "7"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the tae-sim binary");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("tae-sim prints its URL");
    let base = first.trim().to_string();
    assert!(base.starts_with("http://"), "{first:?}");
    let world = World::new(2 * PER_MODE, SimOptions::default());
    world
        .host
        .db()
        .configure_tae(&base, tae_sim::ADMIN_EMAIL, tae_sim::ADMIN_PASSWORD)
        .expect("point the school at the separate tae-sim");
    world.warm_up();
    let http = reqwest::blocking::Client::new();
    let mut lines = Vec::new();
    for (i, (mode, phrase)) in [
        ("huge_body", "resposta maior que o limite de 8 MB"),
        ("gzip_bomb", "resposta compactada (gzip) que não foi pedida"),
    ]
    .into_iter()
    .enumerate()
    {
        let st = http
            .put(format!("{base}/_sim/faults"))
            .json(&json!({"hostile": {"routes": {UPLOAD: mode}}}))
            .send()
            .expect("set faults")
            .status();
        assert!(st.is_success(), "{st}");
        let keys = &world.keys[i * PER_MODE..(i + 1) * PER_MODE];
        let before = peak_kib();
        let (status, response) = world.execute(
            "send",
            json!({"kind": "contract_view", "contract_keys": keys}),
            report_source(),
        );
        let grew = peak_kib().saturating_sub(before);
        // Far less than one 10 MiB body (three came at once) or the 1 GiB expansion.
        assert!(grew < 4 * 1024, "{mode}: VmHWM +{grew} KiB");
        assert_eq!(status, 0, "{mode}: {response}");
        for (key, r) in results_by_key(&response) {
            assert_eq!(r["outcome"], "failed", "{mode} {key}: {r}");
            assert!(
                r["message"].as_str().unwrap_or("").contains(phrase),
                "{mode} {key}: {r}"
            );
        }
        lines.push(format!(
            "{mode}: vmhwm_before_kib={before} growth_kib={grew}"
        ));
    }
    let _ = child.kill();
    let _ = child.wait();
    figures(&format!(
        "hostile-memory contracts_per_answer={PER_MODE} {}",
        lines.join(" | ")
    ));
}

/// The `tae-sim` binary of this build, built when missing or older than its sources.
fn tae_sim_binary() -> std::path::PathBuf {
    use std::path::Path;
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile dir");
    let bin = dir.join("tae-sim");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let newest_src = newest(&root.join("tae-sim").join("src"));
    let stale = match std::fs::metadata(&bin).and_then(|m| m.modified()) {
        Ok(t) => newest_src.is_some_and(|s| s > t),
        Err(_) => true,
    };
    if stale {
        let mut cmd =
            std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cmd.current_dir(root)
            .args(["build", "-p", "tae-sim", "--bin", "tae-sim"])
            .env("CARGO_TARGET_DIR", dir.parent().unwrap());
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build -p tae-sim");
        assert!(status.success(), "cargo build -p tae-sim failed");
    }
    bin
}

fn newest(path: &std::path::Path) -> Option<std::time::SystemTime> {
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
