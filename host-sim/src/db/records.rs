//! The integration records store (`records.get`, `records.query`, `records.put`,
//! `records.store_file`): the "anexo de integração" RM shows on a contract.
//!
//! A record is kept as its JSON body (`docs/abi.md`, "Record") plus the columns searched on;
//! its events live in `record_events`, append-only (triggers refuse UPDATE and DELETE), and a
//! write that would rewrite or shorten the history keeps the stored events and answers a
//! warning. A `records.put` is one `BEGIN IMMEDIATE` transaction: all its records or none.
//! With a lease token it is fenced (see [`super::leases`]): refused as a whole, writing
//! nothing, when the token no longer holds one of its contracts.

use super::filters::{normalize_record_status, timestamp_ms, RecordFilter};
use super::leases::ContractRef;
use super::{now_rfc3339, DbError, DbErrorKind, DbResult, SchoolDb};
use chrono::{DateTime, Utc};
use rusqlite::{params, params_from_iter, Connection};
use serde_json::{json, Map, Value};
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
    pub fn put_records_leased(
        &self,
        records: &[Value],
        lease_token: Option<&str>,
    ) -> DbResult<Vec<String>> {
        let mut warnings = Vec::new();
        let tx = self.immediate()?;
        if let Some(token) = lease_token {
            let contracts: BTreeSet<ContractRef> = records
                .iter()
                .filter_map(|r| {
                    Some(ContractRef {
                        data_server: r.get("data_server")?.as_str()?.to_string(),
                        key: r.get("record_key")?.as_str()?.to_string(),
                    })
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
        for rec in records {
            let obj = rec.as_object().ok_or_else(|| {
                DbError::invalid("registro de integração: deve ser um objeto JSON")
            })?;
            let s = |name: &str| obj.get(name).and_then(Value::as_str).map(str::to_string);
            let id = s("id")
                .filter(|id| !id.is_empty())
                .ok_or_else(|| DbError::invalid("registro de integração sem `id`"))?;
            let data_server = s("data_server").ok_or_else(|| {
                DbError::invalid(format!("registro de integração {id} sem `data_server`"))
            })?;
            let record_key = s("record_key").ok_or_else(|| {
                DbError::invalid(format!("registro de integração {id} sem `record_key`"))
            })?;
            let status = s("status").ok_or_else(|| {
                DbError::invalid(format!("registro de integração {id} sem `status`"))
            })?;
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
}
