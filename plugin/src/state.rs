//! The plugin's state: the one slot shared by every call (the per-session token cache and the
//! login locks; [`shutdown`] drops it, the next call recreates it) and each call's own engine
//! (a current-thread tokio runtime driven by the calling thread, with its HTTP clients).
//!
//! Why a runtime per call, on the calling thread: host callbacks must run on the thread that
//! entered the plugin, so the run is one future `block_on`'d there. With a runtime of worker
//! threads, each request crossed between the calling thread and the workers about four times
//! (the connection tasks and the I/O driver ran on the workers), and those crossings were most
//! of the plugin's CPU. Now every task, timer and socket of a call lives on the calling thread.
//! A connection belongs to the runtime that opened it, so each engine has its own clients; the
//! engine ends (connections closed, tasks dropped) when the export returns ([`end_call`]).
//! The consequence: while a host callback runs, no network I/O of the call progresses (see
//! docs/abi.md, "Threading").

use crate::error::PluginError;
use crate::session::SessionEntry;
use parking_lot::Mutex;
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::rc::Rc;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

pub struct State {
    /// RM session id → its TAE token and what was checked for it.
    pub sessions: Mutex<HashMap<String, SessionEntry>>,
    /// RM session id → the lock held while that session logs in.
    login_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

static SLOT: LazyLock<Mutex<Option<Arc<State>>>> = LazyLock::new(|| Mutex::new(None));

/// One call's runtime and the HTTP clients bound to it (by timeout and CA file).
struct Engine {
    runtime: Rc<tokio::runtime::Runtime>,
    clients: HashMap<(u64, Option<String>), reqwest::Client>,
}

thread_local! {
    /// The engine of the call the thread is in (created on first use, ended by [`end_call`]).
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
}

/// The current state, created on first use.
pub fn get() -> Result<Arc<State>, PluginError> {
    let mut slot = SLOT.lock();
    if let Some(s) = slot.as_ref() {
        return Ok(s.clone());
    }
    let state = Arc::new(State {
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

/// Drops the state: every token is forgotten. Calls in flight keep their own engines (and the
/// state they hold) until they return.
pub fn shutdown() {
    let taken = SLOT.lock().take();
    if let Some(state) = taken {
        for (_, entry) in state.sessions.lock().drain() {
            entry.forget_secrets();
        }
    }
}

/// Ends the calling thread's engine, if it has one: its tasks are dropped and its connections
/// closed, on this thread, without waiting for the blocking pool (a DNS lookup in flight ends
/// on its own). The exports call it before they return.
pub fn end_call() {
    let engine = ENGINE
        .try_with(|slot| slot.try_borrow_mut().ok().and_then(|mut e| e.take()))
        .ok()
        .flatten();
    if let Some(engine) = engine {
        // The clients first: their pools hold connection handles of this runtime.
        drop(engine.clients);
        match Rc::try_unwrap(engine.runtime) {
            Ok(runtime) => runtime.shutdown_background(),
            // Still driven further up this thread's stack (cannot happen: end_call runs after
            // the call's block_on returned); it then ends when that reference drops.
            Err(runtime) => drop(runtime),
        }
    }
}

/// Runs `f` with the calling thread's engine, creating it first.
fn with_engine<R>(f: impl FnOnce(&mut Engine) -> R) -> Result<R, PluginError> {
    ENGINE.with(|slot| {
        let mut slot = slot
            .try_borrow_mut()
            .map_err(|_| PluginError::internal("the call's runtime is already in use"))?;
        if slot.is_none() {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| {
                    PluginError::internal(format!("cannot start the tokio runtime: {e}"))
                })?;
            *slot = Some(Engine {
                runtime: Rc::new(runtime),
                clients: HashMap::new(),
            });
        }
        Ok(f(slot.as_mut().expect("created above")))
    })
}

impl State {
    /// Runs one future to completion on the calling thread, on the call's current-thread
    /// runtime: every task, timer and socket of the call is driven here (host callbacks stay on
    /// this thread too).
    pub fn block_on<F: Future>(&self, fut: F) -> Result<F::Output, PluginError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(PluginError::internal(
                "the plugin was called from inside a tokio runtime; call it from a plain thread (e.g. spawn_blocking)",
            ));
        }
        let runtime = with_engine(|e| e.runtime.clone())?;
        Ok(runtime.block_on(fut))
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

    /// The call's HTTP client for a timeout and CA file (shared by every request of the call
    /// with that configuration; its connections live as long as the call).
    pub fn http(
        &self,
        timeout_secs: u64,
        ca_file: Option<&str>,
    ) -> Result<reqwest::Client, PluginError> {
        let key = (timeout_secs, ca_file.map(str::to_string));
        with_engine(|engine| {
            if let Some(c) = engine.clients.get(&key) {
                return Ok(c.clone());
            }
            // reqwest needs a runtime context to build its connector.
            let _guard = engine.runtime.enter();
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
            engine.clients.insert(key, client.clone());
            Ok(client)
        })?
    }
}
