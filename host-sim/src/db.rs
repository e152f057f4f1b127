//! The simulated RM school database, over SQLite (rusqlite, bundled).
//!
//! Tables: coligadas and filiais (the school and its units), courses, financial responsibles,
//! students, contracts, RM users with profiles and permissions, global parameters, and the
//! integration records (one JSON document per record plus indexed columns) with their events in
//! an append-only table of their own. The JSON shapes that leave this module are the ones of
//! `docs/abi.md` ("Contract", "Record").

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use serde_json::{json, Map, Value};
use std::path::Path;
use std::time::Duration;

/// The DataServer name RM uses for the Educacional contract (the records' `data_server`).
pub const CONTRACT_DATA_SERVER: &str = "EduContratoData";

/// The process permission the plugin asks about (`user.has_permission`).
pub const PROCESS_PERMISSION: &str = "Integração com TOTVS Assinatura Digital";

/// A database error, with what was being done.
#[derive(Debug)]
pub struct DbError(pub String);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DbError {}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError(format!("sqlite: {e}"))
    }
}

impl From<serde_json::Error> for DbError {
    fn from(e: serde_json::Error) -> Self {
        DbError(format!("json: {e}"))
    }
}

pub type DbResult<T> = Result<T, DbError>;

/// A financial responsible ("responsável financeiro") as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct FinancialResponsible {
    pub code: String,
    pub name: String,
    pub cpf: Option<String>,
    pub email: Option<String>,
}

/// One student contract with everything the contract report prints.
#[derive(Clone, Debug, PartialEq)]
pub struct Contract {
    pub codcoligada: i64,
    pub codfilial: i64,
    pub codcontrato: String,
    pub ra: String,
    pub student_name: String,
    pub student_birth_date: Option<String>,
    pub course: String,
    pub period: String,
    pub status: String,
    /// Monthly fee in cents (BRL).
    pub monthly_value_cents: i64,
    pub installments: i64,
    pub school_name: String,
    pub school_cnpj: String,
    pub unit_name: String,
    pub unit_city: String,
    pub financial_responsible: Option<FinancialResponsible>,
}

impl Contract {
    /// The host's primary-key string: `codcoligada;ra;codcontrato`.
    pub fn key(&self) -> String {
        contract_key(self.codcoligada, &self.ra, &self.codcontrato)
    }

    /// The ABI's Contract JSON (`docs/abi.md`).
    pub fn to_json(&self) -> Value {
        json!({
            "key": self.key(),
            "data_server": CONTRACT_DATA_SERVER,
            "codcoligada": self.codcoligada,
            "codfilial": self.codfilial,
            "codcontrato": self.codcontrato,
            "ra": self.ra,
            "student_name": self.student_name,
            "course": self.course,
            "period": self.period,
            "status": self.status,
            "financial_responsible": self.financial_responsible.as_ref().map(|r| json!({
                "code": r.code, "name": r.name, "cpf": r.cpf, "email": r.email,
            })),
        })
    }

    /// Total value of the contract in cents.
    pub fn total_value_cents(&self) -> i64 {
        self.monthly_value_cents * self.installments
    }
}

/// The host's contract key format.
pub fn contract_key(codcoligada: i64, ra: &str, codcontrato: &str) -> String {
    format!("{codcoligada};{ra};{codcontrato}")
}

/// Splits a contract key into (codcoligada, ra, codcontrato).
pub fn parse_contract_key(key: &str) -> Option<(i64, String, String)> {
    let mut parts = key.split(';');
    let coligada = parts.next()?.trim().parse().ok()?;
    let ra = parts.next()?.to_string();
    let contrato = parts.next()?.to_string();
    if parts.next().is_some() || ra.is_empty() || contrato.is_empty() {
        return None;
    }
    Some((coligada, ra, contrato))
}

/// An RM user.
#[derive(Clone, Debug, PartialEq)]
pub struct RmUser {
    pub login: String,
    pub name: String,
    pub email: String,
    pub profile: String,
    pub interactive: bool,
}

/// Filter of `contracts.find`.
#[derive(Clone, Debug, Default)]
pub struct ContractFilter {
    pub codcoligada: Option<i64>,
    pub codfilial: Option<i64>,
    pub period: Option<String>,
    pub course: Option<String>,
    pub status: Option<String>,
    pub ra: Option<String>,
    pub codcontrato: Option<String>,
}

impl ContractFilter {
    /// Parses the ABI's filter object; unknown fields are refused so a typo is never ignored.
    pub fn from_json(v: &Value) -> Result<Self, String> {
        let Some(obj) = v.as_object() else {
            if v.is_null() {
                return Ok(Self::default());
            }
            return Err("filter must be an object".into());
        };
        let mut f = ContractFilter::default();
        for (k, val) in obj {
            if val.is_null() {
                continue;
            }
            let text = || -> Result<String, String> {
                match val {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    _ => Err(format!("filter.{k} must be a string")),
                }
            };
            let int = || -> Result<i64, String> {
                match val {
                    Value::Number(n) => n.as_i64().ok_or(format!("filter.{k} must be an integer")),
                    Value::String(s) => s
                        .trim()
                        .parse()
                        .map_err(|_| format!("filter.{k} must be an integer")),
                    _ => Err(format!("filter.{k} must be an integer")),
                }
            };
            match k.as_str() {
                "codcoligada" => f.codcoligada = Some(int()?),
                "codfilial" => f.codfilial = Some(int()?),
                "period" => f.period = Some(text()?),
                "course" => f.course = Some(text()?),
                "status" => f.status = Some(text()?),
                "ra" => f.ra = Some(text()?),
                "codcontrato" => f.codcontrato = Some(text()?),
                other => return Err(format!("unknown contract filter field `{other}`")),
            }
        }
        Ok(f)
    }
}

/// Filter of `records.query` (`RecordFilter` in `docs/abi.md`).
#[derive(Clone, Debug, Default)]
pub struct RecordFilter {
    pub record_ids: Option<Vec<String>>,
    pub contract_key: Option<String>,
    pub status: Option<String>,
    pub sent_from: Option<String>,
    pub sent_to: Option<String>,
    pub sent_by: Option<String>,
}

impl RecordFilter {
    pub fn from_json(v: &Value) -> Result<Self, String> {
        let Some(obj) = v.as_object() else {
            if v.is_null() {
                return Ok(Self::default());
            }
            return Err("filter must be an object".into());
        };
        let mut f = RecordFilter::default();
        for (k, val) in obj {
            if val.is_null() {
                continue;
            }
            let text = || {
                val.as_str()
                    .map(str::to_string)
                    .ok_or(format!("filter.{k} must be a string"))
            };
            match k.as_str() {
                "record_ids" => {
                    let arr = val.as_array().ok_or("filter.record_ids must be an array")?;
                    let mut ids = Vec::new();
                    for id in arr {
                        ids.push(
                            id.as_str()
                                .ok_or("filter.record_ids must hold strings")?
                                .to_string(),
                        );
                    }
                    f.record_ids = Some(ids);
                }
                "contract_key" => f.contract_key = Some(text()?),
                "status" => f.status = Some(text()?),
                "sent_from" => f.sent_from = Some(text()?),
                "sent_to" => f.sent_to = Some(text()?),
                "sent_by" => f.sent_by = Some(text()?),
                other => return Err(format!("unknown record filter field `{other}`")),
            }
        }
        Ok(f)
    }
}

/// Parses an RFC 3339 timestamp or a `YYYY-MM-DD` date to epoch milliseconds. A bare date is
/// the start of that day, or its last millisecond when `end_of_day`.
pub fn timestamp_ms(s: &str, end_of_day: bool) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(t.and_utc().timestamp_millis());
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    let t = if end_of_day {
        d.and_hms_milli_opt(23, 59, 59, 999)?
    } else {
        d.and_hms_opt(0, 0, 0)?
    };
    Some(t.and_utc().timestamp_millis())
}

/// Now, RFC 3339 UTC with seconds (`2026-11-28T22:05:50Z`).
pub fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS coligadas (
    codcoligada INTEGER PRIMARY KEY,
    nome        TEXT NOT NULL,
    cnpj        TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS filiais (
    codcoligada INTEGER NOT NULL REFERENCES coligadas(codcoligada),
    codfilial   INTEGER NOT NULL,
    nome        TEXT NOT NULL,
    cidade      TEXT NOT NULL,
    PRIMARY KEY (codcoligada, codfilial)
);
CREATE TABLE IF NOT EXISTS courses (
    name            TEXT PRIMARY KEY,
    duration_months INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS financial_responsibles (
    code  TEXT PRIMARY KEY,
    name  TEXT NOT NULL,
    cpf   TEXT,
    email TEXT
);
CREATE TABLE IF NOT EXISTS students (
    ra               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    birth_date       TEXT,
    responsible_code TEXT REFERENCES financial_responsibles(code)
);
CREATE TABLE IF NOT EXISTS contracts (
    codcoligada         INTEGER NOT NULL,
    codfilial           INTEGER NOT NULL,
    codcontrato         TEXT NOT NULL,
    ra                  TEXT NOT NULL REFERENCES students(ra),
    course              TEXT NOT NULL REFERENCES courses(name),
    period              TEXT NOT NULL,
    status              TEXT NOT NULL,
    monthly_value_cents INTEGER NOT NULL,
    installments        INTEGER NOT NULL,
    responsible_code    TEXT REFERENCES financial_responsibles(code),
    status_changed_by   TEXT,
    status_changed_at   TEXT,
    PRIMARY KEY (codcoligada, ra, codcontrato),
    FOREIGN KEY (codcoligada, codfilial) REFERENCES filiais(codcoligada, codfilial)
);
CREATE INDEX IF NOT EXISTS contracts_by_period ON contracts(codcoligada, period, course);
CREATE TABLE IF NOT EXISTS profiles (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS profile_permissions (
    profile    TEXT NOT NULL REFERENCES profiles(code),
    permission TEXT NOT NULL,
    PRIMARY KEY (profile, permission)
);
CREATE TABLE IF NOT EXISTS rm_users (
    login       TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    email       TEXT NOT NULL,
    profile     TEXT NOT NULL REFERENCES profiles(code),
    interactive INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS global_params (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS integration_records (
    id          TEXT PRIMARY KEY,
    data_server TEXT NOT NULL,
    record_key  TEXT NOT NULL,
    document_id INTEGER,
    status      TEXT NOT NULL,
    sent_by     TEXT,
    sent_at_ms  INTEGER,
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_key ON integration_records(data_server, record_key);
CREATE INDEX IF NOT EXISTS records_by_status ON integration_records(status);
CREATE INDEX IF NOT EXISTS records_by_sent ON integration_records(sent_at_ms);
CREATE TABLE IF NOT EXISTS record_events (
    record_id TEXT NOT NULL REFERENCES integration_records(id),
    seq       INTEGER NOT NULL,
    at        TEXT NOT NULL,
    by_user   TEXT NOT NULL,
    kind      TEXT NOT NULL,
    detail    TEXT NOT NULL,
    PRIMARY KEY (record_id, seq)
);
CREATE TRIGGER IF NOT EXISTS record_events_append_only_update
    BEFORE UPDATE ON record_events
    BEGIN SELECT RAISE(ABORT, 'record_events is append-only'); END;
CREATE TRIGGER IF NOT EXISTS record_events_append_only_delete
    BEFORE DELETE ON record_events
    BEGIN SELECT RAISE(ABORT, 'record_events is append-only'); END;
CREATE TABLE IF NOT EXISTS record_files (
    record_id  TEXT NOT NULL,
    file_name  TEXT NOT NULL,
    content    BLOB NOT NULL,
    stored_at  TEXT NOT NULL,
    path       TEXT,
    PRIMARY KEY (record_id, file_name)
);
"#;

/// The school database.
pub struct SchoolDb {
    conn: Connection,
    path: Option<std::path::PathBuf>,
}

impl SchoolDb {
    /// Opens (creating when needed) the database at `path`, or an in-memory one for `:memory:`.
    pub fn open(path: impl AsRef<Path>) -> DbResult<Self> {
        let path = path.as_ref();
        let in_memory = path.as_os_str() == ":memory:";
        let conn = if in_memory {
            Connection::open_in_memory()?
        } else {
            Connection::open(path)?
        };
        conn.busy_timeout(Duration::from_secs(10))?;
        if !in_memory {
            let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(DbError(format!("could not switch to WAL (got {mode})")));
            }
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(SCHEMA)?;
        Ok(SchoolDb {
            conn,
            path: (!in_memory).then(|| path.to_path_buf()),
        })
    }

    /// A fresh in-memory database.
    pub fn in_memory() -> DbResult<Self> {
        Self::open(":memory:")
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

    // ---------------------------------------------------------------- school data

    pub fn add_coligada(&self, codcoligada: i64, nome: &str, cnpj: &str) -> DbResult<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO coligadas (codcoligada, nome, cnpj) VALUES (?1, ?2, ?3)",
            params![codcoligada, nome, cnpj],
        )?;
        Ok(())
    }

    pub fn add_filial(
        &self,
        codcoligada: i64,
        codfilial: i64,
        nome: &str,
        cidade: &str,
    ) -> DbResult<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO filiais (codcoligada, codfilial, nome, cidade) VALUES (?1, ?2, ?3, ?4)",
            params![codcoligada, codfilial, nome, cidade],
        )?;
        Ok(())
    }

    pub fn add_course(&self, name: &str, duration_months: i64) -> DbResult<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO courses (name, duration_months) VALUES (?1, ?2)",
            params![name, duration_months],
        )?;
        Ok(())
    }

    pub fn add_responsible(&self, r: &FinancialResponsible) -> DbResult<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO financial_responsibles (code, name, cpf, email) VALUES (?1, ?2, ?3, ?4)",
            params![r.code, r.name, r.cpf, r.email],
        )?;
        Ok(())
    }

    pub fn add_student(
        &self,
        ra: &str,
        name: &str,
        birth_date: Option<&str>,
        responsible_code: Option<&str>,
    ) -> DbResult<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO students (ra, name, birth_date, responsible_code) VALUES (?1, ?2, ?3, ?4)",
            params![ra, name, birth_date, responsible_code],
        )?;
        Ok(())
    }

    /// Adds a contract; its financial responsible is the student's unless `responsible_code`.
    #[allow(clippy::too_many_arguments)]
    pub fn add_contract(
        &self,
        codcoligada: i64,
        codfilial: i64,
        codcontrato: &str,
        ra: &str,
        course: &str,
        period: &str,
        status: &str,
        monthly_value_cents: i64,
        installments: i64,
        responsible_code: Option<&str>,
    ) -> DbResult<String> {
        self.conn.execute(
            "INSERT OR REPLACE INTO contracts (codcoligada, codfilial, codcontrato, ra, course, period, status,
                 monthly_value_cents, installments, responsible_code)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,
                 COALESCE(?10, (SELECT responsible_code FROM students WHERE ra = ?4)))",
            params![
                codcoligada,
                codfilial,
                codcontrato,
                ra,
                course,
                period,
                status,
                monthly_value_cents,
                installments,
                responsible_code
            ],
        )?;
        Ok(contract_key(codcoligada, ra, codcontrato))
    }

    /// Changes a financial responsible's e-mail (what a secretary does in RM before "update e-mails").
    pub fn set_responsible_email(&self, code: &str, email: Option<&str>) -> DbResult<()> {
        let n = self.conn.execute(
            "UPDATE financial_responsibles SET email = ?2 WHERE code = ?1",
            params![code, email],
        )?;
        if n == 0 {
            return Err(DbError(format!("no financial responsible {code}")));
        }
        Ok(())
    }

    const CONTRACT_SELECT: &'static str =
        "SELECT c.codcoligada, c.codfilial, c.codcontrato, c.ra, s.name, s.birth_date,
            c.course, c.period, c.status, c.monthly_value_cents, c.installments,
            col.nome, col.cnpj, f.nome, f.cidade,
            r.code, r.name, r.cpf, r.email
        FROM contracts c
        JOIN students s ON s.ra = c.ra
        JOIN coligadas col ON col.codcoligada = c.codcoligada
        JOIN filiais f ON f.codcoligada = c.codcoligada AND f.codfilial = c.codfilial
        LEFT JOIN financial_responsibles r ON r.code = c.responsible_code";

    fn contract_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Contract> {
        let code: Option<String> = row.get(15)?;
        let financial_responsible = match code {
            Some(code) => Some(FinancialResponsible {
                code,
                name: row.get(16)?,
                cpf: row.get(17)?,
                email: row.get(18)?,
            }),
            None => None,
        };
        Ok(Contract {
            codcoligada: row.get(0)?,
            codfilial: row.get(1)?,
            codcontrato: row.get(2)?,
            ra: row.get(3)?,
            student_name: row.get(4)?,
            student_birth_date: row.get(5)?,
            course: row.get(6)?,
            period: row.get(7)?,
            status: row.get(8)?,
            monthly_value_cents: row.get(9)?,
            installments: row.get(10)?,
            school_name: row.get(11)?,
            school_cnpj: row.get(12)?,
            unit_name: row.get(13)?,
            unit_city: row.get(14)?,
            financial_responsible,
        })
    }

    /// One contract by its key.
    pub fn contract(&self, key: &str) -> DbResult<Option<Contract>> {
        let Some((coligada, ra, contrato)) = parse_contract_key(key) else {
            return Ok(None);
        };
        let sql = format!(
            "{} WHERE c.codcoligada = ?1 AND c.ra = ?2 AND c.codcontrato = ?3",
            Self::CONTRACT_SELECT
        );
        Ok(self
            .conn
            .query_row(
                &sql,
                params![coligada, ra, contrato],
                Self::contract_from_row,
            )
            .optional()?)
    }

    /// Contracts by keys: (found, missing keys), found in the order asked.
    pub fn contracts_by_keys(&self, keys: &[String]) -> DbResult<(Vec<Contract>, Vec<String>)> {
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for key in keys {
            match self.contract(key)? {
                Some(c) => found.push(c),
                None => missing.push(key.clone()),
            }
        }
        Ok((found, missing))
    }

    /// Contracts matching a filter, ordered by coligada, course, student name.
    pub fn find_contracts(&self, f: &ContractFilter) -> DbResult<Vec<Contract>> {
        let mut sql = format!("{} WHERE 1=1", Self::CONTRACT_SELECT);
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        let mut add = |cond: &str, v: rusqlite::types::Value| {
            args.push(v);
            sql.push_str(&format!(" AND {cond} ?{}", args.len()));
        };
        if let Some(v) = f.codcoligada {
            add("c.codcoligada =", v.into());
        }
        if let Some(v) = f.codfilial {
            add("c.codfilial =", v.into());
        }
        if let Some(v) = &f.period {
            add("c.period =", v.clone().into());
        }
        if let Some(v) = &f.course {
            add("c.course =", v.clone().into());
        }
        if let Some(v) = &f.status {
            add("c.status =", v.clone().into());
        }
        if let Some(v) = &f.ra {
            add("c.ra =", v.clone().into());
        }
        if let Some(v) = &f.codcontrato {
            add("c.codcontrato =", v.clone().into());
        }
        sql.push_str(" ORDER BY c.codcoligada, c.course, s.name, c.codcontrato");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(args), Self::contract_from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// All contracts.
    pub fn all_contracts(&self) -> DbResult<Vec<Contract>> {
        self.find_contracts(&ContractFilter::default())
    }

    /// Sets a contract's status (e.g. "Assinado"); errors when the key is unknown.
    pub fn set_contract_status(&self, key: &str, status: &str, by: &str) -> DbResult<()> {
        let (coligada, ra, contrato) = parse_contract_key(key)
            .ok_or_else(|| DbError(format!("invalid contract key `{key}`")))?;
        let n = self.conn.execute(
            "UPDATE contracts SET status = ?4, status_changed_by = ?5, status_changed_at = ?6
             WHERE codcoligada = ?1 AND ra = ?2 AND codcontrato = ?3",
            params![coligada, ra, contrato, status, by, now_rfc3339()],
        )?;
        if n == 0 {
            return Err(DbError(format!("no contract with key `{key}`")));
        }
        Ok(())
    }

    /// (key, status) of every contract, ordered by key.
    pub fn contract_statuses(&self) -> DbResult<Vec<(String, String)>> {
        let mut stmt = self.conn.prepare(
            "SELECT codcoligada, ra, codcontrato, status FROM contracts ORDER BY codcoligada, ra, codcontrato",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                contract_key(r.get(0)?, &r.get::<_, String>(1)?, &r.get::<_, String>(2)?),
                r.get(3)?,
            ))
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    // ---------------------------------------------------------------- users and profiles

    pub fn add_profile(&self, code: &str, name: &str, permissions: &[&str]) -> DbResult<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO profiles (code, name) VALUES (?1, ?2)",
            params![code, name],
        )?;
        for p in permissions {
            self.conn.execute(
                "INSERT OR IGNORE INTO profile_permissions (profile, permission) VALUES (?1, ?2)",
                params![code, p],
            )?;
        }
        Ok(())
    }

    pub fn add_user(&self, u: &RmUser) -> DbResult<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO rm_users (login, name, email, profile, interactive) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![u.login, u.name, u.email, u.profile, u.interactive],
        )?;
        Ok(())
    }

    pub fn user(&self, login: &str) -> DbResult<Option<RmUser>> {
        Ok(self
            .conn
            .query_row(
                "SELECT login, name, email, profile, interactive FROM rm_users WHERE login = ?1",
                params![login],
                |r| {
                    Ok(RmUser {
                        login: r.get(0)?,
                        name: r.get(1)?,
                        email: r.get(2)?,
                        profile: r.get(3)?,
                        interactive: r.get(4)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn users(&self) -> DbResult<Vec<RmUser>> {
        let mut stmt = self
            .conn
            .prepare("SELECT login FROM rm_users ORDER BY login")?;
        let logins = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::new();
        for l in logins {
            out.extend(self.user(&l)?);
        }
        Ok(out)
    }

    /// Whether the user's profile grants `permission` (unknown users have none).
    pub fn user_has_permission(&self, login: &str, permission: &str) -> DbResult<bool> {
        let n: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM rm_users u JOIN profile_permissions p ON p.profile = u.profile
             WHERE u.login = ?1 AND p.permission = ?2",
            params![login, permission],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    // ---------------------------------------------------------------- global parameters

    pub fn set_param(&self, name: &str, value: &Value) -> DbResult<()> {
        if value.is_null() {
            self.conn
                .execute("DELETE FROM global_params WHERE name = ?1", params![name])?;
        } else {
            self.conn.execute(
                "INSERT OR REPLACE INTO global_params (name, value) VALUES (?1, ?2)",
                params![name, serde_json::to_string(value)?],
            )?;
        }
        Ok(())
    }

    /// Sets every field of a JSON object (null removes the parameter).
    pub fn set_params(&self, values: &Value) -> DbResult<()> {
        let obj = values
            .as_object()
            .ok_or_else(|| DbError("parameters must be a JSON object".into()))?;
        for (k, v) in obj {
            self.set_param(k, v)?;
        }
        Ok(())
    }

    pub fn params(&self) -> DbResult<Map<String, Value>> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, value FROM global_params ORDER BY name")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Map::new();
        for row in rows {
            let (k, v) = row?;
            out.insert(k, serde_json::from_str(&v)?);
        }
        Ok(out)
    }

    /// Points the global parameters at a TAE base URL (`<base>/identityintegration`, `<base>`).
    pub fn configure_tae(
        &self,
        base_url: &str,
        service_user: &str,
        service_password: &str,
    ) -> DbResult<()> {
        let base = base_url.trim_end_matches('/');
        self.set_params(&json!({
            "auth_url": format!("{base}/identityintegration"),
            "api_url": base,
            "web_login_url": format!("{base}/webapptotvssign/#/auth/login?external=true"),
            "service_user": service_user,
            "service_password": service_password,
        }))
    }

    // ---------------------------------------------------------------- integration records

    /// Upserts records by id, in one transaction. Events are append-only: the stored ones must be
    /// a prefix of the ones given; new ones are appended, fewer ones never delete anything.
    /// Answers warnings (e.g. a record that rewrote its history) for the log.
    pub fn put_records(&self, records: &[Value]) -> DbResult<Vec<String>> {
        let mut warnings = Vec::new();
        // IMMEDIATE: take the write lock up front (waiting on the busy timeout), so concurrent
        // hosts over the same file never fail a read-then-write upgrade with SQLITE_BUSY.
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )?;
        for rec in records {
            let obj = rec
                .as_object()
                .ok_or_else(|| DbError("a record must be a JSON object".into()))?;
            let s = |name: &str| obj.get(name).and_then(Value::as_str).map(str::to_string);
            let id = s("id")
                .filter(|id| !id.is_empty())
                .ok_or_else(|| DbError("record without `id`".into()))?;
            let data_server = s("data_server")
                .ok_or_else(|| DbError(format!("record {id} without `data_server`")))?;
            let record_key = s("record_key")
                .ok_or_else(|| DbError(format!("record {id} without `record_key`")))?;
            let status =
                s("status").ok_or_else(|| DbError(format!("record {id} without `status`")))?;
            let document_id = obj.get("document_id").and_then(Value::as_i64);
            let sent_at_ms = s("sent_at").and_then(|t| timestamp_ms(&t, false));
            let now = Utc::now().timestamp_millis();
            let created_ms = s("created_at")
                .and_then(|t| timestamp_ms(&t, false))
                .unwrap_or(now);
            let updated_ms = s("updated_at")
                .and_then(|t| timestamp_ms(&t, false))
                .unwrap_or(now);
            warnings.extend(record_contract_problems(&id, obj));
            let mut body = obj.clone();
            let events = body.remove("events").unwrap_or(Value::Array(vec![]));
            let events = events.as_array().cloned().unwrap_or_default();
            tx.prepare_cached(
                "INSERT INTO integration_records (id, data_server, record_key, document_id, status, sent_by,
                     sent_at_ms, created_ms, updated_ms, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT(id) DO UPDATE SET data_server = excluded.data_server,
                     record_key = excluded.record_key, document_id = excluded.document_id,
                     status = excluded.status, sent_by = excluded.sent_by, sent_at_ms = excluded.sent_at_ms,
                     updated_ms = excluded.updated_ms, body = excluded.body",
            )?
            .execute(params![
                    id,
                    data_server,
                    record_key,
                    document_id,
                    status,
                    s("sent_by"),
                    sent_at_ms,
                    created_ms,
                    updated_ms,
                serde_json::to_string(&Value::Object(body))?
            ])?;
            // Append-only check against the newest stored event (reading the whole history back
            // on every write cost a tenth of a batch's CPU; the plugin only ever appends).
            let (stored, last) = Self::last_event_of(&tx, &id)?;
            if let (Some(last), Some(given)) = (last, events.get(stored.saturating_sub(1))) {
                if !same_event(&last, given) {
                    warnings.push(format!(
                        "record {id}: event #{} differs from the stored one (events are append-only; kept the stored one)",
                        stored - 1
                    ));
                }
            }
            if events.len() < stored {
                warnings.push(format!(
                    "record {id}: {} events given, {} stored (events are append-only; kept them)",
                    events.len(),
                    stored
                ));
            }
            for (seq, ev) in events.iter().enumerate().skip(stored) {
                let f = |n: &str| ev.get(n).and_then(Value::as_str).unwrap_or("").to_string();
                tx.prepare_cached(
                    "INSERT INTO record_events (record_id, seq, at, by_user, kind, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![id, seq as i64, f("at"), f("by"), f("kind"), f("detail")])?;
            }
        }
        tx.commit()?;
        Ok(warnings)
    }

    /// The number of stored events of a record and the newest one.
    fn last_event_of(conn: &Connection, id: &str) -> DbResult<(usize, Option<Value>)> {
        let mut stmt = conn.prepare_cached(
            "SELECT seq, at, by_user, kind, detail FROM record_events WHERE record_id = ?1
             ORDER BY seq DESC LIMIT 1",
        )?;
        let mut rows = stmt.query(params![id])?;
        match rows.next()? {
            None => Ok((0, None)),
            Some(r) => Ok((
                r.get::<_, i64>(0)? as usize + 1,
                Some(json!({
                    "at": r.get::<_, String>(1)?,
                    "by": r.get::<_, String>(2)?,
                    "kind": r.get::<_, String>(3)?,
                    "detail": r.get::<_, String>(4)?,
                })),
            )),
        }
    }

    fn events_of(conn: &Connection, id: &str) -> DbResult<Vec<Value>> {
        let mut stmt = conn.prepare_cached(
            "SELECT at, by_user, kind, detail FROM record_events WHERE record_id = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![id], |r| {
            Ok(json!({
                "at": r.get::<_, String>(0)?,
                "by": r.get::<_, String>(1)?,
                "kind": r.get::<_, String>(2)?,
                "detail": r.get::<_, String>(3)?,
            }))
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn record_from_body(&self, id: &str, body: &str) -> DbResult<Value> {
        let mut v: Value = serde_json::from_str(body)?;
        if let Some(obj) = v.as_object_mut() {
            obj.insert(
                "events".into(),
                Value::Array(Self::events_of(&self.conn, id)?),
            );
        }
        Ok(v)
    }

    fn records_where(
        &self,
        where_sql: &str,
        args: Vec<rusqlite::types::Value>,
        tail: &str,
    ) -> DbResult<Vec<Value>> {
        let sql = format!("SELECT id, body FROM integration_records WHERE {where_sql} {tail}");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt
            .query_map(params_from_iter(args), |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.iter()
            .map(|(id, body)| self.record_from_body(id, body))
            .collect()
    }

    /// One record by id.
    pub fn record(&self, id: &str) -> DbResult<Option<Value>> {
        Ok(self
            .records_where("id = ?1", vec![id.to_string().into()], "")?
            .pop())
    }

    /// Every record of those contracts, any status, oldest first.
    pub fn records_for_keys(&self, data_server: &str, keys: &[String]) -> DbResult<Vec<Value>> {
        let mut out = Vec::new();
        for key in keys {
            out.extend(self.records_where(
                "data_server = ?1 AND record_key = ?2",
                vec![data_server.to_string().into(), key.clone().into()],
                "ORDER BY created_ms, id",
            )?);
        }
        Ok(out)
    }

    /// Records matching a filter, newest `sent_at` first (never sent: by `created_at`), paged.
    /// Answers (total, page).
    pub fn query_records(
        &self,
        f: &RecordFilter,
        offset: i64,
        limit: i64,
    ) -> DbResult<(i64, Vec<Value>)> {
        let mut conds: Vec<String> = vec!["1=1".into()];
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(ids) = &f.record_ids {
            if ids.is_empty() {
                conds.push("0=1".into());
            } else {
                let mut marks = Vec::new();
                for id in ids {
                    args.push(id.clone().into());
                    marks.push(format!("?{}", args.len()));
                }
                conds.push(format!("id IN ({})", marks.join(",")));
            }
        }
        let mut add =
            |cond: &str, v: rusqlite::types::Value, args: &mut Vec<rusqlite::types::Value>| {
                args.push(v);
                conds.push(format!("{cond} ?{}", args.len()));
            };
        if let Some(v) = &f.contract_key {
            add("record_key =", v.clone().into(), &mut args);
        }
        if let Some(v) = &f.status {
            add("status =", v.clone().into(), &mut args);
        }
        if let Some(v) = &f.sent_by {
            add("sent_by =", v.clone().into(), &mut args);
        }
        if let Some(v) = &f.sent_from {
            let ms = timestamp_ms(v, false).ok_or_else(|| {
                DbError(format!("filter.sent_from: not a date or timestamp: `{v}`"))
            })?;
            add("sent_at_ms >=", ms.into(), &mut args);
        }
        if let Some(v) = &f.sent_to {
            let ms = timestamp_ms(v, true).ok_or_else(|| {
                DbError(format!("filter.sent_to: not a date or timestamp: `{v}`"))
            })?;
            add("sent_at_ms <=", ms.into(), &mut args);
        }
        let where_sql = conds.join(" AND ");
        let total: i64 = self.conn.query_row(
            &format!("SELECT COUNT(*) FROM integration_records WHERE {where_sql}"),
            params_from_iter(args.clone()),
            |r| r.get(0),
        )?;
        let tail = format!(
            "ORDER BY COALESCE(sent_at_ms, created_ms) DESC, created_ms DESC, id LIMIT {} OFFSET {}",
            limit.max(0),
            offset.max(0)
        );
        let page = self.records_where(&where_sql, args, &tail)?;
        Ok((total, page))
    }

    /// Every record, oldest first (for reports and tests).
    pub fn all_records(&self) -> DbResult<Vec<Value>> {
        self.records_where("1=1", vec![], "ORDER BY created_ms, id")
    }

    /// Stores a downloaded file of a record; answers nothing more (the caller writes it to disk).
    pub fn store_record_file(
        &self,
        record_id: &str,
        file_name: &str,
        content: &[u8],
        path: Option<&str>,
    ) -> DbResult<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO record_files (record_id, file_name, content, stored_at, path) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![record_id, file_name, content, now_rfc3339(), path],
        )?;
        Ok(())
    }

    /// (record_id, file_name, size) of every stored file.
    pub fn record_files(&self) -> DbResult<Vec<(String, String, i64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT record_id, file_name, length(content) FROM record_files ORDER BY record_id, file_name",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}

/// Record statuses and their labels (`docs/abi.md`, "Record").
pub const RECORD_STATUSES: [(&str, &str); 8] = [
    ("enviando", "Enviando"),
    ("rascunho", "Rascunho"),
    ("pendente", "Pendente"),
    ("assinado_parcialmente", "Assinado parcialmente"),
    ("finalizado", "Finalizado"),
    ("rejeitado", "Rejeitado"),
    ("cancelado", "Cancelado"),
    ("falhou", "Falhou"),
];

/// Event kinds of a record (`docs/abi.md`, "Record").
pub const EVENT_KINDS: [&str; 10] = [
    "created",
    "uploaded",
    "published",
    "reconciled",
    "checked",
    "status_changed",
    "recipient_replaced",
    "cancelled",
    "downloaded",
    "error",
];

/// Where a record the plugin wrote departs from the ABI's Record shape (the host stores it
/// anyway; these become host warnings, which the demo and the tests treat as problems).
pub fn record_contract_problems(id: &str, rec: &Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    let status = rec.get("status").and_then(Value::as_str).unwrap_or("");
    match RECORD_STATUSES.iter().find(|(s, _)| *s == status) {
        None => out.push(format!("record {id}: unknown status `{status}`")),
        Some((_, label)) => {
            if let Some(l) = rec.get("status_label").and_then(Value::as_str) {
                if l != *label {
                    out.push(format!(
                        "record {id}: status `{status}` labelled `{l}`, expected `{label}`"
                    ));
                }
            }
        }
    }
    for field in ["created_at", "updated_at"] {
        match rec.get(field).and_then(Value::as_str) {
            Some(t) if DateTime::parse_from_rfc3339(t).is_ok() => {}
            other => out.push(format!(
                "record {id}: `{field}` is not an RFC 3339 timestamp: {other:?}"
            )),
        }
    }
    for field in ["sent_at", "last_check_at", "deleted_at"] {
        if let Some(t) = rec.get(field).and_then(Value::as_str) {
            if DateTime::parse_from_rfc3339(t).is_err() {
                out.push(format!(
                    "record {id}: `{field}` is not an RFC 3339 timestamp: {t}"
                ));
            }
        }
    }
    if let Some(events) = rec.get("events").and_then(Value::as_array) {
        for e in events {
            let kind = e.get("kind").and_then(Value::as_str).unwrap_or("");
            if !EVENT_KINDS.contains(&kind) {
                out.push(format!("record {id}: unknown event kind `{kind}`"));
            }
        }
    }
    out
}

fn same_event(a: &Value, b: &Value) -> bool {
    ["at", "by", "kind", "detail"].iter().all(|k| {
        a.get(k).and_then(Value::as_str).unwrap_or("")
            == b.get(k).and_then(Value::as_str).unwrap_or("")
    })
}

/// Statuses in which a record is active (`docs/abi.md`).
pub const ACTIVE_STATUSES: [&str; 4] =
    ["enviando", "rascunho", "pendente", "assinado_parcialmente"];

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> SchoolDb {
        let db = SchoolDb::in_memory().unwrap();
        crate::seed::seed_demo(&db).unwrap();
        db
    }

    #[test]
    fn key_round_trip() {
        assert_eq!(contract_key(1, "2026001", "145"), "1;2026001;145");
        assert_eq!(
            parse_contract_key("1;2026001;145"),
            Some((1, "2026001".into(), "145".into()))
        );
        assert_eq!(parse_contract_key("x;1;2"), None);
        assert_eq!(parse_contract_key("1;2"), None);
        assert_eq!(parse_contract_key("1;2;3;4"), None);
    }

    #[test]
    fn contracts_by_filter_and_keys() {
        let db = db();
        let all = db.all_contracts().unwrap();
        assert!(all.len() >= 12);
        let courses: std::collections::BTreeSet<_> = all.iter().map(|c| c.course.clone()).collect();
        assert!(courses.len() >= 2);
        let f = ContractFilter {
            course: Some(all[0].course.clone()),
            ..Default::default()
        };
        let some = db.find_contracts(&f).unwrap();
        assert!(!some.is_empty() && some.len() < all.len());
        assert!(some.iter().all(|c| c.course == all[0].course));
        let keys = vec![all[1].key(), "9;nope;1".to_string(), all[0].key()];
        let (found, missing) = db.contracts_by_keys(&keys).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].key(), all[1].key());
        assert_eq!(missing, vec!["9;nope;1".to_string()]);
        let j = found[0].to_json();
        assert_eq!(j["key"], all[1].key());
        assert_eq!(j["data_server"], CONTRACT_DATA_SERVER);
    }

    #[test]
    fn filter_refuses_unknown_fields() {
        assert!(ContractFilter::from_json(&json!({"curso": "x"})).is_err());
        let f =
            ContractFilter::from_json(&json!({"codcoligada": "1", "period": "2026/1"})).unwrap();
        assert_eq!(f.codcoligada, Some(1));
        assert!(RecordFilter::from_json(&json!({"statuss": "x"})).is_err());
    }

    #[test]
    fn status_change_and_unknown_key() {
        let db = db();
        let key = db.all_contracts().unwrap()[0].key();
        db.set_contract_status(&key, "Assinado", "mestre").unwrap();
        assert_eq!(db.contract(&key).unwrap().unwrap().status, "Assinado");
        assert!(db.set_contract_status("1;nada;0", "Assinado", "x").is_err());
    }

    #[test]
    fn permissions_by_profile() {
        let db = db();
        let users = db.users().unwrap();
        assert!(users.iter().any(|u| db
            .user_has_permission(&u.login, PROCESS_PERMISSION)
            .unwrap()));
        assert!(users.iter().any(|u| !db
            .user_has_permission(&u.login, PROCESS_PERMISSION)
            .unwrap()));
        assert!(!db
            .user_has_permission("ninguem", PROCESS_PERMISSION)
            .unwrap());
    }

    fn record(id: &str, key: &str, status: &str, sent_at: Option<&str>, events: usize) -> Value {
        let evs: Vec<Value> = (0..events)
            .map(|i| json!({"at": "2026-11-28T10:00:00Z", "by": "mestre", "kind": "created", "detail": format!("e{i}")}))
            .collect();
        json!({
            "id": id, "data_server": CONTRACT_DATA_SERVER, "record_key": key, "document_id": 7,
            "status": status, "sent_at": sent_at, "sent_by": "mestre",
            "created_at": "2026-11-28T09:00:00Z", "updated_at": "2026-11-28T09:00:00Z",
            "recipients": [], "events": evs,
        })
    }

    #[test]
    fn records_upsert_events_append_only_and_query() {
        let db = db();
        db.put_records(&[
            record("r1", "1;a;1", "pendente", Some("2026-11-28T10:00:00Z"), 1),
            record("r2", "1;a;1", "falhou", None, 1),
            record(
                "r3",
                "1;b;2",
                "finalizado",
                Some("2026-11-27T10:00:00.500Z"),
                2,
            ),
        ])
        .unwrap();
        // Append one event and change status.
        let w = db
            .put_records(&[record(
                "r1",
                "1;a;1",
                "assinado_parcialmente",
                Some("2026-11-28T10:00:00Z"),
                2,
            )])
            .unwrap();
        assert!(w.is_empty());
        let r1 = db.record("r1").unwrap().unwrap();
        assert_eq!(r1["status"], "assinado_parcialmente");
        assert_eq!(r1["events"].as_array().unwrap().len(), 2);
        // Fewer events never delete the stored ones.
        let w = db
            .put_records(&[record(
                "r1",
                "1;a;1",
                "pendente",
                Some("2026-11-28T10:00:00Z"),
                0,
            )])
            .unwrap();
        assert_eq!(w.len(), 1);
        assert_eq!(
            db.record("r1").unwrap().unwrap()["events"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        // The events table refuses updates and deletes.
        assert!(db.conn().execute("DELETE FROM record_events", []).is_err());

        let (total, page) = db.query_records(&RecordFilter::default(), 0, 10).unwrap();
        assert_eq!(total, 3);
        let ids: Vec<_> = page.iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(ids, vec!["r1", "r2", "r3"]);
        let (total, page) = db
            .query_records(
                &RecordFilter {
                    contract_key: Some("1;a;1".into()),
                    ..Default::default()
                },
                0,
                1,
            )
            .unwrap();
        assert_eq!((total, page.len()), (2, 1));
        let (total, _) = db
            .query_records(
                &RecordFilter {
                    sent_from: Some("2026-11-28".into()),
                    ..Default::default()
                },
                0,
                10,
            )
            .unwrap();
        assert_eq!(total, 1);
        let (total, _) = db
            .query_records(
                &RecordFilter {
                    sent_to: Some("2026-11-27".into()),
                    ..Default::default()
                },
                0,
                10,
            )
            .unwrap();
        assert_eq!(total, 1);
        let (total, _) = db
            .query_records(
                &RecordFilter {
                    record_ids: Some(vec!["r2".into(), "r3".into()]),
                    status: Some("falhou".into()),
                    ..Default::default()
                },
                0,
                10,
            )
            .unwrap();
        assert_eq!(total, 1);
        let by_key = db
            .records_for_keys(CONTRACT_DATA_SERVER, &["1;a;1".into()])
            .unwrap();
        assert_eq!(by_key.len(), 2);
    }

    #[test]
    fn records_off_contract_leave_warnings() {
        let db = db();
        let mut r = record("r9", "1;a;1", "pendente", None, 1);
        r["status_label"] = json!("Pendente");
        assert!(db.put_records(&[r.clone()]).unwrap().is_empty());
        r["status"] = json!("assinado");
        r["created_at"] = json!("ontem");
        r["events"][0]["kind"] = json!("mágica");
        let w = db.put_records(&[r]).unwrap();
        assert!(w.iter().any(|m| m.contains("unknown status")), "{w:?}");
        assert!(w.iter().any(|m| m.contains("created_at")), "{w:?}");
        assert!(
            w.iter()
                .any(|m| m.contains("unknown event kind") || m.contains("differs")),
            "{w:?}"
        );
    }

    #[test]
    fn file_database_is_wal_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("escola.db");
        {
            let db = SchoolDb::open(&path).unwrap();
            crate::seed::seed_demo(&db).unwrap();
            db.put_records(&[record("r1", "1;a;1", "pendente", None, 1)])
                .unwrap();
        }
        let db = SchoolDb::open(&path).unwrap();
        let mode: String = db
            .conn()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode.to_lowercase(), "wal");
        assert!(db.record("r1").unwrap().is_some());
        assert!(db.all_contracts().unwrap().len() >= 12);
    }
}
