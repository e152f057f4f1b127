//! The host's clock 10 minutes apart from TAE's (tae-sim's clock offset, both ways): the token's
//! expiry is read on the host's clock (TAE's `expirationDate` moved by the offset its `Date`
//! header shows), so a valid token is neither renewed early nor trusted once dead; a 401 leads to
//! exactly one new login whatever the computed expiry says; and a send interrupted after its
//! upload is found again on the rerun — never uploaded twice.

mod common;

use common::*;
use serde_json::json;
use tae_edu::api;
use tae_sim::FaultConfig;

fn logins(sim: &tae_sim::SimServer) -> u64 {
    sim.state().counter("POST", tae_sim::api::LOGIN_V3)
}

/// TAE's clock `offset` seconds from the host's, tokens of `ttl` seconds on TAE's clock.
fn skewed(offset: i64, ttl: u64) -> (tae_sim::SimServer, MockHost) {
    let sim = sim();
    sim.state().set_clock_offset(offset);
    sim.state().set_faults(FaultConfig {
        token_ttl_secs: Some(ttl),
        ..Default::default()
    });
    let host = MockHost::new(&sim.base_url());
    host.add_contracts(3);
    (sim, host)
}

/// A token valid for `ttl` on TAE's clock is used, not renewed, whatever the offset; once TAE
/// expires it (while the host still computes it valid), the next call's 401 leads to exactly one
/// login and the run completes; then no further login.
fn token_lifecycle(offset: i64) {
    // 600 s: without the offset's correction, a TAE 10 minutes behind would have the host see
    // the token expired at once (a login per run), and one ahead would have it trusted for
    // 10 minutes after it died.
    let (sim, host) = skewed(offset, 600);
    let keys = host.keys();
    let s = session("clock");
    let r = api::execute(&host, send_request(&s, &keys[..1])).unwrap();
    assert_eq!(outcomes(&r), ["sent"], "{r:#}");
    assert_eq!(logins(&sim), 1);
    // Still valid on TAE's clock: the next runs log in no more.
    for _ in 0..2 {
        let r = api::execute(&host, option_request(&s, "check", &keys[..1])).unwrap();
        assert_eq!(r["summary"]["total"], 1, "{r:#}");
    }
    assert_eq!(
        logins(&sim),
        1,
        "a valid token was renewed (offset {offset})"
    );
    assert_eq!(host.auth_prompts.borrow().len(), 1);
    // TAE ends it; the host's computed expiry still says valid.
    sim.state().expire_tokens();
    let r = api::execute(&host, send_request(&s, &keys[1..])).unwrap();
    assert_eq!(outcomes(&r), ["sent", "sent"], "{r:#}");
    assert_eq!(logins(&sim), 2, "a 401 leads to exactly one login");
    let prompts = host.auth_prompts.borrow().clone();
    assert_eq!(prompts.len(), 2);
    assert_eq!(prompts[1]["reason"], "unauthorized");
    let r = api::execute(&host, option_request(&s, "check", &keys)).unwrap();
    assert_eq!(r["summary"]["total"], 3, "{r:#}");
    assert_eq!(logins(&sim), 2);
    sim.shutdown();
}

#[test]
fn tae_ten_minutes_ahead_token() {
    token_lifecycle(600);
}

#[test]
fn tae_ten_minutes_behind_token() {
    token_lifecycle(-600);
}

/// A send interrupted after its upload, before the record learned the document's id (the
/// record's second write fails, as a crash there would): the rerun finds that draft in TAE
/// whatever the clocks say, and publishes it — one upload in all, no orphan draft.
fn interrupted_send_found_again(offset: i64) {
    let (sim, host) = skewed(offset, 3600);
    let keys = host.keys();
    let s = session("clock-find");
    host.fail_puts_from.set(Some(2));
    let r = api::execute(&host, send_request(&s, &keys[..1])).unwrap();
    assert_eq!(outcomes(&r), ["failed"], "{r:#}");
    let rec = &host.records_of(&keys[0])[0];
    assert_eq!(rec["status"], "enviando");
    assert!(rec["document_id"].is_null());
    assert_eq!(sim.state().counter("POST", tae_sim::api::UPLOAD), 1);
    host.fail_puts_from.set(None);
    let r = api::execute(&host, send_request(&s, &keys[..1])).unwrap();
    assert_eq!(outcomes(&r), ["sent"], "{r:#}");
    assert_eq!(
        sim.state().counter("POST", tae_sim::api::UPLOAD),
        1,
        "the rerun uploaded again instead of finding the draft (offset {offset})"
    );
    let docs = sim.state().documents();
    assert_eq!(docs.len(), 1, "{docs:#?}");
    assert_eq!(docs[0]["status"], json!(0));
    let rec = &host.records_of(&keys[0])[0];
    assert_eq!(rec["document_id"], docs[0]["id"]);
    assert!(rec["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "reconciled"));
    sim.shutdown();
}

#[test]
fn tae_ten_minutes_ahead_reconciliation() {
    interrupted_send_found_again(600);
}

#[test]
fn tae_ten_minutes_behind_reconciliation() {
    interrupted_send_found_again(-600);
}
