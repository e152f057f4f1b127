//! A batch reads its contracts' records a chunk at a time, after the claim took every contract:
//! a chunk whose records cannot be read fails its own contracts and touches nothing of them; a
//! host that cannot read records at all fails the call before any contract.

mod common;

use common::*;
use serde_json::json;
use tae_edu::api;

/// Contracts per `records.get` (`process::RECORDS_CHUNK`).
const CHUNK: usize = 256;

#[test]
fn records_are_read_per_chunk_and_a_chunk_that_cannot_be_read_fails_only_its_contracts() {
    let sim = sim();
    let host = MockHost::new(&sim.base_url());
    host.set_param("max_concurrency", json!(16));
    host.add_contracts(CHUNK as u32 + 44);
    let keys = host.keys();
    // The first chunk is read; the second one's records.get fails.
    host.fail_record_gets_from.set(Some(2));
    let r = api::execute(&host, send_request(&session("chunks"), &keys)).unwrap();
    let outcomes = outcomes(&r);
    assert_eq!(outcomes.len(), keys.len());
    for (i, o) in outcomes.iter().enumerate() {
        let expected = if i < CHUNK { "sent" } else { "failed" };
        assert_eq!(o, expected, "contract {i}: {}", r["results"][i]);
    }
    let message = r["results"][CHUNK]["message"].as_str().unwrap();
    assert!(
        message.contains("não foi possível ler os registros de integração")
            && message.contains("banco de dados indisponível")
            && message.contains("nada foi feito"),
        "{message}"
    );
    assert_eq!(r["summary"]["sent"], CHUNK);
    assert_eq!(r["summary"]["failed"], 44);
    // One read per chunk: the first, then the failing one (tried once).
    assert_eq!(host.record_gets.get(), 2);
    // Nothing of the failed chunk reached TAE or the records.
    for key in &keys[CHUNK..] {
        assert!(host.records_of(key).is_empty(), "{key}");
    }
    assert_eq!(sim.state().documents().len(), CHUNK);
}

#[test]
fn a_host_that_cannot_read_records_fails_the_call_before_any_contract() {
    let sim = sim();
    let host = MockHost::new(&sim.base_url());
    host.add_contracts(3);
    let keys = host.keys();
    host.fail_record_gets_from.set(Some(1));
    let e = api::execute(&host, send_request(&session("chunks-none"), &keys)).unwrap_err();
    assert_eq!(e.status as i32, 7, "{e:?}");
    assert!(e.detail.contains("records.get"), "{e:?}");
    assert!(host.progress.borrow().is_empty());
    assert!(sim.state().documents().is_empty());
    assert!(host.all_records().is_empty());
}
