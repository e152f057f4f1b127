//! `SimState`, a cheap clone handle (an `Arc`) on the stand-in's store, used by the HTTP
//! handlers and by tests for direct inspection and control. The model lives in `model`, the
//! store in `store`, the JSON of answers in `render`; their public items are re-exported here.

use crate::faults::FaultConfig;
pub use crate::model::*;
pub use crate::render::{document_json, document_portal_json};
pub(crate) use crate::store::Inner;
use parking_lot::Mutex;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A cheap clone handle on the stand-in's state, for handlers and for tests.
#[derive(Clone)]
pub struct SimState {
    pub(crate) inner: Arc<Mutex<Inner>>,
    pub(crate) shutdown: tokio::sync::watch::Receiver<bool>,
    /// Requests held by a hang fault that have not answered yet (see [`SimState::hangs_in_progress`]).
    pub(crate) hanging: Arc<std::sync::atomic::AtomicU64>,
    /// Per-request arrival and answer times, when recording (see [`SimState::set_timeline`]).
    pub(crate) timeline: Arc<Timeline>,
}

/// One TAE request as the stand-in saw it: times in microseconds since the Unix epoch (the
/// system clock, so that another process on the same machine can line its own times up).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct TimelineEntry {
    /// `"<METHOD> <route template>"`, as in the counters.
    pub route: String,
    /// When the request reached the fault layer (headers read, before any latency).
    pub arrival_us: u64,
    /// When its answer was handed to the connection (after the latency and the handler).
    pub answer_us: u64,
    pub status: u16,
    /// The connection it came on (numbered from 1 in accept order).
    pub connection: u64,
}

/// What `GET /_sim/timeline` answers.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct TimelineDump {
    pub recording: bool,
    /// Connections accepted since the server started (TAE routes and `/_sim/` alike).
    pub connections: u64,
    pub entries: Vec<TimelineEntry>,
}

/// The request timeline: off by default; when off, a request costs one atomic load.
#[derive(Default)]
pub(crate) struct Timeline {
    pub(crate) on: std::sync::atomic::AtomicBool,
    pub(crate) connections: std::sync::atomic::AtomicU64,
    pub(crate) entries: Mutex<Vec<TimelineEntry>>,
}

/// Microseconds since the Unix epoch, on the system clock.
pub fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Counts one hung request until it has answered (dropped at the end of the request).
pub(crate) struct HangGuard(Arc<std::sync::atomic::AtomicU64>);

impl Drop for HangGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl std::fmt::Debug for SimState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimState").finish_non_exhaustive()
    }
}

impl SimState {
    pub(crate) fn new(
        seed: u64,
        faults: FaultConfig,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        SimState {
            inner: Arc::new(Mutex::new(Inner::new(seed, faults))),
            shutdown,
            hanging: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            timeline: Arc::new(Timeline::default()),
        }
    }

    /// Starts (clearing what was recorded) or stops recording the request timeline.
    pub fn set_timeline(&self, on: bool) {
        if on {
            self.timeline.entries.lock().clear();
        }
        self.timeline
            .on
            .store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether the timeline is being recorded.
    pub fn timeline_recording(&self) -> bool {
        self.timeline.on.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The recorded timeline (in answer order) and the connections accepted so far.
    pub fn timeline(&self) -> TimelineDump {
        TimelineDump {
            recording: self.timeline_recording(),
            connections: self
                .timeline
                .connections
                .load(std::sync::atomic::Ordering::SeqCst),
            entries: self.timeline.entries.lock().clone(),
        }
    }

    /// Counts one accepted connection and answers its number (from 1).
    pub(crate) fn connection_accepted(&self) -> u64 {
        self.timeline
            .connections
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1
    }

    pub(crate) fn record(&self, entry: TimelineEntry) {
        self.timeline.entries.lock().push(entry);
    }

    /// Every document (all companies), in the portal's JSON shape (see `docs/tae-sim.md`).
    pub fn documents(&self) -> Vec<Value> {
        let inner = self.inner.lock();
        inner
            .documents
            .values()
            .map(|d| document_portal_json(d, &company_name(&inner, d.company_id)))
            .collect()
    }

    /// One document in the portal's JSON shape.
    pub fn document(&self, id: u64) -> Option<Value> {
        let inner = self.inner.lock();
        inner
            .documents
            .get(&id)
            .map(|d| document_portal_json(d, &company_name(&inner, d.company_id)))
    }

    /// The status code of a document.
    pub fn document_status(&self, id: u64) -> Option<i64> {
        self.inner.lock().documents.get(&id).map(|d| d.status)
    }

    /// The stored bytes of a document's first file.
    pub fn document_file(&self, id: u64) -> Option<Vec<u8>> {
        let inner = self.inner.lock();
        let document = inner.documents.get(&id)?;
        document.files.first().map(|f| f.bytes.as_ref().clone())
    }

    /// Every user (passwords are never shown).
    pub fn users(&self) -> Vec<User> {
        self.inner.lock().users.clone()
    }

    pub fn user(&self, email: &str) -> Option<User> {
        self.inner.lock().user(email).cloned()
    }

    /// Creates a user (defaults: confirmed, all permissions, the seeded company).
    pub fn create_user(&self, new: NewUser) -> SimResult<User> {
        self.inner.lock().create_user(new)
    }

    /// Confirms a user's e-mail, optionally setting the password (as the portal's link would).
    pub fn confirm_user(&self, email: &str, password: Option<&str>) -> SimResult<User> {
        self.inner
            .lock()
            .confirm_user(email, password.map(str::to_string))
    }

    /// Replaces a user's permissions.
    pub fn set_permissions(&self, email: &str, permissions: Permissions) -> SimResult<User> {
        let mut inner = self.inner.lock();
        let user = inner
            .user_mut(email)
            .ok_or_else(|| SimError::bad_request("Usuário não encontrado."))?;
        user.permissions = permissions;
        Ok(user.clone())
    }

    /// Every e-mail "sent", oldest first.
    pub fn emails(&self) -> Vec<Email> {
        self.inner.lock().emails.clone()
    }

    /// Request counters: `"<METHOD> <route template>"` → count (TAE routes only).
    pub fn counters(&self) -> BTreeMap<String, u64> {
        self.inner.lock().counters.clone()
    }

    /// One counter, e.g. `counter("POST", api::UPLOAD)`.
    pub fn counter(&self, method: &str, template: &str) -> u64 {
        self.inner
            .lock()
            .counters
            .get(&format!("{method} {template}"))
            .copied()
            .unwrap_or(0)
    }

    /// The sum of every counter.
    pub fn total_requests(&self) -> u64 {
        self.inner.lock().counters.values().sum()
    }

    pub fn reset_counters(&self) {
        self.inner.lock().counters.clear();
    }

    pub fn faults(&self) -> FaultConfig {
        self.inner.lock().faults.clone()
    }

    /// Replaces the fault configuration (takes effect on the next request).
    pub fn set_faults(&self, faults: FaultConfig) {
        self.inner.lock().faults = faults;
    }

    pub fn features(&self) -> Features {
        self.inner.lock().features
    }

    /// Switches D5 (`documentos-empresa`) on or off.
    pub fn set_many_ids(&self, enabled: bool) {
        self.inner.lock().features.many_ids = enabled;
    }

    /// Requires (or not) a confirmed TAE account of `tipoAutenticacao` 1 recipients to act.
    pub fn set_strict_signers(&self, enabled: bool) {
        self.inner.lock().features.strict_signers = enabled;
    }

    /// What cancel (D8) does from now on; documents cancelled before keep what they became.
    pub fn set_cancel_model(&self, model: CancelModel) {
        self.inner.lock().features.cancel_model = model;
    }

    /// Lets D4 filter by `nomeDocumento` (off by default: TAE most likely cannot).
    pub fn set_search_by_name(&self, enabled: bool) {
        self.inner.lock().features.search_by_name = enabled;
    }

    /// Adds (or not) the stand-in's extra fields to D3, D5 and search records.
    pub fn set_sim_extras(&self, enabled: bool) {
        self.inner.lock().features.sim_extras = enabled;
    }

    /// Sets TAE's clock to the host's plus `secs` (negative: behind). Shifts every timestamp
    /// written from now on (`recCreatedOn`, `dataCriacao`, the token's `expirationDate`, …) and
    /// the token expiry check, consistently.
    pub fn set_clock_offset(&self, secs: i64) {
        self.inner.lock().clock_offset_secs = secs;
    }

    pub fn clock_offset(&self) -> i64 {
        self.inner.lock().clock_offset_secs
    }

    /// TAE's clock now (UTC, no zone): the host's plus the offset.
    pub fn now(&self) -> chrono::NaiveDateTime {
        self.inner.lock().now()
    }

    /// A recipient signs, validates or witnesses (by its `acao`); returns the document (portal
    /// JSON). Errors: 400 unknown document, 404 not a recipient, 409 not pending / already
    /// acted / not its turn in the workflow.
    pub fn act(&self, document_id: u64, email: &str) -> SimResult<Value> {
        let mut inner = self.inner.lock();
        let document = inner.act(document_id, email)?;
        Ok(document_portal_json(
            &document,
            &company_name(&inner, document.company_id),
        ))
    }

    /// `act` under the name of the role; the recipient's own `acao` decides what it does.
    pub fn sign(&self, document_id: u64, email: &str) -> SimResult<Value> {
        self.act(document_id, email)
    }

    pub fn validate(&self, document_id: u64, email: &str) -> SimResult<Value> {
        self.act(document_id, email)
    }

    pub fn witness(&self, document_id: u64, email: &str) -> SimResult<Value> {
        self.act(document_id, email)
    }

    /// A recipient rejects the document with a reason (status Rejeitado).
    pub fn reject(&self, document_id: u64, email: &str, reason: &str) -> SimResult<Value> {
        let mut inner = self.inner.lock();
        let document = inner.reject(document_id, email, reason)?;
        Ok(document_portal_json(
            &document,
            &company_name(&inner, document.company_id),
        ))
    }

    /// Makes every token issued so far expired (the next call with it gets 401).
    pub fn expire_tokens(&self) {
        self.inner.lock().expire_tokens();
    }

    /// Back to the seeded state: only the company and its admin, no documents, e-mails,
    /// tokens or counters, no faults, features on their defaults, the clock offset 0, the RNG
    /// re-seeded.
    pub fn reset(&self) {
        let mut inner = self.inner.lock();
        let seed = inner.seed;
        *inner = Inner::new(seed, FaultConfig::default());
    }

    /// Requests a hang fault is holding (or still processing after the hang): a test waits for
    /// 0 so that requests the client gave up on have landed before it audits the state.
    pub fn hangs_in_progress(&self) -> u64 {
        self.hanging.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub(crate) fn hang_started(&self) -> HangGuard {
        self.hanging
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        HangGuard(self.hanging.clone())
    }

    /// True once the server is shutting down (hangs end early).
    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}

fn company_name(inner: &Inner, id: u64) -> String {
    inner
        .companies
        .iter()
        .find(|c| c.id == id)
        .map(|c| c.name.clone())
        .unwrap_or_default()
}
