//! Record writes of contracts in flight are grouped: one `records.put` for all the contracts
//! waiting at once, each still durable before that contract's next remote call; a write that
//! fails still fails only its own contract.

mod common;

use common::*;
use serde_json::json;
use tae_edu::api;
use tae_sim::faults::{FaultConfig, Latency};

#[test]
fn writes_of_concurrent_contracts_share_host_calls_and_fail_alone() {
    let sim = sim();
    sim.state().set_faults(FaultConfig {
        latency_ms: Some(Latency::Fixed(5)),
        ..FaultConfig::default()
    });
    let host = MockHost::new(&sim.base_url());
    host.set_param("max_concurrency", json!(8));
    host.add_contracts(40);
    let keys = host.keys();
    // One contract's records cannot be written: it alone fails, before anything reaches TAE.
    host.fail_put_for.replace(Some(keys[7].clone()));
    let r = api::execute(&host, send_request(&session("group"), &keys)).unwrap();
    let outcomes = outcomes(&r);
    for (i, o) in outcomes.iter().enumerate() {
        let expected = if i == 7 { "failed" } else { "sent" };
        assert_eq!(o, expected, "contract {i}: {}", r["results"][i]);
    }
    assert!(r["results"][7]["message"]
        .as_str()
        .unwrap()
        .contains("registro de integração"));
    // 39 contracts × 3 writes each would be 117 host calls one by one.
    let puts = host.puts.get();
    assert!(puts < 117, "records.put calls: {puts}");
    for key in keys.iter().filter(|k| **k != keys[7]) {
        let rec = &host.records_of(key)[0];
        assert_eq!(rec["status"], "pendente", "{rec}");
        let kinds: Vec<&str> = rec["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["created", "uploaded", "published"]);
    }
    assert!(host.records_of(&keys[7]).is_empty());
    let published = sim
        .state()
        .documents()
        .iter()
        .filter(|d| d["status"] != 5)
        .count();
    assert_eq!(published, 39);
    eprintln!("records.put host calls for 39 sent contracts: {puts}");
}
