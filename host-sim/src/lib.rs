//! host-sim: a simulated TOTVS RM host for the tae-edu plugin.
//!
//! It is the reference host: what an integrator reads to learn how to host the plugin. It loads
//! the built plugin with libloading ([`Plugin`], [`plugin`]), serves every host method of
//! `docs/abi.md` ([`RmHost`]: the dispatch in [`host`], the C table and `extern "C"`
//! trampolines in [`host::c_abi`]) over a SQLite database shared by several host processes
//! ([`SchoolDb`], [`db`]: school data, global parameters with the password encrypted,
//! integration records, leases across processes), renders the contract report to PDF
//! ([`render_contract_pdf`]), answers the RM screens from a script or the terminal
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
    Contract, ContractRef, DbError, DbErrorKind, FinancialResponsible, LeaseOwner, RmUser,
    SchoolDb, CONTRACT_DATA_SERVER, PROCESS_PERMISSION,
};
pub use host::{LogLine, MethodError, ProgressEvent, ProgressSink, RmHost, TaeEduHost};
pub use pdf::{render_contract_pdf, ReportOptions, CONTRACT_REPORT_CODE};
pub use plugin::{locate_plugin, Export, Plugin};
pub use seed::{seed_bulk, seed_demo};
pub use ui::UiScript;

/// Installs rustls' ring crypto provider for this process (reqwest needs one); idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
