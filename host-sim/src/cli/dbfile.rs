//! Which database a command works on. Only `seed` and `demo` create one; every other command
//! opens an existing host-sim database and refuses anything else untouched.
//!
//! The checks themselves are the library's (`SchoolDb::open_existing`, `SchoolDb::create`);
//! this module words their refusals for the command line.

use host_sim::db::{DbErrorKind, SchoolDb};
use serde_json::Value;
use std::path::Path;

/// The database every command uses without `--db`; the demo writes it.
pub const DEFAULT_DB: &str = "demo-output/escola-demo.db";

/// The path as the user should read it: absolute when it can be made so.
pub fn shown(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// Opens an existing host-sim database: a missing file is an error naming it (nothing is
/// created), a file that is not host-sim's is refused untouched (`SchoolDb::open_existing`).
pub fn open_existing(path: &Path) -> Result<SchoolDb, String> {
    if path.is_dir() {
        return Err(format!(
            "{} é uma pasta; o --db deve ser o arquivo do banco de dados",
            shown(path)
        ));
    }
    SchoolDb::open_existing(path).map_err(|e| match e.kind {
        DbErrorKind::Missing => format!(
            "o banco de dados {} não existe. Crie-o com `host-sim seed --db {}`, ou rode \
             `host-sim demo`, que cria {DEFAULT_DB}.",
            shown(path),
            path.display()
        ),
        DbErrorKind::NotHostSim => format!(
            "{e}. Confira o --db, ou crie um banco novo com `host-sim seed --db <arquivo novo>`."
        ),
        _ => format!("não foi possível abrir {}: {e}", shown(path)),
    })
}

/// Creates a database for `seed` and `demo` (`SchoolDb::create`): a new file (and its
/// folder), an empty file, or — with `force` — a host-sim database that already has data
/// (recreated from nothing: contracts, e-mails and integration records all go). A used
/// database without `force`, and a file that is not host-sim's, are refused untouched.
pub fn create(path: &Path, force: bool) -> Result<SchoolDb, String> {
    if path.is_dir() {
        return Err(format!(
            "{} é uma pasta; o --db deve ser o arquivo do banco de dados",
            shown(path)
        ));
    }
    if !path.exists() {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                format!(
                    "não foi possível criar a pasta {}: {}",
                    shown(parent),
                    io_text(&e)
                )
            })?;
        }
    }
    SchoolDb::create(path, force).map_err(|e| match e.kind {
        DbErrorKind::InUse => format!(
            "{e}. Para recriá-lo do zero (apagando contratos, e-mails e registros), use --force."
        ),
        DbErrorKind::NotHostSim => format!(
            "{e}. Confira o --db, ou crie um banco novo com `host-sim seed --db <arquivo novo>`."
        ),
        _ => format!("não foi possível criar {}: {e}", shown(path)),
    })
}

/// The stored global parameters for a person to read: the service password masked.
pub fn params_for_display(db: &SchoolDb) -> Result<serde_json::Map<String, Value>, String> {
    db.params_for_display()
        .map_err(|e| format!("não foi possível ler os parâmetros globais: {e}"))
}

/// Replaces the password fields of a parameter set by a mask.
pub fn mask_secrets(p: &mut serde_json::Map<String, Value>) {
    for (k, v) in p.iter_mut() {
        if k.contains("password") && v.as_str().is_some_and(|s| !s.is_empty()) {
            *v = Value::String(host_sim::db::PASSWORD_MASK.into());
        }
    }
}

/// Merges `values` into the stored global parameters (a field given replaces the stored one,
/// `null` removes it, the others stay); the password is stored encrypted.
pub fn merge_params(db: &SchoolDb, values: &Value) -> Result<(), String> {
    db.merge_params(values)
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
