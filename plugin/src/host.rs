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

    /// Like [`Host::call`] for a large binary answer (`file.read`): the boundary may keep the
    /// host's buffer until the export returns instead of copying it. By default, `call`'s bytes.
    fn call_kept(&self, method: &str, request: &[u8]) -> Result<HostBytes, HostCallError> {
        self.call(method, request).map(HostBytes::owned)
    }

    /// Passes one log line to the host (already redacted of secrets).
    fn log(&self, level: LogLevel, message: &str);

    /// Reports progress; answers `true` when the host asks to cancel.
    fn progress(&self, done: u32, total: u32, detail_json: &str) -> bool;
}

/// A host answer the plugin reads in place: the host's own buffer, kept until the export returns
/// (`file.read`), or bytes the plugin owns. Cloning shares the same bytes.
///
/// A kept buffer is released by the boundary on the calling thread before the export returns;
/// from then on every read answers `None` (a request body still alive somewhere then fails
/// instead of reading freed memory).
#[derive(Clone)]
pub struct HostBytes(Inner);

#[derive(Clone)]
enum Inner {
    Owned(bytes::Bytes),
    Kept(std::sync::Arc<dyn KeptView>),
}

/// The boundary's side of a kept host buffer (implemented in `ffi`, where the pointer lives).
pub trait KeptView: Send + Sync {
    /// Its length (fixed for its life).
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Runs `f` over the bytes while the buffer is alive; answers `false`, without calling `f`,
    /// once it was released. The buffer stays alive while `f` runs.
    fn read(&self, f: &mut dyn FnMut(&[u8])) -> bool;
}

impl HostBytes {
    /// Bytes the plugin owns.
    pub fn owned(bytes: impl Into<bytes::Bytes>) -> HostBytes {
        HostBytes(Inner::Owned(bytes.into()))
    }

    /// A view of a host buffer the boundary keeps.
    pub fn kept(view: std::sync::Arc<dyn KeptView>) -> HostBytes {
        HostBytes(Inner::Kept(view))
    }

    pub fn len(&self) -> usize {
        match &self.0 {
            Inner::Owned(b) => b.len(),
            Inner::Kept(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs `f` over the whole content; `None` when the host buffer was already released.
    pub fn with_slice<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        match &self.0 {
            Inner::Owned(b) => Some(f(b)),
            Inner::Kept(v) => {
                let mut f = Some(f);
                let mut out = None;
                v.read(&mut |bytes| {
                    if let Some(f) = f.take() {
                        out = Some(f(bytes));
                    }
                });
                out
            }
        }
    }

    /// The owned bytes, when the content is not a kept host buffer (shared, no copy).
    pub fn as_owned(&self) -> Option<&bytes::Bytes> {
        match &self.0 {
            Inner::Owned(b) => Some(b),
            Inner::Kept(_) => None,
        }
    }

    /// A copy of up to `max` bytes from `offset` (`None` once the host buffer was released).
    pub fn chunk(&self, offset: usize, max: usize) -> Option<bytes::Bytes> {
        self.with_slice(|all| {
            let start = offset.min(all.len());
            let end = start.saturating_add(max).min(all.len());
            match &self.0 {
                Inner::Owned(b) => b.slice(start..end),
                Inner::Kept(_) => bytes::Bytes::copy_from_slice(&all[start..end]),
            }
        })
    }
}

impl std::fmt::Debug for HostBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Inner::Owned(b) => write!(f, "HostBytes::Owned({} bytes)", b.len()),
            Inner::Kept(v) => write!(f, "HostBytes::Kept({} bytes)", v.len()),
        }
    }
}
