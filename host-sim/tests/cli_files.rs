//! The files `host-sim` writes: under the database's folder by default (not the current
//! folder), each announced with its full path; the report PDFs only when asked.

mod common;
use common::*;
use std::path::{Path, PathBuf};

struct School {
    _dir: tempfile::TempDir,
    db: PathBuf,
    /// Where the commands run from (must stay empty).
    cwd: tempfile::TempDir,
    sim: tae_sim::SimServer,
}

fn school() -> School {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("secretaria")).unwrap();
    let db = seed(&dir.path().join("secretaria"), "escola.db", None);
    School {
        _dir: dir,
        db,
        cwd: tempfile::tempdir().unwrap(),
        sim: tae_sim::SimServer::start(tae_sim::SimOptions::default()).unwrap(),
    }
}

fn run_in(s: &School, args: &[&str]) -> std::process::Output {
    host_sim()
        .current_dir(s.cwd.path())
        .args(args)
        .arg("--db")
        .arg(&s.db)
        .args([
            "--tae-url",
            &s.sim.base_url(),
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

fn folder(s: &School) -> PathBuf {
    s.db.parent().unwrap().to_path_buf()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

const KEYS: &str = "1;2026001;145,1;2026003;147";

#[test]
fn report_pdfs_are_kept_only_when_asked_and_announced() {
    let s = school();
    let out = run_in(
        &s,
        &["execute", "--option", "send", "--keys", "1;2026001;145"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert!(
        !folder(&s).join("pdfs").exists(),
        "report PDFs kept without --keep-pdfs"
    );
    assert!(!stdout(&out).contains(".pdf"), "{}", stdout(&out));
    let out = run_in(
        &s,
        &[
            "execute",
            "--option",
            "send",
            "--keys",
            "1;2026003;147",
            "--keep-pdfs",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    let kept = files_under(&folder(&s).join("pdfs").join("enviados"));
    assert_eq!(kept.len(), 1, "{kept:?}");
    let text = stdout(&out);
    assert!(text.contains("PDFs do relatório guardados (1)"), "{text}");
    assert!(text.contains(&kept[0].display().to_string()), "{text}");
    assert!(
        files_under(s.cwd.path()).is_empty(),
        "files written in the current folder"
    );
}

#[test]
fn downloads_go_under_the_database_folder_with_their_full_paths() {
    let s = school();
    host_sim::install_crypto_provider();
    let out = run_in(&s, &["execute", "--option", "send", "--keys", KEYS]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    // Both responsibles (and nobody else) sign in the portal.
    let portal = host_sim::portal::Portal::new(&s.sim.base_url()).unwrap();
    let docs: Vec<i64> = {
        let c = rusqlite::Connection::open(&s.db).unwrap();
        let mut st = c
            .prepare("SELECT document_id FROM integration_records")
            .unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(docs.len(), 2);
    for d in &docs {
        portal.confirm_and_act_all(*d).unwrap();
    }
    let out = run_in(&s, &["execute", "--option", "check", "--keys", KEYS]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert!(
        stdout(&out).contains("2 contratos: 2 assinados"),
        "{}",
        all(&out)
    );
    let out = run_in(&s, &["execute", "--option", "download", "--keys", KEYS]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    let text = stdout(&out);
    let written = files_under(&folder(&s).join("pdfs").join("assinados"));
    assert_eq!(written.len(), 2, "{written:?}\n{text}");
    assert!(text.contains("arquivos gravados:"), "{text}");
    for f in &written {
        assert!(f.is_absolute());
        assert!(
            text.contains(&f.display().to_string()),
            "{} not announced:\n{text}",
            f.display()
        );
    }
    // Sizes as read in Brazil (a decimal comma).
    assert!(text.contains(" KB)"), "{text}");
    assert!(
        files_under(s.cwd.path()).is_empty(),
        "files written in the current folder"
    );
    // --files-dir: elsewhere, announced the same way.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = run_in(
        &s,
        &[
            "execute",
            "--option",
            "download",
            "--keys",
            KEYS,
            "--files-dir",
            elsewhere.path().to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    let moved = files_under(elsewhere.path());
    assert_eq!(moved.len(), 2, "{moved:?}");
    for f in &moved {
        assert!(
            stdout(&out).contains(&f.display().to_string()),
            "{}",
            stdout(&out)
        );
    }
}
