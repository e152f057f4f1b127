//! TAE going down in the middle of a big send. (The three ways of not reaching it, each with
//! its own message: `integrity_messages.rs`.)
//!
//! The plugin talks to tae-sim through a proxy in this test process (`tests/src/tap.rs`).
//! "TAE stops" = the proxy closes its listening socket and cuts every open connection, so the
//! plugin gets "connection refused" exactly as when the server process dies; tae-sim behind it
//! keeps its documents, and the proxy listens again on the same port for the rerun. (tae-sim's
//! `SimServer` cannot be restarted with its state, so only the listener in front of it stops.)
//!
//! - 2,000 contracts (`TAE_EDU_OUTAGE_CONTRACTS`), TAE stopped once a quarter of them is done:
//!   the call ends at most 15 s after the outage; nothing is lost — every `sent` contract has
//!   its published document and a `pendente` record, every other one is `failed` or
//!   `not_processed` with a Portuguese reason, no published document is unknown to the records,
//!   records with a document id agree with TAE — or are one step behind on a publish the outage
//!   cut after TAE took it (`rascunho`, TAE published, the contract not reported sent) — and a
//!   record left `enviando` belongs to a contract that was not reported sent and has no
//!   published document (the rerun reconciles both); TAE back, the rerun completes with one
//!   document per contract and nothing `enviando`.

#[path = "integrity_support.rs"]
mod integrity;

use integrity::support::*;
use integrity::{few, summary};
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};
use tae_edu_tests::proofs::size;
use tae_edu_tests::tap::TapProxy;
use tae_sim::{FaultConfig, Latency, SimOptions};

/// From the outage to the end of the call, at most (issue 13).
const OUTAGE_BUDGET: Duration = Duration::from_secs(15);
/// The test cancels the call (through the progress callback) this long after the outage, so a
/// plugin that keeps retrying fails this test in bounded time instead of running for minutes.
const GIVE_UP_AFTER: Duration = Duration::from_secs(45);

fn point_at(w: &World, base_url: &str) {
    w.host
        .db()
        .configure_tae(base_url, tae_sim::ADMIN_EMAIL, tae_sim::ADMIN_PASSWORD)
        .expect("configure TAE");
}

#[test]
fn tae_stops_mid_batch_the_call_ends_within_15_s_nothing_is_lost_and_the_rerun_completes() {
    let n = size("TAE_EDU_OUTAGE_CONTRACTS", 2000, 2000);
    let started = Instant::now();
    let w = World::new(
        n,
        SimOptions {
            seed: 5,
            faults: FaultConfig {
                latency_ms: Some(Latency::Range { min: 0, max: 5 }),
                ..FaultConfig::default()
            },
            ..SimOptions::default()
        },
    );
    let proxy = Rc::new(RefCell::new(TapProxy::start(w.sim.addr()).expect("proxy")));
    let base = proxy.borrow().base_url();
    point_at(&w, &base);
    // The product's default client timeout, not the tests' short one: the bound must hold
    // without relying on short timeouts.
    w.host
        .db()
        .set_param("request_timeout_secs", &json!(30))
        .unwrap();
    w.warm_up();

    let outage_at: Rc<Cell<Option<Instant>>> = Rc::new(Cell::new(None));
    let done_at_outage = Rc::new(Cell::new(0u32));
    let cancelled_by_test = Rc::new(Cell::new(false));
    {
        let (proxy, outage_at, done_at_outage, cancelled_by_test) = (
            proxy.clone(),
            outage_at.clone(),
            done_at_outage.clone(),
            cancelled_by_test.clone(),
        );
        let stop_after = (n / 4).max(1) as u32;
        w.host
            .set_progress(host_sim::ProgressSink::Observe(Box::new(
                move |ev| match outage_at.get() {
                    None if ev.done >= stop_after => {
                        proxy.borrow_mut().stop();
                        outage_at.set(Some(Instant::now()));
                        done_at_outage.set(ev.done);
                        false
                    }
                    Some(t) if t.elapsed() > GIVE_UP_AFTER => {
                        cancelled_by_test.set(true);
                        true
                    }
                    _ => false,
                },
            )));
    }
    let requests_before = w.sim.state().total_requests();
    let (status, response) = w.execute(
        "send",
        json!({"kind": "contract_view", "contract_keys": w.keys}),
        report_source(),
    );
    let ended = Instant::now();
    let outage = outage_at.get().expect("the outage happened mid-batch");
    let after_outage = ended - outage;
    // The time bound is asserted last, so that a run that overran still gets every other
    // check (what it left behind, and the rerun).
    let overran = if cancelled_by_test.get() {
        Some(format!(
            "the call still ran {GIVE_UP_AFTER:?} after TAE stopped (cancelled by the test)"
        ))
    } else if after_outage > OUTAGE_BUDGET {
        Some(format!(
            "the call ended {:.1} s after TAE stopped (at most {OUTAGE_BUDGET:?})",
            after_outage.as_secs_f64()
        ))
    } else {
        None
    };
    let counts = outcome_counts(&response);
    let db = open_db(&w.db_path);
    let records = db.all_records().unwrap();
    let results = if cancelled_by_test.get() && status != 0 {
        assert_eq!(status, 8, "{response}");
        Default::default()
    } else {
        assert_eq!(status, 0, "{response}");
        let results = results_by_key(&response);
        assert_eq!(results.len(), n, "every contract answered once");
        results
    };
    for (key, r) in &results {
        let outcome = r["outcome"].as_str().unwrap_or("");
        match outcome {
            "sent" => {
                let id = r["document_id"].as_u64().unwrap_or_else(|| panic!("{r}"));
                assert_eq!(
                    w.sim.state().document_status(id),
                    Some(TAE_PENDING),
                    "{key}: reported sent, so its document {id} is published"
                );
                let active: Vec<&Value> = records
                    .iter()
                    .filter(|x| x["record_key"] == key.as_str() && x["status"] == "pendente")
                    .collect();
                assert_eq!(active.len(), 1, "{key}: one pendente record");
                assert_eq!(active[0]["document_id"].as_u64(), Some(id), "{key}");
            }
            "failed" | "not_processed" => {
                let msg = r["message"].as_str().unwrap_or("");
                assert!(msg.len() > 10, "{key}: {outcome} without a reason: {r}");
            }
            other => panic!("{key}: unexpected outcome {other}: {r}"),
        }
    }
    // The reason given to the contracts not started names the outage (wording: the breaker's).
    let not_processed: Vec<&Value> = results
        .values()
        .filter(|r| r["outcome"] == "not_processed")
        .collect();
    for r in not_processed.iter().filter(|_| !cancelled_by_test.get()) {
        let msg = r["message"].as_str().unwrap_or("").to_lowercase();
        assert!(
            [
                "indisponível",
                "recus",
                "conex",
                "não respond",
                "fora do ar"
            ]
            .iter()
            .any(|w| msg.contains(w)),
            "not_processed must say TAE is unreachable: {r}"
        );
    }
    let a = audit(&db, &w.sim);
    assert!(
        a.unknown_to_records.is_empty(),
        "published documents the records do not know: {}",
        few(&a.unknown_to_records)
    );
    // A record with a document id agrees with TAE, or is one step behind on a publish that
    // the outage cut after TAE took it (the answer never came): `rascunho` while TAE has it
    // published — only for a contract not reported sent; the rerun reconciles it.
    let mut behind = Vec::new();
    let mut wrong = Vec::new();
    for r in &records {
        let Some(id) = r["document_id"].as_u64() else {
            continue;
        };
        let key = r["record_key"].as_str().unwrap_or("").to_string();
        let status = r["status"].as_str().unwrap_or("");
        match w.sim.state().document_status(id) {
            Some(t) if record_status_for(t) == status => {}
            Some(t) if status == "falhou" && t == TAE_DRAFT => {}
            Some(TAE_PENDING)
                if status == "rascunho"
                    && results.get(&key).is_none_or(|x| x["outcome"] != "sent") =>
            {
                behind.push(key)
            }
            t => wrong.push(format!("{key}: record {status}, TAE {t:?} (document {id})")),
        }
    }
    assert!(
        wrong.is_empty(),
        "records that do not tell the truth about TAE: {}",
        few(&wrong)
    );
    assert!(a.duplicates.is_empty(), "{}", summary(&a));
    assert!(a.multiple_active.is_empty(), "{}", summary(&a));
    for key in &a.enviando {
        if let Some(r) = results.get(key) {
            assert_ne!(r["outcome"], "sent", "{key}: sent but enviando");
        }
        assert_eq!(a.published_count(key), 0, "{key}: enviando but published");
    }
    let enviando_after_outage = a.enviando.len();
    let drafts_after_outage = a.orphan_drafts;
    let requests_during = w.sim.state().total_requests() - requests_before;

    // TAE back on the same address; the rerun completes.
    proxy
        .borrow_mut()
        .restart()
        .expect("listen again on the same port");
    w.host.set_progress(host_sim::ProgressSink::Silent);
    let rerun = w.send(&w.keys);
    let rerun_counts = outcome_counts(&rerun);
    assert_eq!(
        rerun_counts
            .keys()
            .filter(|k| *k != "sent" && *k != "skipped")
            .count(),
        0,
        "{rerun_counts:?}"
    );
    let a = audit(&db, &w.sim);
    assert!(a.is_clean(), "{}", summary(&a));
    for k in &w.keys {
        assert_eq!(a.published_count(k), 1, "{k}");
    }
    figures(&format!(
        "outage contracts={n} stopped_after_done={} call_after_outage_ms={} outcomes={counts:?} requests={requests_during} enviando_after_outage={enviando_after_outage} publish_cut_after_outage={} drafts_after_outage={drafts_after_outage} rerun={rerun_counts:?} duplicates={} lost=0 enviando={} elapsed_s={}",
        done_at_outage.get(),
        after_outage.as_millis(),
        behind.len(),
        a.duplicates.len(),
        a.enviando.len(),
        started.elapsed().as_secs()
    ));
    if let Some(problem) = overran {
        let warnings: Vec<String> = w
            .host
            .logs()
            .into_iter()
            .filter(|l| l.level <= 2)
            .map(|l| l.message)
            .collect();
        panic!(
            "{problem}; outcomes {counts:?}; the plugin's last warnings: {:?}",
            &warnings[warnings.len().saturating_sub(4)..]
        );
    }
}
