//! The safe entry points behind the C exports. `ffi` checks pointers, UTF-8, size, re-entry and
//! the host table, parses the request as JSON, and calls one of these; the [`Answer`] becomes
//! the response JSON (status 0), a `PluginError` becomes its status and error JSON.
//!
//! Request and response shapes: `docs/abi.md`.

use crate::config;
use crate::error::PluginError;
use crate::host::Host;
use crate::hostcalls::HostApi;
use serde::Deserialize;
use serde_json::{json, Value};

/// What an entry point answers on success.
#[derive(Debug)]
pub enum Answer {
    /// A JSON value: `ffi` redacts every string of it and serialises it.
    Value(Value),
    /// The response already serialised, every string redacted by its producer (execute's
    /// answer grows with the batch: it is written straight from the typed outcomes, never held
    /// as a JSON tree).
    Json(Vec<u8>),
}

impl From<Value> for Answer {
    fn from(value: Value) -> Answer {
        Answer::Value(value)
    }
}

/// A `configure` request (`docs/abi.md`, "configure").
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
enum ConfigureRequest {
    Describe {
        /// Accepted and ignored (a tab may send its values with every action).
        #[serde(default, rename = "values")]
        _values: Option<serde::de::IgnoredAny>,
    },
    Validate {
        #[serde(default)]
        values: Value,
    },
    Test {
        #[serde(default)]
        values: Option<Value>,
    },
}

/// `tae_edu_configure`: describe / validate / test the global parameters.
pub fn configure(host: &dyn Host, request: Value) -> Result<Value, PluginError> {
    if !request.is_object() {
        return Err(PluginError::invalid_request(
            "configure request must be a JSON object",
        ));
    }
    let request: ConfigureRequest = serde_json::from_value(request).map_err(|e| {
        PluginError::invalid_request(format!(
            "configure request: {e} (action must be \"describe\", \"validate\" or \"test\")"
        ))
    })?;
    match request {
        ConfigureRequest::Describe { .. } => Ok(config::describe()),
        ConfigureRequest::Validate { values } => {
            let params = config::parse(&values, true).map_err(config::invalid_config)?;
            Ok(json!({"ok": true, "values": params}))
        }
        ConfigureRequest::Test { values } => {
            let params = match values {
                Some(v) => config::parse(&v, true),
                None => config::parse(&HostApi::new(host).params()?, false),
            }
            .map_err(config::invalid_config)?;
            let report = config::connection::test_connection(host, params)?;
            serde_json::to_value(report).map_err(|e| PluginError::internal(e.to_string()))
        }
    }
}

/// `tae_edu_execute`: one option over many contracts (or integration records). The response
/// bytes are written straight from the typed outcomes.
pub fn execute_answer(host: &dyn Host, request: Value) -> Result<Answer, PluginError> {
    // The request's own shape is checked before any host call or screen.
    let request = crate::process::ExecuteRequest::parse(request)?;
    let response = crate::process::execute(host, request)?;
    Ok(Answer::Json(response.into_json()))
}

/// [`execute_answer`] with the answer read back as a JSON value (for Rust callers and tests:
/// the same bytes the C export answers).
pub fn execute(host: &dyn Host, request: Value) -> Result<Value, PluginError> {
    match execute_answer(host, request)? {
        Answer::Value(value) => Ok(value),
        Answer::Json(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| PluginError::internal(format!("execute response: {e}"))),
    }
}

/// `tae_edu_attachment_list`: the integration records, filtered and paged.
pub fn attachment_list(host: &dyn Host, request: Value) -> Result<Value, PluginError> {
    crate::attachments::list(host, request)
}

/// `tae_edu_session_end`: drops one RM session's cached TAE token. Unknown ids are a no-op.
pub fn session_end(session_id: &str) {
    crate::session::end_session(session_id);
}

/// `tae_edu_shutdown`: drops every cached token (runtimes and HTTP clients end with each
/// call). Idempotent; the next call recreates the state.
pub fn shutdown() {
    crate::state::shutdown();
}
