//! The menu's selection read in pages: `contracts.find` answers at most a page at a time
//! (`docs/abi.md`), each page is taken as it comes and only its keys are kept, and each
//! contract is read again (`contracts.get`) with its chunk's records. Every contract of the
//! selection is processed once, and TAE ends one to one with the records.

#[path = "reliability_support.rs"]
mod support;

use support::*;
use tae_sim::SimOptions;

#[test]
fn a_menu_selection_of_several_pages_is_sent_once_each() {
    // 1,200 contracts: three pages of contracts.find (500, 500, 200) and five chunks of
    // records (256 each, the last 176).
    let w = World::new(1_200, SimOptions::default());
    w.warm_up();
    let before_find = w.host.call_count("contracts.find");
    let before_get = w.host.call_count("contracts.get");
    let (status, response) = w.execute("send", menu_filter(), report_source());
    assert_eq!(status, 0, "{response}");
    let results = response["results"].as_array().unwrap();
    assert_eq!(results.len(), 1_200);
    let mut keys: Vec<&str> = results
        .iter()
        .map(|r| r["contract_key"].as_str().unwrap())
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 1_200, "every contract once");
    assert_eq!(
        response["summary"]["sent"], 1_200,
        "{}",
        response["summary"]
    );
    assert_eq!(w.host.call_count("contracts.find") - before_find, 3);
    assert_eq!(w.host.call_count("contracts.get") - before_get, 5);
    let audit = audit(w.host.db(), &w.sim);
    assert!(audit.is_clean(), "{audit:?}");
    for k in &w.keys {
        assert_eq!(audit.published_count(k), 1, "{k}");
    }
    // The same selection again: nothing is sent twice.
    let (status, response) = w.execute("send", menu_filter(), report_source());
    assert_eq!(status, 0, "{response}");
    assert_eq!(
        response["summary"]["skipped"], 1_200,
        "{}",
        response["summary"]
    );
}
