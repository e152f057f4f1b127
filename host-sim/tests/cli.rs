//! The `host-sim` binary: the README's main-job command (`demo`) runs to the end without input,
//! reads in Portuguese, and leaves the database the other commands use by default; the
//! one-entry-point commands answer.

mod common;
use common::*;

#[test]
fn demo_runs_to_the_end_without_input() {
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let out = host_sim()
        .current_dir(dir.path())
        .arg("demo")
        .output()
        .expect("run host-sim demo");
    let text_out = stdout(&out);
    let text_err = stderr(&out);
    assert!(out.status.success(), "demo failed:\n{text_out}\n{text_err}");
    assert!(started.elapsed().as_secs() < 120);
    for step in 1..=12 {
        assert!(
            text_out.contains(&format!("[{step}/12]")),
            "step {step} missing:\n{text_out}"
        );
    }
    assert!(
        text_out.contains("demo concluída sem problemas"),
        "{text_out}"
    );
    assert!(text_out.contains("Assinado"), "{text_out}");
    assert!(dir
        .path()
        .join("demo-output")
        .join("escola-demo.db")
        .is_file());

    // What a person reads is Portuguese, in rows of at most ~120 characters, with one product
    // name.
    let text = all(&out);
    let english = english_words(&text);
    assert!(english.is_empty(), "English in the demo: {english:#?}");
    let wide = wide_lines(&text, 120);
    assert!(wide.is_empty(), "lines wider than 120: {wide:#?}");
    assert!(!text.contains("TOTVS Sign"), "{text}");
    assert!(
        text_out.contains("resumo: 14 contratos: 12 enviados"),
        "{text_out}"
    );
    assert!(
        text_out.contains("(campo e-mail do responsável financeiro)"),
        "{text_out}"
    );
    assert!(text_out.contains("(assinante, assinou)"), "{text_out}");

    // The demo's database is the default one: a plain `attachments` from the same folder
    // shows its records, with their record ids.
    let out = host_sim()
        .current_dir(dir.path())
        .arg("attachments")
        .output()
        .unwrap();
    let list = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    // 12 sent, and the failed record of the send the reconcile step interrupts.
    assert!(list.contains("13 registro(s) no total"), "{list}");
    assert!(list.contains("Registro") && list.contains("r-"), "{list}");
    assert!(list.contains("Finalizado"), "{list}");
}

#[test]
fn configure_describe_and_a_cancelled_run() {
    let dir = tempfile::tempdir().unwrap();
    let db = seed(dir.path(), "escola.db", None);
    let out = host_sim()
        .args(["configure", "describe", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let text_out = stdout(&out);
    assert!(out.status.success(), "{text_out}\n{}", stderr(&out));
    assert!(
        text_out.contains("auth_url") && text_out.contains("max_concurrency"),
        "{text_out}"
    );
    assert!(
        text_out.contains("Máximo de requisições simultâneas"),
        "{text_out}"
    );
    // A script that cancels the authentication screen: refused (exit 4), nothing processed.
    let script = dir.path().join("ui.json");
    std::fs::write(&script, r#"{"auth": [{"cancel": true}]}"#).unwrap();
    let out = host_sim()
        .args(["execute", "--option", "check", "--json", "--db"])
        .arg(&db)
        .arg("--script")
        .arg(&script)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", all(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    assert_eq!(v["error"]["code"], "CANCELLED", "{v}");
}

#[test]
fn help_and_usage_errors_are_in_portuguese() {
    let out = run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = stdout(&out);
    for s in [
        "Uso: host-sim",
        "Comandos:",
        "Opções:",
        "Códigos de saída",
        "Mostra esta ajuda",
    ] {
        assert!(help.contains(s), "{s} missing:\n{help}");
    }
    for s in ["Usage:", "Options:", "Commands:", "Print help", "[default:"] {
        assert!(!help.contains(s), "{s} in:\n{help}");
    }
    for cmd in ["execute", "configure", "attachments", "seed", "demo"] {
        let out = run(&[cmd, "--help"]);
        let help = stdout(&out);
        assert_eq!(out.status.code(), Some(0), "{help}");
        assert!(wide_lines(&help, 120).is_empty(), "{cmd}:\n{help}");
        for s in [
            "Usage:",
            "Options:",
            "Arguments:",
            "[default:",
            "[possible values",
            "[env:",
        ] {
            assert!(!help.contains(s), "{cmd}: {s} in:\n{help}");
        }
    }
    let help = stdout(&run(&["execute", "--help"]));
    assert!(
        help.contains("[padrão: demo-output/escola-demo.db]"),
        "{help}"
    );
    assert!(help.contains("Códigos de saída"), "{help}");

    // A refused value names the option and the accepted values; exit 2.
    let out = run(&["execute", "--option", "mandar"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("--option")
            && err.contains("\"mandar\"")
            && err.contains("send")
            && err.contains("enviar"),
        "{err}"
    );
    let out = run(&["attachments", "--page", "0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("--page") && err.contains("\"0\"") && err.contains("o menor valor aceito é 1"),
        "{err}"
    );
    let out = run(&["attachments", "--status", "assinada"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("--status") && err.contains("Pendente") && err.contains("Finalizado"),
        "{err}"
    );
    let out = run(&["attachments", "--sent-from", "2026-13-45"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("dd/mm/aaaa"), "{}", stderr(&out));
    for o in [
        run(&["execute", "--option", "mandar"]),
        run(&["comando"]),
        run(&["attachments", "--pagina", "2"]),
    ] {
        let text = all(&o);
        assert!(
            !text.contains("error:") && !text.contains("Usage:"),
            "{text}"
        );
    }
}

#[test]
fn statuses_accepted_by_label_and_dates_as_in_brazil() {
    let dir = tempfile::tempdir().unwrap();
    let out = host_sim()
        .current_dir(dir.path())
        .args(["demo", "--no-progress"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", all(&out));
    let db = dir.path().join("demo-output").join("escola-demo.db");
    let db = db.to_str().unwrap();
    for status in ["Pendente", "PENDENTE", "pendente"] {
        let out = run(&["attachments", "--db", db, "--status", status]);
        let list = stdout(&out);
        assert_eq!(out.status.code(), Some(0), "{status}: {}", all(&out));
        assert!(list.contains("1 registro(s) no total"), "{status}: {list}");
    }
    let out = run(&[
        "attachments",
        "--db",
        db,
        "--status",
        "assinado parcialmente",
    ]);
    assert!(
        stdout(&out).contains("Assinado parcialmente"),
        "{}",
        all(&out)
    );
    // Dates: dd/mm/aaaa in and out.
    let today = chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::west_opt(3 * 3600).unwrap())
        .format("%d/%m/%Y")
        .to_string();
    let out = run(&["attachments", "--db", db, "--sent-from", "01/01/2000"]);
    let list = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert!(list.contains(&today), "{today} not in:\n{list}");
    let iso = list.as_bytes().windows(11).any(|w| {
        w[..4].iter().all(u8::is_ascii_digit) && w[4] == b'-' && w[7] == b'-' && w[10] == b'T'
    });
    assert!(!iso, "an ISO timestamp in:\n{list}");
}

/// Runs `execute` with the screens asked on stdin (`--interactive`), fed `input`.
fn interactive(db: &std::path::Path, input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = host_sim()
        .args([
            "execute",
            "--option",
            "check",
            "--interactive",
            "--keys",
            "1;2026001;145",
        ])
        .arg("--db")
        .arg(db)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// The sentences a screen shows between its title and its prompt (the line containing `prompt`).
fn screen_sentences(stderr: &str, title: &str, prompt: &str) -> Vec<Vec<String>> {
    stderr
        .split(title)
        .skip(1)
        .map(|block| {
            block
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .take_while(|l| !l.contains(prompt))
                .map(str::to_string)
                .collect()
        })
        .collect()
}

#[test]
fn screens_say_things_once_and_end_their_line_at_end_of_input() {
    let dir = tempfile::tempdir().unwrap();
    let db = seed(dir.path(), "escola.db", None);
    let auth = "=== TOTVS Assinatura Eletrônica - Autenticação ===";
    // A wrong password, then end of input (Ctrl-D) at the e-mail prompt.
    let out = interactive(&db, "admin@escola.example\nerrada\n");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    let screens = screen_sentences(&err, auth, "cancela)");
    assert_eq!(screens.len(), 2, "{err}");
    for s in &screens {
        assert_eq!(s.len(), 1, "one sentence per screen: {s:?}\n{err}");
    }
    // The last prompt's line was ended: what follows starts on a line of its own.
    let last_prompt = err.rfind("cancela): ").unwrap();
    assert!(
        err[last_prompt..].starts_with("cancela): \n"),
        "{:?}",
        &err[last_prompt..]
    );
    // The CPF screen (the RM user is not in TAE yet), then end of input.
    let out = interactive(
        &db,
        &format!("{}\n{}\n", tae_sim::ADMIN_EMAIL, tae_sim::ADMIN_PASSWORD),
    );
    let err = stderr(&out);
    let screens = screen_sentences(
        &err,
        "=== Cadastro no TOTVS Assinatura Eletrônica ===",
        "(vazio cancela)",
    );
    assert_eq!(screens.len(), 1, "{err}");
    assert_eq!(screens[0].len(), 1, "one sentence: {:?}\n{err}", screens[0]);
    let prompt = err.rfind("(vazio cancela): ").unwrap();
    assert!(
        err[prompt..].starts_with("(vazio cancela): \n"),
        "{:?}",
        &err[prompt..]
    );
}
