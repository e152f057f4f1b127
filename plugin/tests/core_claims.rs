//! Two `execute` runs in one process over the same contracts: the second never waits — the
//! contracts the first holds are answered at once as `held`, naming who holds them — and a
//! rerun after the first ended skips them (they were sent once); a signed contract is never
//! sent again; a record write the host refuses because the run's leases were lost stops the run.

mod common;

use common::*;
use serde_json::json;
use std::sync::mpsc;
use std::time::Duration;
use tae_edu::api;
use tae_sim::faults::{FaultConfig, Latency};

#[test]
fn a_second_run_over_held_contracts_answers_at_once_and_a_rerun_skips_them() {
    let sim = sim();
    sim.state().set_faults(FaultConfig {
        latency_ms: Some(Latency::Fixed(20)),
        ..FaultConfig::default()
    });
    let base = sim.base_url();
    // Both runs share one records store and one DataServer, as two RM users of one host do.
    let records = SharedRecords::default();
    let data_server = "EduContratoData#claims".to_string();
    let (reached, reached_rx) = mpsc::channel::<u32>();
    let (go, go_rx) = mpsc::channel::<()>();
    // The first run: 12 contracts, one at a time. After its first contract it pauses inside
    // its progress callback (still holding all 12) until the second run has answered.
    let first = std::thread::spawn({
        let base = base.clone();
        let records = records.clone();
        let data_server = data_server.clone();
        move || {
            let host = MockHost::new(&base);
            host.shared_records.replace(Some(records));
            host.data_server.replace(data_server);
            host.set_param("max_concurrency", json!(1));
            host.add_contracts(12);
            let go_rx = std::sync::Mutex::new(go_rx);
            host.progress_hook.replace(Some(Box::new(move |done| {
                if done == 1 {
                    reached.send(done).unwrap();
                    // Bounded: if the second run waited for this one, the test fails instead
                    // of hanging.
                    let released = go_rx.lock().unwrap().recv_timeout(Duration::from_secs(60));
                    assert!(released.is_ok(), "the second run never answered");
                }
            })));
            let keys = host.keys();
            api::execute(&host, send_request(&session("first"), &keys)).unwrap()
        }
    });
    assert_eq!(reached_rx.recv_timeout(Duration::from_secs(60)), Ok(1));
    let documents_while_held = sim.state().documents().len();
    let host = MockHost::new(&base);
    host.add_contracts(12);
    let keys = host.keys();
    host.shared_records.replace(Some(records.clone()));
    host.data_server.replace(data_server);
    // Answered while the first run is paused: it cannot have waited for it.
    let second = api::execute(&host, send_request(&session("second"), &keys)).unwrap();
    assert_eq!(outcomes(&second), ["held"; 12], "{second:#}");
    assert_eq!(second["summary"]["held"], 12, "{second:#}");
    for r in second["results"].as_array().unwrap() {
        let m = r["message"].as_str().unwrap();
        assert!(
            m.contains("em processamento por outra execução") && m.contains("secretaria"),
            "{m}"
        );
    }
    assert_eq!(
        sim.state().documents().len(),
        documents_while_held,
        "the second run sent nothing"
    );
    assert!(
        host.auth_prompts.borrow().is_empty(),
        "nothing to do: no screen"
    );
    go.send(()).unwrap();
    let first = first.join().unwrap();
    assert_eq!(outcomes(&first), ["sent"; 12], "{first:#}");
    // A rerun once the first ended takes the contracts and skips them: they were sent.
    let rerun = api::execute(&host, send_request(&session("second"), &keys)).unwrap();
    assert_eq!(outcomes(&rerun), ["skipped"; 12], "{rerun:#}");
    // Exactly one document per contract in TAE, every one published.
    let docs = sim.state().documents();
    let mut names: Vec<String> = docs
        .iter()
        .map(|d| contract_name(d["name"].as_str().unwrap_or("")))
        .collect();
    names.sort();
    names.dedup();
    assert_eq!((docs.len(), names.len()), (12, 12), "{names:?}");
    assert!(docs.iter().all(|d| d["status"] != 5), "a draft was left");
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

/// A host that turns `MockHost::lease_lost` on once `lost` is set (by the progress hook).
struct LosesLeases<'a>(&'a MockHost, std::rc::Rc<std::cell::Cell<bool>>);

impl tae_edu::host::Host for LosesLeases<'_> {
    fn call(&self, method: &str, request: &[u8]) -> Result<Vec<u8>, tae_edu::host::HostCallError> {
        self.0.lease_lost.set(self.1.get());
        self.0.call(method, request)
    }
    fn log(&self, level: tae_edu::host::LogLevel, message: &str) {
        self.0.log(level, message)
    }
    fn progress(&self, done: u32, total: u32, detail: &str) -> bool {
        self.0.progress(done, total, detail)
    }
}

#[test]
fn a_write_refused_because_the_lease_was_lost_stops_the_run() {
    let sim = sim();
    let host = MockHost::new(&sim.base_url());
    host.set_param("max_concurrency", json!(1));
    host.add_contracts(6);
    let keys = host.keys();
    // After two contracts, the host refuses every write (code lease_lost): another run took
    // the contracts over after this run's leases expired.
    let lost = std::rc::Rc::new(std::cell::Cell::new(false));
    host.progress_hook.replace(Some(Box::new({
        let lost = lost.clone();
        move |done| {
            if done == 2 {
                lost.set(true);
            }
        }
    })));
    let r = api::execute(
        &LosesLeases(&host, lost),
        send_request(&session("lease-lost"), &keys),
    )
    .unwrap();
    let outs = outcomes(&r);
    assert_eq!(&outs[..2], ["sent", "sent"], "{r:#}");
    assert_eq!(outs[2], "failed", "{r:#}");
    assert!(
        r["results"][2]["message"]
            .as_str()
            .unwrap()
            .contains("outra execução os assumiu"),
        "{r:#}"
    );
    for (i, o) in outs.iter().enumerate().skip(3) {
        assert_eq!(o, "not_processed", "contract {i}: {r:#}");
        let m = r["results"][i]["message"].as_str().unwrap();
        assert!(m.contains("reserva"), "{m}");
    }
    // The refused contract never reached TAE: its record write comes first.
    assert_eq!(sim.state().documents().len(), 2);
}
