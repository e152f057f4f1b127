//! The host's services, as the safe core sees them.
//!
//! `ffi` wraps the C callback table in a type that implements [`Host`]; tests use
//! [`MockHost`]-style implementations. Every method is called only on the thread that entered
//! the plugin (the whole run is one future driven by `block_on` on that thread; see
//! `docs/abi.md`, "Threading").
//!
//! Method names and JSON shapes are specified in `docs/abi.md`, "Host methods".

/// Log levels passed to the host's `log` callback (`int32_t`).
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

/// A host method failed: its non-zero status and the bytes it answered (usually a JSON error).
#[derive(Debug, Clone)]
pub struct HostCallError {
    pub method: String,
    pub status: i32,
    pub message: String,
}

impl std::fmt::Display for HostCallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "host method {} failed with status {}: {}",
            self.method, self.status, self.message
        )
    }
}

impl std::error::Error for HostCallError {}

/// The host's callbacks. Not `Send`/`Sync` on purpose: it lives on the calling thread.
pub trait Host {
    /// Calls a host method with a JSON request; answers the response bytes (JSON, or raw bytes
    /// for the binary methods `file.read` and `report.render`).
    fn call(&self, method: &str, request: &[u8]) -> Result<Vec<u8>, HostCallError>;

    /// Passes one log line to the host (already redacted of secrets).
    fn log(&self, level: LogLevel, message: &str);

    /// Reports progress; answers `true` when the host asks to cancel.
    fn progress(&self, done: u32, total: u32, detail_json: &str) -> bool;
}
