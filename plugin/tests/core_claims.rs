//! Two `execute` runs in one process over the same contracts: the second waits until the first
//! releases them and only then reads their records (else it would act on records from before
//! the first one's send and send the contracts twice); and a signed contract is never sent again.

mod common;

use common::*;
use serde_json::json;
use std::time::{Duration, Instant};
use tae_edu::api;
use tae_sim::faults::{FaultConfig, Latency};

#[test]
fn a_second_run_over_the_same_contracts_waits_and_then_skips_them() {
    let sim = sim();
    sim.state().set_faults(FaultConfig {
        latency_ms: Some(Latency::Fixed(40)),
        ..FaultConfig::default()
    });
    let base = sim.base_url();
    let started = Instant::now();
    // Both runs share one records store, as two RM users of one host do.
    let records = SharedRecords::default();
    // The first run: 12 contracts, one at a time, 3-4 requests of 40 ms each.
    let first = std::thread::spawn({
        let base = base.clone();
        let records = records.clone();
        move || {
            let host = MockHost::new(&base);
            host.shared_records.replace(Some(records));
            host.set_param("max_concurrency", json!(1));
            host.add_contracts(12);
            let keys = host.keys();
            let r = api::execute(&host, send_request(&session("first"), &keys)).unwrap();
            (r, started.elapsed())
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let host = MockHost::new(&base);
    host.add_contracts(12);
    let keys = host.keys();
    let second_started = started.elapsed();
    // The same records store: the plugin must read it only after the first run released.
    host.shared_records.replace(Some(records.clone()));
    let second = api::execute(&host, send_request(&session("second"), &keys)).unwrap();
    let second_ended = started.elapsed();
    let (first, first_ended) = first.join().unwrap();
    assert!(
        first_ended > second_started,
        "the first run must still be running when the second starts ({first_ended:?} vs {second_started:?})"
    );
    assert!(
        second_ended >= first_ended,
        "the second run waited for the first"
    );
    assert_eq!(outcomes(&first), ["sent"; 12], "{first:#}");
    assert_eq!(outcomes(&second), ["skipped"; 12], "{second:#}");
    let published = sim
        .state()
        .documents()
        .iter()
        .filter(|d| d["status"] != 5)
        .count();
    assert_eq!(published, 12, "exactly one published document per contract");
}

#[test]
fn a_signed_contract_is_never_sent_again() {
    let sim = sim();
    let host = MockHost::new(&sim.base_url());
    host.add_contracts(2);
    let keys = host.keys();
    let s = session("signed");
    let sent = api::execute(&host, send_request(&s, &keys)).unwrap();
    assert_eq!(outcomes(&sent), ["sent"; 2], "{sent:#}");
    // The first contract's responsible signs; the check marks its record finalised.
    let first_doc = sent["results"][0]["document_id"].as_u64().unwrap();
    portal(
        &sim,
        "POST",
        &format!("/_sim/documents/{first_doc}/act"),
        Some(json!({"email": "resp1@familia.example"})),
    );
    let checked = api::execute(&host, option_request(&s, "check", &keys)).unwrap();
    assert_eq!(outcomes(&checked), ["signed", "pending"], "{checked:#}");
    // Cancel the second one: a cancelled contract may be sent again, a signed one may not.
    let deleted = api::execute(&host, option_request(&s, "delete", &keys[1..])).unwrap();
    assert_eq!(outcomes(&deleted), ["deleted"], "{deleted:#}");
    let documents_before = sim.state().documents().len();
    let again = api::execute(&host, send_request(&s, &keys)).unwrap();
    assert_eq!(outcomes(&again), ["skipped", "sent"], "{again:#}");
    let message = again["results"][0]["message"].as_str().unwrap();
    assert!(message.contains("já foi assinado"), "{message}");
    assert_eq!(again["results"][0]["document_id"].as_u64(), Some(first_doc));
    assert_eq!(sim.state().documents().len(), documents_before + 1);
}
