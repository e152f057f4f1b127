//! The `host-sim` binary: the README's main-job command (`demo`) runs to the end without input,
//! and the one-entry-point commands answer.

use std::process::{Command, Stdio};

fn host_sim() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_host-sim"));
    c.stdin(Stdio::null());
    c
}

#[test]
fn demo_runs_to_the_end_without_input() {
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let out = host_sim()
        .current_dir(dir.path())
        .arg("demo")
        .output()
        .expect("run host-sim demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    assert!(started.elapsed().as_secs() < 120);
    for step in 1..=11 {
        assert!(
            stdout.contains(&format!("[{step}/11]")),
            "step {step} missing:\n{stdout}"
        );
    }
    assert!(stdout.contains("demo concluída sem problemas"), "{stdout}");
    assert!(stdout.contains("Assinado"), "{stdout}");
    assert!(dir
        .path()
        .join("demo-output")
        .join("escola-demo.db")
        .is_file());
}

#[test]
fn configure_describe_and_a_cancelled_run() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("escola.db");
    let out = host_sim()
        .args(["configure", "describe", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("auth_url") && stdout.contains("max_concurrency"),
        "{stdout}"
    );
    // A script that cancels the authentication screen: status 8, nothing processed.
    let script = dir.path().join("ui.json");
    std::fs::write(&script, r#"{"auth": [{"cancel": true}]}"#).unwrap();
    let out = host_sim()
        .args(["execute", "--option", "check", "--json", "--db"])
        .arg(&db)
        .arg("--script")
        .arg(&script)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    assert_eq!(v["error"]["code"], "CANCELLED", "{v}");
}
