//! Concurrency: 8 threads in 2 RM sessions (each session authenticated as a different TAE user)
//! call `execute` at once on disjoint contracts: no deadlock, no token crosses sessions (every
//! document is created by its session's TAE user), every result correct. A call made from
//! inside a host callback is refused with REENTRANT_CALL (5). `tae_edu_shutdown` during idle,
//! then a new call, works.

#[path = "reliability_support.rs"]
mod support;

use serde_json::{json, Value};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::*;
use tae_sim::{FaultConfig, Latency, NewUser, SimOptions};

const THREADS: usize = 8;

/// The tests of this file run one at a time: `tae_edu_shutdown` must find the plugin idle.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}
const PER_THREAD: usize = 12;
const USER_B: &str = "operador.b@escola.example";
const PASSWORD_B: &str = "Operador#B2026";

struct ThreadResult {
    thread: usize,
    session: String,
    send: Value,
    check: Value,
    auth_screens: usize,
}

#[test]
fn eight_threads_two_sessions_disjoint_contracts() {
    let _serial = serial();
    let w = World::new(
        THREADS * PER_THREAD,
        SimOptions {
            seed: 11,
            faults: FaultConfig {
                latency_ms: Some(Latency::Range { min: 0, max: 5 }),
                ..FaultConfig::default()
            },
            ..SimOptions::default()
        },
    );
    w.sim
        .state()
        .create_user(NewUser {
            email: USER_B.into(),
            password: Some(PASSWORD_B.into()),
            name: "Operador B".into(),
            cpf: "39053344705".into(),
            ..NewUser::default()
        })
        .expect("create TAE user B");
    // Register the RM user in TAE once, so the threads only authenticate.
    w.warm_up();
    let session_a = unique_session("sessao-a");
    let session_b = unique_session("sessao-b");
    let (tx, rx) = mpsc::channel::<Result<ThreadResult, String>>();
    let started = Instant::now();
    for t in 0..THREADS {
        let keys: Vec<String> = w.keys[t * PER_THREAD..(t + 1) * PER_THREAD].to_vec();
        let db_path = w.db_path.clone();
        let session = if t % 2 == 0 {
            session_a.clone()
        } else {
            session_b.clone()
        };
        let creds = if t % 2 == 0 {
            (tae_sim::ADMIN_EMAIL, tae_sim::ADMIN_PASSWORD)
        } else {
            (USER_B, PASSWORD_B)
        };
        let tx = tx.clone();
        std::thread::spawn(move || {
            let run = || -> Result<ThreadResult, String> {
                let p = plugin();
                let host = host_sim::RmHost::new(open_db(&db_path), host_sim::seed::DEMO_RM_USER);
                host.set_ui(
                    host_sim::UiScript::with_credentials(creds.0, creds.1)
                        .then_cpf(host_sim::seed::DEMO_RM_USER_CPF),
                );
                let req = |option: &str, params: Value| json!({"session": session, "invoked_from": {"kind": "contract_view", "contract_keys": keys}, "option": option, "params": params});
                let (s, send) = p.execute(&host, &req("send", report_source()));
                if s != 0 {
                    return Err(format!("thread {t}: send status {s}: {send}"));
                }
                let (s, check) = p.execute(&host, &req("check", json!({})));
                if s != 0 {
                    return Err(format!("thread {t}: check status {s}: {check}"));
                }
                if host.foreign_thread_calls() != 0 || host.calls_outside_export() != 0 {
                    return Err(format!("thread {t}: host callbacks off the calling thread"));
                }
                let auth_screens = host
                    .ui_requests()
                    .iter()
                    .filter(|(m, _)| m == "ui.authenticate")
                    .count();
                Ok(ThreadResult {
                    thread: t,
                    session: session.clone(),
                    send,
                    check,
                    auth_screens,
                })
            };
            let _ = tx.send(run());
        });
    }
    drop(tx);
    let mut results = Vec::new();
    for _ in 0..THREADS {
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(Ok(r)) => results.push(r),
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => panic!("deadlock: a thread did not finish within 120 s"),
        }
    }
    let elapsed = started.elapsed();
    let docs = w.sim.state().documents();
    let creator: std::collections::HashMap<u64, String> = docs
        .iter()
        .map(|d| {
            (
                d["id"].as_u64().unwrap(),
                d["created_by"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let mut screens = [0usize; 2];
    for r in &results {
        let keys = &w.keys[r.thread * PER_THREAD..(r.thread + 1) * PER_THREAD];
        let by_key = results_by_key(&r.send);
        assert_eq!(by_key.len(), PER_THREAD, "thread {}: {}", r.thread, r.send);
        let expected_creator = if r.session == session_a {
            tae_sim::ADMIN_EMAIL
        } else {
            USER_B
        };
        for k in keys {
            let res = &by_key[k];
            assert_eq!(res["outcome"], "sent", "thread {} {k}: {res}", r.thread);
            let id = res["document_id"].as_u64().unwrap();
            assert_eq!(
                creator[&id], expected_creator,
                "thread {} ({}) sent {k} as {}: a token crossed sessions",
                r.thread, r.session, creator[&id]
            );
        }
        for (k, res) in results_by_key(&r.check) {
            assert!(
                keys.contains(&k),
                "thread {}: result for a foreign contract {k}",
                r.thread
            );
            assert_eq!(res["outcome"], "pending", "{k}: {res}");
        }
        screens[(r.session == session_b) as usize] += r.auth_screens;
    }
    let a = audit(w.host.db(), &w.sim);
    assert!(a.is_clean(), "{a:?}");
    for k in &w.keys {
        assert_eq!(a.published_count(k), 1, "{k}");
    }
    assert_eq!(
        screens,
        [1, 1],
        "each session asks for its password once, however many threads enter it at once"
    );
    figures(&format!(
        "concurrency threads={THREADS} sessions=2 contracts={} all_correct=true auth_screens_a={} auth_screens_b={} elapsed_ms={}",
        THREADS * PER_THREAD,
        screens[0],
        screens[1],
        elapsed.as_millis()
    ));
}

#[test]
fn call_from_inside_a_host_callback_is_refused() {
    let _serial = serial();
    let w = World::new(3, SimOptions::default());
    let p = w.plugin;
    let inner_status = Rc::new(Cell::new(-1));
    let seen = inner_status.clone();
    let db_path = w.db_path.clone();
    w.host.set_override(
        "params.get",
        Box::new(move |_| {
            // From inside the plugin's callback: call the plugin again, with another host.
            let other = host_sim::RmHost::new(open_db(&db_path), host_sim::seed::DEMO_RM_USER);
            let (s, body) = p.attachment_list(&other, &json!({"page": 1, "page_size": 5}));
            if s == 5 {
                assert_eq!(body["error"]["code"], "REENTRANT_CALL", "{body}");
            }
            seen.set(s);
            assert_eq!(p.shutdown(), 5, "shutdown from inside a callback");
            assert_eq!(p.session_end("x"), 5, "session_end from inside a callback");
            None // then answer normally
        }),
    );
    let (s, body) = w
        .plugin
        .attachment_list(&w.host, &json!({"page": 1, "page_size": 5}));
    let (s2, body2) = w.execute(
        "check",
        json!({"kind": "contract_view", "contract_keys": [w.keys[0]]}),
        json!({}),
    );
    assert_eq!(inner_status.get(), 5, "the nested call was not refused");
    assert_eq!(s, 0, "the outer call still works: {body}");
    assert_eq!(s2, 0, "{body2}");
    // From inside the progress callback too.
    w.host.clear_overrides();
    let nested = Rc::new(Cell::new(-1));
    let n2 = nested.clone();
    let db_path = w.db_path.clone();
    w.host
        .set_progress(host_sim::ProgressSink::Observe(Box::new(move |_| {
            let other = host_sim::RmHost::new(open_db(&db_path), host_sim::seed::DEMO_RM_USER);
            let (s, _) = p.configure(&other, &json!({"action": "describe"}));
            n2.set(s);
            false
        })));
    let (s, body) = w.execute(
        "check",
        json!({"kind": "contract_view", "contract_keys": w.keys.clone()}),
        json!({}),
    );
    assert_eq!(s, 0, "{body}");
    assert_eq!(
        nested.get(),
        5,
        "a call from inside progress was not refused"
    );
}

#[test]
fn shutdown_when_idle_then_a_new_call_works() {
    let _serial = serial();
    let w = World::new(4, SimOptions::default());
    let first = w.send(&w.keys[..2]);
    assert_eq!(outcome_counts(&first).get("sent"), Some(&2), "{first}");
    assert_eq!(w.plugin.shutdown(), 0);
    assert_eq!(w.plugin.shutdown(), 0, "idempotent");
    let second = w.send(&w.keys);
    let by = results_by_key(&second);
    assert_eq!(by[&w.keys[0]]["outcome"], "skipped", "{second}");
    assert_eq!(by[&w.keys[2]]["outcome"], "sent", "{second}");
    assert_eq!(by[&w.keys[3]]["outcome"], "sent", "{second}");
    let a = audit(w.host.db(), &w.sim);
    assert!(a.is_clean(), "{a:?}");
}
