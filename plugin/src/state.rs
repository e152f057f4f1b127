//! The plugin's one state slot: the tokio runtime, the HTTP clients and the per-session token
//! cache. [`shutdown`] drops it (with a bounded wait for the runtime); the next call recreates it.

use crate::error::PluginError;
use crate::session::SessionEntry;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

pub struct State {
    runtime: tokio::runtime::Runtime,
    clients: Mutex<HashMap<(u64, Option<String>), reqwest::Client>>,
    /// RM session id → its TAE token and what was checked for it.
    pub sessions: Mutex<HashMap<String, SessionEntry>>,
    /// RM session id → the lock held while that session logs in.
    login_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

static SLOT: LazyLock<Mutex<Option<Arc<State>>>> = LazyLock::new(|| Mutex::new(None));

/// The current state, created on first use.
pub fn get() -> Result<Arc<State>, PluginError> {
    let mut slot = SLOT.lock();
    if let Some(s) = slot.as_ref() {
        return Ok(s.clone());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("tae-edu-worker")
        .enable_all()
        .build()
        .map_err(|e| PluginError::internal(format!("cannot start the tokio runtime: {e}")))?;
    let state = Arc::new(State {
        runtime,
        clients: Mutex::new(HashMap::new()),
        sessions: Mutex::new(HashMap::new()),
        login_locks: Mutex::new(HashMap::new()),
    });
    *slot = Some(state.clone());
    Ok(state)
}

/// The current state if it exists (does not create one).
pub fn existing() -> Option<Arc<State>> {
    SLOT.lock().clone()
}

/// Drops the state: every token is forgotten; the runtime stops (waiting at most 2 s for its
/// tasks) once the last in-flight call that holds it returns.
pub fn shutdown() {
    let taken = SLOT.lock().take();
    if let Some(state) = taken {
        for (_, entry) in state.sessions.lock().drain() {
            entry.forget_secrets();
        }
        state.clients.lock().clear();
        if let Ok(state) = Arc::try_unwrap(state) {
            state.runtime.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

impl State {
    /// Runs one future to completion on the calling thread (host callbacks stay on it).
    pub fn block_on<F: Future>(&self, fut: F) -> Result<F::Output, PluginError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(PluginError::internal(
                "the plugin was called from inside a tokio runtime; call it from a plain thread (e.g. spawn_blocking)",
            ));
        }
        Ok(self.runtime.block_on(fut))
    }

    /// The lock serialising one session's logins.
    pub fn session_login_lock(&self, session: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.login_locks.lock();
        // Forget locks nobody holds (ended sessions), so the map does not grow for ever.
        if locks.len() > 1024 {
            locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        locks
            .entry(session.to_string())
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(())))
            .clone()
    }

    /// The HTTP client for a timeout and CA file (shared by every call with that configuration).
    pub fn http(
        &self,
        timeout_secs: u64,
        ca_file: Option<&str>,
    ) -> Result<reqwest::Client, PluginError> {
        let key = (timeout_secs, ca_file.map(str::to_string));
        let mut clients = self.clients.lock();
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        // reqwest needs a runtime context to build its connector.
        let _guard = self.runtime.enter();
        let client = crate::tae::client::build_http(Duration::from_secs(timeout_secs), ca_file)
            .map_err(|e| {
                crate::config::invalid_config({
                    let mut m = serde_json::Map::new();
                    m.insert(
                        "ca_file".into(),
                        serde_json::Value::String(
                            "Não foi possível carregar os certificados do arquivo informado."
                                .into(),
                        ),
                    );
                    m
                })
                .with_detail(e.detail)
            })?;
        clients.insert(key, client.clone());
        Ok(client)
    }
}
