//! The simulated RM database, over SQLite (rusqlite, bundled): what RM keeps in SQL Server or
//! Oracle, reduced to what the plugin touches.
//!
//! One [`SchoolDb`] is one connection to one database file. Several host processes may open
//! the same file at once (several RM application servers and the job server share one RM
//! database): every connection runs in WAL mode with a busy timeout, and every write that reads
//! before it writes runs in a `BEGIN IMMEDIATE` transaction, so concurrent hosts queue on the
//! write lock instead of failing an upgrade with `SQLITE_BUSY`.
//!
//! The parts, one module each:
//! - [`school`]: the school data RM owns — coligadas and filiais, courses, financial
//!   responsibles, students, contracts, RM users with profiles and permissions — and the
//!   ABI's Contract JSON (`docs/abi.md`, "Contract").
//! - [`params`]: the plugin's global parameters (`params.get`); the service password is kept
//!   encrypted with a key stored beside the database, never in it.
//! - [`records`]: the integration records store (`records.*`): one JSON body per record plus
//!   indexed columns, the events in an append-only table of their own, the stored files.
//! - [`filters`]: the filters of `contracts.find` and `records.query` as serde types.
//! - [`leases`]: who holds which contract across processes (`leases.*`, and the fencing of
//!   `records.put` by lease token).
//!
//! Opening: [`SchoolDb::open`] creates a missing file (tests and benchmarks);
//! [`SchoolDb::open_existing`] only opens a database host-sim made (every command but `seed`
//! and `demo`); [`SchoolDb::create`] makes a fresh school (`seed`, `demo`). Databases host-sim
//! creates carry [`APPLICATION_ID`] in their SQLite header (`PRAGMA application_id`), so a
//! SQLite file of another program is recognised and refused untouched.

pub mod filters;
pub mod leases;
pub mod params;
pub mod records;
pub mod school;

pub use filters::{
    normalize_date, normalize_record_status, timestamp_ms, ContractFilter, RecordFilter,
};
pub use leases::{ContractRef, HeldLease, LeaseGrant, LeaseOwner, LeaseRenewal, StoredLease};
pub use params::{key_file_path, PASSWORD_MASK};
pub use records::{
    record_contract_problems, EventIn, RecordFields, RecordIn, RecordsIn, ACTIVE_STATUSES,
    EVENT_KINDS, RECORD_STATUSES,
};
pub use school::{
    contract_key, parse_contract_key, Contract, ContractJson, ContractPage, FinancialResponsible,
    ResponsibleJson, RmUser, CONTRACT_DATA_SERVER, PROCESS_PERMISSION,
};

use chrono::Utc;
use rusqlite::{Connection, OpenFlags};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The SQLite `application_id` of host-sim's databases (`PRAGMA application_id`, bytes 68–71 of
/// the file header): the ASCII bytes `TAEd`.
pub const APPLICATION_ID: i32 = 0x5441_4564;

/// How long a connection waits for another process's write lock before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// What kind of failure a [`DbError`] is, for callers that act on it (exit codes, the
/// `lease_lost` answer of `records.put`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DbErrorKind {
    /// The database file does not exist ([`SchoolDb::open_existing`]).
    Missing,
    /// The file exists but is not a host-sim database: empty, not SQLite, or another program's
    /// SQLite database. Nothing was written to it.
    NotHostSim,
    /// [`SchoolDb::create`] without `force` on a database that has contracts or records.
    InUse,
    /// A `records.put` with a lease token whose leases on these contracts were lost; nothing
    /// was written.
    LeaseLost(Vec<ContractRef>),
    /// A request the database refuses (a bad value, an unknown key).
    Invalid,
    /// SQLite, the file system or the key file failed.
    Storage,
}

/// A database error: its kind and a message in Portuguese for the person who reads it (with the
/// technical cause at the end when there is one).
#[derive(Clone, Debug)]
pub struct DbError {
    pub kind: DbErrorKind,
    pub message: String,
}

impl DbError {
    pub fn new(kind: DbErrorKind, message: impl Into<String>) -> Self {
        DbError {
            kind,
            message: message.into(),
        }
    }

    /// A refused value or unknown key.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(DbErrorKind::Invalid, message)
    }

    /// A failure of the storage underneath.
    pub fn storage(message: impl Into<String>) -> Self {
        Self::new(DbErrorKind::Storage, message)
    }
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DbError {}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::storage(format!("erro no banco de dados SQLite: {e}"))
    }
}

impl From<rusqlite::types::FromSqlError> for DbError {
    fn from(e: rusqlite::types::FromSqlError) -> Self {
        DbError::storage(format!("valor inesperado no banco de dados SQLite: {e}"))
    }
}

impl From<serde_json::Error> for DbError {
    fn from(e: serde_json::Error) -> Self {
        DbError::storage(format!("JSON inválido no banco de dados: {e}"))
    }
}

pub type DbResult<T> = Result<T, DbError>;

/// Now, RFC 3339 UTC with seconds (`2026-11-28T22:05:50Z`).
pub fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The school database: one connection to one file (or to memory).
pub struct SchoolDb {
    conn: Connection,
    path: Option<PathBuf>,
    /// The key of an in-memory database's encrypted parameters (a file database keeps its key
    /// in [`key_file_path`]).
    memory_key: std::cell::OnceCell<[u8; 32]>,
}

/// A `BEGIN IMMEDIATE` transaction on a [`SchoolDb`]'s connection (see [`SchoolDb::immediate`]):
/// committed by [`ImmediateTx::commit`], rolled back when dropped without it. Derefs to the
/// connection, like `rusqlite::Transaction`.
pub(crate) struct ImmediateTx<'a> {
    conn: &'a Connection,
    done: bool,
}

impl ImmediateTx<'_> {
    /// Commits the transaction (durable as the connection's `synchronous` setting says).
    pub(crate) fn commit(mut self) -> DbResult<()> {
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        self.done = true;
        Ok(())
    }
}

impl std::ops::Deref for ImmediateTx<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for ImmediateTx<'_> {
    fn drop(&mut self) {
        if !self.done && !self.conn.is_autocommit() {
            // A failed rollback leaves nothing to do here: SQLite rolls an open transaction
            // back when the connection closes, and the next BEGIN fails loudly.
            let _ = self
                .conn
                .prepare_cached("ROLLBACK")
                .and_then(|mut s| s.execute([]));
        }
    }
}

/// What a path holds, judged from its first 100 bytes without opening it with SQLite.
#[derive(Debug, PartialEq, Eq)]
enum FileKind {
    Missing,
    Empty,
    NotSqlite,
    /// A SQLite database with this application id in its header.
    Sqlite(i32),
}

fn inspect(path: &Path) -> DbResult<FileKind> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileKind::Missing),
        Err(e) => {
            return Err(DbError::storage(format!(
                "não foi possível abrir o arquivo {}: {e}",
                path.display()
            )))
        }
    };
    if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Ok(FileKind::NotSqlite);
    }
    let mut header = Vec::with_capacity(100);
    (&mut file)
        .take(100)
        .read_to_end(&mut header)
        .map_err(|e| DbError::storage(format!("não foi possível ler {}: {e}", path.display())))?;
    if header.is_empty() {
        return Ok(FileKind::Empty);
    }
    if header.len() < 100 || &header[..16] != b"SQLite format 3\0" {
        return Ok(FileKind::NotSqlite);
    }
    let id = i32::from_be_bytes([header[68], header[69], header[70], header[71]]);
    Ok(FileKind::Sqlite(id))
}

fn not_host_sim(path: &Path, why: &str) -> DbError {
    DbError::new(
        DbErrorKind::NotHostSim,
        format!(
            "o arquivo {} {why}; não é um banco de dados do host-sim e nada foi alterado nele",
            path.display()
        ),
    )
}

/// The tables whose presence marks a database of an earlier host-sim (made before the
/// application id was set).
const HOST_SIM_TABLES: [&str; 4] = [
    "contracts",
    "rm_users",
    "global_params",
    "integration_records",
];

impl SchoolDb {
    /// Opens the database at `path`, creating it when missing (tests, benchmarks), or an
    /// in-memory one for `:memory:`. A file that is not a host-sim database is refused untouched,
    /// as in [`SchoolDb::open_existing`]; an empty file becomes a new database.
    pub fn open(path: impl AsRef<Path>) -> DbResult<Self> {
        let path = path.as_ref();
        if path.as_os_str() == ":memory:" {
            return Self::in_memory();
        }
        match inspect(path)? {
            FileKind::Missing | FileKind::Empty => Self::open_file(path, true),
            _ => Self::open_existing(path),
        }
    }

    /// Opens a database host-sim made; never creates one. A missing file, an empty file, a file
    /// that is not SQLite and another program's SQLite database are errors naming the file
    /// (nothing is written to it). A database of an earlier host-sim (no application id, but
    /// host-sim's tables) is adopted: its application id is set.
    pub fn open_existing(path: impl AsRef<Path>) -> DbResult<Self> {
        let path = path.as_ref();
        match inspect(path)? {
            FileKind::Missing => Err(DbError::new(
                DbErrorKind::Missing,
                format!("o banco de dados {} não existe", path.display()),
            )),
            FileKind::Empty => Err(not_host_sim(path, "está vazio")),
            FileKind::NotSqlite => Err(not_host_sim(path, "não é um banco de dados SQLite")),
            FileKind::Sqlite(APPLICATION_ID) => Self::open_file(path, false),
            FileKind::Sqlite(0) => {
                // The header may be stale (the id written in the WAL, not yet checkpointed), or
                // the file may be an earlier host-sim's: ask SQLite, reading only.
                if Self::is_unstamped_host_sim(path)? {
                    Self::open_file(path, false)
                } else {
                    Err(not_host_sim(path, "é um banco SQLite de outro programa"))
                }
            }
            FileKind::Sqlite(other) => Err(not_host_sim(
                path,
                &format!("é um banco SQLite de outro programa (application_id {other:#x})"),
            )),
        }
    }

    /// Makes a fresh database for a new school at `path` (`seed`, `demo`): creates the file when
    /// missing (its folder must exist). A database that already has contracts or integration
    /// records is refused unless `force`; with `force` everything but the global parameters is
    /// deleted in one transaction — school data, RM users, integration records with their
    /// events and files, leases — so contracts and records never disagree. Another program's
    /// file is refused even with `force`.
    pub fn create(path: impl AsRef<Path>, force: bool) -> DbResult<Self> {
        let path = path.as_ref();
        if path.as_os_str() == ":memory:" {
            return Self::in_memory();
        }
        let db = match inspect(path)? {
            FileKind::Missing | FileKind::Empty => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    if !parent.is_dir() {
                        return Err(DbError::new(
                            DbErrorKind::Missing,
                            format!(
                                "a pasta {} não existe (o banco {} não foi criado)",
                                parent.display(),
                                path.display()
                            ),
                        ));
                    }
                }
                Self::open_file(path, true)?
            }
            _ => Self::open_existing(path)?,
        };
        let (contracts, records) = db.usage()?;
        if contracts + records > 0 {
            if !force {
                return Err(DbError::new(
                    DbErrorKind::InUse,
                    format!(
                        "o banco de dados {} já tem uma escola ({contracts} contrato(s), {records} registro(s) de integração); recriá-lo apaga tudo isso e só é feito quando forçado",
                        path.display()
                    ),
                ));
            }
            db.wipe()?;
        }
        Ok(db)
    }

    /// A fresh in-memory database.
    pub fn in_memory() -> DbResult<Self> {
        let conn = Connection::open_in_memory()?;
        conn.pragma_update(None, "application_id", APPLICATION_ID)?;
        Self::prepare(conn, None)
    }

    fn open_file(path: &Path, may_create: bool) -> DbResult<Self> {
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if may_create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let conn = Connection::open_with_flags(path, flags).map_err(|e| {
            DbError::storage(format!(
                "não foi possível abrir o banco de dados {}: {e}",
                path.display()
            ))
        })?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Set the id before WAL, so a new file carries it in its header at once.
        let id: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
        if id != APPLICATION_ID {
            conn.pragma_update(None, "application_id", APPLICATION_ID)?;
        }
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(DbError::storage(format!(
                "o banco de dados {} não pôde passar ao modo WAL (ficou em {mode})",
                path.display()
            )));
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Self::prepare(conn, Some(path.to_path_buf()))
    }

    fn prepare(conn: Connection, path: Option<PathBuf>) -> DbResult<Self> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Every statement of the hot paths (records, leases, transactions) stays prepared.
        conn.set_prepared_statement_cache_capacity(64);
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Replaced values (a plain-text password encrypted later) are zeroed, not left in free
        // pages of the file (FAST: zeroed in the pages written anyway, no extra I/O).
        conn.pragma_update(None, "secure_delete", "FAST")?;
        for schema in [
            school::SCHEMA,
            params::SCHEMA,
            records::SCHEMA,
            leases::SCHEMA,
        ] {
            conn.execute_batch(schema)?;
        }
        Ok(SchoolDb {
            conn,
            path,
            memory_key: std::cell::OnceCell::new(),
        })
    }

    /// Whether a SQLite file without host-sim's id in its header is host-sim's all the same
    /// (the id still in the WAL, or an earlier host-sim's database). Opens it read-only.
    fn is_unstamped_host_sim(path: &Path) -> DbResult<bool> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| not_host_sim(path, &format!("não pôde ser lido como SQLite ({e})")))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let read = || -> rusqlite::Result<bool> {
            let id: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
            if id == APPLICATION_ID {
                return Ok(true);
            }
            if id != 0 {
                return Ok(false);
            }
            let mut found = 0;
            for t in HOST_SIM_TABLES {
                let n: i64 = conn.query_row(
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                    [t],
                    |r| r.get(0),
                )?;
                found += n;
            }
            Ok(found == HOST_SIM_TABLES.len() as i64)
        };
        read().map_err(|e| not_host_sim(path, &format!("não pôde ser lido como SQLite ({e})")))
    }

    /// (contracts, integration records) stored.
    fn usage(&self) -> DbResult<(i64, i64)> {
        let contracts = self
            .conn
            .query_row("SELECT COUNT(*) FROM contracts", [], |r| r.get(0))?;
        let records = self
            .conn
            .query_row("SELECT COUNT(*) FROM integration_records", [], |r| r.get(0))?;
        Ok((contracts, records))
    }

    /// Deletes everything but the global parameters, in one transaction.
    fn wipe(&self) -> DbResult<()> {
        let tx = self.immediate()?;
        // The events are append-only for everyone else; a new school starts without them.
        tx.execute_batch(
            "DROP TRIGGER IF EXISTS record_events_append_only_update;
             DROP TRIGGER IF EXISTS record_events_append_only_delete;
             DELETE FROM record_files;
             DELETE FROM record_events;
             DELETE FROM integration_records;
             DELETE FROM leases;
             DELETE FROM contracts;
             DELETE FROM students;
             DELETE FROM financial_responsibles;
             DELETE FROM courses;
             DELETE FROM filiais;
             DELETE FROM coligadas;
             DELETE FROM rm_users;
             DELETE FROM profile_permissions;
             DELETE FROM profiles;",
        )?;
        tx.execute_batch(records::SCHEMA)?;
        tx.commit()?;
        Ok(())
    }

    /// A `BEGIN IMMEDIATE` transaction: takes the write lock up front (waiting up to
    /// [`BUSY_TIMEOUT`] for other processes), so a read-then-write never fails half-way.
    ///
    /// `BEGIN IMMEDIATE`, `COMMIT` and `ROLLBACK` run as cached statements: every `records.put`
    /// is one such transaction, and parsing the three statements again each time cost more than
    /// the write itself.
    pub(crate) fn immediate(&self) -> DbResult<ImmediateTx<'_>> {
        self.conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        Ok(ImmediateTx {
            conn: &self.conn,
            done: false,
        })
    }

    /// The file path, unless in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Seeds the demo school (see [`crate::seed::seed_demo`]); answers the contract keys.
    pub fn seed_demo(&self) -> DbResult<Vec<String>> {
        crate::seed::seed_demo(self)
    }

    /// Seeds `n` valid contracts (see [`crate::seed::seed_bulk`]); answers the contract keys.
    pub fn seed_bulk(&self, n: usize) -> DbResult<Vec<String>> {
        crate::seed::seed_bulk(self, n)
    }

    /// Direct access for tests and tools.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_database_is_wal_and_persists_and_carries_the_application_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("escola.db");
        {
            let db = SchoolDb::open(&path).unwrap();
            crate::seed::seed_demo(&db).unwrap();
            db.put_records(&[records::tests::record("r1", "1;a;1", "pendente", None, 1)])
                .unwrap();
        }
        assert_eq!(inspect(&path).unwrap(), FileKind::Sqlite(APPLICATION_ID));
        let db = SchoolDb::open_existing(&path).unwrap();
        let mode: String = db
            .conn()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode.to_lowercase(), "wal");
        let timeout: i64 = db
            .conn()
            .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
            .unwrap();
        assert_eq!(timeout, BUSY_TIMEOUT.as_millis() as i64);
        assert!(db.record("r1").unwrap().is_some());
        assert!(db.all_contracts().unwrap().len() >= 12);
    }

    #[test]
    fn open_existing_refuses_what_is_not_a_host_sim_database_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("escola-errada.db");
        let e = SchoolDb::open_existing(&missing).err().unwrap();
        assert_eq!(e.kind, DbErrorKind::Missing);
        assert!(e.message.contains("escola-errada.db") && e.message.contains("não existe"));
        assert!(!missing.exists(), "open_existing created the file");

        let empty = dir.path().join("vazio.db");
        std::fs::write(&empty, b"").unwrap();
        let e = SchoolDb::open_existing(&empty).err().unwrap();
        assert_eq!(e.kind, DbErrorKind::NotHostSim);
        assert!(
            e.message.contains("vazio.db") && e.message.contains("vazio"),
            "{e}"
        );
        assert_eq!(std::fs::read(&empty).unwrap(), b"");

        let text = dir.path().join("notas.db");
        std::fs::write(&text, "nome;nota\nAna;10\n".repeat(20)).unwrap();
        let before = std::fs::read(&text).unwrap();
        let e = SchoolDb::open_existing(&text).err().unwrap();
        assert_eq!(e.kind, DbErrorKind::NotHostSim);
        assert!(e.message.contains("não é um banco de dados SQLite"), "{e}");
        assert_eq!(std::fs::read(&text).unwrap(), before);

        // Another program's SQLite database, with and without an application id of its own.
        for id in [0, 0x0f0f_0f0f] {
            let other = dir.path().join(format!("outro-{id}.db"));
            {
                let c = Connection::open(&other).unwrap();
                c.execute_batch("CREATE TABLE notas (aluno TEXT, nota INTEGER); INSERT INTO notas VALUES ('Ana', 10);")
                    .unwrap();
                c.pragma_update(None, "application_id", id).unwrap();
            }
            let before = std::fs::read(&other).unwrap();
            for open in [SchoolDb::open_existing, SchoolDb::open] {
                let e = open(&other).err().unwrap();
                assert_eq!(e.kind, DbErrorKind::NotHostSim, "{e}");
                assert!(e.message.contains("outro programa"), "{e}");
            }
            let e = SchoolDb::create(&other, true).err().unwrap();
            assert_eq!(e.kind, DbErrorKind::NotHostSim, "{e}");
            assert_eq!(
                std::fs::read(&other).unwrap(),
                before,
                "the file was changed"
            );
            let names: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            assert!(
                !names
                    .iter()
                    .any(|n| n.starts_with(&format!("outro-{id}.db-"))),
                "{names:?}"
            );
        }
    }

    #[test]
    fn an_earlier_host_sim_database_without_the_id_is_adopted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("antigo.db");
        {
            let db = SchoolDb::open(&path).unwrap();
            crate::seed::seed_demo(&db).unwrap();
            db.conn().pragma_update(None, "application_id", 0).unwrap();
            db.conn()
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .unwrap();
        }
        assert_eq!(inspect(&path).unwrap(), FileKind::Sqlite(0));
        let db = SchoolDb::open_existing(&path).unwrap();
        assert!(db.all_contracts().unwrap().len() >= 12);
        let id: i32 = db
            .conn()
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .unwrap();
        assert_eq!(id, APPLICATION_ID);
    }

    #[test]
    fn create_refuses_a_used_database_and_force_wipes_it_consistently() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("escola.db");
        let e = SchoolDb::create(dir.path().join("nao-existe").join("escola.db"), false)
            .err()
            .unwrap();
        assert_eq!(e.kind, DbErrorKind::Missing);
        assert!(e.message.contains("nao-existe"), "{e}");
        {
            let db = SchoolDb::create(&path, false).unwrap();
            crate::seed::seed_demo(&db).unwrap();
            db.configure_tae("http://127.0.0.1:9", "servico@escola", "s3nh@-do-servico")
                .unwrap();
            let key = db.all_contracts().unwrap()[0].key();
            db.set_contract_status(&key, "Assinado", "secretaria")
                .unwrap();
            db.put_records(&[records::tests::record("r1", &key, "finalizado", None, 2)])
                .unwrap();
            db.store_record_file("r1", "assinado.pdf", b"%PDF", None)
                .unwrap();
            let owner = leases::tests::owner("run-1");
            db.acquire_leases(&owner, 60, &[ContractRef::contract(&key)])
                .unwrap();
        }
        let e = SchoolDb::create(&path, false).err().unwrap();
        assert_eq!(e.kind, DbErrorKind::InUse);
        assert!(
            e.message.contains("escola.db") && e.message.contains("1 registro(s)"),
            "{e}"
        );
        // Nothing changed by the refusal.
        let db = SchoolDb::open_existing(&path).unwrap();
        assert_eq!(db.all_records().unwrap().len(), 1);
        drop(db);

        let db = SchoolDb::create(&path, true).unwrap();
        let count = |t: &str| -> i64 {
            db.conn()
                .query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| r.get(0))
                .unwrap()
        };
        for t in [
            "contracts",
            "students",
            "financial_responsibles",
            "rm_users",
            "integration_records",
            "record_events",
            "record_files",
            "leases",
        ] {
            assert_eq!(count(t), 0, "{t} not wiped");
        }
        // The parameters describe the TAE connection, not the school: kept.
        assert_eq!(db.params().unwrap()["service_password"], "s3nh@-do-servico");
        // The append-only triggers are back.
        crate::seed::seed_demo(&db).unwrap();
        let key = db.all_contracts().unwrap()[0].key();
        assert_eq!(db.contract(&key).unwrap().unwrap().status, "Ativo");
        db.put_records(&[records::tests::record("r2", &key, "pendente", None, 1)])
            .unwrap();
        assert!(db.conn().execute("DELETE FROM record_events", []).is_err());
    }
}
