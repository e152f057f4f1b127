//! Helpers for the end-to-end tests: the built plugin (through host-sim's loader), a seeded
//! school database in a temporary directory, the simulated RM host over it, and an embedded
//! tae-sim with its portal — wired together in a [`TestEnv`].
//!
//! ```no_run
//! let env = tae_edu_tests::TestEnv::demo();
//! let (status, response) = env.send_menu();
//! assert_eq!(status, 0);
//! let outcomes = tae_edu_tests::outcomes(&response);
//! ```

use host_sim::db::{SchoolDb, ACTIVE_STATUSES};
use host_sim::portal::Portal;
use host_sim::seed::{DEMO_PERIOD, DEMO_RM_USER, DEMO_RM_USER_CPF};
use host_sim::{Plugin, RmHost, UiScript, CONTRACT_REPORT_CODE};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub use host_sim;
pub use tae_sim;

pub mod proofs;
pub mod tap;

/// The RM session most tests use.
pub const SESSION: &str = "rm-sessao-teste-1";

/// The plugin of this build (built on first use when missing or stale); panics with the reason.
pub fn plugin() -> Plugin {
    host_sim::install_crypto_provider();
    Plugin::load_default().unwrap_or_else(|e| panic!("cannot load the tae-edu plugin: {e}"))
}

/// What a test environment holds. The database lives in `dir` (a file, WAL), so other
/// connections (e.g. [`TestEnv::reopen_db`]) see what the host committed.
pub struct TestEnv {
    pub plugin: Plugin,
    pub host: RmHost,
    pub sim: tae_sim::SimServer,
    pub portal: Portal,
    pub dir: tempfile::TempDir,
    pub db_path: PathBuf,
    /// The contract keys the seed created.
    pub keys: Vec<String>,
}

/// Which school to seed.
#[derive(Clone, Copy, Debug)]
pub enum Seed {
    /// The demo school (14 contracts, two with bad data).
    Demo,
    /// `n` valid contracts.
    Bulk(usize),
}

impl TestEnv {
    /// The demo school against a fresh tae-sim; the UI answers the sim's admin credentials and
    /// the RM user's CPF.
    pub fn demo() -> TestEnv {
        Self::new(Seed::Demo, tae_sim::SimOptions::default())
    }

    /// `n` valid contracts against a fresh tae-sim.
    pub fn bulk(n: usize) -> TestEnv {
        Self::new(Seed::Bulk(n), tae_sim::SimOptions::default())
    }

    pub fn new(seed: Seed, sim_options: tae_sim::SimOptions) -> TestEnv {
        let plugin = plugin();
        let sim = tae_sim::SimServer::start(sim_options).expect("start tae-sim");
        let dir = tempfile::tempdir().expect("temp dir");
        let db_path = dir.path().join("escola.db");
        let db = SchoolDb::open(&db_path).expect("open the school database");
        let keys = match seed {
            Seed::Demo => host_sim::seed_demo(&db),
            Seed::Bulk(n) => host_sim::seed_bulk(&db, n),
        }
        .expect("seed");
        db.configure_tae(
            &sim.base_url(),
            tae_sim::ADMIN_EMAIL,
            tae_sim::ADMIN_PASSWORD,
        )
        .expect("configure");
        let host = RmHost::new(db, DEMO_RM_USER);
        host.set_ui(
            UiScript::with_credentials(tae_sim::ADMIN_EMAIL, tae_sim::ADMIN_PASSWORD)
                .then_cpf(DEMO_RM_USER_CPF),
        );
        let portal = Portal::new(&sim.base_url()).expect("portal client");
        TestEnv {
            plugin,
            host,
            sim,
            portal,
            dir,
            db_path,
            keys,
        }
    }

    /// A second connection to the same database file.
    pub fn reopen_db(&self) -> SchoolDb {
        SchoolDb::open(&self.db_path).expect("reopen the school database")
    }

    /// `execute` with any `invoked_from`, option and params, in [`SESSION`].
    pub fn execute(&self, invoked_from: Value, option: &str, params: Value) -> (i32, Value) {
        self.plugin.execute(
            &self.host,
            &json!({"session": SESSION, "invoked_from": invoked_from, "option": option, "params": params}),
        )
    }

    /// The menu over every contract of the seeded period.
    pub fn menu() -> Value {
        json!({"kind": "menu", "filter": {"codcoligada": 1, "period": DEMO_PERIOD}})
    }

    /// The contract view over these keys.
    pub fn contract_view(keys: &[String]) -> Value {
        json!({"kind": "contract_view", "contract_keys": keys})
    }

    /// The attachment over these record ids.
    pub fn attachment(record_ids: &[String]) -> Value {
        json!({"kind": "attachment", "record_ids": record_ids})
    }

    /// Sends every contract of the period with the contract report.
    pub fn send_menu(&self) -> (i32, Value) {
        self.execute(Self::menu(), "send", send_report_params())
    }

    /// Checks every contract of the period.
    pub fn check_menu(&self) -> (i32, Value) {
        self.execute(Self::menu(), "check", json!({}))
    }

    /// Every integration record, oldest first.
    pub fn records(&self) -> Vec<Value> {
        self.host.db().all_records().expect("records")
    }

    /// The records of one contract.
    pub fn records_of(&self, key: &str) -> Vec<Value> {
        self.records()
            .into_iter()
            .filter(|r| r["record_key"] == key)
            .collect()
    }

    /// Contracts with more than one active record (must always be empty).
    pub fn contracts_with_two_active(&self) -> BTreeMap<String, usize> {
        active_per_contract(&self.records())
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .collect()
    }

    /// (key → status) of every contract in the host.
    pub fn contract_statuses(&self) -> BTreeMap<String, String> {
        self.host
            .db()
            .contract_statuses()
            .expect("statuses")
            .into_iter()
            .collect()
    }

    /// Signs (confirming the accounts first) every document of these contracts' active records.
    pub fn sign_in_portal(&self, keys: &[String]) {
        for key in keys {
            for r in self.records_of(key) {
                if ACTIVE_STATUSES.contains(&r["status"].as_str().unwrap_or("")) {
                    let id = r["document_id"].as_i64().expect("document id");
                    self.portal
                        .confirm_and_act_all(id)
                        .unwrap_or_else(|e| panic!("signing document {id} of {key}: {e}"));
                }
            }
        }
    }

    /// The TAE document id of a contract's active record.
    pub fn active_document(&self, key: &str) -> Option<i64> {
        self.records_of(key)
            .iter()
            .find(|r| ACTIVE_STATUSES.contains(&r["status"].as_str().unwrap_or("")))
            .and_then(|r| r["document_id"].as_i64())
    }
}

/// `send` params rendering the contract report.
pub fn send_report_params() -> Value {
    json!({"source": {"kind": "report", "report_code": CONTRACT_REPORT_CODE}})
}

/// (contract key → outcome) of an `execute` response.
pub fn outcomes(response: &Value) -> BTreeMap<String, String> {
    response["results"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| {
                    (
                        r["contract_key"].as_str().unwrap_or("").to_string(),
                        r["outcome"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Keys with the given outcome.
pub fn keys_with(response: &Value, outcome: &str) -> Vec<String> {
    outcomes(response)
        .into_iter()
        .filter(|(_, o)| o == outcome)
        .map(|(k, _)| k)
        .collect()
}

/// Active records per contract key.
pub fn active_per_contract(records: &[Value]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in records {
        if ACTIVE_STATUSES.contains(&r["status"].as_str().unwrap_or("")) {
            *m.entry(r["record_key"].as_str().unwrap_or("").to_string())
                .or_insert(0) += 1;
        }
    }
    m
}

/// The TAE status code a record status corresponds to (`TAE-API.md`).
pub fn tae_status_of(record_status: &str) -> Option<i64> {
    match record_status {
        "pendente" => Some(0),
        "assinado_parcialmente" => Some(1),
        "finalizado" => Some(2),
        "rejeitado" => Some(4),
        "rascunho" => Some(5),
        "cancelado" => Some(7),
        _ => None,
    }
}
