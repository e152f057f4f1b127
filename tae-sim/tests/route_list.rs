//! The routes the stand-in serves (`tae_sim::api::ROUTES`), and the client's paths against them.
//! tae-sim keeps its own copy of TAE's paths on purpose (the stand-in must not share the
//! client's mistakes); this test only checks that the two copies agree: every path the plugin's
//! TAE client names (a string literal starting with `/` in `plugin/src/tae/`) is served here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tae_sim::api;

#[test]
fn the_route_list_is_unique_and_covers_every_tae_service() {
    let keys: BTreeSet<String> = api::ROUTES
        .iter()
        .map(|(method, template)| format!("{method} {template}"))
        .collect();
    assert_eq!(keys.len(), api::ROUTES.len(), "a route is listed twice");
    for (method, template) in api::ROUTES {
        assert!(
            ["GET", "POST", "DELETE"].contains(method),
            "{method} {template}"
        );
        assert!(
            ["/identityintegration/", "/documents/", "/signintegration/"]
                .iter()
                .any(|service| template.starts_with(service)),
            "{template} is under no TAE service"
        );
    }
    for key in &keys {
        println!("{key}");
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// String literals that are whole paths: `"/segment/…"` of letters, digits, `_`, `-`, `.`.
fn path_literals(text: &str) -> Vec<String> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            s.len() > 1
                && s.starts_with('/')
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/_-.".contains(c))
        })
        .map(str::to_string)
        .collect()
}

/// `literal` is a run of whole segments of `template` (case-insensitive, as TAE matches paths).
fn served_by(literal: &str, template: &str) -> bool {
    let (literal, template) = (literal.to_lowercase(), template.to_lowercase());
    template.match_indices(&literal).any(|(at, _)| {
        let end = at + literal.len();
        end == template.len() || template[end..].starts_with('/')
    })
}

#[test]
fn every_path_the_client_names_is_served_here() {
    let client = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin/src/tae");
    let mut files = Vec::new();
    rust_files(&client, &mut files);
    let mut literals = BTreeSet::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        literals.extend(path_literals(&text));
    }
    // The extraction still sees the client's paths (at least login, upload, publish, search and
    // the signintegration routes); if the client stops writing them as literals, this test must
    // be rewritten rather than pass blind.
    assert!(
        literals.len() >= 5,
        "only {literals:?} found in {}",
        client.display()
    );
    let unknown: Vec<&String> = literals
        .iter()
        .filter(|literal| !api::ROUTES.iter().any(|(_, t)| served_by(literal, t)))
        .collect();
    assert!(
        unknown.is_empty(),
        "paths the client names that tae-sim does not serve: {unknown:?}"
    );
    let unused: Vec<&str> = api::ROUTES
        .iter()
        .map(|(_, t)| *t)
        .filter(|t| !literals.iter().any(|l| served_by(l, t)))
        .collect();
    println!("client paths: {literals:?}");
    println!("served but not named by the client (aliases, or not used): {unused:?}");
}

#[test]
fn the_matching_rules() {
    assert!(served_by("/v3/auth/login", api::LOGIN_V3));
    assert!(served_by("/documents/v2/publicacoes", api::READ_V2));
    assert!(served_by(
        "/signintegration/v2/publicacoes/destinatario",
        api::REMOVE_RECIPIENT
    ));
    assert!(!served_by(
        "/signintegration/v2/Publicacoes/destinat",
        api::REMOVE_RECIPIENT
    ));
    assert!(!served_by("/documents/v3/publicacoes", api::READ_V2));
    assert_eq!(
        path_literals(r#"const A: &str = "/a/b-c"; let f = format!("{}/x", y); "/"; "/x y""#),
        vec!["/a/b-c".to_string()]
    );
}
