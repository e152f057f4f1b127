//! Bad input in the domain: invalid CPF, missing or malformed e-mail, missing financial
//! responsible, unknown contract key, file missing / empty / not a PDF / over the size limit,
//! report rendering failure, deleting a finalised document, updating e-mails of a finalised
//! document, sending a contract that has an active document. Each gets the right per-contract
//! outcome and a Portuguese message that names the contract and the field; the other contracts
//! of the batch are unaffected.

#[path = "reliability_support.rs"]
mod support;

use rusqlite::params;
use serde_json::{json, Value};
use support::*;
use tae_sim::SimOptions;

fn codcontrato(key: &str) -> &str {
    key.rsplit(';').next().unwrap()
}

fn assert_failed(r: &Value, key: &str, field: Option<&str>, words: &[&str]) {
    assert_eq!(r["outcome"], "failed", "{key}: {r}");
    let m = r["message"].as_str().unwrap_or("");
    assert!(
        m.contains(codcontrato(key)),
        "{key}: message does not name the contract: {m}"
    );
    if let Some(f) = field {
        assert_eq!(r["field"], f, "{key}: {r}");
    }
    for w in words {
        assert!(
            m.to_lowercase().contains(&w.to_lowercase()),
            "{key}: message lacks «{w}»: {m}"
        );
    }
}

#[test]
fn bad_contract_data_fails_only_that_contract() {
    let w = World::new(10, SimOptions::default());
    let k = &w.keys;
    let conn = w.host.db().conn();
    let resp_of = |key: &str| {
        w.host
            .db()
            .contract(key)
            .unwrap()
            .unwrap()
            .financial_responsible
            .unwrap()
            .code
    };
    // 0: invalid CPF; 1: no e-mail; 2: malformed e-mail; 4: no financial responsible; 5: no CPF.
    // (3 shares its responsible with 2 in seed_bulk: it must fail the same way.)
    conn.execute(
        "UPDATE financial_responsibles SET cpf = '111.222.333-44' WHERE code = ?1",
        params![resp_of(&k[0])],
    )
    .unwrap();
    w.host
        .db()
        .set_responsible_email(&resp_of(&k[1]), None)
        .unwrap();
    w.host
        .db()
        .set_responsible_email(&resp_of(&k[2]), Some("maria.arroba.example.com"))
        .unwrap();
    let (_, ra, cod) = host_sim::db::parse_contract_key(&k[4]).unwrap();
    conn.execute(
        "UPDATE contracts SET responsible_code = NULL WHERE ra = ?1 AND codcontrato = ?2",
        params![ra, cod],
    )
    .unwrap();
    conn.execute(
        "UPDATE students SET responsible_code = NULL WHERE ra = ?1",
        params![ra],
    )
    .unwrap();
    conn.execute(
        "UPDATE financial_responsibles SET cpf = NULL WHERE code = ?1",
        params![resp_of(&k[5])],
    )
    .unwrap();
    let unknown = "1;NAOEXISTE;999999".to_string();
    let mut keys = k.clone();
    keys.push(unknown.clone());
    let resp = w.send(&keys);
    let by = results_by_key(&resp);
    assert_failed(
        &by[&k[0]],
        &k[0],
        Some("financial_responsible.cpf"),
        &["CPF", "inválido"],
    );
    assert_failed(
        &by[&k[1]],
        &k[1],
        Some("financial_responsible.email"),
        &["e-mail"],
    );
    assert_failed(
        &by[&k[2]],
        &k[2],
        Some("financial_responsible.email"),
        &["e-mail", "inválido"],
    );
    assert_eq!(
        resp_of(&k[3]),
        resp_of(&k[2]),
        "seed_bulk: 3 is a sibling of 2"
    );
    assert_failed(
        &by[&k[3]],
        &k[3],
        Some("financial_responsible.email"),
        &["e-mail"],
    );
    assert_failed(
        &by[&k[4]],
        &k[4],
        Some("financial_responsible"),
        &["responsável financeiro"],
    );
    assert_failed(
        &by[&k[5]],
        &k[5],
        Some("financial_responsible.cpf"),
        &["CPF"],
    );
    let r = &by[&unknown];
    assert!(
        ["failed", "not_processed"].contains(&r["outcome"].as_str().unwrap()),
        "{r}"
    );
    assert!(r["message"].as_str().unwrap().contains("999999"), "{r}");
    for key in &k[6..] {
        assert_eq!(by[key]["outcome"], "sent", "{key} unaffected: {}", by[key]);
    }
    let a = audit(w.host.db(), &w.sim);
    assert!(a.is_clean(), "{a:?}");
    for key in &k[..6] {
        assert_eq!(a.published_count(key), 0, "{key}");
    }
    // Nothing reached TAE for the invalid ones: exactly 4 uploads.
    assert_eq!(w.sim.state().counter("POST", tae_sim::api::UPLOAD), 4);
}

#[test]
fn bad_files_refuse_the_run_before_any_contract() {
    let w = World::new(3, SimOptions::default());
    w.host.db().set_param("max_file_mb", &json!(1)).unwrap();
    let dir = w.dir.path();
    let empty = dir.join("vazio.pdf");
    std::fs::write(&empty, b"").unwrap();
    let not_pdf = dir.join("planilha.pdf");
    std::fs::write(&not_pdf, b"PK\x03\x04 this is a zip").unwrap();
    let big = dir.join("grande.pdf");
    let mut bytes = b"%PDF-1.4\n".to_vec();
    bytes.resize(1024 * 1024 + 4096, b' ');
    std::fs::write(&big, &bytes).unwrap();
    let missing = dir.join("nao-existe.pdf");
    for (what, path, words) in [
        ("missing", &missing, vec!["nao-existe.pdf"]),
        ("empty", &empty, vec!["vazio"]),
        ("not a PDF", &not_pdf, vec!["PDF"]),
        ("over the limit", &big, vec!["MB"]),
    ] {
        let (s, resp) = w.execute(
            "send",
            json!({"kind": "contract_view", "contract_keys": w.keys}),
            json!({"source": {"kind": "file", "path": path}}),
        );
        assert_eq!(s, 3, "{what}: {resp}");
        let m = resp["error"]["message"].as_str().unwrap_or("");
        for word in words {
            assert!(m.contains(word), "{what}: {m}");
        }
        assert!(
            m.contains(&*path.file_name().unwrap().to_string_lossy()),
            "{what}: names the file: {m}"
        );
    }
    assert_eq!(w.sim.state().counter("POST", tae_sim::api::UPLOAD), 0);
    assert!(w.records().is_empty());
    // A good file then goes through.
    let good = dir.join("contrato.pdf");
    std::fs::write(&good, tae_sim::sample_pdf("Contrato", &["ok"])).unwrap();
    let (s, resp) = w.execute(
        "send",
        json!({"kind": "contract_view", "contract_keys": w.keys}),
        json!({"source": {"kind": "file", "path": good}}),
    );
    assert_eq!(s, 0, "{resp}");
    assert_eq!(outcome_counts(&resp).get("sent"), Some(&3), "{resp}");
}

#[test]
fn report_rendering_failure_fails_only_that_contract() {
    let w = World::new(4, SimOptions::default());
    let bad = w.keys[1].clone();
    let garbage = w.keys[2].clone();
    let (b2, g2) = (bad.clone(), garbage.clone());
    w.host.set_override(
        "report.render",
        Box::new(move |req| {
            let v: Value = serde_json::from_slice(req).ok()?;
            let key = v["contract_key"].as_str()?;
            if key == b2 {
                Some(Err("erro no gerador de relatórios: fórmula inválida".into()))
            } else if key == g2 {
                Some(Ok(b"<html>isto nao e um PDF</html>".to_vec()))
            } else {
                None
            }
        }),
    );
    let resp = w.send(&w.keys);
    let by = results_by_key(&resp);
    assert_failed(&by[&bad], &bad, None, &["relatório"]);
    assert_failed(&by[&garbage], &garbage, None, &["PDF"]);
    assert_eq!(by[&w.keys[0]]["outcome"], "sent");
    assert_eq!(by[&w.keys[3]]["outcome"], "sent");
    let a = audit(w.host.db(), &w.sim);
    assert!(a.is_clean(), "{a:?}");
    assert_eq!(a.published_count(&bad), 0);
    assert_eq!(a.published_count(&garbage), 0);
}

#[test]
fn finalised_documents_and_active_documents() {
    let w = World::new(4, SimOptions::default());
    let resp = w.send(&w.keys);
    assert_eq!(outcome_counts(&resp).get("sent"), Some(&4), "{resp}");
    let by = results_by_key(&resp);
    let state = w.sim.state();
    // The responsible of contract 0 signs in the portal; the plugin has not checked yet.
    let signed = &w.keys[0];
    let id = by[signed]["document_id"].as_u64().unwrap();
    let doc = state.document(id).unwrap();
    for r in doc["recipients"].as_array().unwrap() {
        state.act(id, r["email"].as_str().unwrap()).unwrap();
    }
    assert_eq!(state.document_status(id), Some(2));

    // Sending again: every contract has an active document → skipped, nothing uploaded.
    let uploads = state.counter("POST", tae_sim::api::UPLOAD);
    let again = w.send(&w.keys[1..]);
    for (k, r) in results_by_key(&again) {
        assert_eq!(r["outcome"], "skipped", "{k}: {r}");
        let m = r["message"].as_str().unwrap();
        assert!(
            m.contains(codcontrato(&k)) && m.contains("ativo"),
            "{k}: {m}"
        );
    }
    assert_eq!(state.counter("POST", tae_sim::api::UPLOAD), uploads);

    // Updating the e-mails of the finalised document: refused, named.
    let fr = w
        .host
        .db()
        .contract(signed)
        .unwrap()
        .unwrap()
        .financial_responsible
        .unwrap();
    w.host
        .db()
        .set_responsible_email(&fr.code, Some("outro@example.com"))
        .unwrap();
    let up = w.run_keys("update_emails", std::slice::from_ref(signed), json!({}));
    assert_failed(&results_by_key(&up)[signed], signed, None, &["finalizado"]);
    assert_eq!(state.document_status(id), Some(2));
    let doc = state.document(id).unwrap();
    assert!(
        !doc["recipients"].to_string().contains("outro@example.com"),
        "a finalised document got a new recipient: {doc}"
    );

    // Deleting the finalised document (with another pending one in the batch): refused, the
    // other is deleted.
    let other = &w.keys[1];
    let del = w.run_keys("delete", &[signed.clone(), other.clone()], json!({}));
    let d = results_by_key(&del);
    assert_failed(&d[signed], signed, None, &["finalizado"]);
    assert_eq!(d[other]["outcome"], "deleted", "{del}");
    assert_eq!(
        state.document_status(id),
        Some(2),
        "a finalised document was cancelled"
    );
    assert_eq!(
        state.document_status(by[other]["document_id"].as_u64().unwrap()),
        Some(7)
    );
    // The record of the finalised one says so, with its history kept.
    let recs = w.records();
    let rec = recs
        .iter()
        .find(|r| r["record_key"] == signed.as_str())
        .unwrap();
    assert_eq!(rec["status"], "finalizado", "{rec}");
    assert!(rec["events"].as_array().unwrap().len() >= 2, "{rec}");
    // A deleted contract may be sent again: a new record and a new document.
    let resend = w.send(std::slice::from_ref(other));
    assert_eq!(
        results_by_key(&resend)[other]["outcome"],
        "sent",
        "{resend}"
    );
    let a = audit(w.host.db(), &w.sim);
    assert!(a.is_clean(), "{a:?}");
}

/// The host's database failing at the worst moments: the write of a record before the send
/// (nothing may reach TAE for that contract), and the write after the publication (TAE has the
/// document, the records say "rascunho"): the contract fails with a reason, the others are
/// unaffected, and the next run adopts the published document instead of sending it again.
#[test]
fn record_write_failures_never_lose_or_duplicate_a_document() {
    let w = World::new(4, SimOptions::default());
    let before_send = w.keys[1].clone();
    let after_publish = w.keys[2].clone();
    let (k1, k2) = (before_send.clone(), after_publish.clone());
    w.host.set_override(
        "records.put",
        Box::new(move |req| {
            let v: Value = serde_json::from_slice(req).ok()?;
            for r in v["records"].as_array()? {
                let key = r["record_key"].as_str().unwrap_or("");
                let status = r["status"].as_str().unwrap_or("");
                if (key == k1 && status == "enviando") || (key == k2 && status == "pendente") {
                    return Some(Err("disco cheio: não foi possível gravar o registro".into()));
                }
            }
            None
        }),
    );
    let first = w.send(&w.keys);
    let by = results_by_key(&first);
    assert_failed(&by[&before_send], &before_send, None, &[]);
    assert_failed(&by[&after_publish], &after_publish, None, &[]);
    assert_eq!(by[&w.keys[0]]["outcome"], "sent", "{first}");
    assert_eq!(by[&w.keys[3]]["outcome"], "sent", "{first}");
    let a = audit(w.host.db(), &w.sim);
    assert_eq!(a.published_count(&before_send), 0, "sent without a record");
    assert_eq!(a.published_count(&after_publish), 1);
    // The document is in TAE; its record still says "rascunho" with the id.
    let id = a.published[&after_publish][0];
    let recs = w.records();
    let rec = recs
        .iter()
        .find(|r| r["record_key"] == after_publish.as_str())
        .expect("the record written before the publication");
    assert_eq!(rec["document_id"].as_u64(), Some(id), "{rec}");

    w.host.clear_overrides();
    let uploads = w.sim.state().counter("POST", tae_sim::api::UPLOAD);
    let second = w.send(&w.keys);
    let by = results_by_key(&second);
    assert_eq!(by[&before_send]["outcome"], "sent", "{second}");
    assert_eq!(by[&after_publish]["outcome"], "sent", "{second}");
    assert_eq!(
        by[&after_publish]["document_id"].as_u64(),
        Some(id),
        "adopted, not resent"
    );
    assert_eq!(
        w.sim.state().counter("POST", tae_sim::api::UPLOAD),
        uploads + 1,
        "only the contract that never reached TAE is uploaded"
    );
    let a = audit(w.host.db(), &w.sim);
    assert!(a.is_clean(), "{a:?}");
    for k in &w.keys {
        assert_eq!(a.published_count(k), 1, "{k}");
    }
}
