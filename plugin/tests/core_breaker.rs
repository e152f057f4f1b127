//! The circuit breaker: when TAE stops mid-batch (connection refused), the run stops starting
//! contracts at once — the rest `not_processed` with a pt-BR reason — and the call ends well
//! within 15 s of the outage, with the plugin's default retry policy. Connection refused,
//! a timeout and https spoken to an http server each get their own message.

mod common;

use common::*;
use serde_json::json;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tae_edu::api;

#[test]
fn tae_down_mid_batch_ends_the_call_quickly_and_each_failure_has_its_own_message() {
    let sim = sim();
    // The plugin's real retry policy (5 attempts, 30 s budget, 250 ms base), not the tests'.
    tae_edu::tae::client::set_retry_policy(tae_edu::tae::RetryPolicy::default());
    sim.state().set_faults(tae_sim::FaultConfig {
        latency_ms: Some(tae_sim::faults::Latency::Fixed(10)),
        ..Default::default()
    });
    let host = MockHost::new(&sim.base_url());
    let n = 300;
    host.add_contracts(n);
    let keys = host.keys();
    let sim = Rc::new(RefCell::new(Some(sim)));
    let outage: Rc<RefCell<Option<Instant>>> = Rc::default();
    host.progress_hook.replace(Some(Box::new({
        let (sim, outage) = (sim.clone(), outage.clone());
        move |done| {
            if done == 20 {
                // TAE goes away: open connections close, new ones are refused.
                if let Some(s) = sim.borrow_mut().take() {
                    s.shutdown();
                }
                *outage.borrow_mut() = Some(Instant::now());
            }
        }
    })));
    let r = api::execute(&host, send_request(&session("breaker"), &keys)).unwrap();
    let ended = Instant::now();
    let outage = outage.borrow().expect("TAE was stopped mid-batch");
    let after_outage = ended - outage;
    let outcomes = outcomes(&r);
    let count = |o: &str| outcomes.iter().filter(|x| *x == o).count();
    eprintln!(
        "N={n}: {} sent, {} failed, {} not_processed; call ended {after_outage:?} after the outage",
        count("sent"),
        count("failed"),
        count("not_processed")
    );
    assert!(
        after_outage <= Duration::from_secs(15),
        "{after_outage:?} from the outage to the end of the call"
    );
    assert_eq!(
        count("sent") + count("failed") + count("not_processed"),
        n as usize
    );
    assert!(count("sent") >= 20, "{r:#}");
    // At most the contracts in flight (max_concurrency 8) fail, and at most one more wave
    // starts before the breaker trips; the rest are not started.
    assert!(count("failed") <= 2 * 8, "{} failed", count("failed"));
    assert!(
        count("sent") + count("failed") <= 20 + 2 * 8,
        "{} sent, {} failed",
        count("sent"),
        count("failed")
    );
    for res in r["results"].as_array().unwrap() {
        if res["outcome"] == "not_processed" {
            let m = res["message"].as_str().unwrap();
            assert!(
                m.contains("não processado") && m.contains("conexão") && m.contains("recusada"),
                "{m}"
            );
        }
    }
    // Nothing lost: every contract not sent either has no record, or a record a rerun
    // reconciles (mid-send) or resends (failed) — none claims a document TAE may not have.
    for (i, k) in keys.iter().enumerate() {
        for rec in host.records_of(k) {
            let st = rec["status"].as_str().unwrap();
            if outcomes[i] == "sent" {
                assert_eq!(st, "pendente", "{rec}");
            } else {
                assert!(
                    ["enviando", "rascunho", "falhou"].contains(&st),
                    "contract {k} ({}) record {st}",
                    outcomes[i]
                );
            }
        }
    }

    // The three ways of not reaching TAE, each with its own message (`configure test`).
    let test = |url: &str| {
        let mut values = host.params.borrow().clone();
        values["auth_url"] = json!(format!("{url}/identityintegration"));
        values["api_url"] = json!(url);
        values["request_timeout_secs"] = json!(1);
        values["service_user"] = json!(tae_sim::ADMIN_EMAIL);
        values["service_password"] = json!(tae_sim::ADMIN_PASSWORD);
        let started = Instant::now();
        let t = api::configure(&host, json!({"action": "test", "values": values})).unwrap();
        assert_eq!(t["login_ok"], false, "{t}");
        (
            t["message"].as_str().unwrap().to_string(),
            started.elapsed(),
        )
    };
    tae_edu::tae::client::set_retry_policy(tae_edu::tae::RetryPolicy {
        attempts: 2,
        budget: Duration::from_secs(5),
        base_delay: Duration::from_millis(10),
    });
    // Nothing listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let (refused, _) = test(&closed_url);
    // Listening, never answering.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (timeout, took) = test(&format!("http://{}", silent.local_addr().unwrap()));
    // https spoken to an http server.
    let plain = tae_sim::SimServer::start(tae_sim::SimOptions::default()).unwrap();
    let (mismatch, _) = test(&plain.base_url().replacen("http://", "https://", 1));
    eprintln!("refused: {refused}\ntimeout ({took:?}): {timeout}\nmismatch: {mismatch}");
    assert!(refused.contains("conexão recusada"), "{refused}");
    assert!(timeout.contains("tempo limite"), "{timeout}");
    assert!(mismatch.contains("protocolo"), "{mismatch}");
    assert!(!refused.contains("tempo limite") && !refused.contains("protocolo"));
    assert!(!timeout.contains("recusada") && !timeout.contains("protocolo"));
    assert!(!mismatch.contains("recusada") && !mismatch.contains("tempo limite"));
    drop(silent);
    plain.shutdown();
}
