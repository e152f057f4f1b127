//! A check appends to a record's history only when something changed in TAE; `last_check_at`
//! says when it last looked (a school checking every few minutes must not grow each record by
//! hundreds of events a day).

mod common;

use common::*;
use serde_json::json;
use tae_edu::api;

#[test]
fn repeated_checks_append_an_event_only_when_something_changed() {
    let sim = sim();
    let host = MockHost::new(&sim.base_url());
    host.add_contracts(1);
    let keys = host.keys();
    let s = session("history");
    let sent = api::execute(&host, send_request(&s, &keys)).unwrap();
    assert_eq!(outcomes(&sent), ["sent"], "{sent:#}");
    let events = |host: &MockHost| {
        host.records_of(&keys[0])[0]["events"]
            .as_array()
            .unwrap()
            .len()
    };
    let last_check = |host: &MockHost| host.records_of(&keys[0])[0]["last_check_at"].clone();

    let first = api::execute(&host, option_request(&s, "check", &keys)).unwrap();
    assert_eq!(outcomes(&first), ["pending"], "{first:#}");
    let after_first = events(&host);
    let first_check_at = last_check(&host);
    assert!(first_check_at.is_string());

    // The record clock (milliseconds) must move on before the second check: wait for it.
    let t0 = tae_edu::records::now();
    while tae_edu::records::now() == t0 {
        std::hint::spin_loop();
    }
    let second = api::execute(&host, option_request(&s, "check", &keys)).unwrap();
    assert_eq!(outcomes(&second), ["pending"], "{second:#}");
    assert_eq!(events(&host), after_first, "nothing changed: no new event");
    assert_ne!(
        last_check(&host),
        first_check_at,
        "last_check_at moves on every check"
    );

    let doc = sent["results"][0]["document_id"].as_u64().unwrap();
    portal(
        &sim,
        "POST",
        &format!("/_sim/documents/{doc}/act"),
        Some(json!({"email": "resp1@familia.example"})),
    );
    let third = api::execute(&host, option_request(&s, "check", &keys)).unwrap();
    assert_eq!(outcomes(&third), ["signed"], "{third:#}");
    let record = &host.records_of(&keys[0])[0];
    let kinds: Vec<&str> = record["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        events(&host) > after_first,
        "the signature is recorded: {kinds:?}"
    );
    assert_eq!(kinds.last(), Some(&"checked"), "{kinds:?}");
}
