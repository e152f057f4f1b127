//! The school data RM owns: coligadas and filiais (the school and its units), courses,
//! financial responsibles, students, contracts, and the RM users with their profiles and
//! permissions. The Contract JSON that leaves this module is the one of `docs/abi.md`
//! ("Contract"); contract keys are `codcoligada;ra;codcontrato`.

use super::filters::ContractFilter;
use super::{now_rfc3339, DbError, DbResult, SchoolDb};
use rusqlite::{params, params_from_iter, OptionalExtension};
use serde::Serialize;
use serde_json::Value;

/// The DataServer name RM uses for the Educacional contract (the records' `data_server`).
pub const CONTRACT_DATA_SERVER: &str = "EduContratoData";

/// The process permission the plugin asks about (`user.has_permission`).
pub const PROCESS_PERMISSION: &str = "Integração com TOTVS Assinatura Digital";

/// A financial responsible ("responsável financeiro") as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct FinancialResponsible {
    pub code: String,
    pub name: String,
    pub cpf: Option<String>,
    pub email: Option<String>,
}

/// The ABI's Contract JSON (`docs/abi.md`, "Contract") of a [`Contract`].
#[derive(Serialize)]
pub struct ContractJson<'a> {
    pub key: String,
    pub data_server: &'static str,
    pub codcoligada: i64,
    pub codfilial: i64,
    pub codcontrato: &'a str,
    pub ra: &'a str,
    pub student_name: &'a str,
    pub course: &'a str,
    pub period: &'a str,
    pub status: &'a str,
    pub financial_responsible: Option<ResponsibleJson<'a>>,
}

/// The `financial_responsible` of [`ContractJson`].
#[derive(Serialize)]
pub struct ResponsibleJson<'a> {
    pub code: &'a str,
    pub name: &'a str,
    pub cpf: Option<&'a str>,
    pub email: Option<&'a str>,
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
        serde_json::to_value(self.abi()).expect("serialising a contract")
    }

    /// The ABI's Contract JSON as a borrowing view, serialised straight into an answer.
    pub fn abi(&self) -> ContractJson<'_> {
        ContractJson {
            key: self.key(),
            data_server: CONTRACT_DATA_SERVER,
            codcoligada: self.codcoligada,
            codfilial: self.codfilial,
            codcontrato: &self.codcontrato,
            ra: &self.ra,
            student_name: &self.student_name,
            course: &self.course,
            period: &self.period,
            status: &self.status,
            financial_responsible: self
                .financial_responsible
                .as_ref()
                .map(|r| ResponsibleJson {
                    code: &r.code,
                    name: &r.name,
                    cpf: r.cpf.as_deref(),
                    email: r.email.as_deref(),
                }),
        }
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

pub(super) const SCHEMA: &str = r#"
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
"#;

impl SchoolDb {
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
            return Err(DbError::invalid(format!(
                "não há responsável financeiro com o código {code}"
            )));
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
            .prepare_cached(&sql)?
            .query_row(params![coligada, ra, contrato], Self::contract_from_row)
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

    /// The query of [`SchoolDb::find_contracts`]: SQL and arguments; with `page`, only the
    /// contracts after its cursor, at most one more than its limit (to tell whether another
    /// page follows).
    fn contract_query(
        f: &ContractFilter,
        page: Option<&ContractPage>,
    ) -> DbResult<(String, Vec<rusqlite::types::Value>)> {
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
        if let Some(after) = page.and_then(|p| p.cursor.as_deref()) {
            let (coligada, course, name, contrato, ra) = parse_cursor(after)?;
            let n = args.len();
            sql.push_str(&format!(
                " AND (c.codcoligada, c.course, s.name, c.codcontrato, c.ra) > (?{}, ?{}, ?{}, ?{}, ?{})",
                n + 1,
                n + 2,
                n + 3,
                n + 4,
                n + 5
            ));
            args.extend([
                coligada.into(),
                course.into(),
                name.into(),
                contrato.into(),
                ra.into(),
            ]);
        }
        sql.push_str(" ORDER BY c.codcoligada, c.course, s.name, c.codcontrato, c.ra");
        if let Some(p) = page {
            sql.push_str(&format!(" LIMIT {}", p.limit + 1));
        }
        Ok((sql, args))
    }

    /// Contracts matching a filter, ordered by coligada, course, student name.
    pub fn find_contracts(&self, f: &ContractFilter) -> DbResult<Vec<Contract>> {
        let (sql, args) = Self::contract_query(f, None)?;
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(args), Self::contract_from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// `contracts.find`'s answer, `{"contracts": [...]}`: each contract of
    /// [`SchoolDb::find_contracts`] written as it is read (no list of contracts, no tree).
    /// With `page`, at most its limit of contracts after its cursor, and `"next_cursor"` when
    /// more follow (`docs/abi.md`, `contracts.find`).
    pub fn find_contracts_json(
        &self,
        f: &ContractFilter,
        page: Option<&ContractPage>,
    ) -> DbResult<Vec<u8>> {
        let (sql, args) = Self::contract_query(f, page)?;
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query(params_from_iter(args))?;
        let mut out = Vec::with_capacity(64 * 1024);
        out.extend_from_slice(br#"{"contracts":["#);
        let limit = page.map_or(usize::MAX, |p| p.limit);
        let mut written = 0usize;
        let mut last: Option<Contract> = None;
        let mut more = false;
        while let Some(row) = rows.next()? {
            if written == limit {
                more = true;
                break;
            }
            if written > 0 {
                out.push(b',');
            }
            let c = Self::contract_from_row(row)?;
            serde_json::to_writer(&mut out, &c.abi())?;
            written += 1;
            last = Some(c);
        }
        out.extend_from_slice(b"]");
        if let (true, Some(c)) = (more, last) {
            let cursor = serde_json::to_string(&(
                c.codcoligada,
                &c.course,
                &c.student_name,
                &c.codcontrato,
                &c.ra,
            ))?;
            out.extend_from_slice(br#","next_cursor":"#);
            serde_json::to_writer(&mut out, &cursor)?;
        }
        out.extend_from_slice(b"}");
        Ok(out)
    }

    /// All contracts.
    pub fn all_contracts(&self) -> DbResult<Vec<Contract>> {
        self.find_contracts(&ContractFilter::default())
    }

    /// Sets a contract's status (e.g. "Assinado"); errors when the key is unknown.
    pub fn set_contract_status(&self, key: &str, status: &str, by: &str) -> DbResult<()> {
        let (coligada, ra, contrato) = parse_contract_key(key)
            .ok_or_else(|| DbError::invalid(format!("chave de contrato inválida: {key}")))?;
        let n = self.conn.execute(
            "UPDATE contracts SET status = ?4, status_changed_by = ?5, status_changed_at = ?6
             WHERE codcoligada = ?1 AND ra = ?2 AND codcontrato = ?3",
            params![coligada, ra, contrato, status, by, now_rfc3339()],
        )?;
        if n == 0 {
            return Err(DbError::invalid(format!("contrato não encontrado: {key}")));
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

    // ---------------------------------------------------------------- RM users and profiles

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
}

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
}

/// One page of `contracts.find` (`docs/abi.md`): at most `limit` contracts after `cursor`
/// (the `next_cursor` of the page before; none for the first page).
#[derive(Clone, Debug, PartialEq)]
pub struct ContractPage {
    pub limit: usize,
    pub cursor: Option<String>,
}

/// A cursor of [`SchoolDb::find_contracts_json`]: the sort key of the last contract answered.
fn parse_cursor(cursor: &str) -> DbResult<(i64, String, String, String, String)> {
    serde_json::from_str(cursor).map_err(|_| {
        DbError::invalid(format!(
            "contracts.find: cursor inválido ({cursor}); use o next_cursor da página anterior"
        ))
    })
}
