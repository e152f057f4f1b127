//! Which database a command works on. Only `seed` and `demo` create one; every other command
//! opens an existing host-sim database and refuses anything else untouched.
//!
//! Temporary: these wrap `SchoolDb::open` with the checks the CLI needs until the library
//! answers them itself (`SchoolDb::open_existing`, `SchoolDb::create`); then the bodies below
//! become calls of those.

use host_sim::db::SchoolDb;
use rusqlite::{Connection, OpenFlags};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The database every command uses without `--db`; the demo writes it.
pub const DEFAULT_DB: &str = "demo-output/escola-demo.db";

/// The tables that make a SQLite file a host-sim school database.
const OWN_TABLES: [&str; 4] = [
    "contracts",
    "rm_users",
    "global_params",
    "integration_records",
];

/// The path as the user should read it: absolute when it can be made so.
pub fn shown(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// What an existing file holds.
enum Existing {
    /// An empty file (SQLite reads it as an empty database).
    Empty,
    /// A host-sim database, with its number of contracts and of integration records.
    Ours { contracts: i64, records: i64 },
}

fn not_ours(path: &Path, why: &str) -> String {
    format!(
        "{} não é um banco de dados do host-sim ({why}); nada foi alterado nele. \
         Confira o --db, ou crie um banco novo com `host-sim seed --db <arquivo novo>`.",
        shown(path)
    )
}

fn inspect(path: &Path) -> Result<Existing, String> {
    if path.is_dir() {
        return Err(format!(
            "{} é uma pasta; o --db deve ser o arquivo do banco de dados",
            shown(path)
        ));
    }
    let bytes = std::fs::read(path)
        .map(|b| b.into_iter().take(16).collect::<Vec<u8>>())
        .map_err(|e| format!("não foi possível ler {}: {}", shown(path), io_text(&e)))?;
    if bytes.is_empty() {
        return Ok(Existing::Empty);
    }
    if bytes != b"SQLite format 3\0" {
        return Err(not_ours(path, "não é um arquivo SQLite"));
    }
    // Read-only: a file that is not ours is never written to.
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("não foi possível abrir {}: {e}", shown(path)))?;
    let found: i64 = conn
        .query_row(
            &format!(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ({})",
                OWN_TABLES
                    .iter()
                    .map(|t| format!("'{t}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            [],
            |r| r.get(0),
        )
        .map_err(|e| not_ours(path, &format!("não foi possível lê-lo: {e}")))?;
    if found != OWN_TABLES.len() as i64 {
        return Err(not_ours(path, "não tem as tabelas da escola simulada"));
    }
    let count = |table: &str| -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap_or(0)
    };
    Ok(Existing::Ours {
        contracts: count("contracts"),
        records: count("integration_records"),
    })
}

/// Opens an existing host-sim database: a missing file is an error naming it (nothing is
/// created), a file that is not host-sim's is refused untouched.
pub fn open_existing(path: &Path) -> Result<SchoolDb, String> {
    if !path.exists() {
        return Err(format!(
            "o banco de dados {} não existe. Crie-o com `host-sim seed --db {}`, ou rode \
             `host-sim demo`, que cria {DEFAULT_DB}.",
            shown(path),
            path.display()
        ));
    }
    match inspect(path)? {
        Existing::Empty => Err(not_ours(path, "o arquivo está vazio")),
        Existing::Ours { .. } => {
            SchoolDb::open(path).map_err(|e| format!("não foi possível abrir {}: {e}", shown(path)))
        }
    }
}

/// Creates a database for `seed`: a new file (and its folder), an empty file, or — with
/// `force` — a host-sim database that already has data (recreated from nothing: contracts,
/// e-mails and integration records all go). A used database without `force`, and a file that
/// is not host-sim's, are refused untouched.
pub fn create(path: &Path, force: bool) -> Result<SchoolDb, String> {
    if path.exists() {
        match inspect(path)? {
            Existing::Empty => remove_db_files(path)?,
            Existing::Ours { contracts, records } if contracts + records > 0 => {
                if !force {
                    return Err(format!(
                        "o banco de dados {} já tem uma escola ({contracts} contrato(s), {records} \
                         registro(s) de integração). Para recriá-lo do zero (apagando contratos, \
                         e-mails e registros), use --force.",
                        shown(path)
                    ));
                }
                remove_db_files(path)?;
            }
            Existing::Ours { .. } => remove_db_files(path)?,
        }
    } else if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| {
            format!(
                "não foi possível criar a pasta {}: {}",
                shown(parent),
                io_text(&e)
            )
        })?;
    }
    SchoolDb::open(path).map_err(|e| format!("não foi possível criar {}: {e}", shown(path)))
}

fn remove_db_files(path: &Path) -> Result<(), String> {
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", path.display()));
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(format!(
                    "não foi possível apagar {}: {}",
                    shown(&p),
                    io_text(&e)
                ))
            }
        }
    }
    Ok(())
}

/// The stored global parameters for a person to read: the service password masked.
/// (Temporary, until `SchoolDb::params_for_display`.)
pub fn params_for_display(db: &SchoolDb) -> Result<serde_json::Map<String, Value>, String> {
    let mut p = db
        .params()
        .map_err(|e| format!("não foi possível ler os parâmetros globais: {e}"))?;
    mask_secrets(&mut p);
    Ok(p)
}

/// Replaces the password fields of a parameter set by a mask.
pub fn mask_secrets(p: &mut serde_json::Map<String, Value>) {
    for (k, v) in p.iter_mut() {
        if k.contains("password") && v.as_str().is_some_and(|s| !s.is_empty()) {
            *v = Value::String("••••••••".into());
        }
    }
}

/// Merges `values` into the stored global parameters (a field given replaces the stored one,
/// `null` removes it, the others stay). (Temporary, until `SchoolDb::merge_params`.)
pub fn merge_params(db: &SchoolDb, values: &Value) -> Result<(), String> {
    db.set_params(values)
        .map_err(|e| format!("não foi possível gravar os parâmetros globais: {e}"))
}

/// An I/O error in Portuguese (the common kinds; the system's text otherwise).
pub fn io_text(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        NotFound => "o arquivo ou a pasta não existe".into(),
        PermissionDenied => "sem permissão de acesso".into(),
        AlreadyExists => "já existe".into(),
        IsADirectory => "é uma pasta".into(),
        NotADirectory => "parte do caminho não é uma pasta".into(),
        StorageFull => "o disco está cheio".into(),
        ReadOnlyFilesystem => "o sistema de arquivos é somente leitura".into(),
        _ => format!("erro de entrada/saída ({e})"),
    }
}
