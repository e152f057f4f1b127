//! Reconciliation adopts only what is provably ours: each send attempt's identity is written
//! into the record before the upload and carried in the name TAE keeps; a record left
//! mid-send adopts a TAE document only when it carries that identity and was created by the
//! same TAE user — never another RM environment's document of the same contract and name, nor
//! another user's document carrying the same text.

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;
use tae_edu::api;
use tae_edu::tae::{Action, NewRecipient, Publication, RecipientAuth, TaeClient};

fn published(sim: &tae_sim::SimServer) -> Vec<Value> {
    sim.state()
        .documents()
        .into_iter()
        .filter(|d| d["status"] != 5 && d["status"] != 7)
        .collect()
}

/// Another TAE user publishes a document named `name` to the integration user (so that it
/// shows in the integration user's searches).
fn someone_else_publishes(sim: &tae_sim::SimServer, name: &str) -> i64 {
    let email = "outra.pessoa@escola.example";
    sim.state()
        .create_user(tae_sim::state::NewUser {
            email: email.into(),
            password: Some("Outra-Senha-1".into()),
            name: "Outra Pessoa".into(),
            cpf: cpf(4242),
            confirmed: Some(true),
            permissions: None,
            administrator: false,
            company: None,
        })
        .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let http = tae_edu::tae::client::build_http(Duration::from_secs(10), None).unwrap();
        let base = sim.base_url();
        let c = TaeClient::new(http, &format!("{base}/identityintegration"), &base);
        let t = c.login(email, "Outra-Senha-1").await.unwrap().token;
        let pdf = tae_edu::host::HostBytes::owned(bytes::Bytes::from_static(PDF));
        let id = c.upload(&t, name, "x.pdf", &pdf).await.unwrap();
        c.publish(
            &t,
            &Publication {
                document_id: id,
                recipients: vec![NewRecipient {
                    email: tae_sim::ADMIN_EMAIL.into(),
                    name: "Integração".into(),
                    cpf: None,
                    action: Action::Sign,
                    financial_responsible: false,
                }],
                auth: RecipientAuth::Login,
                expires: None,
                subject: "s".into(),
                body: "b".into(),
                reminder_days: 0,
            },
        )
        .await
        .unwrap();
        id
    })
}

#[test]
fn two_environments_on_one_tae_account_each_keep_their_own_document() {
    let sim = sim();
    // Two RM environments (test and production): separate databases, same contract keys and
    // document names, one TAE company and integration user.
    let prod = MockHost::new(&sim.base_url());
    let test = MockHost::new(&sim.base_url());
    prod.add_contracts(1);
    test.add_contracts(1);
    let keys = prod.keys();
    assert_eq!(keys, test.keys());
    // Production crashes after its upload, before its record learns the id: a draft in TAE.
    prod.fail_puts_from.set(Some(2));
    let r = api::execute(&prod, send_request(&session("prod"), &keys)).unwrap();
    assert_eq!(outcomes(&r), ["failed"], "{r:#}");
    let stuck = prod.records_of(&keys[0])[0].clone();
    assert_eq!(stuck["status"], "enviando");
    assert!(stuck["document_id"].is_null());
    let send_id = stuck["send_id"].as_str().unwrap().to_string();
    prod.fail_puts_from.set(None);
    // The test environment sends the same contract, same name: published.
    let r = api::execute(&test, send_request(&session("test"), &keys)).unwrap();
    assert_eq!(outcomes(&r), ["sent"], "{r:#}");
    let test_doc = test.records_of(&keys[0])[0]["document_id"]
        .as_i64()
        .unwrap();
    // Another TAE user publishes a document whose name carries production's identity, to the
    // integration user (it shows in the integration user's searches).
    let foreign = someone_else_publishes(&sim, stuck["document_name"].as_str().unwrap());
    // Production's rerun finds its own draft (its identity, its author) and publishes it; it
    // adopts neither the test environment's published document nor the other user's.
    let r = api::execute(&prod, send_request(&session("prod"), &keys)).unwrap();
    assert_eq!(outcomes(&r), ["sent"], "{r:#}");
    let rec = &prod.records_of(&keys[0])[0];
    let prod_doc = rec["document_id"].as_i64().unwrap();
    assert_eq!(
        rec["send_id"],
        send_id.as_str(),
        "the same attempt, reconciled"
    );
    assert_ne!(
        prod_doc, test_doc,
        "adopted the other environment's document"
    );
    assert_ne!(prod_doc, foreign, "adopted another user's document");
    let ours = sim.state().document(prod_doc as u64).unwrap();
    assert!(
        ours["name"]
            .as_str()
            .unwrap()
            .contains(&format!("[{send_id}]")),
        "{ours}"
    );
    assert!(rec["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "reconciled"));
    // One live document per environment (plus the other user's); no draft left unknown.
    let live: Vec<i64> = published(&sim)
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect();
    assert_eq!(live.len(), 3, "{live:?}");
    assert!(live.contains(&prod_doc) && live.contains(&test_doc) && live.contains(&foreign));
    assert_eq!(
        sim.state()
            .documents()
            .iter()
            .filter(|d| d["status"] == 5)
            .count(),
        0,
        "a draft was left"
    );
    sim.shutdown();
}
