//! Update e-mails never loses a recipient: a new address already used by another recipient of
//! the same document (case-insensitive) is refused for that contract before any change, naming
//! both roles, and the document and the record stay as they were; the "already on the
//! document" shortcut of a rerun holds only for the same address in the same role.

mod common;

use common::*;
use serde_json::{json, Value};
use tae_edu::api;

/// Sends `n` contracts with a validator and a witness; answers the hosts' keys.
fn sent_with_validator_and_witness(host: &MockHost, s: &str, n: u32) -> Vec<String> {
    host.add_contracts(n);
    let keys = host.keys();
    let mut req = send_request(s, &keys);
    req["params"]["validators"] = json!([{"name": "Val", "email": "val@escola.example"}]);
    req["params"]["witnesses"] = json!([{"name": "Tes", "email": "tes@escola.example"}]);
    let r = api::execute(host, req).unwrap();
    assert!(outcomes(&r).iter().all(|o| o == "sent"), "{r:#}");
    keys
}

/// The document's recipients as (e-mail, acao), sorted.
fn doc_recipients(sim: &tae_sim::SimServer, id: u64) -> Vec<(String, i64)> {
    let mut v: Vec<(String, i64)> = sim.state().document(id).unwrap()["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["email"].as_str().unwrap().to_lowercase(),
                r["acao"].as_i64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn doc_id(host: &MockHost, key: &str) -> u64 {
    host.records_of(key)[0]["document_id"].as_u64().unwrap()
}

fn update(host: &MockHost, s: &str, keys: &[String], params: Value) -> Value {
    let mut req = option_request(s, "update_emails", keys);
    req["params"] = params;
    api::execute(host, req).unwrap()
}

#[test]
fn a_new_address_of_another_recipient_is_refused_before_any_change() {
    let sim = sim();
    let host = MockHost::new(&sim.base_url());
    let s = session("upd-collide");
    let keys = sent_with_validator_and_witness(&host, &s, 2);
    let before: Vec<_> = keys
        .iter()
        .map(|k| doc_recipients(&sim, doc_id(&host, k)))
        .collect();
    let records_before: Vec<Value> = keys
        .iter()
        .map(|k| host.records_of(k)[0]["recipients"].clone())
        .collect();
    let requests_before = sim.state().counters();

    // The validator changed to the witness's address (another case): refused for both
    // contracts, naming both roles; nothing sent to TAE but reads.
    let r = update(
        &host,
        &s,
        &keys,
        json!({"validators": [{"name": "Val", "email": "TES@Escola.Example"}]}),
    );
    assert_eq!(outcomes(&r), ["failed", "failed"], "{r:#}");
    for res in r["results"].as_array().unwrap() {
        let m = res["message"].as_str().unwrap();
        assert!(m.contains("validador") && m.contains("testemunha"), "{m}");
        assert!(m.contains("nenhuma alteração foi feita"), "{m}");
    }
    // The financial responsible's new address is the validator's: refused, naming both.
    host.contracts.borrow_mut()[0]["financial_responsible"]["email"] = json!("val@escola.example");
    let r = update(&host, &s, &keys[..1], json!({}));
    assert_eq!(outcomes(&r), ["failed"], "{r:#}");
    let m = r["results"][0]["message"].as_str().unwrap();
    assert!(
        m.contains("responsável financeiro") && m.contains("validador"),
        "{m}"
    );
    // Two new addresses alike (the witness and the validator swap to one address).
    host.contracts.borrow_mut()[0]["financial_responsible"]["email"] =
        json!("resp1@familia.example");
    let r = update(
        &host,
        &s,
        &keys[..1],
        json!({"validators": [{"name": "Val", "email": "x@escola.example"}],
               "witnesses": [{"name": "Tes", "email": "X@escola.example"}]}),
    );
    assert_eq!(outcomes(&r), ["failed"], "{r:#}");
    // A swap of the validator's and the witness's addresses is refused too (each new address
    // belongs to the other one).
    let r = update(
        &host,
        &s,
        &keys[..1],
        json!({"validators": [{"name": "Val", "email": "tes@escola.example"}],
               "witnesses": [{"name": "Tes", "email": "val@escola.example"}]}),
    );
    assert_eq!(outcomes(&r), ["failed"], "{r:#}");

    // The documents and the records' recipients are untouched; no add or remove reached TAE.
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(doc_recipients(&sim, doc_id(&host, k)), before[i]);
        assert_eq!(host.records_of(k)[0]["recipients"], records_before[i]);
    }
    let after = sim.state().counters();
    for route in [tae_sim::api::ADD_RECIPIENTS, tae_sim::api::REMOVE_RECIPIENT] {
        for method in ["POST", "DELETE"] {
            let key = format!("{method} {route}");
            assert_eq!(after.get(&key), requests_before.get(&key), "{key}");
        }
    }

    // A free address still works: the validator is replaced, nobody else is touched.
    let r = update(
        &host,
        &s,
        &keys[..1],
        json!({"validators": [{"name": "Val Nova", "email": "val.nova@escola.example"}]}),
    );
    assert_eq!(outcomes(&r), ["updated"], "{r:#}");
    let now = doc_recipients(&sim, doc_id(&host, &keys[0]));
    assert_eq!(
        now,
        vec![
            ("resp1@familia.example".to_string(), 0),
            ("tes@escola.example".to_string(), 2),
            ("val.nova@escola.example".to_string(), 1),
        ]
    );
    sim.shutdown();
}

#[test]
fn the_already_on_the_document_shortcut_needs_the_same_role() {
    let sim = sim();
    let host = MockHost::new(&sim.base_url());
    let s = session("upd-shortcut");
    let keys = sent_with_validator_and_witness(&host, &s, 1);
    let id = doc_id(&host, &keys[0]) as i64;
    // Someone added "outra@escola.example" as a witness in the portal: the record does not
    // know it.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let http =
            tae_edu::tae::client::build_http(std::time::Duration::from_secs(10), None).unwrap();
        let base = sim.base_url();
        let c = tae_edu::tae::TaeClient::new(http, &format!("{base}/identityintegration"), &base);
        let t = c
            .login(tae_sim::ADMIN_EMAIL, tae_sim::ADMIN_PASSWORD)
            .await
            .unwrap();
        let extra = tae_edu::tae::NewRecipient {
            email: "outra@escola.example".into(),
            name: "Outra".into(),
            cpf: None,
            action: tae_edu::tae::Action::Witness,
            financial_responsible: false,
        };
        c.add_recipients(&t.token, id, &[extra], tae_edu::tae::RecipientAuth::Login)
            .await
            .unwrap();
    });
    let before = doc_recipients(&sim, id as u64);
    // The validator's new address is that witness's: not "my earlier add" (another role).
    let r = update(
        &host,
        &s,
        &keys,
        json!({"validators": [{"name": "Val", "email": "outra@escola.example"}]}),
    );
    assert_eq!(outcomes(&r), ["failed"], "{r:#}");
    let m = r["results"][0]["message"].as_str().unwrap();
    assert!(m.contains("validador") && m.contains("testemunha"), "{m}");
    assert_eq!(doc_recipients(&sim, id as u64), before);
    // As a second witness of the process it is the same role: adopted as already added.
    let r = update(
        &host,
        &s,
        &keys,
        json!({"witnesses": [{"name": "Tes", "email": "tes@escola.example"},
                             {"name": "Outra", "email": "outra@escola.example"}]}),
    );
    assert_eq!(outcomes(&r), ["updated"], "{r:#}");
    assert_eq!(
        doc_recipients(&sim, id as u64),
        before,
        "nothing added twice"
    );
    let rec = &host.records_of(&keys[0])[0];
    let emails: Vec<&str> = rec["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        [
            "resp1@familia.example",
            "val@escola.example",
            "tes@escola.example",
            "outra@escola.example"
        ]
    );
    sim.shutdown();
}
