//! tae-sim: a stand-in for the TOTVS Assinatura Eletrônica (TAE) REST API, serving the paths
//! and JSON shapes of `TAE-API.md` on loopback, with the portal's side under `/_sim/` (confirm
//! e-mail, sign, reject, e-mails sent, counters, faults, reset) and deterministic fault
//! injection. See `docs/tae-sim.md`.
//!
//! ```no_run
//! let sim = tae_sim::SimServer::start(tae_sim::SimOptions::default()).unwrap();
//! println!("TAE at {}", sim.base_url());
//! sim.shutdown();
//! ```

pub mod api;
pub mod faults;
mod hostile;
mod model;
mod pdf;
mod portal;
mod render;
mod routes;
mod server;
pub mod state;
mod store;
mod timer;
pub use timer::use_tokio_timer;

pub use faults::{DropMode, FaultConfig, Hostile, HostileConfig, Latency, RateLimit, RateMap};
pub use server::{SimOptions, SimServer};
pub use state::{
    unix_micros, CancelModel, Email, Features, NewUser, Permissions, RecipientState, SimError,
    SimState, TimelineDump, TimelineEntry, User, ADMIN_EMAIL, ADMIN_PASSWORD, COMPANY_NAME,
};

/// A small valid one-page PDF with the given lines of text (Latin-1), for tests and demos.
pub fn sample_pdf(title: &str, lines: &[&str]) -> Vec<u8> {
    let lines: Vec<pdf::ManifestLine> = lines
        .iter()
        .map(|l| pdf::ManifestLine(l.to_string()))
        .collect();
    pdf::manifest_only(title, &lines)
}
