//! `host-sim execute --option conciliar`: reconcile shown as a table in Portuguese, a dry run by
//! default, `--fix` to mend, `--de`/`--ate` for the period; its flags refused elsewhere.

mod common;
use common::*;

fn run_with(db: &std::path::Path, sim: &tae_sim::SimServer, args: &[&str]) -> std::process::Output {
    host_sim()
        .args(args)
        .arg("--db")
        .arg(db)
        .args([
            "--tae-url",
            &sim.base_url(),
            "--email",
            tae_sim::ADMIN_EMAIL,
        ])
        .args([
            "--password",
            tae_sim::ADMIN_PASSWORD,
            "--cpf",
            host_sim::seed::DEMO_RM_USER_CPF,
        ])
        .output()
        .unwrap()
}

#[test]
fn reconcile_reports_in_a_table_then_mends_with_fix() {
    let dir = tempfile::tempdir().unwrap();
    let db = seed(dir.path(), "escola.db", None);
    let sim = tae_sim::SimServer::start(tae_sim::SimOptions::default()).unwrap();
    let out = run_with(&db, &sim, &["execute", "--option", "enviar"]);
    assert!(matches!(out.status.code(), Some(0 | 3)), "{}", all(&out));
    // A signature in the portal, behind RM's back.
    let doc = sim
        .state()
        .documents()
        .into_iter()
        .find(|d| d["status"] == 0)
        .expect("a pending document");
    let id = doc["id"].as_u64().unwrap();
    let signer = doc["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["acao"] == 0)
        .and_then(|r| r["email"].as_str())
        .unwrap()
        .to_string();
    let _ = sim.state().confirm_user(&signer, None);
    sim.state().act(id, &signer).unwrap();
    let docs_before = serde_json::to_string(&sim.state().documents()).unwrap();

    let dry = run_with(&db, &sim, &["execute", "--option", "conciliar"]);
    assert_eq!(dry.status.code(), Some(0), "{}", all(&dry));
    let text = stdout(&dry);
    for needle in [
        "Achado",
        "Registro desatualizado",
        "De acordo",
        "Seria corrigido (simulação; nada foi alterado)",
        "achados:",
    ] {
        assert!(unwrapped(&text).contains(needle), "{needle}:\n{text}");
    }
    assert_eq!(
        serde_json::to_string(&sim.state().documents()).unwrap(),
        docs_before,
        "the dry run touched TAE"
    );
    let english = english_words(&all(&dry));
    assert!(english.is_empty(), "{english:#?}");
    let wide = wide_lines(&all(&dry), 120);
    assert!(wide.is_empty(), "{wide:#?}");

    let fix = run_with(
        &db,
        &sim,
        &[
            "execute",
            "--option",
            "reconcile",
            "--fix",
            "--de",
            "01/01/2000",
            "--ate",
            "31/12/2099",
        ],
    );
    assert_eq!(fix.status.code(), Some(0), "{}", all(&fix));
    assert!(
        unwrapped(&stdout(&fix)).contains("Corrigido: o registro agora está"),
        "{}",
        all(&fix)
    );
    let again = run_with(&db, &sim, &["execute", "--option", "conciliar"]);
    assert_eq!(again.status.code(), Some(0), "{}", all(&again));
    assert!(
        !stdout(&again).contains("Registro desatualizado"),
        "{}",
        all(&again)
    );

    // Its flags belong to it; a period needs both ends.
    let out = run_with(&db, &sim, &["execute", "--option", "conferir", "--fix"]);
    assert_ne!(out.status.code(), Some(0), "{}", all(&out));
    assert!(
        all(&out).contains("valem só para a opção reconcile"),
        "{}",
        all(&out)
    );
    let out = run_with(
        &db,
        &sim,
        &["execute", "--option", "conciliar", "--de", "01/01/2026"],
    );
    assert_ne!(out.status.code(), Some(0), "{}", all(&out));
}
