//! host-sim: a simulated TOTVS RM host for the tae-edu plugin.
//!
//! It loads the built plugin with libloading ([`Plugin`]), implements every host callback of
//! `docs/abi.md` ([`RmHost`]) over a SQLite school database ([`SchoolDb`]), renders the contract
//! report to PDF ([`render_contract_pdf`]), answers the RM screens from a script or the terminal
//! ([`UiScript`]), and walks the whole process end to end against the embedded tae-sim
//! ([`demo`]).

pub mod db;
pub mod demo;
pub mod host;
pub mod pdf;
pub mod plugin;
pub mod portal;
pub mod seed;
pub mod table;
pub mod ui;

pub use db::{
    Contract, FinancialResponsible, RmUser, SchoolDb, CONTRACT_DATA_SERVER, PROCESS_PERMISSION,
};
pub use host::{LogLine, ProgressEvent, ProgressSink, RmHost, TaeEduHost};
pub use pdf::{render_contract_pdf, ReportOptions, CONTRACT_REPORT_CODE};
pub use plugin::{locate_plugin, Export, Plugin};
pub use seed::{seed_bulk, seed_demo};
pub use ui::UiScript;

/// Installs rustls' ring crypto provider for this process (reqwest needs one); idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
