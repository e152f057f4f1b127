//! `shutdown` in its own test binary: it drops the process-wide state (every session's token),
//! which would disturb tests running in parallel in the same process.

mod common;

use common::*;
use tae_edu::api;

#[test]
fn shutdown_drops_tokens_and_the_next_call_recreates_the_state() {
    let sim = sim();
    let host = MockHost::new(&sim.base_url());
    host.add_contracts(1);
    let keys = host.keys();
    let s = session("shut");
    api::execute(&host, option_request(&s, "check", &keys)).unwrap();
    api::shutdown();
    api::shutdown();
    let r = api::execute(&host, option_request(&s, "check", &keys)).unwrap();
    assert_eq!(r["ok"], true);
    assert_eq!(
        host.auth_prompts.borrow().len(),
        2,
        "tokens were dropped by shutdown"
    );
    sim.shutdown();
}
