//! Leases: which run holds which contract, across every host process over one database
//! (`leases.acquire`, `leases.renew`, `leases.release`, and the fencing of `records.put`;
//! `docs/abi.md`, "Leases").
//!
//! Several RM application servers and the job server load the plugin in their own processes;
//! the database is the one thing they share, so a run's hold on its contracts is a row here:
//! `leases (data_server, contract_key) → token, owner JSON, since, expires_at`.
//!
//! - **One clock.** Expiry is judged by SQLite's clock, read inside the write transaction
//!   (`unixepoch('subsec')`, milliseconds): every process over the file asks the same
//!   question of the same clock under the same lock. (RM over SQL Server or Oracle would use the
//!   server's `SYSUTCDATETIME()` / `SYSTIMESTAMP` the same way, never an application server's
//!   clock.) With SQLite that is the clock of the machine the host processes run on.
//! - **One transaction each.** Acquire, renew and the fenced `records.put` run in
//!   `BEGIN IMMEDIATE` transactions: the write lock is taken before anything is read, so two
//!   processes asking for the same contract are serialised and exactly one gets it.
//! - **The token is the run id** (`owner.run_id`): every acquire of one run answers the same
//!   token, and a run that takes over an expired lease has another.
//! - **Held means the row carries the token.** An expired lease still belongs to its run until
//!   another run acquires it: until then its run may renew it and write under it (the write is
//!   serialised before any takeover, so it cannot overwrite the new owner's record).
//! - Nothing waits: a contract held by a live lease of another run is answered in `held` with
//!   its holder at once. A crashed process never releases; its leases expire after `ttl_secs`.

use super::{DbError, DbResult, SchoolDb, CONTRACT_DATA_SERVER};
use chrono::{DateTime, SecondsFormat};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeSet;

pub(super) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS leases (
    data_server   TEXT NOT NULL,
    contract_key  TEXT NOT NULL,
    token         TEXT NOT NULL,
    owner         TEXT NOT NULL,
    since_ms      INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (data_server, contract_key)
);
CREATE INDEX IF NOT EXISTS leases_by_token ON leases(token);
"#;

/// The database's clock, in milliseconds since the epoch.
const NOW_MS: &str = "SELECT CAST(unixepoch('subsec') * 1000 AS INTEGER)";

/// The longest time to live a run may ask for (a day).
pub const MAX_TTL_SECS: u64 = 86_400;

/// A contract of the host: `{"data_server", "key"}`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ContractRef {
    pub data_server: String,
    pub key: String,
}

impl ContractRef {
    /// An Educacional contract ([`CONTRACT_DATA_SERVER`]) by its key.
    pub fn contract(key: &str) -> Self {
        ContractRef {
            data_server: CONTRACT_DATA_SERVER.to_string(),
            key: key.to_string(),
        }
    }
}

/// The run that holds (or asks for) contracts, shown to the runs it blocks. Fields the host
/// does not know are kept as given.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LeaseOwner {
    pub run_id: String,
    #[serde(default)]
    pub session: String,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub machine: String,
    #[serde(default)]
    pub option: String,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A contract another run holds: the `held` entries of `leases.acquire`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HeldLease {
    pub data_server: String,
    pub key: String,
    pub holder: LeaseOwner,
    /// RFC 3339, UTC.
    pub since: String,
    /// RFC 3339, UTC.
    pub expires_at: String,
}

/// The answer of `leases.acquire`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LeaseGrant {
    pub token: String,
    pub granted: Vec<ContractRef>,
    pub held: Vec<HeldLease>,
}

/// The answer of `leases.renew`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LeaseRenewal {
    pub renewed: Vec<ContractRef>,
    pub lost: Vec<ContractRef>,
}

/// One row of the leases table (for tools and tests).
#[derive(Clone, Debug, PartialEq)]
pub struct StoredLease {
    pub contract: ContractRef,
    pub token: String,
    pub owner: LeaseOwner,
    pub since_ms: i64,
    pub expires_at_ms: i64,
}

fn rfc3339(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn check_ttl(ttl_secs: u64) -> DbResult<i64> {
    if !(1..=MAX_TTL_SECS).contains(&ttl_secs) {
        return Err(DbError::invalid(format!(
            "ttl_secs deve estar entre 1 e {MAX_TTL_SECS} segundos (veio {ttl_secs})"
        )));
    }
    Ok(ttl_secs as i64 * 1000)
}

/// The contracts in the order given, each once.
fn distinct(contracts: &[ContractRef]) -> Vec<&ContractRef> {
    let mut seen = BTreeSet::new();
    contracts.iter().filter(|c| seen.insert(*c)).collect()
}

impl SchoolDb {
    /// The database's clock (milliseconds since the epoch): the one clock leases expire by.
    pub fn db_now_ms(&self) -> DbResult<i64> {
        Ok(self.conn.query_row(NOW_MS, [], |r| r.get(0))?)
    }

    /// `leases.acquire`: in one transaction, grants `owner`'s run every contract nobody holds,
    /// whose lease expired (by the database's clock), or that the run already holds (`since`
    /// kept); answers each other one with its holder. Never waits for another run.
    pub fn acquire_leases(
        &self,
        owner: &LeaseOwner,
        ttl_secs: u64,
        contracts: &[ContractRef],
    ) -> DbResult<LeaseGrant> {
        if owner.run_id.trim().is_empty() {
            return Err(DbError::invalid(
                "leases.acquire: owner.run_id (a execução que pede a reserva) está vazio",
            ));
        }
        let ttl_ms = check_ttl(ttl_secs)?;
        let token = owner.run_id.clone();
        let owner_json = serde_json::to_string(owner)?;
        let tx = self.immediate()?;
        let now: i64 = tx.prepare_cached(NOW_MS)?.query_row([], |r| r.get(0))?;
        let mut grant = LeaseGrant {
            token: token.clone(),
            granted: Vec::new(),
            held: Vec::new(),
        };
        for c in distinct(contracts) {
            let current: Option<(String, String, i64, i64)> = tx
                .prepare_cached(
                    "SELECT token, owner, since_ms, expires_at_ms FROM leases
                     WHERE data_server = ?1 AND contract_key = ?2",
                )?
                .query_row(params![c.data_server, c.key], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .optional()?;
            match current {
                Some((holder_token, holder, since, expires))
                    if holder_token != token && expires > now =>
                {
                    grant.held.push(HeldLease {
                        data_server: c.data_server.clone(),
                        key: c.key.clone(),
                        holder: serde_json::from_str(&holder)?,
                        since: rfc3339(since),
                        expires_at: rfc3339(expires),
                    });
                }
                current => {
                    let since = match current {
                        Some((holder_token, _, since, _)) if holder_token == token => since,
                        _ => now,
                    };
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO leases
                             (data_server, contract_key, token, owner, since_ms, expires_at_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?
                    .execute(params![
                        c.data_server,
                        c.key,
                        token,
                        owner_json,
                        since,
                        now + ttl_ms
                    ])?;
                    grant.granted.push(c.clone());
                }
            }
        }
        tx.commit()?;
        Ok(grant)
    }

    /// `leases.renew`: extends to now + `ttl_secs` every listed lease `token` still holds;
    /// answers the others as lost (released, or expired and taken by another run).
    pub fn renew_leases(
        &self,
        token: &str,
        ttl_secs: u64,
        contracts: &[ContractRef],
    ) -> DbResult<LeaseRenewal> {
        let ttl_ms = check_ttl(ttl_secs)?;
        let tx = self.immediate()?;
        let now: i64 = tx.prepare_cached(NOW_MS)?.query_row([], |r| r.get(0))?;
        let mut out = LeaseRenewal {
            renewed: Vec::new(),
            lost: Vec::new(),
        };
        for c in distinct(contracts) {
            let n = tx
                .prepare_cached(
                    "UPDATE leases SET expires_at_ms = ?4
                     WHERE data_server = ?1 AND contract_key = ?2 AND token = ?3",
                )?
                .execute(params![c.data_server, c.key, token, now + ttl_ms])?;
            if n == 1 {
                out.renewed.push(c.clone());
            } else {
                out.lost.push(c.clone());
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// `leases.release`: drops `token`'s leases on the listed contracts, or all of them;
    /// answers how many were dropped. Another run's leases are never touched.
    pub fn release_leases(
        &self,
        token: &str,
        contracts: Option<&[ContractRef]>,
    ) -> DbResult<usize> {
        let tx = self.immediate()?;
        let n = match contracts {
            None => tx.execute("DELETE FROM leases WHERE token = ?1", params![token])?,
            Some(list) => {
                let mut n = 0;
                for c in distinct(list) {
                    n += tx
                        .prepare_cached(
                            "DELETE FROM leases
                             WHERE data_server = ?1 AND contract_key = ?2 AND token = ?3",
                        )?
                        .execute(params![c.data_server, c.key, token])?;
                }
                n
            }
        };
        tx.commit()?;
        Ok(n)
    }

    /// Every lease row, by contract.
    pub fn leases(&self) -> DbResult<Vec<StoredLease>> {
        let mut stmt = self.conn.prepare(
            "SELECT data_server, contract_key, token, owner, since_ms, expires_at_ms FROM leases
             ORDER BY data_server, contract_key",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    ContractRef {
                        data_server: r.get(0)?,
                        key: r.get(1)?,
                    },
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(contract, token, owner, since_ms, expires_at_ms)| {
                Ok(StoredLease {
                    contract,
                    token,
                    owner: serde_json::from_str(&owner)?,
                    since_ms,
                    expires_at_ms,
                })
            })
            .collect()
    }

    /// The contracts among `contracts` (data server, key) whose lease row does not carry
    /// `token` (for the fencing of `records.put`, inside its transaction).
    pub(super) fn not_held_by(
        conn: &Connection,
        token: &str,
        contracts: &BTreeSet<(&str, &str)>,
    ) -> DbResult<Vec<ContractRef>> {
        let mut lost = Vec::new();
        let mut stmt = conn.prepare_cached(
            "SELECT token = ?3 FROM leases WHERE data_server = ?1 AND contract_key = ?2",
        )?;
        for &(data_server, key) in contracts {
            let held: Option<bool> = stmt
                .query_row(params![data_server, key, token], |r| r.get(0))
                .optional()?;
            if held != Some(true) {
                lost.push(ContractRef {
                    data_server: data_server.to_string(),
                    key: key.to_string(),
                });
            }
        }
        Ok(lost)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::db::records::tests::record;
    use crate::db::DbErrorKind;
    use std::time::{Duration, Instant};

    pub(crate) fn owner(run: &str) -> LeaseOwner {
        LeaseOwner {
            run_id: run.into(),
            session: format!("sessao-{run}"),
            user: "secretaria".into(),
            machine: "rm-app-1".into(),
            option: "send".into(),
            other: Map::new(),
        }
    }

    fn refs(keys: &[&str]) -> Vec<ContractRef> {
        keys.iter().map(|k| ContractRef::contract(k)).collect()
    }

    /// Polls the database's clock until it passes `deadline_ms` (at most 10 s of wall time).
    pub(crate) fn wait_for_db_clock(db: &SchoolDb, deadline_ms: i64) {
        let give_up = Instant::now() + Duration::from_secs(10);
        while db.db_now_ms().unwrap() <= deadline_ms {
            assert!(
                Instant::now() < give_up,
                "the database clock did not advance"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn the_clock_is_milliseconds() {
        let db = SchoolDb::in_memory().unwrap();
        let a = db.db_now_ms().unwrap();
        let wall = chrono::Utc::now().timestamp_millis();
        assert!((a - wall).abs() < 5_000, "{a} vs {wall}");
        wait_for_db_clock(&db, a + 30);
        assert!(db.db_now_ms().unwrap() - a < 1_000);
    }

    #[test]
    fn two_connections_to_one_file_one_gets_each_contract() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("escola.db");
        let a = SchoolDb::open(&path).unwrap();
        let b = SchoolDb::open_existing(&path).unwrap();
        let all = refs(&["1;a;1", "1;b;2", "1;c;3"]);
        let ga = a.acquire_leases(&owner("run-a"), 60, &all[..2]).unwrap();
        assert_eq!(ga.token, "run-a");
        assert_eq!(ga.granted, all[..2].to_vec());
        assert!(ga.held.is_empty());
        let gb = b.acquire_leases(&owner("run-b"), 60, &all).unwrap();
        assert_eq!(gb.granted, all[2..].to_vec());
        assert_eq!(gb.held.len(), 2);
        assert_eq!(gb.held[0].key, "1;a;1");
        assert_eq!(gb.held[0].holder, owner("run-a"));
        assert!(DateTime::parse_from_rfc3339(&gb.held[0].since).is_ok());
        assert!(gb.held[0].expires_at > gb.held[0].since);
        // The same run asking again keeps its `since` and gets the same token.
        let before = a.leases().unwrap();
        let again = a.acquire_leases(&owner("run-a"), 60, &all[..1]).unwrap();
        assert_eq!((again.token.as_str(), again.granted.len()), ("run-a", 1));
        let after = a.leases().unwrap();
        assert_eq!(before[0].since_ms, after[0].since_ms);
        assert!(after[0].expires_at_ms >= before[0].expires_at_ms);
        // Duplicates in one request count once.
        let dup = b
            .acquire_leases(&owner("run-b"), 60, &[all[2].clone(), all[2].clone()])
            .unwrap();
        assert_eq!(dup.granted.len(), 1);
        // Refusals.
        assert!(a.acquire_leases(&owner(""), 60, &all).is_err());
        assert!(a.acquire_leases(&owner("x"), 0, &all).is_err());
        assert!(a.renew_leases("x", MAX_TTL_SECS + 1, &all).is_err());
    }

    #[test]
    fn threads_racing_over_one_file_exactly_one_wins_each_contract() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("escola.db");
        SchoolDb::open(&path).unwrap();
        let keys: Vec<String> = (0..60).map(|i| format!("1;ra{i};{i}")).collect();
        let all: Vec<ContractRef> = keys.iter().map(|k| ContractRef::contract(k)).collect();
        let barrier = std::sync::Barrier::new(4);
        let grants: Vec<LeaseGrant> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|i| {
                    let (path, all, barrier) = (&path, &all, &barrier);
                    s.spawn(move || {
                        let db = SchoolDb::open_existing(path).unwrap();
                        barrier.wait();
                        // Each run asks in its own order, in small batches.
                        let mut mine = all.clone();
                        mine.rotate_left(i * 15);
                        let mut g = LeaseGrant {
                            token: String::new(),
                            granted: vec![],
                            held: vec![],
                        };
                        for chunk in mine.chunks(7) {
                            let r = db
                                .acquire_leases(&owner(&format!("run-{i}")), 60, chunk)
                                .unwrap();
                            g.token = r.token;
                            g.granted.extend(r.granted);
                            g.held.extend(r.held);
                        }
                        g
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for c in &all {
            let winners: Vec<&str> = grants
                .iter()
                .filter(|g| g.granted.contains(c))
                .map(|g| g.token.as_str())
                .collect();
            assert_eq!(winners.len(), 1, "{c:?} granted to {winners:?}");
            for g in &grants {
                if g.token != winners[0] {
                    let h = g
                        .held
                        .iter()
                        .find(|h| h.key == c.key)
                        .expect("answered held");
                    assert_eq!(h.holder.run_id, winners[0]);
                }
            }
        }
    }

    #[test]
    fn expiry_takeover_fencing_and_renew_lost() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("escola.db");
        let old = SchoolDb::open(&path).unwrap();
        let new = SchoolDb::open_existing(&path).unwrap();
        let c = refs(&["1;a;1", "1;b;2"]);
        let g = old.acquire_leases(&owner("run-old"), 1, &c).unwrap();
        assert_eq!(g.granted.len(), 2);
        // The old run writes under its lease.
        old.put_records_leased(
            &[record("r-old", "1;a;1", "enviando", None, 1)],
            Some("run-old"),
        )
        .unwrap();
        // Not yet expired: the new run is told who holds them.
        let early = new.acquire_leases(&owner("run-new"), 60, &c).unwrap();
        if early.granted.is_empty() {
            assert_eq!(early.held.len(), 2);
            assert_eq!(early.held[0].holder.run_id, "run-old");
        }
        // Wait on the database's clock (not a bare sleep) until the old leases expired.
        let expires = old
            .leases()
            .unwrap()
            .iter()
            .map(|l| l.expires_at_ms)
            .max()
            .unwrap();
        wait_for_db_clock(&new, expires);
        let taken = new.acquire_leases(&owner("run-new"), 60, &c[..1]).unwrap();
        assert_eq!(taken.granted, c[..1].to_vec());
        let held = old.leases().unwrap();
        assert_eq!(held[0].token, "run-new");
        assert_eq!(held[0].owner.run_id, "run-new");
        assert!(
            held[0].since_ms >= expires,
            "a takeover starts its own `since`"
        );

        // Fencing: the old run's write touching the taken contract is refused as a whole, even
        // with a record of a contract it still holds in the same put; nothing is written.
        let before = old.all_records().unwrap();
        let e = old
            .put_records_leased(
                &[
                    record(
                        "r-old",
                        "1;a;1",
                        "pendente",
                        Some("2026-12-02T10:00:00Z"),
                        2,
                    ),
                    record("r-old-2", "1;b;2", "enviando", None, 1),
                ],
                Some("run-old"),
            )
            .unwrap_err();
        assert_eq!(e.kind, DbErrorKind::LeaseLost(c[..1].to_vec()));
        assert!(
            e.message.contains("1;a;1") && e.message.contains("nada foi gravado"),
            "{e}"
        );
        assert_eq!(old.all_records().unwrap(), before);
        let events: i64 = old
            .conn()
            .query_row("SELECT COUNT(*) FROM record_events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(events, 1);
        // The new owner writes.
        new.put_records_leased(
            &[record("r-old", "1;a;1", "pendente", None, 2)],
            Some("run-new"),
        )
        .unwrap();
        // Writing without a token is accepted as before (in-process-only hosts, old plugins).
        old.put_records(&[record("r-free", "1;z;9", "falhou", None, 1)])
            .unwrap();
        // A token that never held the contract is refused.
        let e = new
            .put_records_leased(
                &[record("r-x", "1;z;9", "falhou", None, 1)],
                Some("run-new"),
            )
            .unwrap_err();
        assert!(matches!(e.kind, DbErrorKind::LeaseLost(_)));

        // Renew: the taken one is lost; the expired one nobody took is still the old run's.
        let r = old.renew_leases("run-old", 60, &c).unwrap();
        assert_eq!(r.lost, c[..1].to_vec());
        assert_eq!(r.renewed, c[1..].to_vec());
        let r = new.renew_leases("run-new", 60, &c).unwrap();
        assert_eq!((r.renewed, r.lost), (c[..1].to_vec(), c[1..].to_vec()));
    }

    #[test]
    fn release_drops_only_the_tokens_leases() {
        let db = SchoolDb::in_memory().unwrap();
        let c = refs(&["1;a;1", "1;b;2", "1;c;3"]);
        db.acquire_leases(&owner("run-1"), 60, &c[..2]).unwrap();
        db.acquire_leases(&owner("run-2"), 60, &c[2..]).unwrap();
        assert_eq!(db.release_leases("run-1", Some(&c[..1])).unwrap(), 1);
        // Another run's lease is not released by a token that does not hold it.
        assert_eq!(db.release_leases("run-1", Some(&c[2..])).unwrap(), 0);
        let g = db.acquire_leases(&owner("run-3"), 60, &c).unwrap();
        assert_eq!(g.granted, c[..1].to_vec());
        assert_eq!(g.held.len(), 2);
        assert_eq!(db.release_leases("run-1", None).unwrap(), 1);
        assert_eq!(db.release_leases("run-1", None).unwrap(), 0);
        let r = db.renew_leases("run-1", 60, &c).unwrap();
        assert_eq!(r.lost, c);
        let g = db.acquire_leases(&owner("run-3"), 60, &c).unwrap();
        assert_eq!(g.granted, c[..2].to_vec());
        // A put under a released lease is refused.
        db.release_leases("run-3", None).unwrap();
        let e = db
            .put_records_leased(&[record("r", "1;a;1", "enviando", None, 1)], Some("run-3"))
            .unwrap_err();
        assert!(matches!(e.kind, DbErrorKind::LeaseLost(_)));
        assert!(db.all_records().unwrap().is_empty());
    }

    #[test]
    fn unknown_owner_fields_are_kept() {
        let db = SchoolDb::in_memory().unwrap();
        let o: LeaseOwner = serde_json::from_value(serde_json::json!({
            "run_id": "r1", "session": "s", "user": "u", "machine": "m", "option": "check",
            "environment": "producao"
        }))
        .unwrap();
        db.acquire_leases(&o, 60, &refs(&["1;a;1"])).unwrap();
        let g = db
            .acquire_leases(&owner("r2"), 60, &refs(&["1;a;1"]))
            .unwrap();
        assert_eq!(g.held[0].holder.other["environment"], "producao");
        assert_eq!(g.held[0].holder.option, "check");
    }
}
