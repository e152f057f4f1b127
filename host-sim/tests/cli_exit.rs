//! The exit codes of `host-sim` for scheduled jobs (`--help` lists them), and what a failing
//! run prints: Portuguese, with not-found said as such.

mod common;
use common::*;
use std::path::Path;

fn db_arg(db: &Path) -> String {
    db.display().to_string()
}

#[test]
fn exit_0_when_everything_was_done() {
    let dir = tempfile::tempdir().unwrap();
    let db = seed(dir.path(), "escola.db", None);
    let out = run(&[
        "execute",
        "--option",
        "send",
        "--keys",
        "1;2026001;145,1;2026002;146",
        "--db",
        &db_arg(&db),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert!(
        stdout(&out).contains("2 contratos: 2 enviados"),
        "{}",
        stdout(&out)
    );
    let out = run(&["configure", "test", "--db", &db_arg(&db)]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert!(stdout(&out).contains("entrou: sim"), "{}", stdout(&out));
}

#[test]
fn exit_3_when_some_contracts_failed_and_the_output_is_portuguese() {
    let dir = tempfile::tempdir().unwrap();
    let db = seed(dir.path(), "escola.db", None);
    // The demo school: two contracts cannot be sent (no e-mail, invalid CPF).
    let out = run(&["execute", "--option", "send", "--db", &db_arg(&db)]);
    assert_eq!(out.status.code(), Some(3), "{}", all(&out));
    let text = all(&out);
    assert!(
        text.contains("12 enviados, 2 com falha, 0 não processados"),
        "{text}"
    );
    assert!(
        text.contains("(campo CPF do responsável financeiro)"),
        "{text}"
    );
    let english = english_words(&text);
    assert!(english.is_empty(), "English in a failing run: {english:#?}");
    assert!(wide_lines(&text, 120).is_empty(), "{text}");
}

#[test]
fn exit_4_when_the_call_is_refused_or_the_login_fails() {
    let dir = tempfile::tempdir().unwrap();
    let db = seed(dir.path(), "escola.db", None);
    let sim = tae_sim::SimServer::start(tae_sim::SimOptions::default()).unwrap();
    let url = sim.base_url();
    // A wrong service password: the connection test cannot log in.
    let out = run(&[
        "configure",
        "set",
        "--db",
        &db_arg(&db),
        "--tae-url",
        &url,
        "--values",
        &format!(
            r#"{{"service_user": "{}", "service_password": "senha-errada"}}"#,
            tae_sim::ADMIN_EMAIL
        ),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    let out = run(&["configure", "test", "--db", &db_arg(&db), "--tae-url", &url]);
    assert_eq!(out.status.code(), Some(4), "{}", all(&out));
    assert!(stdout(&out).contains("entrou: não"), "{}", all(&out));
    let english = english_words(&all(&out));
    assert!(english.is_empty(), "{english:#?}");
    // A wrong password on the authentication screen.
    let out = run(&[
        "execute",
        "--option",
        "check",
        "--db",
        &db_arg(&db),
        "--tae-url",
        &url,
        "--email",
        tae_sim::ADMIN_EMAIL,
        "--password",
        "senha-errada",
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", all(&out));
    assert!(
        stderr(&out).starts_with("ERRO: ") || stderr(&out).contains("\nERRO: "),
        "{}",
        all(&out)
    );
    let english = english_words(&all(&out));
    assert!(english.is_empty(), "{english:#?}");
    // No terminal and no answer: said as such, not "cancelada".
    let out = run(&[
        "execute",
        "--option",
        "check",
        "--db",
        &db_arg(&db),
        "--tae-url",
        &url,
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", all(&out));
    let err = stderr(&out);
    assert!(
        err.contains("não há terminal") && err.contains("--email"),
        "{err}"
    );
    assert!(!err.contains("cancelada"), "{err}");
    // A user without the process permission.
    let out = run(&[
        "execute",
        "--option",
        "check",
        "--db",
        &db_arg(&db),
        "--user",
        "professor",
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", all(&out));
}

#[test]
fn exit_5_when_nothing_matched_said_the_same_way_in_every_option() {
    let dir = tempfile::tempdir().unwrap();
    let db = seed(dir.path(), "escola.db", None);
    let db = db_arg(&db);
    for option in [
        "send",
        "check",
        "delete",
        "update_emails",
        "download",
        "reconcile",
    ] {
        let out = run(&[
            "execute", "--option", option, "--period", "1999/9", "--db", &db,
        ]);
        assert_eq!(out.status.code(), Some(5), "{option}: {}", all(&out));
        assert!(
            stdout(&out).contains("nenhum contrato encontrado"),
            "{option}: {}",
            all(&out)
        );
        // An unknown contract key, and an unknown record id: "não encontrado" in every option.
        let out = run(&[
            "execute",
            "--option",
            option,
            "--keys",
            "1;2099999;999",
            "--db",
            &db,
        ]);
        assert_eq!(out.status.code(), Some(5), "{option}: {}", all(&out));
        let text = stdout(&out);
        assert!(
            text.contains("contrato 1;2099999;999 não encontrado")
                && text.contains("nenhum contrato encontrado"),
            "{option}: {text}"
        );
        let out = run(&[
            "execute",
            "--option",
            option,
            "--records",
            "r-nao-existe",
            "--db",
            &db,
        ]);
        assert_eq!(out.status.code(), Some(5), "{option}: {}", all(&out));
        let text = stdout(&out);
        assert!(
            text.contains("registro r-nao-existe não encontrado")
                && text.contains("nenhum registro encontrado"),
            "{option}: {text}"
        );
    }
    // One known, one unknown: the known one runs; the unknown one is reported; not "all done".
    let out = run(&[
        "execute",
        "--option",
        "send",
        "--keys",
        "1;2026001;145,1;2099999;999",
        "--db",
        &db,
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", all(&out));
    assert!(
        stdout(&out).contains("contrato 1;2099999;999 não encontrado"),
        "{}",
        all(&out)
    );
    assert!(
        stdout(&out).contains("1 contrato: 1 enviado"),
        "{}",
        all(&out)
    );
    // The attachment: an empty database, then a filter matching nothing, then a page too far.
    let out = run(&["attachments", "--db", &db, "--status", "Rejeitado"]);
    assert_eq!(out.status.code(), Some(5), "{}", all(&out));
    assert!(
        stdout(&out).contains("nenhum registro encontrado"),
        "{}",
        all(&out)
    );
    let out = run(&["attachments", "--db", &db, "--page", "9"]);
    assert_eq!(out.status.code(), Some(5), "{}", all(&out));
    assert!(
        stdout(&out).contains("a página 9 não existe"),
        "{}",
        all(&out)
    );
}

#[test]
fn a_file_too_big_is_refused_with_its_size_as_read_in_brazil() {
    let dir = tempfile::tempdir().unwrap();
    let db = seed(dir.path(), "escola.db", None);
    let big = dir.path().join("contrato-grande.pdf");
    let mut bytes = b"%PDF-1.4\n".to_vec();
    bytes.resize(12 * 1024 * 1024, b'0');
    bytes.extend_from_slice(b"\n%%EOF\n");
    std::fs::write(&big, bytes).unwrap();
    let out = run(&[
        "execute",
        "--option",
        "send",
        "--keys",
        "1;2026001;145",
        "--file",
        big.to_str().unwrap(),
        "--db",
        &db_arg(&db),
    ]);
    let text = all(&out);
    assert_eq!(out.status.code(), Some(4), "{text}");
    let first = stderr(&out)
        .lines()
        .find(|l| l.starts_with("ERRO:"))
        .unwrap_or_default()
        .to_string();
    assert!(first.contains("12,0 MB"), "{text}");
    assert!(first.contains(&big.display().to_string()), "{text}");
}
