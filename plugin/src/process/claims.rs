//! The contracts held by the `execute` calls running in this process.
//!
//! Two runs over the same contract (two secretaries, or the menu and the contract view at once)
//! must not interleave: the second would act on records read before the first one's send,
//! delete or update finished, and could send a contract twice. So a run takes all its
//! contracts at once — waiting, before it reads their records, until no other run holds any of
//! them — and releases them when it ends. Taking all at once (never holding some while waiting
//! for others) means two runs can never wait for each other.

use parking_lot::{Condvar, Mutex};
use std::collections::HashSet;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// (DataServer, record key) of a contract.
pub type ContractId = (String, String);

/// How long a run waits for another run to release its contracts.
pub const MAX_WAIT: Duration = Duration::from_secs(30 * 60);

struct Held {
    ids: Mutex<HashSet<ContractId>>,
    released: Condvar,
}

static HELD: LazyLock<Held> = LazyLock::new(|| Held {
    ids: Mutex::new(HashSet::new()),
    released: Condvar::new(),
});

/// The contracts one run holds; released when dropped (also while unwinding from a panic).
#[derive(Default)]
pub struct Claim {
    ids: HashSet<ContractId>,
    /// How long this run waited for others, in total.
    pub waited: Duration,
}

impl Claim {
    /// Waits until no other run holds any of `ids`, then takes them all at once. Answers the
    /// number of contracts still held by others when `max_wait` ran out.
    pub fn take_all(
        &mut self,
        ids: impl IntoIterator<Item = ContractId>,
        max_wait: Duration,
    ) -> Result<(), usize> {
        let wanted: Vec<ContractId> = ids
            .into_iter()
            .filter(|id| !self.ids.contains(id))
            .collect();
        let started = Instant::now();
        let deadline = started + max_wait;
        let mut held = HELD.ids.lock();
        let mut logged = false;
        loop {
            let blocked = wanted.iter().filter(|id| held.contains(*id)).count();
            if blocked == 0 {
                for id in wanted {
                    held.insert(id.clone());
                    self.ids.insert(id);
                }
                self.waited += started.elapsed();
                return Ok(());
            }
            if !logged {
                log::info!("{blocked} contract(s) held by another run in this process; waiting");
                logged = true;
            }
            if HELD.released.wait_until(&mut held, deadline).timed_out() {
                let blocked = wanted.iter().filter(|id| held.contains(*id)).count();
                if blocked > 0 {
                    self.waited += started.elapsed();
                    return Err(blocked);
                }
            }
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.ids.is_empty() {
            return;
        }
        let mut held = HELD.ids.lock();
        for id in &self.ids {
            held.remove(id);
        }
        drop(held);
        HELD.released.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(key: &str) -> ContractId {
        ("EduContratoData".to_string(), key.to_string())
    }

    #[test]
    fn a_run_waits_for_the_contracts_another_run_holds() {
        let mut first = Claim::default();
        first
            .take_all([id("claims-1"), id("claims-2")], MAX_WAIT)
            .unwrap();
        // Taking its own contracts again never waits.
        first.take_all([id("claims-1")], Duration::ZERO).unwrap();
        // Another run times out while the first holds one of its contracts...
        let mut second = Claim::default();
        assert_eq!(
            second.take_all([id("claims-2"), id("claims-3")], Duration::from_millis(50)),
            Err(1)
        );
        // ...and took nothing meanwhile (claims-3 stays free).
        let mut third = Claim::default();
        third.take_all([id("claims-3")], Duration::ZERO).unwrap();
        drop(third);
        // It gets them all once the first run releases.
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            drop(first);
        });
        second
            .take_all([id("claims-2"), id("claims-3")], MAX_WAIT)
            .unwrap();
        assert!(second.waited >= Duration::from_millis(50));
        releaser.join().unwrap();
    }
}
