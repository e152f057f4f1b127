//! The safe entry points behind the C exports. `ffi` checks pointers, UTF-8, size, re-entry and
//! the host table, parses the request as JSON, and calls one of these; the value answered
//! becomes the response JSON (status 0), a `PluginError` becomes its status and error JSON.
//!
//! Request and response shapes: `docs/abi.md`.

use crate::error::PluginError;
use crate::host::Host;
use serde_json::Value;

/// `tae_edu_configure`: describe / validate / test the global parameters.
pub fn configure(host: &dyn Host, request: Value) -> Result<Value, PluginError> {
    let _ = (host, request);
    Err(PluginError::internal("configure: not implemented yet"))
}

/// `tae_edu_execute`: one option over many contracts (or integration records).
pub fn execute(host: &dyn Host, request: Value) -> Result<Value, PluginError> {
    let _ = (host, request);
    Err(PluginError::internal("execute: not implemented yet"))
}

/// `tae_edu_attachment_list`: the integration records, filtered and paged.
pub fn attachment_list(host: &dyn Host, request: Value) -> Result<Value, PluginError> {
    let _ = (host, request);
    Err(PluginError::internal("attachment_list: not implemented yet"))
}

/// `tae_edu_session_end`: drops one RM session's cached TAE token. Unknown ids are a no-op.
pub fn session_end(session_id: &str) {
    let _ = session_id;
}

/// `tae_edu_shutdown`: drops the runtime, the HTTP client and every cached token. Idempotent;
/// the next call recreates the state.
pub fn shutdown() {}
