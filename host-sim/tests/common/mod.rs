//! Helpers of the `host-sim` command-line tests: run the binary, seed databases, read the
//! output, and the English words a person must never read.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The `host-sim` binary of this build, with no terminal on stdin.
pub fn host_sim() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_host-sim"));
    c.stdin(Stdio::null())
        .env_remove("TAE_EMAIL")
        .env_remove("TAE_PASSWORD");
    c
}

/// Runs `host-sim` with `args`; answers the output.
pub fn run(args: &[&str]) -> Output {
    host_sim().args(args).output().expect("run host-sim")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Everything a person read: stdout then stderr.
pub fn all(o: &Output) -> String {
    format!("{}\n{}", stdout(o), stderr(o))
}

/// `host-sim seed --db <dir>/<name>` (the demo school, or `bulk` contracts); answers the path.
pub fn seed(dir: &Path, name: &str, bulk: Option<usize>) -> PathBuf {
    let db = dir.join(name);
    let mut args = vec!["seed".to_string(), "--db".into(), db.display().to_string()];
    if let Some(n) = bulk {
        args.push("--bulk".into());
        args.push(n.to_string());
    }
    let out = host_sim().args(&args).output().unwrap();
    assert!(out.status.success(), "seed failed: {}", all(&out));
    db
}

/// The English words of the issue that must not reach a person (as whole words).
pub const ENGLISH: [&str; 8] = [
    "sent",
    "failed",
    "pending",
    "signed",
    "skipped",
    "not_processed",
    "cannot",
    "No such file",
];

/// The English words of [`ENGLISH`] found in `text` as whole words (`_` is part of a word).
pub fn english_words(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for w in ENGLISH {
        let bytes = text.as_bytes();
        let mut start = 0;
        while let Some(i) = text[start..].find(w) {
            let at = start + i;
            let end = at + w.len();
            let word_char = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
            let before = at == 0 || !word_char(bytes[at - 1]);
            let after = end >= bytes.len() || !word_char(bytes[end]);
            if before && after {
                let line_start = text[..at].rfind('\n').map(|p| p + 1).unwrap_or(0);
                let line_end = text[end..]
                    .find('\n')
                    .map(|p| end + p)
                    .unwrap_or(text.len());
                found.push(format!("{w:?} in: {}", &text[line_start..line_end]));
            }
            start = end;
        }
    }
    found
}

/// Lines wider than `max` characters.
pub fn wide_lines(text: &str, max: usize) -> Vec<String> {
    text.lines()
        .filter(|l| l.chars().count() > max)
        .map(str::to_string)
        .collect()
}

#[test]
fn english_word_finder_matches_whole_words_only() {
    assert!(english_words("5 contratos: 3 enviados, 2 com falha").is_empty());
    assert!(english_words("presente, sentido, assinados, pendente").is_empty());
    assert_eq!(english_words("total 5, sent 3").len(), 1);
    assert_eq!(english_words("x (pending)").len(), 1);
    assert_eq!(english_words("not_processed 0").len(), 1);
    assert_eq!(english_words("No such file or directory").len(), 1);
}

/// `text` with the CLI's line wrapping undone (every run of whitespace becomes one space), so a
/// test can look for a phrase wherever the 120-column wrap fell.
pub fn unwrapped(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
