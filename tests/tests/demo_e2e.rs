//! The demo, end to end, through the built plugin: asserts the final state in the school
//! database (SQLite) and in tae-sim.

use host_sim::db::{SchoolDb, ACTIVE_STATUSES};
use host_sim::demo::{
    self, DemoOptions, DEMO_NEW_EMAIL, DEMO_REJECTION_REASON, DEMO_VALIDATOR_EMAIL,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use tae_edu_tests::{active_per_contract, plugin, tae_status_of};

#[test]
fn demo_runs_end_to_end_and_leaves_a_consistent_state() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = demo::run(DemoOptions {
        output_dir: dir.path().join("demo-output"),
        quiet: true,
        progress_bar: false,
        plugin: Some(plugin()),
    })
    .expect("the demo starts");
    assert!(
        outcome.problems.is_empty(),
        "demo problems: {:#?}",
        outcome.problems
    );
    assert!(
        outcome.elapsed_ms < 120_000,
        "demo took {} ms",
        outcome.elapsed_ms
    );

    // Every step answered OK.
    for step in &outcome.steps {
        assert_eq!(
            step.status, 0,
            "step {} failed: {}",
            step.name, step.response
        );
    }
    // Authenticated once per session; the RM user registered through the CPF screen once.
    assert_eq!(outcome.auth_screens, 1);
    assert_eq!(outcome.cpf_screens, 1);

    // The two contracts with bad data failed, naming the field; nothing else failed.
    let failed: BTreeMap<String, String> = outcome.failed_to_send.iter().cloned().collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(failed.values().any(|m| m.contains("e-mail")), "{failed:?}");
    assert!(failed.values().any(|m| m.contains("CPF")), "{failed:?}");

    // The second send sent nothing.
    let again = outcome.step("send_again").unwrap();
    assert!(again.response["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["outcome"] != "sent"));

    // --- the school database, through a fresh connection
    let db = SchoolDb::open(&outcome.db_path).unwrap();
    let statuses: BTreeMap<String, String> = db.contract_statuses().unwrap().into_iter().collect();
    assert_eq!(statuses.len(), 14);
    let assinados: BTreeSet<String> = statuses
        .iter()
        .filter(|(_, s)| *s == "Assinado")
        .map(|(k, _)| k.clone())
        .collect();
    let signed: BTreeSet<String> = outcome.signed_in_portal.iter().cloned().collect();
    assert_eq!(
        assinados, signed,
        "exactly the contracts signed in the portal are \"Assinado\""
    );
    assert_eq!(assinados.len(), 8);
    let partial = outcome
        .partially_signed
        .clone()
        .expect("one partially signed");
    let rejected = outcome.rejected.clone().expect("one rejected");
    let updated = outcome.email_updated.clone().expect("one e-mail updated");
    let deleted = outcome.deleted.clone().expect("one deleted");
    for k in [&partial, &rejected, &updated, &deleted] {
        assert_eq!(statuses[k], "Ativo", "{k}");
    }
    for k in failed.keys() {
        assert_eq!(statuses[k], "Ativo", "{k}");
    }

    let records = db.all_records().unwrap();
    let with_document: Vec<&Value> = records
        .iter()
        .filter(|r| r["document_id"].is_i64())
        .collect();
    assert_eq!(
        with_document.len(),
        12,
        "one published document per sent contract"
    );
    let status_of = |key: &str| -> Vec<String> {
        records
            .iter()
            .filter(|r| r["record_key"] == key)
            .map(|r| r["status"].as_str().unwrap().to_string())
            .collect()
    };
    for k in &assinados {
        assert_eq!(status_of(k), vec!["finalizado"], "{k}");
    }
    assert_eq!(status_of(&partial), vec!["assinado_parcialmente"]);
    assert_eq!(status_of(&rejected), vec!["rejeitado"]);
    assert_eq!(status_of(&updated), vec!["pendente"]);
    // The deleted contract was sent again in the reconcile step, and that send failed (its
    // upload answer was lost): a failed record beside the cancelled one.
    let mut deleted_statuses = status_of(&deleted);
    deleted_statuses.sort();
    assert_eq!(deleted_statuses, vec!["cancelado", "falhou"]);
    for k in failed.keys() {
        assert!(
            status_of(k)
                .iter()
                .all(|s| !ACTIVE_STATUSES.contains(&s.as_str())),
            "a failed contract has an active record: {k}"
        );
    }
    let rec = |key: &str| {
        records
            .iter()
            .find(|r| r["record_key"] == key && r["document_id"].is_i64())
            .unwrap()
            .clone()
    };
    assert_eq!(rec(&rejected)["rejection_reason"], DEMO_REJECTION_REASON);
    assert!(rec(&deleted)["deleted_by"].is_string() && rec(&deleted)["deleted_at"].is_string());
    let updated_record = rec(&updated);
    let updated_emails: Vec<&str> = updated_record["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["email"].as_str())
        .collect();
    assert!(
        updated_emails.contains(&DEMO_NEW_EMAIL),
        "{updated_emails:?}"
    );
    // Every document has the responsible as signer and the coordination as validator.
    for r in &with_document {
        // Records store roles (not TAE's `acao` codes).
        let roles: Vec<(String, String)> = r["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                (
                    x["email"].as_str().unwrap_or("").to_string(),
                    x["role"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        assert!(
            roles.contains(&(DEMO_VALIDATOR_EMAIL.to_string(), "validator".to_string())),
            "{roles:?}"
        );
        assert_eq!(
            roles.iter().filter(|(_, a)| a == "signer").count(),
            1,
            "{roles:?}"
        );
    }
    // No contract ever has two active documents.
    assert!(active_per_contract(&records).values().all(|n| *n <= 1));
    // Every record carries its history.
    for r in &with_document {
        let kinds: Vec<&str> = r["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["kind"].as_str())
            .collect();
        assert!(!kinds.is_empty(), "record {} without events", r["id"]);
        assert!(
            r["sha256"].as_str().is_some_and(|s| s.len() == 64),
            "{}",
            r["id"]
        );
    }
    // The signed PDFs were stored on the records.
    let files = db.record_files().unwrap();
    assert_eq!(files.len(), assinados.len(), "{files:?}");

    // --- tae-sim agrees
    let state = outcome.sim.state();
    let documents = state.documents();
    // Reconcile: the drift was found in the dry run and mended by the fix, and nothing else.
    let (orphan_key, orphans) = outcome.drift_orphans.clone().expect("orphan drafts made");
    assert_eq!(orphan_key, deleted);
    assert!(!orphans.is_empty());
    let drift_signed = outcome
        .drift_signed
        .clone()
        .expect("a signature behind RM's back");
    assert!(assinados.contains(&drift_signed));
    assert_eq!(status_of(&drift_signed), vec!["finalizado"]);
    let kinds = |step: &str| -> Vec<(String, String, bool)> {
        outcome.step(step).unwrap().response["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| !matches!(r["outcome"].as_str(), Some("in_agreement" | "skipped")))
            .map(|r| {
                (
                    r["contract_key"].as_str().unwrap().to_string(),
                    r["outcome"].as_str().unwrap().to_string(),
                    r["finding"]["mended"] == true,
                )
            })
            .collect()
    };
    let mut expected: Vec<(String, String, bool)> =
        vec![(drift_signed.clone(), "record_behind".to_string(), false)];
    expected.extend(
        orphans
            .iter()
            .map(|_| (deleted.clone(), "orphan_draft".to_string(), false)),
    );
    expected.sort();
    let mut dry = kinds("reconcile_dry_run");
    dry.sort();
    assert_eq!(dry, expected, "the dry run finds exactly the drift");
    let mut fixed = kinds("reconcile_fix");
    fixed.sort();
    let mended: Vec<_> = expected.into_iter().map(|(k, o, _)| (k, o, true)).collect();
    assert_eq!(fixed, mended, "the fix mends exactly the drift");
    let failed_send_id = records
        .iter()
        .find(|r| r["record_key"] == deleted.as_str() && r["status"] == "falhou")
        .and_then(|r| r["send_id"].as_str())
        .expect("the failed send's identity")
        .to_string();
    for id in &orphans {
        let doc = state.document(*id as u64).unwrap();
        assert_eq!(doc["status"], 7, "orphan draft {id} cancelled: {doc}");
        assert!(
            doc["name"]
                .as_str()
                .unwrap()
                .ends_with(&format!("[{failed_send_id}]")),
            "{doc}"
        );
    }
    assert_eq!(
        documents.len(),
        12 + orphans.len(),
        "no document published twice; only the orphan drafts besides"
    );
    for r in &with_document {
        let id = r["document_id"].as_u64().unwrap();
        let doc = state
            .document(id)
            .unwrap_or_else(|| panic!("document {id} not in tae-sim"));
        let expected = tae_status_of(r["status"].as_str().unwrap()).unwrap();
        assert_eq!(
            doc["status"].as_i64(),
            Some(expected),
            "document {id}: {doc}"
        );
        assert_eq!(doc["sha256"], r["sha256"], "document {id}");
    }
    // The RM user was registered in TAE with the CPF typed in the screen.
    let rm_user = db.user(host_sim::seed::DEMO_RM_USER).unwrap().unwrap();
    assert!(
        state.user(&rm_user.email).is_some(),
        "RM user not registered in TAE"
    );

    // The PDFs the report rendered are where the summary says, and are real PDFs.
    let sent: Vec<_> = std::fs::read_dir(&outcome.sent_pdf_dir)
        .unwrap()
        .flatten()
        .collect();
    assert!(sent.len() >= 12, "{} PDFs", sent.len());
    let first = std::fs::read(sent[0].path()).unwrap();
    assert!(lopdf::Document::load_mem(&first).unwrap().get_pages().len() >= 2);
    let signed_files: Vec<_> = walk(&outcome.signed_pdf_dir);
    assert_eq!(signed_files.len(), assinados.len());
    outcome.sim.shutdown();
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
