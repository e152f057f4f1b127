//! Who may work on a contract: the contracts held by the runs of this process, and — when the
//! host supports them — leases in the host's database, shared by every RM application server
//! and the job server (`docs/abi.md`, "Leases").
//!
//! Two runs over the same contract (two secretaries, the menu and the contract view, or a
//! secretary and the scheduled job on another server) must not interleave: the second would act
//! on records read before the first one's send, delete or update finished, and could send a
//! contract twice. So a run takes all its contracts at once, before it reads their records,
//! and never waits: a contract another run holds is answered at once with its holder, reported
//! as its own outcome, and picked up by a rerun later.
//!
//! INTERFACE (fixed for the session's parallel work; the host-lease half is being filled in):
//! `Claim::new`, `Claim::take`, `Claim::lease_token`, `Claim::renew_if_due`,
//! `Claim::renew_interval`, `Claim::release`, `probe_host`.

use crate::error::PluginError;
use crate::host::Host;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// (DataServer, record key) of a contract.
pub type ContractId = (String, String);

/// Default time to live of a host lease (a global parameter may override it).
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

/// The run that holds (or asks for) contracts: shown to the other runs it blocks.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Owner {
    pub run_id: String,
    pub session: String,
    pub user: String,
    pub machine: String,
    pub option: String,
}

/// Who holds a contract this run asked for, and since when (RFC 3339, UTC).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Holder {
    pub owner: Owner,
    pub since: String,
    /// `None` for a run of this same process (in-process claim).
    pub expires_at: Option<String>,
}

struct InProcess {
    owner: Owner,
    since: String,
}

/// The contracts held by the runs of this process, with their owner.
static HELD: LazyLock<Mutex<HashMap<ContractId, InProcess>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The contracts one run holds. In-process claims are released when dropped (also while
/// unwinding from a panic); host leases by [`Claim::release`] (or they expire).
pub struct Claim {
    owner: Owner,
    ttl: Duration,
    ids: HashSet<ContractId>,
    /// The host's lease token, once the host granted leases.
    token: Option<String>,
    /// Contracts leased in the host's database.
    leased: HashSet<ContractId>,
    last_renew: Instant,
}

impl Claim {
    pub fn new(owner: Owner, ttl: Duration) -> Claim {
        Claim {
            owner,
            ttl,
            ids: HashSet::new(),
            token: None,
            leased: HashSet::new(),
            last_renew: Instant::now(),
        }
    }

    pub fn owner(&self) -> &Owner {
        &self.owner
    }

    /// Takes every contract of `ids` nobody else holds — in this process, then in the host's
    /// database when the host supports leases — and answers the others with their holder.
    /// Never waits.
    pub fn take(
        &mut self,
        _host: &dyn Host,
        ids: impl IntoIterator<Item = ContractId>,
    ) -> Result<BTreeMap<ContractId, Holder>, PluginError> {
        let mut held_by_others = BTreeMap::new();
        let mut held = HELD.lock();
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        for id in ids {
            if self.ids.contains(&id) {
                continue;
            }
            match held.get(&id) {
                Some(other) => {
                    held_by_others.insert(
                        id,
                        Holder {
                            owner: other.owner.clone(),
                            since: other.since.clone(),
                            expires_at: None,
                        },
                    );
                }
                None => {
                    held.insert(
                        id.clone(),
                        InProcess {
                            owner: self.owner.clone(),
                            since: now.clone(),
                        },
                    );
                    self.ids.insert(id);
                }
            }
        }
        // Host leases: to be filled in (docs/abi.md, "Leases").
        Ok(held_by_others)
    }

    /// The token to send with `records.put` while the host holds leases for this run.
    pub fn lease_token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// How often the run must call [`Claim::renew_if_due`] at the least.
    pub fn renew_interval(&self) -> Duration {
        self.ttl / 3
    }

    /// Renews the host leases when a third of their time to live has passed; answers the
    /// contracts whose lease was lost (taken by another run after expiring).
    pub fn renew_if_due(&mut self, _host: &dyn Host) -> Vec<ContractId> {
        if self.token.is_none() || self.last_renew.elapsed() < self.renew_interval() {
            return Vec::new();
        }
        self.last_renew = Instant::now();
        Vec::new()
    }

    /// Releases the host leases (in-process claims are released on drop).
    pub fn release(&mut self, _host: &dyn Host) {
        self.token = None;
        self.leased.clear();
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.ids.is_empty() {
            return;
        }
        let mut held = HELD.lock();
        for id in &self.ids {
            held.remove(id);
        }
    }
}

/// The lease methods the host lacks (empty when it supports them all): for `configure test`.
pub fn probe_host(_host: &dyn Host) -> Vec<&'static str> {
    vec!["leases.acquire", "leases.renew", "leases.release"]
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoLeases;
    impl Host for NoLeases {
        fn call(&self, method: &str, _r: &[u8]) -> Result<Vec<u8>, crate::host::HostCallError> {
            Err(crate::host::HostCallError {
                method: method.into(),
                status: 1,
                message: "unknown method".into(),
            })
        }
        fn log(&self, _l: crate::host::LogLevel, _m: &str) {}
        fn progress(&self, _d: u32, _t: u32, _j: &str) -> bool {
            false
        }
    }

    fn id(key: &str) -> ContractId {
        ("EduContratoData".to_string(), key.to_string())
    }

    fn owner(run: &str) -> Owner {
        Owner {
            run_id: run.into(),
            session: "s".into(),
            user: "secretaria".into(),
            machine: "rm-app-1".into(),
            option: "send".into(),
        }
    }

    #[test]
    fn a_run_never_waits_and_names_who_holds_the_others() {
        let host = NoLeases;
        let mut first = Claim::new(owner("run-a"), DEFAULT_TTL);
        let held = first.take(&host, [id("claims-1"), id("claims-2")]).unwrap();
        assert!(held.is_empty());
        // Taking its own contracts again is a no-op.
        assert!(first.take(&host, [id("claims-1")]).unwrap().is_empty());
        let mut second = Claim::new(owner("run-b"), DEFAULT_TTL);
        let held = second
            .take(&host, [id("claims-2"), id("claims-3")])
            .unwrap();
        assert_eq!(held.len(), 1);
        assert_eq!(held[&id("claims-2")].owner.run_id, "run-a");
        // claims-3 was taken by the second run; claims-2 is free once the first one ends.
        drop(first);
        let mut third = Claim::new(owner("run-c"), DEFAULT_TTL);
        let held = third.take(&host, [id("claims-2"), id("claims-3")]).unwrap();
        assert_eq!(held.len(), 1);
        assert_eq!(held[&id("claims-3")].owner.run_id, "run-b");
    }
}
