//! `host-sim configure`: `set` validates through the plugin and merges into the stored global
//! parameters; a refused value is never stored (nor is a refused `--tae-url` of another
//! command); the service password is never printed nor kept in plain text.

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;

/// A seeded database with a TAE configured (a new school has none, and `set` validates the
/// whole set).
fn configured(dir: &Path) -> std::path::PathBuf {
    let db = seed(dir, "escola.db", None);
    let out = run(&[
        "configure",
        "set",
        "--db",
        db.to_str().unwrap(),
        "--tae-url",
        "https://totvssign.staging.totvs.app",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    db
}

fn stored(db: &Path) -> Value {
    let out = run(&["configure", "show", "--json", "--db", db.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    serde_json::from_slice(&out.stdout).expect("show --json prints JSON")
}

#[test]
fn set_merges_into_the_stored_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let db = configured(dir.path());
    let d = db.to_str().unwrap();
    let before = stored(&db);
    let out = run(&[
        "configure",
        "set",
        "--db",
        d,
        "--values",
        r#"{"max_concurrency": 4}"#,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert!(
        stdout(&out).contains("Máximo de requisições simultâneas (max_concurrency): 4"),
        "{}",
        stdout(&out)
    );
    let out = run(&[
        "configure",
        "set",
        "--db",
        d,
        "--tae-url",
        "https://totvssign.example.com",
        "--values",
        r#"{"expiry_days": 30}"#,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    let after = stored(&db);
    assert_eq!(after["max_concurrency"], 4, "{after}");
    assert_eq!(after["expiry_days"], 30, "{after}");
    assert_eq!(after["api_url"], "https://totvssign.example.com", "{after}");
    assert_eq!(
        after["auth_url"], "https://totvssign.example.com/identityintegration",
        "{after}"
    );
    // Everything else stayed.
    for (k, v) in before.as_object().unwrap() {
        if ![
            "max_concurrency",
            "expiry_days",
            "api_url",
            "auth_url",
            "web_login_url",
        ]
        .contains(&k.as_str())
        {
            assert_eq!(&after[k], v, "{k} changed");
        }
    }
    // null removes one field.
    let out = run(&[
        "configure",
        "set",
        "--db",
        d,
        "--values",
        r#"{"expiry_days": null}"#,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    let after = stored(&db);
    assert!(after.get("expiry_days").is_none(), "{after}");
    assert_eq!(after["max_concurrency"], 4);
    // validate checks the stored set with --values over it and stores nothing.
    let out = run(&[
        "configure",
        "validate",
        "--db",
        d,
        "--values",
        r#"{"max_concurrency": 16}"#,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert!(stdout(&out).contains("nada foi gravado"), "{}", all(&out));
    assert_eq!(stored(&db)["max_concurrency"], 4);
}

#[test]
fn a_refused_value_is_never_stored() {
    let dir = tempfile::tempdir().unwrap();
    let db = configured(dir.path());
    let d = db.to_str().unwrap();
    let out = run(&[
        "configure",
        "set",
        "--db",
        d,
        "--values",
        r#"{"max_concurrency": 4}"#,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    let before = stored(&db);
    // One bad field among good ones: nothing is stored, the field is named by its label.
    let out = run(&[
        "configure",
        "set",
        "--db",
        d,
        "--values",
        r#"{"max_concurrency": 999, "expiry_days": 30}"#,
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", all(&out));
    let err = stderr(&out);
    assert!(
        err.contains("Máximo de requisições simultâneas:") && err.contains("nada foi gravado"),
        "{err}"
    );
    assert_eq!(stored(&db), before);
    // A refused --tae-url in `configure set`.
    let out = run(&[
        "configure",
        "set",
        "--db",
        d,
        "--tae-url",
        "http://exemplo.com.br",
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", all(&out));
    assert!(
        stderr(&out).contains("URL da API de integração:"),
        "{}",
        all(&out)
    );
    assert_eq!(stored(&db), before);
    // A refused --tae-url of another command: refused, and still nothing stored.
    let out = run(&[
        "execute",
        "--option",
        "check",
        "--db",
        d,
        "--tae-url",
        "http://exemplo.com.br",
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", all(&out));
    assert!(
        stderr(&out).contains("URL da API de integração:"),
        "{}",
        all(&out)
    );
    assert_eq!(stored(&db), before);
    // Nor does the embedded tae-sim's passing address replace the stored TAE.
    let out = run(&[
        "execute",
        "--option",
        "send",
        "--keys",
        "1;2026001;145",
        "--db",
        d,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert_eq!(stored(&db), before);
    // Not JSON: a usage error naming the flag.
    let out = run(&[
        "configure",
        "set",
        "--db",
        d,
        "--values",
        "max_concurrency=4",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", all(&out));
    assert!(stderr(&out).contains("--values"), "{}", all(&out));
}

const SECRET: &str = "Segredo#Escola-2026";

fn file_holds(path: &Path, needle: &str) -> bool {
    std::fs::read(path)
        .map(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
        .unwrap_or(false)
}

#[test]
fn the_service_password_is_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let db = configured(dir.path());
    let d = db.to_str().unwrap();
    let values =
        format!(r#"{{"service_user": "servico@escola.example", "service_password": "{SECRET}"}}"#);
    for args in [
        vec!["configure", "set", "--db", d, "--values", &values],
        vec!["configure", "set", "--db", d, "--values", &values, "--json"],
        vec!["configure", "validate", "--db", d, "--values", &values],
        vec!["configure", "validate", "--db", d, "--json"],
        vec!["configure", "show", "--db", d],
        vec!["configure", "show", "--db", d, "--json"],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", all(&out));
        assert!(
            !all(&out).contains(SECRET),
            "{args:?} printed the password: {}",
            all(&out)
        );
    }
    let shown = stored(&db);
    assert_eq!(shown["service_user"], "servico@escola.example");
    assert_ne!(shown["service_password"], SECRET);
    assert!(shown["service_password"]
        .as_str()
        .is_some_and(|p| !p.is_empty()));
}

#[test]
fn the_service_password_is_not_in_the_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = configured(dir.path());
    let d = db.to_str().unwrap();
    let values = format!(r#"{{"service_password": "{SECRET}"}}"#);
    let out = run(&["configure", "set", "--db", d, "--values", &values]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    for suffix in ["", "-wal"] {
        let p = Path::new(&format!("{d}{suffix}")).to_path_buf();
        assert!(
            !file_holds(&p, SECRET),
            "{} holds the password in plain text",
            p.display()
        );
    }
    // And it still works: the plugin gets it back (validate sees a password set).
    let out = run(&["configure", "validate", "--db", d, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
}
