//! The integration records store (`records.get`, `records.query`, `records.put`,
//! `records.store_file`): the "anexo de integração" RM shows on a contract.
//!
//! A record is kept as its JSON body (`docs/abi.md`, "Record") plus the columns searched on
//! (the host's `records.put` reads each record in one pass into [`RecordIn`] and stores the
//! members as the JSON text given; `records.get`/`records.query` answers are written from
//! those bodies with the events spliced in, no JSON tree either way);
//! its events live in `record_events`, append-only (triggers refuse UPDATE and DELETE), and a
//! write that would rewrite or shorten the history keeps the stored events and answers a
//! warning. A `records.put` is one `BEGIN IMMEDIATE` transaction: all its records or none.
//! With a lease token it is fenced (see [`super::leases`]): refused as a whole, writing
//! nothing, when the token no longer holds one of its contracts.

use super::filters::{normalize_record_status, timestamp_ms, RecordFilter};
use super::{now_rfc3339, DbError, DbErrorKind, DbResult, SchoolDb};
use chrono::{DateTime, Utc};
use rusqlite::{params, params_from_iter, Connection};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use std::borrow::Cow;
use std::collections::BTreeSet;

pub(super) const SCHEMA: &str = r#"
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

impl SchoolDb {
    /// Upserts records by id, in one transaction, without a lease (a host whose plugin runs
    /// in one process only, or an older plugin): [`SchoolDb::put_records_leased`] with `None`.
    pub fn put_records(&self, records: &[Value]) -> DbResult<Vec<String>> {
        self.put_records_leased(records, None)
    }

    /// Upserts records by id, in one `BEGIN IMMEDIATE` transaction: all or nothing. Events are
    /// append-only: the stored ones must be a prefix of the ones given; new ones are appended,
    /// fewer ones never delete anything. Answers warnings (e.g. a record that rewrote its
    /// history) for the log.
    ///
    /// With `lease_token` (the fencing of `docs/abi.md`, "Leases"), the write is refused as a
    /// whole with [`DbErrorKind::LeaseLost`] naming every contract of these records that the
    /// token no longer holds at commit time (released, or expired and taken by another run);
    /// nothing is written. The check and the writes run under the same write lock, so no
    /// acquire of another process can come between them.
    ///
    /// (The host's `records.put` reads its request straight into [`RecordIn`]s and calls
    /// [`SchoolDb::put_records_in`]; this form serialises each record first.)
    pub fn put_records_leased(
        &self,
        records: &[Value],
        lease_token: Option<&str>,
    ) -> DbResult<Vec<String>> {
        let texts = records
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()?;
        let parsed = texts
            .iter()
            .map(|t| serde_json::from_str::<RecordIn>(t))
            .collect::<Result<Vec<_>, _>>()?;
        self.put_records_in(&parsed, lease_token)
    }

    /// [`SchoolDb::put_records_leased`] over records read from the request's JSON text: the
    /// body is stored as the members given (minus `events`), never rebuilt as a tree.
    pub fn put_records_in(
        &self,
        records: &[RecordIn<'_>],
        lease_token: Option<&str>,
    ) -> DbResult<Vec<String>> {
        let mut warnings = Vec::new();
        let tx = self.immediate()?;
        if let Some(token) = lease_token {
            let contracts: BTreeSet<(&str, &str)> = records
                .iter()
                .filter_map(|r| {
                    let RecordIn::Object(r) = r else { return None };
                    Some((r.data_server.as_deref()?, r.record_key.as_deref()?))
                })
                .collect();
            let lost = Self::not_held_by(&tx, token, &contracts)?;
            if !lost.is_empty() {
                let keys: Vec<&str> = lost.iter().map(|c| c.key.as_str()).collect();
                return Err(DbError::new(
                    DbErrorKind::LeaseLost(lost.clone()),
                    format!(
                        "gravação recusada: esta execução não tem mais a reserva do(s) contrato(s) {} (outra execução assumiu depois que a reserva expirou, ou ela foi liberada); nada foi gravado",
                        keys.join(", ")
                    ),
                ));
            }
        }
        let mut upsert = tx.prepare_cached(
            "INSERT INTO integration_records (id, data_server, record_key, document_id, status, sent_by,
                 sent_at_ms, created_ms, updated_ms, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT(id) DO UPDATE SET data_server = excluded.data_server,
                 record_key = excluded.record_key, document_id = excluded.document_id,
                 status = excluded.status, sent_by = excluded.sent_by, sent_at_ms = excluded.sent_at_ms,
                 updated_ms = excluded.updated_ms, body = excluded.body",
        )?;
        // No ORDER BY here: SQLite re-prepares a statement that binds the indexed column and
        // orders by the next one on every run (see `records_where_sql`); a record has a handful
        // of events, so the newest is found while reading them.
        let mut update = tx.prepare_cached(
            "UPDATE integration_records SET document_id = ?4, status = ?5, sent_by = ?6,
                 sent_at_ms = ?7, updated_ms = ?8, body = ?9
             WHERE id = ?1 AND data_server = ?2 AND record_key = ?3",
        )?;
        let mut stored_events = tx.prepare_cached(
            "SELECT seq, at, by_user, kind, detail FROM record_events WHERE record_id = ?1",
        )?;
        let mut append = tx.prepare_cached(
            "INSERT INTO record_events (record_id, seq, at, by_user, kind, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut body = String::new();
        for rec in records {
            let RecordIn::Object(rec) = rec else {
                return Err(DbError::invalid(
                    "registro de integração: deve ser um objeto JSON",
                ));
            };
            let id = rec
                .id
                .as_deref()
                .filter(|id| !id.is_empty())
                .ok_or_else(|| DbError::invalid("registro de integração sem `id`"))?;
            let data_server = rec.data_server.as_deref().ok_or_else(|| {
                DbError::invalid(format!("registro de integração {id} sem `data_server`"))
            })?;
            let record_key = rec.record_key.as_deref().ok_or_else(|| {
                DbError::invalid(format!("registro de integração {id} sem `record_key`"))
            })?;
            let status = rec.status.as_deref().ok_or_else(|| {
                DbError::invalid(format!("registro de integração {id} sem `status`"))
            })?;
            let ms = |t: &Option<Cow<str>>| t.as_deref().and_then(|t| timestamp_ms(t, false));
            let now = Utc::now().timestamp_millis();
            let sent_at_ms = ms(&rec.sent_at);
            let created_ms = ms(&rec.created_at).unwrap_or(now);
            let updated_ms = ms(&rec.updated_at).unwrap_or(now);
            problems_of(id, rec, &mut warnings);
            rec.write_body(&mut body);
            // A record's id, data server and key never change: updating only the other columns
            // leaves the records_by_key index untouched (one page less in each commit).
            let updated = update.execute(params![
                id,
                data_server,
                record_key,
                rec.document_id,
                status,
                rec.sent_by.as_deref(),
                sent_at_ms,
                updated_ms,
                body,
            ])?;
            if updated == 0 {
                upsert.execute(params![
                    id,
                    data_server,
                    record_key,
                    rec.document_id,
                    status,
                    rec.sent_by.as_deref(),
                    sent_at_ms,
                    created_ms,
                    updated_ms,
                    body,
                ])?;
            }
            // Append-only check against the newest stored event (reading the whole history back
            // on every write cost a tenth of a batch's CPU; the plugin only ever appends).
            let events = rec.events.as_deref().unwrap_or(&[]);
            let mut stored = None;
            let mut rows = stored_events.query(params![id])?;
            while let Some(r) = rows.next()? {
                let seq = r.get::<_, i64>(0)? as usize;
                if stored.is_some_and(|(n, _)| n > seq) {
                    continue;
                }
                let same = match events.get(seq) {
                    None => true,
                    Some(given) => {
                        r.get_ref(1)?.as_str()? == given.at.as_deref().unwrap_or("")
                            && r.get_ref(2)?.as_str()? == given.by.as_deref().unwrap_or("")
                            && r.get_ref(3)?.as_str()? == given.kind.as_deref().unwrap_or("")
                            && r.get_ref(4)?.as_str()? == given.detail.as_deref().unwrap_or("")
                    }
                };
                stored = Some((seq + 1, same));
            }
            drop(rows);
            let stored = match stored {
                None => 0,
                Some((n, same)) => {
                    if !same {
                        warnings.push(format!(
                            "record {id}: event #{} differs from the stored one (events are append-only; kept the stored one)",
                            n - 1
                        ));
                    }
                    n
                }
            };
            if events.len() < stored {
                warnings.push(format!(
                    "record {id}: {} events given, {} stored (events are append-only; kept them)",
                    events.len(),
                    stored
                ));
            }
            for (seq, ev) in events.iter().enumerate().skip(stored) {
                append.execute(params![
                    id,
                    seq as i64,
                    ev.at.as_deref().unwrap_or(""),
                    ev.by.as_deref().unwrap_or(""),
                    ev.kind.as_deref().unwrap_or(""),
                    ev.detail.as_deref().unwrap_or(""),
                ])?;
            }
        }
        drop((upsert, update, stored_events, append));
        tx.commit()?;
        Ok(warnings)
    }

    fn events_of(conn: &Connection, id: &str) -> DbResult<Vec<Value>> {
        Ok(Self::stored_events(conn, id)?
            .into_iter()
            .map(|(_, e)| json!({"at": e.at, "by": e.by, "kind": e.kind, "detail": e.detail}))
            .collect())
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

    /// Writes the matching records to `out` as JSON, comma-separated (a comma first unless
    /// `*first`): each stored body with its events spliced in as text, no tree built.
    fn write_records_where(
        &self,
        where_sql: &str,
        args: &[rusqlite::types::Value],
        tail: &str,
        out: &mut Vec<u8>,
        first: &mut bool,
    ) -> DbResult<()> {
        let sql = format!("SELECT id, body FROM integration_records WHERE {where_sql} {tail}");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params_from_iter(args))?;
        while let Some(row) = rows.next()? {
            let id = row.get_ref(0)?.as_str()?;
            let body = row.get_ref(1)?.as_str()?;
            if !std::mem::take(first) {
                out.push(b',');
            }
            self.write_record(id, body, out)?;
        }
        Ok(())
    }

    /// One record as JSON: its stored body (an object without `events`) with its events
    /// spliced in as text.
    fn write_record(&self, id: &str, body: &str, out: &mut Vec<u8>) -> DbResult<()> {
        let Some(inner) = body
            .trim()
            .strip_prefix('{')
            .and_then(|b| b.strip_suffix('}'))
            .map(str::trim)
        else {
            // Not an object (never written by this store): the slow path says why.
            serde_json::to_writer(&mut *out, &self.record_from_body(id, body)?)?;
            return Ok(());
        };
        out.push(b'{');
        if !inner.is_empty() {
            out.extend_from_slice(inner.as_bytes());
            out.push(b',');
        }
        out.extend_from_slice(br#""events":["#);
        for (i, (_, e)) in Self::stored_events(&self.conn, id)?.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut *out, e)?;
        }
        out.extend_from_slice(b"]}");
        Ok(())
    }

    /// A record's events in order. Sorted here, not by SQL: `WHERE record_id = ?1 ORDER BY
    /// seq` is re-prepared by SQLite on every run (a parameter bound to an indexed column with
    /// an ORDER BY marks the statement for re-preparation), which cost more than the read.
    fn stored_events(conn: &Connection, id: &str) -> DbResult<Vec<(i64, EventOut)>> {
        let mut stmt = conn.prepare_cached(
            "SELECT seq, at, by_user, kind, detail FROM record_events WHERE record_id = ?1",
        )?;
        let mut events = stmt
            .query_map(params![id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    EventOut {
                        at: r.get(1)?,
                        by: r.get(2)?,
                        kind: r.get(3)?,
                        detail: r.get(4)?,
                    },
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        events.sort_unstable_by_key(|(seq, _)| *seq);
        Ok(events)
    }

    /// `records.get`'s answer, `{"records": [...]}`: every record of those contracts, any
    /// status, oldest first, written straight from the stored bodies.
    pub fn records_for_keys_json(&self, data_server: &str, keys: &[String]) -> DbResult<Vec<u8>> {
        let mut out = Vec::with_capacity(64 + keys.len() * 512);
        out.extend_from_slice(br#"{"records":["#);
        let mut first = true;
        // Ordered here, not by SQL, for the reason of `stored_events`.
        let mut stmt = self.conn.prepare_cached(
            "SELECT created_ms, id, body FROM integration_records
             WHERE data_server = ?1 AND record_key = ?2",
        )?;
        let mut found: Vec<(i64, String, String)> = Vec::new();
        for key in keys {
            found.clear();
            let rows = stmt.query_map(params![data_server, key], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
            for row in rows {
                found.push(row?);
            }
            found.sort_unstable_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
            for (_, id, body) in &found {
                if !std::mem::take(&mut first) {
                    out.push(b',');
                }
                self.write_record(id, body, &mut out)?;
            }
        }
        out.extend_from_slice(b"]}");
        Ok(out)
    }

    fn records_where(
        &self,
        where_sql: &str,
        args: Vec<rusqlite::types::Value>,
        tail: &str,
    ) -> DbResult<Vec<Value>> {
        let sql = format!("SELECT id, body FROM integration_records WHERE {where_sql} {tail}");
        let mut stmt = self.conn.prepare_cached(&sql)?;
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

    /// The total, WHERE clause, arguments and ORDER/LIMIT tail of a records query.
    #[allow(clippy::type_complexity)]
    fn record_query(
        &self,
        f: &RecordFilter,
        offset: i64,
        limit: i64,
    ) -> DbResult<(i64, String, Vec<rusqlite::types::Value>, String)> {
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
            let code = normalize_record_status(v).map_err(|e| {
                DbError::invalid(format!("campo «situação» (status) do filtro: {e}"))
            })?;
            add("status =", code.to_string().into(), &mut args);
        }
        if let Some(v) = &f.sent_by {
            add("sent_by =", v.clone().into(), &mut args);
        }
        if let Some(v) = &f.sent_from {
            let ms = timestamp_ms(v, false).ok_or_else(|| {
                DbError::invalid(format!(
                    "campo «enviado a partir de» (sent_from) do filtro: «{v}» não é uma data; use dd/mm/aaaa ou aaaa-mm-dd"
                ))
            })?;
            add("sent_at_ms >=", ms.into(), &mut args);
        }
        if let Some(v) = &f.sent_to {
            let ms = timestamp_ms(v, true).ok_or_else(|| {
                DbError::invalid(format!(
                    "campo «enviado até» (sent_to) do filtro: «{v}» não é uma data; use dd/mm/aaaa ou aaaa-mm-dd"
                ))
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
        Ok((total, where_sql, args, tail))
    }

    /// Records matching a filter, newest `sent_at` first (never sent: by `created_at`), paged.
    /// Answers (total, page).
    pub fn query_records(
        &self,
        f: &RecordFilter,
        offset: i64,
        limit: i64,
    ) -> DbResult<(i64, Vec<Value>)> {
        let (total, where_sql, args, tail) = self.record_query(f, offset, limit)?;
        let page = self.records_where(&where_sql, args, &tail)?;
        Ok((total, page))
    }

    /// `records.query`'s answer, `{"total", "records"}`, written straight from the stored
    /// bodies (the page of [`SchoolDb::query_records`]).
    pub fn query_records_json(
        &self,
        f: &RecordFilter,
        offset: i64,
        limit: i64,
    ) -> DbResult<Vec<u8>> {
        let (total, where_sql, args, tail) = self.record_query(f, offset, limit)?;
        let mut out = Vec::with_capacity(64 + limit.clamp(0, 1000) as usize * 512);
        out.extend_from_slice(format!(r#"{{"total":{total},"records":["#).as_bytes());
        self.write_records_where(&where_sql, &args, &tail, &mut out, &mut true)?;
        out.extend_from_slice(b"]}");
        Ok(out)
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

/// One stored event as the Record JSON shows it.
#[derive(serde::Serialize)]
struct EventOut {
    at: String,
    by: String,
    kind: String,
    detail: String,
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
    let s = |name: &str| rec.get(name).and_then(Value::as_str).map(Cow::Borrowed);
    let view = RecordFields {
        status: s("status"),
        status_label: s("status_label"),
        created_at: s("created_at"),
        updated_at: s("updated_at"),
        sent_at: s("sent_at"),
        last_check_at: s("last_check_at"),
        deleted_at: s("deleted_at"),
        events: rec.get("events").and_then(Value::as_array).map(|evs| {
            evs.iter()
                .map(|e| EventIn {
                    kind: e.get("kind").and_then(Value::as_str).map(Cow::Borrowed),
                    ..EventIn::default()
                })
                .collect()
        }),
        ..RecordFields::default()
    };
    let mut out = Vec::new();
    problems_of(id, &view, &mut out);
    out
}

/// [`record_contract_problems`] over the fields read from a record's JSON.
fn problems_of(id: &str, rec: &RecordFields<'_>, out: &mut Vec<String>) {
    let status = rec.status.as_deref().unwrap_or("");
    match RECORD_STATUSES.iter().find(|(s, _)| *s == status) {
        None => out.push(format!("record {id}: unknown status `{status}`")),
        Some((_, label)) => {
            if let Some(l) = rec.status_label.as_deref() {
                if l != *label {
                    out.push(format!(
                        "record {id}: status `{status}` labelled `{l}`, expected `{label}`"
                    ));
                }
            }
        }
    }
    for (field, value) in [
        ("created_at", &rec.created_at),
        ("updated_at", &rec.updated_at),
    ] {
        match value.as_deref() {
            Some(t) if DateTime::parse_from_rfc3339(t).is_ok() => {}
            other => out.push(format!(
                "record {id}: `{field}` is not an RFC 3339 timestamp: {other:?}"
            )),
        }
    }
    for (field, value) in [
        ("sent_at", &rec.sent_at),
        ("last_check_at", &rec.last_check_at),
        ("deleted_at", &rec.deleted_at),
    ] {
        if let Some(t) = value.as_deref() {
            if DateTime::parse_from_rfc3339(t).is_err() {
                out.push(format!(
                    "record {id}: `{field}` is not an RFC 3339 timestamp: {t}"
                ));
            }
        }
    }
    for e in rec.events.as_deref().unwrap_or(&[]) {
        let kind = e.kind.as_deref().unwrap_or("");
        if !EVENT_KINDS.contains(&kind) {
            out.push(format!("record {id}: unknown event kind `{kind}`"));
        }
    }
}

/// One record of a `records.put` request, read from its JSON text in one pass: the fields the
/// store reads as typed values, the members kept in the body as their JSON text (no tree is
/// built and no value is serialised again). Anything but an object is `NotObject` (refused
/// with a message inside the write, like the other field errors).
#[allow(clippy::large_enum_variant)] // one per record of a request, never moved around
pub enum RecordIn<'a> {
    Object(RecordFields<'a>),
    NotObject,
}

/// The fields of a record the store reads (a string field holding another type reads as
/// absent, `document_id` only as an integer), and its other members as given.
#[derive(Default)]
pub struct RecordFields<'a> {
    pub id: Option<Cow<'a, str>>,
    pub data_server: Option<Cow<'a, str>>,
    pub record_key: Option<Cow<'a, str>>,
    pub status: Option<Cow<'a, str>>,
    pub status_label: Option<Cow<'a, str>>,
    pub sent_by: Option<Cow<'a, str>>,
    pub sent_at: Option<Cow<'a, str>>,
    pub created_at: Option<Cow<'a, str>>,
    pub updated_at: Option<Cow<'a, str>>,
    pub last_check_at: Option<Cow<'a, str>>,
    pub deleted_at: Option<Cow<'a, str>>,
    pub document_id: Option<i64>,
    /// `None` when `events` is missing or not an array (no events).
    pub events: Option<Vec<EventIn<'a>>>,
    /// Every member but `events`, in the order given: (key, value's JSON text).
    members: Vec<(Cow<'a, str>, &'a RawValue)>,
}

/// One event of a record as given (a field that is not a string reads as empty).
#[derive(Default)]
pub struct EventIn<'a> {
    pub at: Option<Cow<'a, str>>,
    pub by: Option<Cow<'a, str>>,
    pub kind: Option<Cow<'a, str>>,
    pub detail: Option<Cow<'a, str>>,
}

impl RecordFields<'_> {
    /// The stored body: the record's members but `events` (the last of duplicated keys, as a
    /// JSON reader keeps), each value as the JSON text given.
    fn write_body(&self, out: &mut String) {
        out.clear();
        out.push('{');
        let mut first = true;
        for (i, (key, value)) in self.members.iter().enumerate() {
            if self.members[i + 1..].iter().any(|(k, _)| k == key) {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(&serde_json::to_string(key.as_ref()).expect("serialising a string"));
            out.push(':');
            out.push_str(value.get());
        }
        out.push('}');
    }
}

/// A string, borrowed from the JSON text when it has no escapes; `None` for any other value.
pub(crate) fn raw_str(v: &RawValue) -> Option<Cow<'_, str>> {
    let text = v.get();
    if !text.starts_with('"') {
        return None;
    }
    if !text.contains('\\') {
        // A JSON string without escapes is its content between the quotes.
        return Some(Cow::Borrowed(&text[1..text.len() - 1]));
    }
    serde_json::from_str::<String>(text).ok().map(Cow::Owned)
}

/// A map key, borrowed when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// The arms of a lenient visitor for the JSON values it skips, each answering `$skipped`:
/// `non_strings` (booleans, numbers, null), `scalars` (the same and strings), `seq` and `map`
/// (read through and dropped).
macro_rules! skip_arms {
    ($de:lifetime, $($kind:ident),+ => $skipped:expr) => {
        $(skip_arms!(@ $de, $kind, $skipped);)+
    };
    (@ $de:lifetime, non_strings, $skipped:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($skipped)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($skipped)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($skipped)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($skipped)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($skipped)
        }
    };
    (@ $de:lifetime, scalars, $skipped:expr) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($skipped)
        }
        skip_arms!(@ $de, non_strings, $skipped);
    };
    (@ $de:lifetime, seq, $skipped:expr) => {
        fn visit_seq<A: SeqAccess<$de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok($skipped)
        }
    };
    (@ $de:lifetime, map, $skipped:expr) => {
        fn visit_map<A: MapAccess<$de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok($skipped)
        }
    };
}

/// Any JSON value read as "a string or nothing" (other values are skipped).
struct LenientStr<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for LenientStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LenientStr<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(LenientStr(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(LenientStr(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(LenientStr(Some(Cow::Owned(v))))
            }
            skip_arms!('de, non_strings, seq, map => LenientStr(None));
        }
        d.deserialize_any(V)
    }
}

/// The `events` member: the events of an array, nothing for any other value.
struct EventsIn<'a>(Option<Vec<EventIn<'a>>>);

impl<'de> Deserialize<'de> for EventsIn<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EventsIn<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(4));
                while let Some(e) = seq.next_element::<EventIn>()? {
                    out.push(e);
                }
                Ok(EventsIn(Some(out)))
            }
            skip_arms!('de, map, scalars => EventsIn(None));
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for EventIn<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EventIn<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut e = EventIn::default();
                while let Some(Key(k)) = map.next_key::<Key>()? {
                    let slot = match k.as_ref() {
                        "at" => &mut e.at,
                        "by" => &mut e.by,
                        "kind" => &mut e.kind,
                        "detail" => &mut e.detail,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = map.next_value::<LenientStr>()?.0;
                }
                Ok(e)
            }
            skip_arms!('de, seq, scalars => EventIn::default());
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for RecordIn<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RecordIn<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut r = RecordFields {
                    members: Vec::with_capacity(16),
                    ..RecordFields::default()
                };
                while let Some(Key(k)) = map.next_key::<Key>()? {
                    if k == "events" {
                        // Kept in its own table, never in the body.
                        r.events = map.next_value::<EventsIn>()?.0;
                        continue;
                    }
                    let v: &'de RawValue = map.next_value()?;
                    let slot = match k.as_ref() {
                        "id" => Some(&mut r.id),
                        "data_server" => Some(&mut r.data_server),
                        "record_key" => Some(&mut r.record_key),
                        "status" => Some(&mut r.status),
                        "status_label" => Some(&mut r.status_label),
                        "sent_by" => Some(&mut r.sent_by),
                        "sent_at" => Some(&mut r.sent_at),
                        "created_at" => Some(&mut r.created_at),
                        "updated_at" => Some(&mut r.updated_at),
                        "last_check_at" => Some(&mut r.last_check_at),
                        "deleted_at" => Some(&mut r.deleted_at),
                        "document_id" => {
                            r.document_id = serde_json::from_str::<i64>(v.get()).ok();
                            None
                        }
                        _ => None,
                    };
                    if let Some(slot) = slot {
                        *slot = raw_str(v);
                    }
                    r.members.push((k, v));
                }
                Ok(RecordIn::Object(r))
            }
            skip_arms!('de, seq, scalars => RecordIn::NotObject);
        }
        d.deserialize_any(V)
    }
}

/// The `records` member of a `records.put` request: the records of an array, `NotArray` for
/// any other value.
pub enum RecordsIn<'a> {
    Array(Vec<RecordIn<'a>>),
    NotArray,
}

impl<'de> Deserialize<'de> for RecordsIn<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RecordsIn<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(1));
                while let Some(r) = seq.next_element::<RecordIn>()? {
                    out.push(r);
                }
                Ok(RecordsIn::Array(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(RecordsIn::NotArray)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(RecordsIn::NotArray)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(RecordsIn::NotArray)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(RecordsIn::NotArray)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(RecordsIn::NotArray)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(RecordsIn::NotArray)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(RecordsIn::NotArray)
            }
        }
        d.deserialize_any(V)
    }
}

/// Statuses in which a record is active (`docs/abi.md`).
pub const ACTIVE_STATUSES: [&str; 4] =
    ["enviando", "rascunho", "pendente", "assinado_parcialmente"];

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::db::CONTRACT_DATA_SERVER;

    fn db() -> SchoolDb {
        let db = SchoolDb::in_memory().unwrap();
        crate::seed::seed_demo(&db).unwrap();
        db
    }

    pub(crate) fn record(
        id: &str,
        key: &str,
        status: &str,
        sent_at: Option<&str>,
        events: usize,
    ) -> Value {
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

    /// The body is stored as the members given (values as their JSON text, the last of a
    /// repeated key, never `events`), and `records.get`/`records.query` answer from it the same
    /// records as the tree-building readers.
    #[test]
    fn bodies_are_stored_as_given_and_read_back_the_same() {
        let db = db();
        let text = r#"{"id": "r-7", "data_server": "EduContratoData", "record_key": "1;a;1",
            "status": "pendente", "st\u0061tus_label": "Pendente", "note": "first",
            "recipients": [ {"email": "a@b.c",  "name": "Zé \"Z\""} ], "note": "second",
            "document_id": 42, "created_at": "2026-11-28T09:00:00Z",
            "updated_at": "2026-11-28T09:00:00Z", "sent_at": null,
            "\u0065vents": [{"at": "2026-11-28T09:00:00Z", "by": "s", "kind": "created", "detail": "d", "extra": 1},
                            {"at": 5, "kind": "uploaded"}]}"#;
        let rec: RecordIn = serde_json::from_str(text).unwrap();
        let w = db.put_records_in(&[rec], None).unwrap();
        assert!(w.is_empty(), "{w:?}");
        let body: String = db
            .conn()
            .query_row(
                "SELECT body FROM integration_records WHERE id = 'r-7'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            body,
            r#"{"id":"r-7","data_server":"EduContratoData","record_key":"1;a;1","status":"pendente","status_label":"Pendente","recipients":[ {"email": "a@b.c",  "name": "Zé \"Z\""} ],"note":"second","document_id":42,"created_at":"2026-11-28T09:00:00Z","updated_at":"2026-11-28T09:00:00Z","sent_at":null}"#
        );
        let (doc, status): (Option<i64>, String) = db
            .conn()
            .query_row(
                "SELECT document_id, status FROM integration_records WHERE id = 'r-7'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((doc, status.as_str()), (Some(42), "pendente"));
        let r = db.record("r-7").unwrap().unwrap();
        assert_eq!(r["note"], "second");
        assert_eq!(r["recipients"][0]["name"], "Zé \"Z\"");
        assert_eq!(
            r["events"],
            json!([{"at": "2026-11-28T09:00:00Z", "by": "s", "kind": "created", "detail": "d"},
                   {"at": "", "by": "", "kind": "uploaded", "detail": ""}])
        );
        db.put_records(&[record("r-8", "1;a;1", "falhou", None, 3)])
            .unwrap();
        let keys = vec!["1;a;1".to_string(), "1;x;9".to_string()];
        let answer: Value = serde_json::from_slice(
            &db.records_for_keys_json(CONTRACT_DATA_SERVER, &keys)
                .unwrap(),
        )
        .unwrap();
        let expected = db.records_for_keys(CONTRACT_DATA_SERVER, &keys).unwrap();
        assert_eq!(expected.len(), 2);
        assert_eq!(answer, json!({ "records": expected }));
        let filter = RecordFilter {
            contract_key: Some("1;a;1".into()),
            ..Default::default()
        };
        let answer: Value =
            serde_json::from_slice(&db.query_records_json(&filter, 0, 10).unwrap()).unwrap();
        let (total, page) = db.query_records(&filter, 0, 10).unwrap();
        assert_eq!(answer, json!({ "total": total, "records": page }));
        // A record written again under another key (never done by the plugin) moves with it:
        // the update of the other columns finds nothing and the full upsert runs.
        db.put_records(&[record("r-8", "1;b;2", "pendente", None, 3)])
            .unwrap();
        let moved = db
            .records_for_keys(CONTRACT_DATA_SERVER, &["1;b;2".into()])
            .unwrap();
        assert_eq!(moved.len(), 1);
        assert_eq!(
            (moved[0]["id"].as_str(), moved[0]["status"].as_str()),
            (Some("r-8"), Some("pendente"))
        );
        assert_eq!(
            db.records_for_keys(CONTRACT_DATA_SERVER, &["1;a;1".into()])
                .unwrap()
                .len(),
            1
        );
    }

    /// The statements of a write and of `records.get` stay prepared: SQLite re-prepares a
    /// statement binding an indexed column with an ORDER BY on every run, so they have none.
    #[test]
    fn writes_and_reads_are_never_re_prepared() {
        let dir = tempfile::tempdir().unwrap();
        let db = SchoolDb::open(dir.path().join("escola.db")).unwrap();
        for i in 0..10 {
            for events in 1..=3 {
                let w = db
                    .put_records(&[record(&format!("r{i}"), "1;a;1", "pendente", None, events)])
                    .unwrap();
                assert!(w.is_empty(), "{w:?}");
            }
            db.records_for_keys_json(CONTRACT_DATA_SERVER, &["1;a;1".into()])
                .unwrap();
        }
        let conn = db.conn();
        let mut seen = 0;
        // Every statement this connection keeps prepared.
        // SAFETY: the connection is open; its handle is only used to list its statements.
        let mut p =
            unsafe { rusqlite::ffi::sqlite3_next_stmt(conn.handle(), std::ptr::null_mut()) };
        while !p.is_null() {
            // SAFETY: `p` is a live statement of this connection; only its counters are read.
            let (reprepared, runs) = unsafe {
                (
                    rusqlite::ffi::sqlite3_stmt_status(
                        p,
                        rusqlite::ffi::SQLITE_STMTSTATUS_REPREPARE,
                        0,
                    ),
                    rusqlite::ffi::sqlite3_stmt_status(p, rusqlite::ffi::SQLITE_STMTSTATUS_RUN, 0),
                )
            };
            // SAFETY: as above; the SQL text lives as long as the statement.
            let sql = unsafe { std::ffi::CStr::from_ptr(rusqlite::ffi::sqlite3_sql(p)) };
            assert_eq!(reprepared, 0, "{sql:?} re-prepared ({runs} runs)");
            seen += 1;
            // SAFETY: walking the connection's statement list.
            p = unsafe { rusqlite::ffi::sqlite3_next_stmt(conn.handle(), p) };
        }
        assert!(seen >= 6, "{seen} statements");
    }
}
