//! The host's clock 10 minutes ahead of and behind TAE's (tae-sim's clock offset ±600 s; also ±900 s,
//! beyond the 10 minutes the by-name search allows between the record and TAE), through
//! the built library with host-sim, tokens of 600 s on TAE's clock:
//! - the token is used while TAE says it is valid (one login for several runs: without moving
//!   TAE's `expirationDate` onto the host's clock, TAE 10 minutes behind would make every run
//!   log in again);
//! - TAE expiring it while the host computes it valid: the next run's 401 leads to exactly one
//!   login and the run completes;
//! - a send left mid-send after its upload took effect (the record still `enviando`, no document
//!   id: the answer was lost) is found in TAE on the rerun and published — no second upload —
//!   whatever the clocks say; the audit is clean.

#[path = "reliability_support.rs"]
mod support;

use serde_json::json;
use std::collections::BTreeMap;
use support::*;
use tae_sim::{FaultConfig, Hostile, HostileConfig, SimOptions};

fn logins(world: &World) -> u64 {
    world.sim.state().counter("POST", tae_sim::api::LOGIN_V3)
}

fn uploads(world: &World) -> u64 {
    world.sim.state().counter("POST", tae_sim::api::UPLOAD)
}

fn skewed(offset: i64) {
    let world = World::new(
        6,
        SimOptions {
            clock_offset_secs: offset,
            ..Default::default()
        },
    );
    let ttl = FaultConfig {
        token_ttl_secs: Some(600),
        ..Default::default()
    };
    world.set_faults(ttl.clone());
    world.warm_up();
    assert_eq!(logins(&world), 1);
    let keys = world.keys.clone();

    // Tokens: used while valid on TAE's clock.
    let r = world.send(&keys[..2]);
    assert_eq!(outcome_counts(&r).get("sent"), Some(&2), "{r}");
    world.run_keys("check", &keys[..2], json!({}));
    assert_eq!(
        logins(&world),
        1,
        "offset {offset}: a valid token was renewed"
    );
    // TAE ends it while the host computes it valid: one 401, one login.
    world.sim.state().expire_tokens();
    let r = world.send(&keys[2..4]);
    assert_eq!(outcome_counts(&r).get("sent"), Some(&2), "{r}");
    assert_eq!(
        logins(&world),
        2,
        "offset {offset}: a 401 leads to exactly one login"
    );
    world.run_keys("check", &keys[..4], json!({}));
    assert_eq!(logins(&world), 2);

    // A send left mid-send: its upload took effect, the answer was cut, and the record is left
    // as a crash right after the upload leaves it (enviando, no document id).
    let key = &keys[4];
    world.set_faults(FaultConfig {
        hostile: HostileConfig {
            routes: BTreeMap::from([(
                format!("POST {}", tae_sim::api::UPLOAD),
                Hostile::TruncatedJson,
            )]),
            ..Default::default()
        },
        ..ttl.clone()
    });
    let r = world.send(std::slice::from_ref(key));
    assert_eq!(outcome_counts(&r).get("failed"), Some(&1), "{r}");
    world.set_faults(ttl);
    let mut rec = world
        .records()
        .into_iter()
        .find(|r| r["record_key"] == json!(key))
        .expect("the record of the interrupted send");
    assert!(rec["document_id"].is_null(), "{rec}");
    rec["status"] = json!("enviando");
    rec["status_label"] = json!("Enviando");
    world
        .host
        .db()
        .put_records(&[rec])
        .expect("leave the record mid-send");
    let before = uploads(&world);
    let r = world.send(std::slice::from_ref(key));
    assert_eq!(outcome_counts(&r).get("sent"), Some(&1), "{r}");
    assert_eq!(
        uploads(&world),
        before,
        "offset {offset}: the rerun uploaded again instead of finding its document"
    );
    let a = audit(world.host.db(), &world.sim);
    assert!(a.is_clean(), "{a:#?}");
    assert_eq!(a.published_count(key), 1);
    assert_eq!(a.orphan_drafts, 0, "{a:#?}");
    figures(&format!(
        "clock offset_secs={offset} token_ttl_secs=600 logins={} (runs=7) mid_send_found=1 second_upload=0 duplicates={} orphan_drafts={}",
        logins(&world),
        a.duplicates.len(),
        a.orphan_drafts
    ));
}

#[test]
fn tae_ten_minutes_ahead_of_the_host() {
    skewed(600);
}

#[test]
fn tae_ten_minutes_behind_the_host() {
    skewed(-600);
}

/// Beyond the 10 minutes the by-name search tolerates between the record's time and TAE's.
#[test]
fn tae_fifteen_minutes_ahead_of_the_host() {
    skewed(900);
}

#[test]
fn tae_fifteen_minutes_behind_the_host() {
    skewed(-900);
}
