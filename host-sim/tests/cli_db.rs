//! Which database a `host-sim` command works on: only `seed` and `demo` create one; a missing
//! `--db` is an error naming it; a file that is not host-sim's is refused untouched; `seed` on
//! a used database refuses without `--force`.

mod common;
use common::*;
use sha2::Digest;
use std::path::Path;

fn digest(p: &Path) -> Vec<u8> {
    sha2::Sha256::digest(std::fs::read(p).unwrap()).to_vec()
}

#[test]
fn a_missing_db_is_an_error_naming_it_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("escola-errada").join("escolla.db");
    for args in [
        vec!["attachments"],
        vec!["configure", "show"],
        vec!["configure", "set", "--values", r#"{"max_concurrency": 4}"#],
        vec!["execute", "--option", "send"],
    ] {
        let out = host_sim()
            .args(&args)
            .arg("--db")
            .arg(&db)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", all(&out));
        let err = unwrapped(&stderr(&out));
        assert!(
            err.contains(&db.display().to_string()) && err.contains("não existe"),
            "{args:?}: {err}"
        );
        assert!(err.contains("host-sim seed --db"), "{err}");
        assert!(
            !dir.path().join("escola-errada").exists(),
            "{args:?} created the folder"
        );
        let english = english_words(&all(&out));
        assert!(english.is_empty(), "{english:?}");
    }
    // The default database, when missing, is named the same way (run from an empty folder).
    let out = host_sim()
        .current_dir(dir.path())
        .arg("attachments")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("escola-demo.db"), "{}", all(&out));
    assert!(!dir.path().join("demo-output").exists());
}

#[test]
fn a_sqlite_file_of_another_program_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("financeiro.db");
    {
        let c = rusqlite::Connection::open(&other).unwrap();
        c.execute_batch(
            "CREATE TABLE boletos (id INTEGER PRIMARY KEY, valor INTEGER);
             INSERT INTO boletos (valor) VALUES (100), (200);",
        )
        .unwrap();
    }
    let text = dir.path().join("notas.txt");
    std::fs::write(&text, "não é um banco de dados").unwrap();
    for file in [&other, &text] {
        let before = digest(file);
        for args in [
            vec!["attachments", "--db"],
            vec!["configure", "show", "--db"],
            vec!["seed", "--db"],
            vec!["seed", "--force", "--db"],
        ] {
            let out = host_sim().args(&args).arg(file).output().unwrap();
            assert_eq!(out.status.code(), Some(1), "{args:?}: {}", all(&out));
            let err = unwrapped(&stderr(&out));
            assert!(
                err.contains("não é um banco de dados do host-sim")
                    && err.contains(&file.display().to_string())
                    && err.contains("nada foi alterado"),
                "{args:?}: {err}"
            );
            assert_eq!(digest(file), before, "{args:?} changed {}", file.display());
        }
    }
    let c = rusqlite::Connection::open(&other).unwrap();
    let tables: i64 = c
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1, "tables were added to another program's database");
}

#[test]
fn seed_refuses_a_used_database_without_force_and_recreates_it_with_force() {
    let dir = tempfile::tempdir().unwrap();
    // seed creates the database and its folder.
    let db = dir.path().join("nova").join("escola.db");
    let out = host_sim().args(["seed", "--db"]).arg(&db).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert!(
        stdout(&out).contains(&format!("banco de dados criado: {}", db.display())),
        "{}",
        stdout(&out)
    );
    // Use it: one contract sent (a record, a changed contract).
    let out = host_sim()
        .args([
            "execute",
            "--option",
            "send",
            "--keys",
            "1;2026001;145",
            "--db",
        ])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    let records = |db: &Path| -> i64 {
        rusqlite::Connection::open(db)
            .unwrap()
            .query_row("SELECT count(*) FROM integration_records", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(records(&db), 1);
    let before = digest(&db);
    let out = host_sim().args(["seed", "--db"]).arg(&db).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", all(&out));
    let err = unwrapped(&stderr(&out));
    assert!(
        err.contains("já tem uma escola") && err.contains("--force") && err.contains("1 registro"),
        "{err}"
    );
    assert_eq!(digest(&db), before, "a refused seed changed the database");
    assert_eq!(records(&db), 1);
    // --force: everything from nothing, consistently (no record left to disagree).
    let out = host_sim()
        .args(["seed", "--force", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert_eq!(records(&db), 0);
    let out = host_sim()
        .args(["attachments", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", all(&out));
    assert!(
        stdout(&out).contains("nenhum registro encontrado"),
        "{}",
        all(&out)
    );
}

#[test]
fn the_demo_does_not_delete_a_file_that_is_not_its_database() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("demo-output");
    std::fs::create_dir(&out_dir).unwrap();
    let file = out_dir.join("escola-demo.db");
    {
        let c = rusqlite::Connection::open(&file).unwrap();
        c.execute_batch("CREATE TABLE boletos (id INTEGER PRIMARY KEY);")
            .unwrap();
    }
    let before = digest(&file);
    let out = host_sim()
        .current_dir(dir.path())
        .args(["demo", "--no-progress"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", all(&out));
    assert!(
        stderr(&out).contains("não é um banco de dados do host-sim"),
        "{}",
        all(&out)
    );
    assert_eq!(digest(&file), before);
}
