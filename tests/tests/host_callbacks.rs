//! The simulated RM host driving the built plugin: screens, permissions, sessions, the
//! non-interactive user, host failures, and the host-side invariants (callbacks on the calling
//! thread only, every host buffer freed, nothing secret in the logs).

use host_sim::seed::{DEMO_RM_USER_CPF, DEMO_RM_USER_JOB, DEMO_RM_USER_NO_PERMISSION};
use host_sim::{ProgressSink, UiScript};
use serde_json::json;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard};
use tae_edu_tests::{keys_with, outcomes, send_report_params, TestEnv, SESSION};

/// Every test here runs over the demo school: the same contracts (DataServer, key) in each
/// test's own database. The plugin keeps two runs of one process off the same contracts — the
/// second gets them answered as held by the first (`plugin/src/process/claims.rs`) — so the
/// tests of this file, which share one process, run one at a time.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn assert_host_invariants(env: &TestEnv) {
    assert_eq!(
        env.host.foreign_thread_calls(),
        0,
        "a callback came from another thread"
    );
    assert_eq!(
        env.host.calls_outside_export(),
        0,
        "a callback came outside an export"
    );
    assert_eq!(
        env.host.outstanding_buffers(),
        0,
        "the plugin did not free a host buffer"
    );
    let warnings = env.host.host_warnings();
    assert!(
        warnings.is_empty(),
        "records off the ABI contract: {warnings:?}"
    );
    let logs = env.host.log_text();
    assert!(
        !logs.contains(tae_sim::ADMIN_PASSWORD),
        "password in the logs"
    );
}

#[test]
fn cancelled_authentication_stops_before_any_contract() {
    let _serial = one_at_a_time();
    let env = TestEnv::demo();
    env.host.set_ui(UiScript::cancel_all());
    let (status, response) = env.send_menu();
    assert_eq!(status, 8, "{response}");
    assert_eq!(response["error"]["code"], "CANCELLED");
    assert!(env.records().is_empty());
    assert_eq!(env.sim.state().documents().len(), 0);
    assert_host_invariants(&env);
}

#[test]
fn wrong_password_is_asked_again_then_works_once_per_session() {
    let _serial = one_at_a_time();
    let env = TestEnv::demo();
    env.host.set_ui(
        UiScript::default()
            .then_credentials(tae_sim::ADMIN_EMAIL, "senha-errada")
            .then_credentials(tae_sim::ADMIN_EMAIL, tae_sim::ADMIN_PASSWORD)
            .then_cpf(DEMO_RM_USER_CPF),
    );
    let (status, response) = env.check_menu();
    assert_eq!(status, 0, "{response}");
    let auths: Vec<_> = env
        .host
        .ui_requests()
        .into_iter()
        .filter(|(m, _)| m == "ui.authenticate")
        .collect();
    assert!(auths.len() >= 2, "{auths:?}");
    // A second run in the same session does not ask again.
    env.host.clear_ui_requests();
    let (status, _) = env.check_menu();
    assert_eq!(status, 0);
    assert!(env
        .host
        .ui_requests()
        .iter()
        .all(|(m, _)| m != "ui.authenticate"));
    // A new RM session authenticates again; ending the first one drops its token.
    assert_eq!(env.plugin.session_end(SESSION), 0);
    let (status, _) = env.check_menu();
    assert_eq!(status, 0);
    assert!(env
        .host
        .ui_requests()
        .iter()
        .any(|(m, _)| m == "ui.authenticate"));
    assert!(
        !env.host.log_text().contains("senha-errada"),
        "password in the logs"
    );
    assert_host_invariants(&env);
}

#[test]
fn user_without_the_process_permission_is_refused() {
    let _serial = one_at_a_time();
    let env = TestEnv::demo();
    env.host
        .set_session_user(SESSION, DEMO_RM_USER_NO_PERMISSION);
    let (status, response) = env.send_menu();
    assert_eq!(status, 10, "{response}");
    assert_eq!(response["error"]["code"], "PERMISSION_DENIED");
    assert!(
        env.host.ui_requests().is_empty(),
        "no screen before the permission check"
    );
    assert!(env.records().is_empty());
    assert_host_invariants(&env);
}

#[test]
fn scheduled_job_uses_the_service_user_without_screens() {
    let _serial = one_at_a_time();
    let env = TestEnv::demo();
    env.host.set_session_user(SESSION, DEMO_RM_USER_JOB);
    env.host.set_ui(UiScript::cancel_all());
    let (status, response) = env.check_menu();
    assert_eq!(status, 0, "{response}");
    assert!(
        env.host.ui_requests().is_empty(),
        "{:?}",
        env.host.ui_requests()
    );
    assert_host_invariants(&env);
}

#[test]
fn send_from_a_file_and_progress_reaches_the_total() {
    let _serial = one_at_a_time();
    let env = TestEnv::demo();
    let pdf = env.dir.path().join("contrato-unico.pdf");
    let contract = env.host.db().contract(&env.keys[0]).unwrap().unwrap();
    std::fs::write(
        &pdf,
        host_sim::render_contract_pdf(&contract, &host_sim::ReportOptions::default()),
    )
    .unwrap();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let seen2 = seen.clone();
    env.host
        .set_progress(ProgressSink::Observe(Box::new(move |ev| {
            seen2.borrow_mut().push((ev.done, ev.total));
            false
        })));
    let keys = env.keys[..3].to_vec();
    let (status, response) = env.execute(
        TestEnv::contract_view(&keys),
        "send",
        json!({"source": {"kind": "file", "path": pdf}}),
    );
    assert_eq!(status, 0, "{response}");
    assert_eq!(keys_with(&response, "sent").len(), 3, "{response}");
    let seen = seen.borrow();
    assert_eq!(seen.last().copied(), Some((3, 3)), "{seen:?}");
    assert!(env.host.call_count("file.read") >= 1);
    assert_eq!(env.host.call_count("report.render"), 0);
    assert_host_invariants(&env);
}

#[test]
fn cancelling_from_the_progress_callback_stops_the_batch() {
    let _serial = one_at_a_time();
    let env = TestEnv::bulk(30);
    // Authenticate first, so the batch itself is what gets cancelled.
    assert_eq!(env.check_menu().0, 0);
    env.host
        .set_progress(ProgressSink::Observe(Box::new(|ev| ev.done >= 5)));
    let (status, response) = env.execute(TestEnv::menu(), "send", send_report_params());
    assert_eq!(status, 0, "{response}");
    assert_eq!(response["summary"]["cancelled"], true, "{response}");
    let o = outcomes(&response);
    let sent = o.values().filter(|v| *v == "sent").count();
    let not_processed = o.values().filter(|v| *v == "not_processed").count();
    assert!((5..30).contains(&sent), "sent {sent}");
    assert!(not_processed > 0, "{response}");
    assert_eq!(
        env.sim.state().documents().len(),
        sent,
        "documents = sent contracts"
    );
    assert!(env.contracts_with_two_active().is_empty());
    assert_host_invariants(&env);
}

#[test]
fn a_failing_report_fails_only_that_contract() {
    let _serial = one_at_a_time();
    let env = TestEnv::demo();
    let bad = env.keys[2].clone();
    let bad2 = bad.clone();
    env.host.set_override(
        "report.render",
        Box::new(move |req| {
            let v: serde_json::Value = serde_json::from_slice(req).ok()?;
            (v["contract_key"] == bad2.as_str()).then(|| Err("relatório indisponível".to_string()))
        }),
    );
    let (status, response) = env.send_menu();
    assert_eq!(status, 0, "{response}");
    let o = outcomes(&response);
    assert_eq!(o[&bad], "failed", "{response}");
    assert_eq!(keys_with(&response, "sent").len(), 11, "{response}");
    assert_host_invariants(&env);
}

#[test]
fn attachment_list_pages_and_filters() {
    let _serial = one_at_a_time();
    let env = TestEnv::demo();
    assert_eq!(env.send_menu().0, 0);
    let (status, page1) = env
        .plugin
        .attachment_list(&env.host, &json!({"page": 1, "page_size": 5}));
    assert_eq!(status, 0, "{page1}");
    assert_eq!(page1["total"], 12);
    assert_eq!(page1["records"].as_array().unwrap().len(), 5);
    let (_, page3) = env
        .plugin
        .attachment_list(&env.host, &json!({"page": 3, "page_size": 5}));
    assert_eq!(page3["records"].as_array().unwrap().len(), 2);
    let key = env.keys[0].clone();
    let (_, one) = env.plugin.attachment_list(
        &env.host,
        &json!({"filter": {"contract_key": key}, "page": 1, "page_size": 50}),
    );
    assert_eq!(one["total"], 1, "{one}");
    let (status, bad) = env.plugin.attachment_list(
        &env.host,
        &json!({"filtro": {}, "page": 1, "page_size": 50}),
    );
    assert_eq!(status, 3, "{bad}");
    assert_host_invariants(&env);
}
