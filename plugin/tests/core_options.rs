//! The four options + download over many contracts, the integration records with
//! reconciliation, and attachment_list, through `api::*` against an in-process tae-sim.

mod common;

use common::*;
use serde_json::{json, Value};
use tae_edu::api;

fn doc_count(sim: &tae_sim::SimServer) -> usize {
    sim.state().documents().len()
}

fn published(sim: &tae_sim::SimServer) -> usize {
    sim.state()
        .documents()
        .iter()
        .filter(|d| d["status"] != 5)
        .count()
}

#[test]
fn send_records_and_rerun_skips_everything() {
    let sim = sim();
    let host = MockHost::new(&sim.base_url());
    host.add_contracts(5);
    let keys = host.keys();
    let s = session("send");
    let r = api::execute(&host, send_request(&s, &keys)).unwrap();
    assert_eq!(outcomes(&r), ["sent"; 5], "{r:#}");
    assert_eq!(r["summary"]["sent"], 5);
    assert_eq!(r["summary"]["total"], 5);
    assert_eq!(doc_count(&sim), 5);
    // Progress after each contract.
    let p = host.progress.borrow().clone();
    assert_eq!(p.len(), 5);
    assert_eq!((p[4].0, p[4].1), (5, 5));
    for key in &keys {
        let recs = host.records_of(key);
        assert_eq!(recs.len(), 1);
        let rec = &recs[0];
        assert_eq!(rec["status"], "pendente");
        assert_eq!(rec["status_label"], "Pendente");
        let id = rec["document_id"].as_u64().unwrap();
        assert_eq!(sim.state().document_status(id), Some(0));
        assert_eq!(rec["sha256"].as_str().unwrap().len(), 64);
        assert_eq!(rec["file_size"], PDF.len());
        assert_eq!(rec["recipients"][0]["role"], "signer");
        assert_eq!(rec["sent_by"], "secretaria");
        let kinds: Vec<&str> = rec["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["created", "uploaded", "published"]);
        assert!(rec["document_name"]
            .as_str()
            .unwrap()
            .starts_with("Contrato 10"));
    }
    // The financial responsible was registered in TAE and asked to sign.
    assert!(sim.state().user("resp1@familia.example").is_some());
    // Rerun: all skipped, zero new documents, zero uploads.
    sim.state().reset_counters();
    let r = api::execute(&host, send_request(&s, &keys)).unwrap();
    assert_eq!(outcomes(&r), ["skipped"; 5]);
    assert!(r["results"][0]["message"]
        .as_str()
        .unwrap()
        .contains("já possui documento ativo"));
    assert_eq!(doc_count(&sim), 5);
    assert_eq!(sim.state().counter("POST", tae_sim::api::UPLOAD), 0);
    sim.shutdown();
}

#[test]
fn mixed_batch_every_contract_has_its_own_outcome() {
    let sim = sim();
    let host = MockHost::new(&sim.base_url());
    host.add_contracts(2);
    host.contracts
        .borrow_mut()
        .push(contract(145, "João Ávila", "Maria", Some(&cpf(5)), None));
    host.contracts.borrow_mut().push(contract(
        146,
        "Bia",
        "Carlos",
        Some("123.456.789-00"),
        Some("c@familia.example"),
    ));
    host.contracts.borrow_mut().push(contract(
        147,
        "Caio",
        "",
        Some(&cpf(6)),
        Some("d@familia.example"),
    ));
    let mut no_fr = contract(148, "Duda", "X", None, None);
    no_fr["financial_responsible"] = Value::Null;
    host.contracts.borrow_mut().push(no_fr);
    host.contracts
        .borrow_mut()
        .push(contract(149, "Eva", "Rosa", Some(&cpf(7)), Some("rosa@@x")));
    let mut keys = host.keys();
    keys.push("9;9;999".into());
    let r = api::execute(&host, send_request(&session("mixed"), &keys)).unwrap();
    let res = r["results"].as_array().unwrap();
    assert_eq!(res.len(), 8);
    assert_eq!(
        outcomes(&r),
        ["sent", "sent", "failed", "failed", "failed", "failed", "failed", "failed"]
    );
    assert_eq!(res[2]["field"], "financial_responsible.email");
    assert_eq!(
        res[2]["message"],
        "Contrato 145 (João Ávila): o responsável financeiro Maria não tem e-mail cadastrado (campo financial_responsible.email)."
    );
    assert_eq!(res[3]["field"], "financial_responsible.cpf");
    assert_eq!(res[4]["field"], "financial_responsible.name");
    assert_eq!(res[5]["field"], "financial_responsible");
    assert_eq!(res[6]["field"], "financial_responsible.email");
    assert_eq!(res[7]["contract_key"], "9;9;999");
    assert!(res[7]["message"]
        .as_str()
        .unwrap()
        .contains("não encontrado"));
    assert_eq!(r["summary"]["failed"], 6);
    assert_eq!(doc_count(&sim), 2);
    // Failed validations never wrote a record.
    assert!(host.records_of("1;2026145;145").is_empty());
    sim.shutdown();
}

#[test]
fn siblings_share_one_registration_and_report_source_renders_per_contract() {
    let sim = sim();
    let host = MockHost::new(&sim.base_url());
    for (code, student) in [(201, "Irmão 1"), (202, "Irmão 2"), (203, "Irmão 3")] {
        host.contracts.borrow_mut().push(contract(
            code,
            student,
            "Mãe Comum",
            Some(&cpf(42)),
            Some("mae@familia.example"),
        ));
    }
    let keys = host.keys();
    let mut req = send_request(&session("sib"), &keys);
    req["params"]["source"] = json!({"kind": "report", "report_code": "EDU.CONTRATO"});
    req["params"]["validators"] = json!([{"name": "Coordenação", "email": "coord@escola.example"}]);
    let r = api::execute(&host, req).unwrap();
    assert_eq!(outcomes(&r), ["sent"; 3], "{r:#}");
    assert_eq!(
        sim.state().counter("POST", tae_sim::api::REGISTER),
        1,
        "one registration for the siblings"
    );
    // One lookup, for the RM user (once per session); the siblings' mother is registered
    // without a lookup first ("already registered" counts as present).
    assert_eq!(
        sim.state().counter("GET", tae_sim::api::USER_EMAIL_LIST),
        1,
        "no lookup for the siblings"
    );
    assert_eq!(host.renders.get(), 3);
    let rec = &host.records_of(&keys[0])[0];
    assert_eq!(rec["recipients"][1]["role"], "validator");
    // Records store the role, never TAE's code for it.
    assert!(rec["recipients"][1].get("acao").is_none(), "{rec}");
    assert_eq!(rec["file_name"], "contrato-201.pdf");
    sim.shutdown();
}

/// Registration without a lookup first: a responsible TAE already has (under another case of
/// the e-mail, or registered and never confirmed) is answered "already registered", which
/// counts as present — no second user, the existing one untouched — and only the new one is
/// created. One registration request per distinct responsible, and no lookup but the RM user's.
#[test]
fn registration_without_lookup_keeps_existing_users_under_any_case() {
    let sim = sim();
    let state = sim.state();
    state
        .create_user(tae_sim::NewUser {
            email: "Pai.Existente@Familia.example".into(),
            name: "Pai Existente".into(),
            cpf: cpf(71),
            ..Default::default()
        })
        .unwrap();
    state
        .create_user(tae_sim::NewUser {
            email: "mae.pendente@familia.example".into(),
            name: "Mãe Pendente".into(),
            cpf: cpf(72),
            confirmed: Some(false),
            ..Default::default()
        })
        .unwrap();
    let users_before = state.users().len();
    let host = MockHost::new(&sim.base_url());
    for (code, fr, c, email) in [
        (301, "Pai Existente", 71, "pai.existente@familia.example"),
        (302, "Mãe Pendente", 72, "MAE.PENDENTE@familia.example"),
        (303, "Avó Nova", 73, "avo.nova@familia.example"),
    ] {
        host.contracts
            .borrow_mut()
            .push(contract(code, "Aluno", fr, Some(&cpf(c)), Some(email)));
    }
    let keys = host.keys();
    let r = api::execute(&host, send_request(&session("reg"), &keys)).unwrap();
    assert_eq!(outcomes(&r), ["sent"; 3], "{r:#}");
    assert_eq!(state.counter("POST", tae_sim::api::REGISTER), 3);
    assert_eq!(state.counter("GET", tae_sim::api::USER_EMAIL_LIST), 1);
    let users = state.users();
    assert_eq!(users.len(), users_before + 1, "only the new responsible");
    for email in [
        "pai.existente@familia.example",
        "mae.pendente@familia.example",
        "avo.nova@familia.example",
    ] {
        assert_eq!(
            users
                .iter()
                .filter(|u| u.email.eq_ignore_ascii_case(email))
                .count(),
            1,
            "{email}"
        );
    }
    let pending = users
        .iter()
        .find(|u| u.email == "mae.pendente@familia.example")
        .unwrap();
    assert!(!pending.confirmed, "an existing user is left as it was");
    assert_eq!(pending.name, "Mãe Pendente");
    sim.shutdown();
}

/// A sibling does not hold its place idle while another contract registers their common
/// responsible: it uploads meanwhile and waits for the registration only before its publish.
/// When that registration fails, the sibling's draft is kept with its id ("rascunho") and the
/// message says so; the rerun registers and publishes that draft — no second upload — and
/// re-sends the contract whose own registration failed.
#[test]
fn sibling_uploads_while_the_registration_runs_and_keeps_its_draft_when_it_fails() {
    let sim = sim();
    let state = sim.state();
    let host = MockHost::new(&sim.base_url());
    for code in [401, 402] {
        host.contracts.borrow_mut().push(contract(
            code,
            "Irmão",
            "Pai Comum",
            Some(&cpf(81)),
            Some("pai.comum@familia.example"),
        ));
    }
    let keys = host.keys();
    let s = session("defer");
    // Log in first (the RM user's own lookup), then every registration answers 503: the
    // registration stays in flight through the client's retries (six attempts with backoff,
    // a few hundred ms) while the sibling goes on, and then fails.
    api::execute(&host, option_request(&s, "check", &keys[..1])).unwrap();
    state.set_faults(
        serde_json::from_value(json!({
            "error_rate": {format!("POST {}", tae_sim::api::REGISTER): 1.0},
            "error_statuses": [503]
        }))
        .unwrap(),
    );
    state.reset_counters();
    let r = api::execute(&host, send_request(&s, &keys)).unwrap();
    assert_eq!(outcomes(&r), ["failed"; 2], "{r:#}");
    assert_eq!(
        state.counter("POST", tae_sim::api::REGISTER),
        6,
        "one registration (six attempts) for both"
    );
    assert_eq!(
        state.counter("POST", "/documents/v1/envelopes/upload"),
        1,
        "only the sibling uploaded"
    );
    assert_eq!(state.counter("POST", "/documents/v1/publicacoes"), 0);
    let first = &host.records_of(&keys[0])[0];
    assert_eq!(first["status"], "falhou", "{first:#}");
    assert!(first["document_id"].is_null());
    let sibling = &host.records_of(&keys[1])[0];
    assert_eq!(sibling["status"], "rascunho", "{sibling:#}");
    let draft = sibling["document_id"]
        .as_i64()
        .expect("the sibling's draft id");
    let message = r["results"][1]["message"].as_str().unwrap();
    assert!(
        message.contains("não foi possível cadastrar o responsável financeiro Pai Comum")
            && message.contains(&format!("O rascunho nº {draft} foi mantido")),
        "{message}"
    );
    // TAE registers again: the rerun publishes the kept draft and re-sends the other contract.
    state.set_faults(Default::default());
    state.reset_counters();
    let r = api::execute(&host, send_request(&s, &keys)).unwrap();
    assert_eq!(outcomes(&r), ["sent"; 2], "{r:#}");
    assert_eq!(
        state.counter("POST", "/documents/v1/envelopes/upload"),
        1,
        "the kept draft is not uploaded again"
    );
    let sibling = host.records_of(&keys[1]);
    assert_eq!(sibling.len(), 1);
    assert_eq!(sibling[0]["status"], "pendente");
    assert_eq!(sibling[0]["document_id"], draft);
    sim.shutdown();
}

#[test]
fn check_signed_partial_rejected_and_fallback_without_many_ids() {
    let sim = sim();
    let host = MockHost::new(&sim.base_url());
    host.add_contracts(4);
    let keys = host.keys();
    let s = session("check");
    let mut req = send_request(&s, &keys);
    req["params"]["extra_signers"] =
        json!([{"name": "Diretora", "email": "diretora@escola.example", "cpf": cpf(99)}]);
    let r = api::execute(&host, req).unwrap();
    assert_eq!(outcomes(&r), ["sent"; 4], "{r:#}");
    let id = |k: &str| host.records_of(k)[0]["document_id"].as_u64().unwrap();
    let st = sim.state();
    // 0: fully signed; 1: partially; 2: rejected; 3: pending.
    st.act(id(&keys[0]), "resp1@familia.example").unwrap();
    st.act(id(&keys[0]), "diretora@escola.example").unwrap();
    st.act(id(&keys[1]), "resp2@familia.example").unwrap();
    st.reject(
        id(&keys[2]),
        "resp3@familia.example",
        "Valor da mensalidade incorreto",
    )
    .unwrap();
    st.reset_counters();
    let r = api::execute(&host, option_request(&s, "check", &keys)).unwrap();
    assert_eq!(
        outcomes(&r),
        ["signed", "partially_signed", "rejected", "pending"],
        "{r:#}"
    );
    assert_eq!(st.counter("POST", tae_sim::api::MANY_DOCUMENTS), 1);
    assert_eq!(st.counter("GET", tae_sim::api::READ_V2), 0);
    assert_eq!(*host.set_status.borrow(), vec![keys[0].clone()]);
    let rec0 = &host.records_of(&keys[0])[0];
    assert_eq!(rec0["status"], "finalizado");
    assert_eq!(rec0["recipients"][0]["state"], "signed");
    assert!(rec0["last_check_at"].is_string());
    let rec2 = &host.records_of(&keys[2])[0];
    assert_eq!(rec2["rejection_reason"], "Valor da mensalidade incorreto");
    assert!(r["results"][2]["message"]
        .as_str()
        .unwrap()
        .contains("Valor da mensalidade incorreto"));
    let rec1 = &host.records_of(&keys[1])[0];
    assert_eq!(rec1["recipients"][0]["state"], "signed");
    assert_eq!(rec1["recipients"][1]["state"], "pending");
    // Without the many-ids route: one read per document.
    st.set_many_ids(false);
    st.reset_counters();
    let r = api::execute(&host, option_request(&s, "check", &keys)).unwrap();
    assert_eq!(outcomes(&r)[..2], ["signed", "partially_signed"]);
    assert_eq!(
        st.counter("GET", tae_sim::api::READ_V2),
        4,
        "{:?}",
        st.counters()
    );
    sim.shutdown();
}

#[test]
fn delete_update_emails_and_download() {
    let sim = sim();
    let host = MockHost::new(&sim.base_url());
    host.add_contracts(3);
    let keys = host.keys();
    let s = session("del");
    let mut req = send_request(&s, &keys);
    req["params"]["witnesses"] = json!([{"name": "Testemunha A", "email": "ta@escola.example"}]);
    api::execute(&host, req).unwrap();
    let id = |k: &str| host.records_of(k)[0]["document_id"].as_u64().unwrap();
    let st = sim.state();
    // Contract 0 finalised (signer + witness).
    st.act(id(&keys[0]), "resp1@familia.example").unwrap();
    st.act(id(&keys[0]), "ta@escola.example").unwrap();
    api::execute(&host, option_request(&s, "check", &keys[..1])).unwrap();

    // Update e-mails: contract 1's financial responsible changed e-mail; witness replaced.
    host.contracts.borrow_mut()[1]["financial_responsible"]["email"] =
        json!("novo.resp2@familia.example");
    let mut req = option_request(&s, "update_emails", &keys);
    req["params"] = json!({"witnesses": [{"name": "Testemunha B", "email": "tb@escola.example"}]});
    let r = api::execute(&host, req).unwrap();
    assert_eq!(outcomes(&r), ["failed", "updated", "updated"], "{r:#}");
    assert!(r["results"][0]["message"]
        .as_str()
        .unwrap()
        .contains("finalizado"));
    let doc1 = st.document(id(&keys[1])).unwrap().to_string();
    assert!(
        doc1.contains("novo.resp2@familia.example") && !doc1.contains("\"resp2@familia.example"),
        "{doc1}"
    );
    assert!(
        doc1.contains("tb@escola.example") && !doc1.contains("ta@escola.example"),
        "{doc1}"
    );
    let rec1 = &host.records_of(&keys[1])[0];
    assert_eq!(rec1["recipients"][0]["email"], "novo.resp2@familia.example");
    assert!(rec1["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "recipient_replaced"));
    // Same again: nothing changed.
    let mut req = option_request(&s, "update_emails", &keys[1..]);
    req["params"] = json!({"witnesses": [{"name": "Testemunha B", "email": "tb@escola.example"}]});
    let r = api::execute(&host, req).unwrap();
    assert_eq!(outcomes(&r), ["skipped", "skipped"]);

    // Delete: the finalised one is refused, the others cancelled; history kept.
    let r = api::execute(&host, option_request(&s, "delete", &keys)).unwrap();
    assert_eq!(outcomes(&r), ["failed", "deleted", "deleted"], "{r:#}");
    assert!(r["results"][0]["message"]
        .as_str()
        .unwrap()
        .contains("não pode ser excluído"));
    assert_eq!(st.document_status(id(&keys[1])), Some(7));
    assert_eq!(st.document_status(id(&keys[0])), Some(2));
    let rec2 = &host.records_of(&keys[2])[0];
    assert_eq!(rec2["status"], "cancelado");
    assert_eq!(rec2["deleted_by"], "secretaria");
    assert!(rec2["deleted_at"].is_string());
    assert!(rec2["events"].as_array().unwrap().len() >= 4);
    // A deleted contract can be sent again (new record, new document).
    let r = api::execute(&host, send_request(&s, &keys[2..])).unwrap();
    assert_eq!(outcomes(&r), ["sent"]);
    assert_eq!(host.records_of(&keys[2]).len(), 2);

    // Download of the signed one, from the attachment (record id).
    let rec0 = &host.records_of(&keys[0])[0];
    let req = json!({"session": s, "invoked_from": {"kind": "attachment", "record_ids": [rec0["id"]]}, "option": "download", "params": {"kind": 2}});
    let r = api::execute(&host, req).unwrap();
    assert_eq!(outcomes(&r), ["downloaded"], "{r:#}");
    let stored = host.stored_files.borrow().clone();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].0, rec0["id"].as_str().unwrap());
    assert!(stored[0].2 > PDF.len());
    sim.shutdown();
}

#[test]
fn cancel_midway_leaves_the_rest_not_processed() {
    let sim = sim();
    let host = MockHost::new(&sim.base_url());
    host.add_contracts(6);
    host.set_param("max_concurrency", json!(1));
    host.cancel_at.set(Some(2));
    let r = api::execute(&host, send_request(&session("cancel"), &host.keys())).unwrap();
    assert_eq!(
        outcomes(&r),
        [
            "sent",
            "sent",
            "not_processed",
            "not_processed",
            "not_processed",
            "not_processed"
        ]
    );
    assert_eq!(r["summary"]["cancelled"], true);
    assert_eq!(r["summary"]["not_processed"], 4);
    assert_eq!(doc_count(&sim), 2);
    // With more in flight, those already started finish.
    host.set_param("max_concurrency", json!(3));
    host.cancel_at.set(Some(1));
    host.progress.borrow_mut().clear();
    let r = api::execute(&host, send_request(&session("cancel2"), &host.keys())).unwrap();
    let o = outcomes(&r);
    assert_eq!(o[..2], ["skipped", "skipped"]);
    let sent = o.iter().filter(|x| *x == "sent").count();
    assert!((1..=3).contains(&sent), "{o:?}");
    assert_eq!(o.iter().filter(|x| *x == "not_processed").count(), 4 - sent);
    sim.shutdown();
}

#[test]
fn reconciliation_of_interrupted_sends() {
    let sim = sim();
    let host = MockHost::new(&sim.base_url());
    host.add_contracts(1);
    let keys = host.keys();
    let s = session("recon");
    // Crash after the upload, before the record learned the id (2nd put fails).
    host.fail_puts_from.set(Some(2));
    let r = api::execute(&host, send_request(&s, &keys)).unwrap();
    assert_eq!(outcomes(&r), ["failed"]);
    assert_eq!(host.records_of(&keys[0])[0]["status"], "enviando");
    assert!(host.records_of(&keys[0])[0]["document_id"].is_null());
    assert_eq!(
        (doc_count(&sim), published(&sim)),
        (1, 0),
        "a draft exists in TAE"
    );
    host.fail_puts_from.set(None);
    host.puts.set(0);
    let r = api::execute(&host, send_request(&s, &keys)).unwrap();
    assert_eq!(outcomes(&r), ["sent"], "{r:#}");
    assert_eq!(
        (doc_count(&sim), published(&sim)),
        (1, 1),
        "the draft was published, no second upload"
    );
    let rec = &host.records_of(&keys[0])[0];
    assert_eq!(rec["status"], "pendente");
    assert!(rec["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "reconciled"));

    // Crash after the publish, before the record said so (3rd put fails): adopt, never republish.
    host.contracts.borrow_mut().clear();
    host.add_contracts(2);
    let keys = host.keys();
    let k2 = vec![keys[1].clone()];
    host.puts.set(0);
    host.fail_puts_from.set(Some(3));
    api::execute(&host, send_request(&s, &k2)).unwrap();
    assert_eq!(host.records_of(&k2[0])[0]["status"], "rascunho");
    host.fail_puts_from.set(None);
    // Adopting needs no recipient data: even a contract whose e-mail was erased meanwhile.
    host.contracts.borrow_mut()[1]["financial_responsible"]["email"] = Value::Null;
    let before = (doc_count(&sim), published(&sim));
    sim.state().reset_counters();
    let r = api::execute(&host, send_request(&s, &k2)).unwrap();
    assert_eq!(outcomes(&r), ["sent"], "{r:#}");
    assert!(r["results"][0]["message"]
        .as_str()
        .unwrap()
        .contains("adotado"));
    assert_eq!((doc_count(&sim), published(&sim)), before);
    assert_eq!(sim.state().counter("POST", tae_sim::api::PUBLISH_V1), 0);
    assert_eq!(host.records_of(&k2[0])[0]["status"], "pendente");

    // A record stuck in "enviando" with nothing in TAE is simply sent.
    let stuck = json!({"id": "r-stuck", "data_server": *host.data_server.borrow(), "record_key": "1;2026101;101",
        "document_name": "Contrato 101 - nunca enviado", "status": "enviando", "status_label": "Enviando",
        "created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-01T00:00:00.000Z", "events": []});
    host.records.borrow_mut().insert("r-stuck".into(), stuck);
    let before = doc_count(&sim);
    let r = api::execute(&host, send_request(&s, &keys[..1])).unwrap();
    // keys[0] is "1;2026101;101" and already has a pending record from the first part.
    assert_eq!(outcomes(&r), ["skipped"]);
    host.records
        .borrow_mut()
        .retain(|_, r| r["id"] == "r-stuck");
    let r = api::execute(&host, send_request(&s, &keys[..1])).unwrap();
    assert_eq!(outcomes(&r), ["sent"], "{r:#}");
    assert_eq!(doc_count(&sim), before + 1);
    assert_eq!(host.records_of(&keys[0])[0]["id"], "r-stuck");
    sim.shutdown();
}

#[test]
fn ambiguous_publish_is_checked_before_republishing() {
    let sim = sim();
    let host = MockHost::new(&sim.base_url());
    host.add_contracts(3);
    // Every publish is processed, then the connection is dropped: the plugin reads the
    // document, sees it published and adopts it.
    sim.state().set_faults(tae_sim::FaultConfig {
        drop_rate: tae_sim::RateMap(std::collections::BTreeMap::from([(
            format!("POST {}", tae_sim::api::PUBLISH_V1),
            1.0,
        )])),
        drop_mode: tae_sim::DropMode::After,
        ..Default::default()
    });
    let r = api::execute(&host, send_request(&session("amb"), &host.keys())).unwrap();
    assert_eq!(outcomes(&r), ["sent"; 3], "{r:#}");
    assert_eq!((doc_count(&sim), published(&sim)), (3, 3));
    assert_eq!(
        sim.state().counter("POST", tae_sim::api::PUBLISH_V1),
        3,
        "never re-published"
    );
    let first_part: Vec<Value> = sim
        .state()
        .documents()
        .iter()
        .map(|d| d["id"].clone())
        .collect();
    // Transient 5xx and 429 bursts are retried.
    sim.state().set_faults(tae_sim::FaultConfig {
        error_rate: tae_sim::RateMap::all(0.1),
        rate_limit: Some(tae_sim::RateLimit {
            rate: 0.05,
            burst: 2,
            retry_after_secs: 0,
        }),
        ..Default::default()
    });
    host.contracts.borrow_mut().clear();
    host.add_contracts(10);
    for c in host.contracts.borrow_mut().iter_mut() {
        c["key"] = json!(format!("2;{}", c["key"].as_str().unwrap()));
    }
    let r = api::execute(&host, send_request(&session("flaky"), &host.keys())).unwrap();
    let sent = outcomes(&r).iter().filter(|o| *o == "sent").count();
    assert_eq!(sent, 10, "{r:#}");
    // Whatever happened, no contract has two published documents.
    let docs = sim.state().documents();
    let mut names: Vec<String> = docs
        .iter()
        .filter(|d| !first_part.contains(&d["id"]) && d["status"] != 5 && d["status"] != 7)
        .map(|d| contract_name(d["name"].as_str().unwrap_or_default()))
        .collect();
    let n = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), n, "a contract was published twice");
    sim.shutdown();
}

#[test]
fn attachment_list_filters_and_pages() {
    let sim = sim();
    let host = MockHost::new(&sim.base_url());
    host.add_contracts(7);
    let keys = host.keys();
    let s = session("list");
    api::execute(&host, send_request(&s, &keys)).unwrap();
    let p1 = api::attachment_list(&host, json!({"page": 1, "page_size": 5})).unwrap();
    assert_eq!(p1["total"], 7);
    assert_eq!(p1["records"].as_array().unwrap().len(), 5);
    let p2 = api::attachment_list(&host, json!({"page": 2, "page_size": 5})).unwrap();
    assert_eq!(p2["records"].as_array().unwrap().len(), 2);
    let one = api::attachment_list(
        &host,
        json!({"filter": {"contract_key": keys[3]}, "page": 1, "page_size": 50}),
    )
    .unwrap();
    assert_eq!(one["total"], 1);
    assert_eq!(one["records"][0]["record_key"], keys[3].as_str());
    let none = api::attachment_list(&host, json!({"filter": {"status": "finalizado"}})).unwrap();
    assert_eq!(none["total"], 0);
    let by = api::attachment_list(
        &host,
        json!({"filter": {"sent_by": "secretaria", "sent_from": "2000-01-01"}}),
    )
    .unwrap();
    assert_eq!(by["total"], 7);
    assert!(api::attachment_list(&host, json!({"page": 0})).is_err());
    assert!(api::attachment_list(&host, json!({"filter": {"status": "x"}})).is_err());
    assert!(api::attachment_list(&host, json!({"filtro": {}})).is_err());
    // Single-record action from the attachment: check now.
    let id = one["records"][0]["id"].clone();
    let r = api::execute(&host, json!({"session": s, "invoked_from": {"kind": "attachment", "record_ids": [id]}, "option": "check", "params": {}})).unwrap();
    assert_eq!(outcomes(&r), ["pending"]);
    // From the menu, with a filter.
    let r = api::execute(&host, json!({"session": s, "invoked_from": {"kind": "menu", "filter": {"period": "2026/1", "course": "Enfermagem"}}, "option": "check", "params": {}})).unwrap();
    assert_eq!(outcomes(&r), ["pending"; 7]);
    let r = api::execute(&host, json!({"session": s, "invoked_from": {"kind": "menu", "filter": {"course": "Direito"}}, "option": "check", "params": {}})).unwrap();
    assert_eq!(r["summary"]["total"], 0);
    sim.shutdown();
}

#[test]
fn invalid_requests_are_refused_before_any_screen() {
    let sim = sim();
    let host = MockHost::new(&sim.base_url());
    host.add_contracts(1);
    let keys = host.keys();
    let s = session("bad");
    for req in [
        json!({"session": s, "invoked_from": {"kind": "contract_view", "contract_keys": keys}, "option": "sned", "params": {}}),
        json!({"session": s, "invoked_from": {"kind": "contract_view", "contract_keys": keys}, "option": "send", "params": {}}),
        json!({"session": s, "invoked_from": {"kind": "contract_view", "contract_keys": keys}, "option": "send", "params": {"source": {"kind": "file", "path": "/nao/existe.pdf"}}}),
        json!({"session": s, "invoked_from": {"kind": "contract_view", "contract_keys": keys}, "option": "check", "params": {"x": 1}}),
        json!({"session": s, "invoked_from": {"kind": "contract_view", "contract_keys": keys}, "option": "check", "params": {}, "extra": 1}),
        json!({"session": s, "invoked_from": {"kind": "contract_view", "contract_keys": []}, "option": "check", "params": {}}),
    ] {
        let e = api::execute(&host, req.clone()).unwrap_err();
        assert_eq!(
            e.status,
            tae_edu::error::Status::InvalidRequest,
            "{req}: {e}"
        );
    }
    let e = api::execute(&host, json!({"session": s, "invoked_from": {"kind": "menu", "filter": {"periodo": "2026/1"}}, "option": "check", "params": {}})).unwrap_err();
    assert_eq!(e.status, tae_edu::error::Status::InvalidRequest, "{e}");
    host.files
        .borrow_mut()
        .insert("/x/nao-pdf.pdf".into(), b"GIF89a".to_vec());
    let e = api::execute(&host, json!({"session": s, "invoked_from": {"kind": "contract_view", "contract_keys": keys}, "option": "send", "params": {"source": {"kind": "file", "path": "/x/nao-pdf.pdf"}}})).unwrap_err();
    assert!(e.message.contains("PDF"), "{e}");
    assert!(host.auth_prompts.borrow().is_empty());
    assert_eq!(sim.state().total_requests(), 0);
    // Invalid global parameters: status 12.
    host.set_param("api_url", json!("http://tae.example.com"));
    let e = api::execute(&host, option_request(&s, "check", &keys)).unwrap_err();
    assert_eq!(e.status, tae_edu::error::Status::InvalidConfig);
    sim.shutdown();
}

#[test]
fn hundred_contract_send_request_budget() {
    let sim = sim();
    let host = MockHost::new(&sim.base_url());
    host.add_contracts(100);
    let keys = host.keys();
    let s = session("hundred");
    // Authenticate first so the figure is the per-contract cost only.
    api::execute(&host, option_request(&s, "check", &keys[..1])).unwrap();
    sim.state().reset_counters();
    let t = std::time::Instant::now();
    let r = api::execute(&host, send_request(&s, &keys)).unwrap();
    let elapsed = t.elapsed();
    assert_eq!(r["summary"]["sent"], 100, "{:#}", r["summary"]);
    let total = sim.state().total_requests();
    let per = total as f64 / 100.0;
    println!("100-contract send: {total} TAE requests ({per:.2} per contract) in {elapsed:?}; counters: {:?}", sim.state().counters());
    // Registration of a new financial responsible (no lookup first), upload, publish.
    assert!(per <= 3.0, "{per} requests per contract");
    sim.state().reset_counters();
    let r = api::execute(&host, option_request(&s, "check", &keys)).unwrap();
    assert_eq!(r["summary"]["pending"], 100);
    let total = sim.state().total_requests();
    println!(
        "100-contract check: {total} TAE requests; counters: {:?}",
        sim.state().counters()
    );
    assert_eq!(total, 1);
    // Deleted and sent again: the financial responsibles already exist in TAE.
    let r = api::execute(&host, option_request(&s, "delete", &keys)).unwrap();
    assert_eq!(r["summary"]["deleted"], 100);
    sim.state().reset_counters();
    let r = api::execute(&host, send_request(&s, &keys)).unwrap();
    assert_eq!(r["summary"]["sent"], 100);
    let total = sim.state().total_requests();
    println!(
        "100-contract resend (responsibles already in TAE): {total} TAE requests ({:.2} per contract); counters: {:?}",
        total as f64 / 100.0,
        sim.state().counters()
    );
    assert_eq!(total, 300);
    sim.shutdown();
}

#[test]
fn hung_requests_time_out_and_are_retried() {
    let sim = sim();
    let host = MockHost::new(&sim.base_url());
    host.add_contracts(4);
    host.set_param("request_timeout_secs", json!(1));
    let s = session("hang");
    api::execute(&host, option_request(&s, "check", &host.keys()[..1])).unwrap();
    // The first uploads hang past the timeout (faults are cleared as soon as one arrived);
    // the retries go through.
    sim.state().set_faults(tae_sim::FaultConfig {
        hang_rate: tae_sim::RateMap(std::collections::BTreeMap::from([(
            format!("POST {}", tae_sim::api::UPLOAD),
            1.0,
        )])),
        hang_ms: Some(3_000),
        ..Default::default()
    });
    let st = sim.state();
    let clearer = std::thread::spawn(move || {
        // Polls an observable condition, with a deadline.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while st.counter("POST", tae_sim::api::UPLOAD) == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "no upload reached TAE"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        st.set_faults(tae_sim::FaultConfig::default());
    });
    let t = std::time::Instant::now();
    let r = api::execute(&host, send_request(&s, &host.keys())).unwrap();
    clearer.join().unwrap();
    assert_eq!(outcomes(&r), ["sent"; 4], "{r:#}");
    assert!(t.elapsed() < std::time::Duration::from_secs(8));
    assert!(
        sim.state().counter("POST", tae_sim::api::UPLOAD) > 4,
        "no upload hung: {:?}",
        sim.state().counters()
    );
    // Drafts left by a timed-out upload are never published.
    assert_eq!(published(&sim), 4);
    sim.shutdown();
}

#[test]
fn a_cancelled_relogin_stops_the_batch_cleanly() {
    let sim = sim();
    let host = MockHost::new(&sim.base_url());
    host.add_contracts(5);
    host.set_param("max_concurrency", json!(1));
    let s = session("relogin");
    api::execute(&host, option_request(&s, "check", &host.keys()[..1])).unwrap();
    sim.state().expire_tokens();
    host.auth_script
        .borrow_mut()
        .push_back(json!({"cancelled": true}));
    let r = api::execute(&host, send_request(&s, &host.keys())).unwrap();
    let o = outcomes(&r);
    assert_eq!(o[0], "failed", "{r:#}");
    assert_eq!(o[1..], ["not_processed"; 4]);
    assert!(r["results"][1]["message"]
        .as_str()
        .unwrap()
        .contains("autenticação no TOTVS Assinatura Eletrônica não foi feita"));
    assert_eq!(doc_count(&sim), 0);
    // The session's token was dropped: the next run asks again and works.
    let r = api::execute(&host, send_request(&s, &host.keys())).unwrap();
    assert_eq!(outcomes(&r), ["sent"; 5], "{r:#}");
    sim.shutdown();
}

#[test]
fn update_emails_survives_an_ambiguous_add() {
    let sim = sim();
    let host = MockHost::new(&sim.base_url());
    host.add_contracts(2);
    let keys = host.keys();
    let s = session("upd-amb");
    api::execute(&host, send_request(&s, &keys)).unwrap();
    for (i, c) in host.contracts.borrow_mut().iter_mut().enumerate() {
        c["financial_responsible"]["email"] = json!(format!("trocado{i}@familia.example"));
    }
    // Every add goes through and then the connection drops.
    sim.state().set_faults(tae_sim::FaultConfig {
        drop_rate: tae_sim::RateMap(std::collections::BTreeMap::from([(
            format!("POST {}", tae_sim::api::ADD_RECIPIENTS),
            1.0,
        )])),
        drop_mode: tae_sim::DropMode::After,
        ..Default::default()
    });
    let r = api::execute(&host, option_request(&s, "update_emails", &keys)).unwrap();
    assert_eq!(outcomes(&r), ["updated", "updated"], "{r:#}");
    sim.state().set_faults(tae_sim::FaultConfig::default());
    for (i, k) in keys.iter().enumerate() {
        let id = host.records_of(k)[0]["document_id"].as_u64().unwrap();
        let doc = sim.state().document(id).unwrap().to_string();
        assert_eq!(
            doc.matches(&format!("trocado{i}@familia.example")).count(),
            1,
            "{doc}"
        );
        assert!(
            !doc.contains(&format!("\"resp{}@familia.example", i + 1)),
            "{doc}"
        );
    }
    // A rerun changes nothing.
    let r = api::execute(&host, option_request(&s, "update_emails", &keys)).unwrap();
    assert_eq!(outcomes(&r), ["skipped", "skipped"], "{r:#}");
    sim.shutdown();
}

#[test]
fn email_code_recipients_template_and_witness_policy() {
    let sim = sim();
    let host = MockHost::new(&sim.base_url());
    host.add_contracts(2);
    let keys = host.keys();
    host.set_param("recipient_auth_type", json!("email_code"));
    host.set_param("witness_count", json!(1));
    // The policy asks for a witness and none is configured: the parameters are invalid.
    let e = api::execute(&host, send_request(&session("w0"), &keys)).unwrap_err();
    assert_eq!(e.status, tae_edu::error::Status::InvalidConfig);
    assert!(e.fields.unwrap().contains_key("witnesses"));
    host.set_param(
        "witnesses",
        json!([{"name": "Testemunha Padrão", "email": "tp@escola.example"}]),
    );
    // E-mail code authentication needs every recipient's CPF.
    let e = api::execute(&host, send_request(&session("w0"), &keys)).unwrap_err();
    assert_eq!(e.status, tae_edu::error::Status::InvalidConfig);
    assert!(e.fields.unwrap()["witnesses"]
        .as_str()
        .unwrap()
        .contains("CPF"));
    host.set_param(
        "witnesses",
        json!([{"name": "Testemunha Padrão", "email": "tp@escola.example", "cpf": cpf(321)}]),
    );
    host.set_param(
        "document_name_template",
        json!("{curso} {periodo} - {aluno} ({ra})"),
    );
    // The process overrides the witnesses; fewer than the policy asks is refused.
    let mut req = send_request(&session("w1"), &keys);
    req["params"]["witnesses"] = json!([]);
    let e = api::execute(&host, req).unwrap_err();
    assert_eq!(e.status, tae_edu::error::Status::InvalidRequest);
    assert!(e.message.contains("testemunhas"), "{}", e.message);
    let r = api::execute(&host, send_request(&session("w2"), &keys)).unwrap();
    assert_eq!(outcomes(&r), ["sent", "sent"], "{r:#}");
    // Recipients without a TAE account authenticate by e-mail code: nobody is registered.
    assert_eq!(sim.state().counter("POST", tae_sim::api::REGISTER), 0);
    let rec = &host.records_of(&keys[0])[0];
    // The template's name, tagged with the send attempt's identity (what TAE keeps).
    let send_id = rec["send_id"].as_str().unwrap();
    assert_eq!(send_id.len(), 16);
    assert_eq!(
        rec["document_name"],
        format!("Enfermagem 2026/1 - Aluno 1 (2026101) [{send_id}]")
    );
    assert_eq!(rec["recipients"][1]["role"], "witness");
    assert!(rec["recipients"][1].get("acao").is_none(), "{rec}");
    let doc = sim
        .state()
        .document(rec["document_id"].as_u64().unwrap())
        .unwrap();
    let s = doc.to_string();
    assert!(s.contains("tp@escola.example"), "{s}");
    sim.shutdown();
}

#[test]
fn rate_limited_calls_honour_retry_after() {
    let sim = sim();
    let host = MockHost::new(&sim.base_url());
    host.add_contracts(1);
    let keys = host.keys();
    let s = session("429");
    api::execute(&host, option_request(&s, "check", &keys)).unwrap();
    sim.state().reset_counters();
    sim.state().set_faults(tae_sim::FaultConfig {
        rate_limit: Some(tae_sim::RateLimit {
            rate: 1.0,
            burst: 1,
            retry_after_secs: 1,
        }),
        ..Default::default()
    });
    let st = sim.state();
    let clearer = std::thread::spawn(move || {
        // Polls an observable condition, with a deadline.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while st.total_requests() == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "no request reached TAE"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        st.set_faults(tae_sim::FaultConfig::default());
    });
    let t = std::time::Instant::now();
    let r = api::execute(&host, send_request(&s, &keys)).unwrap();
    clearer.join().unwrap();
    assert_eq!(outcomes(&r), ["sent"], "{r:#}");
    assert!(
        t.elapsed() >= std::time::Duration::from_millis(950),
        "Retry-After: 1 was not honoured ({:?})",
        t.elapsed()
    );
    sim.shutdown();
}
