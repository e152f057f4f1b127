//! The C ABI boundary: the `tae_edu_*` exports and the host callback table (`TaeEduHost`).
//!
//! This is the only module with `unsafe`, raw pointers and `extern "C"`. Every export's whole body
//! sits inside `ffi_boundary!`, so a panic becomes [`Status::Panic`] plus an error JSON, never
//! an unwind into the host. Raw pointers become references or slices only through the checked
//! helpers below (`request_bytes`, [`FfiHost::from_raw`], `ResponseSlot`). The JSON exports
//! then hand a parsed request and a [`FfiHost`] (the table wrapped as a safe [`Host`]) to
//! [`crate::api`].
//!
//! Rules enforced here (each has a test in `plugin/tests/ffi_*.rs` or below):
//! - no panic crosses the boundary; the re-entry flag is reset even after a panic;
//! - null pointers, invalid UTF-8, non-JSON and oversized requests are refused with a status;
//!   a null `out`/`out_len` is refused with NULL_ARGUMENT before anything runs, and each non-null
//!   out pointer is set to NULL/0 first, on every path;
//! - a call into the plugin from inside one of its host callbacks (or from inside a tokio
//!   runtime) is refused with [`Status::Reentrant`];
//! - a host table with another `abi_version`, a too-small `struct_size` or a null required
//!   callback is refused with [`Status::InvalidHostTable`];
//! - host callbacks are invoked only on the thread that called the export;
//! - only integers, pointers and lengths cross: no `bool`, no struct by value.
//!
//! The header `include/tae_edu.h` is generated from this file by cbindgen (see
//! `plugin/cbindgen.toml` and `scripts/check-header.sh`); the `///` docs below become its docs.

#![deny(unsafe_op_in_unsafe_fn)]

use crate::api;
use crate::error::{PluginError, Status};
use crate::host::{Host, HostBytes, HostCallError, KeptView, LogLevel};
use crate::logging::{self, HostSink};
use crate::redact;
use serde_json::Value;
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;
use std::thread::{self, ThreadId};
use std::time::Instant;

/// The ABI version this library implements (also answered by `tae_edu_abi_version`).
pub const ABI_VERSION: u32 = 1;

/// Requests longer than this are refused with `REQUEST_TOO_LARGE` (13).
pub const MAX_REQUEST_BYTES: usize = 8 * 1024 * 1024;

/// The host's callback table, passed to every JSON export.
///
/// A host built for ABI version 1 sets `abi_version = 1` and `struct_size = sizeof(TaeEduHost)`.
/// Fields are only ever appended in later versions, so a larger `struct_size` is accepted.
/// `call` and `free_buffer` are required; `log` and `progress` may be NULL (log lines are then
/// discarded; a batch then cannot be cancelled). The plugin reads the table only during the
/// export it was passed to and never keeps the pointer.
///
/// Threading: every callback is invoked only on the thread that called the export, and only
/// while that export runs. A callback must not call back into any `tae_edu_*` export (refused
/// with `REENTRANT_CALL`), and must not unwind (C++ exception, Rust panic) into the plugin.
#[repr(C)]
pub struct TaeEduHost {
    /// Must be 1 (the value `tae_edu_abi_version()` returns).
    pub abi_version: u32,
    /// Must be at least `sizeof(TaeEduHost)` of this header.
    pub struct_size: u32,
    /// Opaque host pointer, passed back as the first argument of every callback.
    pub ctx: *mut c_void,
    /// Calls a host service (required). `method` is its UTF-8 name (not NUL-terminated), e.g.
    /// `params.get`; `request` holds the JSON request (see docs/abi.md, "Host methods").
    /// Returns 0 on success after setting `*out`/`*out_len` to a host-owned buffer with the
    /// response (JSON, or raw bytes for `file.read` and `report.render`). Returns non-zero on
    /// failure; `*out` may then hold a JSON error `{"message": "..."}` or stay NULL. The plugin
    /// copies the buffer and releases it at once with `free_buffer`, except the successful
    /// answer of `file.read`, which it reads in place and releases later, still on the calling
    /// thread and before the export returns: the host must keep that buffer valid and unchanged
    /// until its `free_buffer`.
    pub call: Option<
        unsafe extern "C" fn(
            ctx: *mut c_void,
            method: *const u8,
            method_len: usize,
            request: *const u8,
            request_len: usize,
            out: *mut *mut u8,
            out_len: *mut usize,
        ) -> i32,
    >,
    /// Frees a buffer returned by `call` (required). Called with the same pointer and length,
    /// exactly once, on the calling thread, before the export returns (at once after `call`,
    /// or, for `file.read`'s answer, when the export ends).
    pub free_buffer: Option<unsafe extern "C" fn(ctx: *mut c_void, buf: *mut u8, len: usize)>,
    /// Receives one log line, already stripped of secrets (optional). `level`: 1 error, 2 warn,
    /// 3 info, 4 debug, 5 trace. `msg` is UTF-8, not NUL-terminated, valid only during the call.
    pub log:
        Option<unsafe extern "C" fn(ctx: *mut c_void, level: i32, msg: *const u8, msg_len: usize)>,
    /// Progress of a batch (optional): `done` of `total` contracts and a JSON detail of the
    /// last one (`{"contract_key", "outcome", "message"}`), valid only during the call. Return
    /// non-zero to ask the plugin to cancel the contracts not yet started.
    pub progress: Option<
        unsafe extern "C" fn(
            ctx: *mut c_void,
            done: u32,
            total: u32,
            detail: *const u8,
            detail_len: usize,
        ) -> i32,
    >,
}

type CallFn = unsafe extern "C" fn(
    *mut c_void,
    *const u8,
    usize,
    *const u8,
    usize,
    *mut *mut u8,
    *mut usize,
) -> i32;
type FreeBufferFn = unsafe extern "C" fn(*mut c_void, *mut u8, usize);
type LogFn = unsafe extern "C" fn(*mut c_void, i32, *const u8, usize);
type ProgressFn = unsafe extern "C" fn(*mut c_void, u32, u32, *const u8, usize) -> i32;

// ---------------------------------------------------------------------------------------------
// The panic boundary
// ---------------------------------------------------------------------------------------------

/// Wraps the whole body of an export.
///
/// - `ffi_boundary!(json(out, out_len) { body })`: `body` evaluates to
///   `Result<api::Answer, PluginError>`; the answer (status 0) or the error JSON (its status) is written
///   to the response buffer; a panic becomes status 6 with a PANIC error JSON.
/// - `ffi_boundary!(status { body })`: `body` evaluates to `Result<(), PluginError>`; answers
///   0 or the error's status; a panic answers 6.
/// - `ffi_boundary!(or(default) { body })`: `body` evaluates to the return value; a panic
///   answers `default`.
macro_rules! ffi_boundary {
    (json($export:literal, $out:ident, $out_len:ident) $body:block) => {{
        // SAFETY: the export's contract: `out`/`out_len` are each null or valid for writes.
        match unsafe { ResponseSlot::new($out, $out_len) } {
            // A null out pointer: nothing is run (nobody could read the answer).
            None => Status::NullArgument as i32,
            Some(slot) => {
                let result: Result<api::Answer, PluginError> =
                    match catch_unwind(AssertUnwindSafe(|| -> Result<api::Answer, PluginError> {
                        $body
                    })) {
                        Ok(result) => result,
                        Err(payload) => Err(panic_error($export, payload)),
                    };
                match catch_unwind(AssertUnwindSafe(move || slot.respond(result))) {
                    Ok(status) => status,
                    Err(_) => Status::Panic as i32,
                }
            }
        }
    }};
    (status($export:literal) $body:block) => {{
        match catch_unwind(AssertUnwindSafe(|| -> Result<(), PluginError> { $body })) {
            Ok(Ok(())) => Status::Ok as i32,
            Ok(Err(error)) => error.status as i32,
            Err(payload) => {
                let error = panic_error($export, payload);
                let _ = catch_unwind(AssertUnwindSafe(|| log::error!("{}", error.detail)));
                Status::Panic as i32
            }
        }
    }};
    (or($default:expr) $body:block) => {{
        match catch_unwind(AssertUnwindSafe(|| $body)) {
            Ok(value) => value,
            Err(_) => $default,
        }
    }};
}

fn panic_error(export: &str, payload: Box<dyn Any + Send>) -> PluginError {
    let what = if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "(non-string panic payload)".to_string()
    };
    PluginError::new(
        Status::Panic,
        "Erro interno inesperado no plugin de integração com o TOTVS Assinatura Eletrônica. \
         A operação foi interrompida; tente novamente e, se o erro persistir, contate o suporte.",
        format!("panic caught at the boundary of {export}: {what}"),
    )
}

/// Where a JSON export writes its response: the host's `out`/`out_len`, both non-null.
struct ResponseSlot {
    out: *mut *mut u8,
    out_len: *mut usize,
}

impl ResponseSlot {
    /// The one rule for out pointers (as rustls-ffi): each non-null one is set to NULL/0 at
    /// once, so it is defined on every path; when either is null the export is refused with
    /// NULL_ARGUMENT before anything runs (`None`: no request is read, no host callback is made,
    /// no batch runs whose results nobody could read).
    ///
    /// # Safety
    /// `out` and `out_len` are each null or valid for a write of their pointee.
    unsafe fn new(out: *mut *mut u8, out_len: *mut usize) -> Option<ResponseSlot> {
        if !out.is_null() {
            // SAFETY: non-null and valid for writes (caller's contract).
            unsafe { out.write(std::ptr::null_mut()) };
        }
        if !out_len.is_null() {
            // SAFETY: non-null and valid for writes (caller's contract).
            unsafe { out_len.write(0) };
        }
        if out.is_null() || out_len.is_null() {
            return None;
        }
        Some(ResponseSlot { out, out_len })
    }

    /// Writes the response (redacted of every registered secret) and answers the status.
    fn respond(self, result: Result<api::Answer, PluginError>) -> i32 {
        let (status, answer) = match result {
            Ok(answer) => (Status::Ok, answer),
            Err(error) => (error.status, api::Answer::Value(error.to_json())),
        };
        let bytes = match answer {
            // Written redacted by its producer (execute's typed response).
            api::Answer::Json(bytes) => bytes,
            api::Answer::Value(mut body) => {
                redact_value(&mut body);
                serde_json::to_vec(&body).unwrap_or_else(|_| {
                    br#"{"ok":false,"error":{"code":"INTERNAL","status":99}}"#.to_vec()
                })
            }
        };
        let (ptr, len) = into_raw_buffer(bytes);
        // SAFETY: both non-null (checked in `new`) and valid for writes (caller's contract).
        unsafe {
            self.out.write(ptr);
            self.out_len.write(len);
        }
        status as i32
    }
}

/// Replaces every registered secret inside every string (and key) of a JSON value, so a
/// password or token can never leave through a response.
pub fn redact_value(value: &mut Value) {
    match value {
        Value::String(text) => {
            let masked = redact::redact(text);
            if masked != *text {
                *text = masked;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_value),
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let masked = redact::redact(&key);
                if masked != key {
                    if let Some(inner) = map.remove(&key) {
                        map.insert(masked, inner);
                    }
                }
            }
            map.values_mut().for_each(redact_value);
        }
        _ => {}
    }
}

/// A plugin-owned buffer handed to the host; released only by `tae_edu_buffer_free`.
fn into_raw_buffer(bytes: Vec<u8>) -> (*mut u8, usize) {
    let boxed: Box<[u8]> = bytes.into_boxed_slice();
    let len = boxed.len();
    (Box::into_raw(boxed).cast::<u8>(), len)
}

// ---------------------------------------------------------------------------------------------
// Re-entry
// ---------------------------------------------------------------------------------------------

thread_local! {
    static INSIDE_EXPORT: Cell<bool> = const { Cell::new(false) };
}

/// Marks the calling thread as inside an export; the mark is removed on drop, also when the
/// export panics (the guard lives inside the `catch_unwind`).
struct ExportGuard(());

impl ExportGuard {
    fn enter(export: &str) -> Result<ExportGuard, PluginError> {
        let reentrant = |detail: String| {
            PluginError::new(
                Status::Reentrant,
                "O plugin de integração com o TOTVS Assinatura Eletrônica foi chamado novamente \
                 enquanto ainda processava uma operação. Aguarde o término da operação em andamento.",
                detail,
            )
        };
        if INSIDE_EXPORT.with(Cell::get) {
            return Err(reentrant(format!(
                "{export} called from inside a host callback of another tae_edu_* export on the same thread"
            )));
        }
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(reentrant(format!(
                "{export} called from inside a tokio runtime; call the plugin from a plain thread \
                 (e.g. spawn_blocking)"
            )));
        }
        INSIDE_EXPORT.with(|inside| inside.set(true));
        Ok(ExportGuard(()))
    }
}

impl Drop for ExportGuard {
    fn drop(&mut self) {
        let _ = INSIDE_EXPORT.try_with(|inside| inside.set(false));
    }
}

/// Ends the call's engine (`state::end_call`) on drop, on the calling thread.
struct CallEngine;

impl Drop for CallEngine {
    fn drop(&mut self) {
        crate::state::end_call();
    }
}

// ---------------------------------------------------------------------------------------------
// Checked pointer helpers
// ---------------------------------------------------------------------------------------------

fn null_argument(name: &str) -> PluginError {
    PluginError::new(
        Status::NullArgument,
        "O sistema hospedeiro chamou o plugin de integração com o TOTVS Assinatura Eletrônica \
         sem um argumento obrigatório.",
        format!("argument `{name}` is NULL"),
    )
}

/// Turns a pointer + length from the host into a byte slice: null → NULL_ARGUMENT, longer than
/// [`MAX_REQUEST_BYTES`] → REQUEST_TOO_LARGE.
///
/// # Safety
/// `ptr` is null or valid for reads of `len` bytes for the lifetime `'a`.
unsafe fn request_bytes<'a>(
    name: &str,
    ptr: *const u8,
    len: usize,
) -> Result<&'a [u8], PluginError> {
    if ptr.is_null() {
        return Err(null_argument(name));
    }
    if len > MAX_REQUEST_BYTES {
        return Err(PluginError::new(
            Status::RequestTooLarge,
            "A requisição enviada ao plugin de integração com o TOTVS Assinatura Eletrônica é \
             grande demais (limite de 8 MiB).",
            format!("`{name}` is {len} bytes; the limit is {MAX_REQUEST_BYTES} bytes"),
        ));
    }
    // SAFETY: non-null, valid for `len` bytes (caller's contract), len <= 8 MiB < isize::MAX.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

fn utf8<'a>(name: &str, bytes: &'a [u8]) -> Result<&'a str, PluginError> {
    std::str::from_utf8(bytes).map_err(|error| {
        PluginError::new(
            Status::InvalidUtf8,
            "A requisição enviada ao plugin de integração com o TOTVS Assinatura Eletrônica \
             contém texto com codificação inválida (esperado UTF-8).",
            format!(
                "`{name}` is not valid UTF-8 (first invalid byte at offset {})",
                error.valid_up_to()
            ),
        )
    })
}

fn parse_request(text: &str) -> Result<Value, PluginError> {
    let value: Value = serde_json::from_str(text).map_err(|error| {
        PluginError::invalid_request(format!("the request is not valid JSON: {error}"))
    })?;
    if !value.is_object() {
        return Err(PluginError::invalid_request(
            "the request must be a JSON object",
        ));
    }
    Ok(value)
}

// ---------------------------------------------------------------------------------------------
// The host table as a safe `Host`
// ---------------------------------------------------------------------------------------------

/// The host's callback table, validated and copied, usable only on the thread that called the
/// export. Implements [`Host`] for the safe core. Not `Send`/`Sync` (it holds raw pointers).
pub struct FfiHost {
    ctx: *mut c_void,
    call: CallFn,
    free_buffer: FreeBufferFn,
    log: Option<LogFn>,
    progress: Option<ProgressFn>,
    thread: ThreadId,
    /// Host buffers kept for the export (`call_kept`): released in `Drop`, on this thread.
    kept: RefCell<Vec<KeptHostBuffer>>,
}

/// A host buffer kept until the export returns, and the view that reads it.
struct KeptHostBuffer {
    view: Arc<KeptBuffer>,
    ptr: *mut u8,
    len: usize,
}

/// The guard of a kept host buffer: its address while it is alive, `None` once released.
/// Every read takes the lock, so a reader (a request body that hyper drops late, on any thread)
/// can never see the buffer after `free_buffer`.
struct KeptBuffer {
    span: parking_lot::Mutex<Option<(usize, usize)>>,
    len: usize,
}

impl KeptView for KeptBuffer {
    fn len(&self) -> usize {
        self.len
    }

    fn read(&self, f: &mut dyn FnMut(&[u8])) -> bool {
        let span = self.span.lock();
        let Some((addr, len)) = *span else {
            return false;
        };
        // SAFETY: the span is Some only while the host buffer is alive: `release_kept` sets it
        // to None under this same lock before calling `free_buffer`, and the lock is held for
        // the whole of `f`. The host's contract keeps a buffer it answered valid (and unchanged)
        // until the plugin frees it; len <= isize::MAX was checked when it was kept.
        let bytes = unsafe { std::slice::from_raw_parts(addr as *const u8, len) };
        f(bytes);
        true
    }
}

impl FfiHost {
    /// Releases every kept host buffer: each view is closed first (under its lock), then the
    /// buffer goes back to the host. On the calling thread, before the export returns.
    fn release_kept(&self) {
        let kept = std::mem::take(&mut *self.kept.borrow_mut());
        for k in kept {
            *k.view.span.lock() = None;
            // SAFETY: a buffer this host's `call` answered, not yet freed (taken out of the list
            // once); no reader can reach it any more (its view is closed).
            unsafe { (self.free_buffer)(self.ctx, k.ptr, k.len) };
        }
    }
}

impl Drop for FfiHost {
    fn drop(&mut self) {
        if self.on_calling_thread() {
            self.release_kept();
        }
    }
}

impl FfiHost {
    /// Validates and copies the host table: null → NULL_ARGUMENT; `abi_version != 1`,
    /// `struct_size < size_of::<TaeEduHost>()` or a null `call`/`free_buffer` →
    /// INVALID_HOST_TABLE. The calling thread becomes the only thread allowed to call the host.
    ///
    /// # Safety
    /// `host` is null or points to a readable `TaeEduHost` prefix of at least 8 bytes, and to
    /// `struct_size` readable bytes; its callbacks follow the contract of [`TaeEduHost`] and stay
    /// valid while this value lives.
    pub unsafe fn from_raw(host: *const TaeEduHost) -> Result<FfiHost, PluginError> {
        if host.is_null() {
            return Err(null_argument("host"));
        }
        let invalid = |detail: String| {
            PluginError::new(
                Status::InvalidHostTable,
                "O sistema hospedeiro (RM) usa uma versão incompatível do plugin de integração com \
                 o TOTVS Assinatura Eletrônica. Atualize o plugin ou o sistema.",
                detail,
            )
        };
        // Read only the two leading fields before trusting struct_size.
        // SAFETY: non-null; the host guarantees at least the 8-byte prefix is readable.
        let (abi_version, struct_size) = unsafe {
            (
                std::ptr::addr_of!((*host).abi_version).read_unaligned(),
                std::ptr::addr_of!((*host).struct_size).read_unaligned(),
            )
        };
        if abi_version != ABI_VERSION {
            return Err(invalid(format!(
                "host table abi_version is {abi_version}; this library implements {ABI_VERSION}"
            )));
        }
        let needed = std::mem::size_of::<TaeEduHost>();
        if (struct_size as usize) < needed {
            return Err(invalid(format!(
                "host table struct_size is {struct_size}; at least {needed} bytes are needed"
            )));
        }
        // SAFETY: struct_size >= size_of::<TaeEduHost>() bytes are readable (host's contract).
        let table = unsafe { std::ptr::read_unaligned(host) };
        let call = table
            .call
            .ok_or_else(|| invalid("host table callback `call` is NULL".to_string()))?;
        let free_buffer = table
            .free_buffer
            .ok_or_else(|| invalid("host table callback `free_buffer` is NULL".to_string()))?;
        Ok(FfiHost {
            ctx: table.ctx,
            call,
            free_buffer,
            log: table.log,
            progress: table.progress,
            thread: thread::current().id(),
            kept: RefCell::new(Vec::new()),
        })
    }

    fn on_calling_thread(&self) -> bool {
        thread::current().id() == self.thread
    }

    /// The calling thread's log sink: the host's `log` callback (or a sink that discards).
    fn log_sink(&self) -> HostSink {
        let (ctx, log, thread) = (self.ctx, self.log, self.thread);
        Rc::new(move |level: LogLevel, line: &str| {
            let Some(log) = log else { return };
            // The sink lives in a thread-local of the calling thread; check anyway.
            if thread::current().id() != thread {
                return;
            }
            // SAFETY: a valid host callback (from_raw's contract); the line outlives the call.
            unsafe { log(ctx, level as i32, line.as_ptr(), line.len()) };
        })
    }
}

impl FfiHost {
    /// Calls the host's `call` on the calling thread; answers its status and the buffer it set
    /// (null when none), still owned by the host.
    fn call_raw(
        &self,
        method: &str,
        request: &[u8],
    ) -> Result<(i32, *mut u8, usize), HostCallError> {
        if !self.on_calling_thread() {
            return Err(HostCallError {
                method: method.to_string(),
                status: -1,
                message: format!(
                    "refused: host callbacks run only on the thread that called the export \
                     (called from {:?})",
                    thread::current().id()
                ),
            });
        }
        logging::flush_pending();
        let mut out: *mut u8 = std::ptr::null_mut();
        let mut out_len: usize = 0;
        // SAFETY: a valid host callback (from_raw's contract), on the calling thread; method and
        // request are valid for their lengths during the call; out/out_len are valid locals.
        let status = unsafe {
            (self.call)(
                self.ctx,
                method.as_ptr(),
                method.len(),
                request.as_ptr(),
                request.len(),
                &mut out,
                &mut out_len,
            )
        };
        Ok((status, out, out_len))
    }

    /// Copies a host buffer and releases it at once.
    fn copy_and_free(
        &self,
        method: &str,
        status: i32,
        out: *mut u8,
        out_len: usize,
    ) -> Result<Vec<u8>, HostCallError> {
        if out.is_null() {
            return Ok(Vec::new());
        }
        let copied = if out_len > isize::MAX as usize {
            None
        } else {
            // SAFETY: the host set out/out_len to a buffer it owns (callback contract).
            Some(unsafe { std::slice::from_raw_parts(out, out_len) }.to_vec())
        };
        // SAFETY: the buffer came from this host's `call`; released exactly once.
        unsafe { (self.free_buffer)(self.ctx, out, out_len) };
        copied.ok_or_else(|| HostCallError {
            method: method.to_string(),
            status,
            message: format!("host answered an impossible length {out_len}"),
        })
    }
}

/// A failed host call's error, from the (copied) bytes it answered.
fn host_failure(method: &str, status: i32, bytes: &[u8]) -> HostCallError {
    let message = serde_json::from_slice::<Value>(bytes)
        .ok()
        .and_then(|body| {
            body.get("message")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(bytes).into_owned());
    HostCallError {
        method: method.to_string(),
        status,
        message: redact::redact(&message),
    }
}

impl Host for FfiHost {
    fn call(&self, method: &str, request: &[u8]) -> Result<Vec<u8>, HostCallError> {
        let (status, out, out_len) = self.call_raw(method, request)?;
        let bytes = self.copy_and_free(method, status, out, out_len)?;
        if status == 0 {
            return Ok(bytes);
        }
        Err(host_failure(method, status, &bytes))
    }

    /// The answer stays in the host's buffer, read in place, until the export returns (then
    /// `release_kept` frees it on this thread). Failures and empty answers are copied and freed
    /// at once, as [`Host::call`] does.
    fn call_kept(&self, method: &str, request: &[u8]) -> Result<HostBytes, HostCallError> {
        let (status, out, out_len) = self.call_raw(method, request)?;
        if status != 0 || out.is_null() || out_len == 0 || out_len > isize::MAX as usize {
            let bytes = self.copy_and_free(method, status, out, out_len)?;
            if status == 0 {
                return Ok(HostBytes::owned(bytes));
            }
            return Err(host_failure(method, status, &bytes));
        }
        let view = Arc::new(KeptBuffer {
            span: parking_lot::Mutex::new(Some((out as usize, out_len))),
            len: out_len,
        });
        self.kept.borrow_mut().push(KeptHostBuffer {
            view: view.clone(),
            ptr: out,
            len: out_len,
        });
        Ok(HostBytes::kept(view))
    }

    fn log(&self, level: LogLevel, message: &str) {
        // Through the logging queue: direct on the calling thread, queued elsewhere.
        let _ = self;
        logging::emit(level, message);
    }

    fn progress(&self, done: u32, total: u32, detail_json: &str) -> bool {
        if !self.on_calling_thread() {
            log::error!(
                "tae_edu::ffi: progress refused off the calling thread ({:?})",
                thread::current().id()
            );
            return false;
        }
        logging::flush_pending();
        let Some(progress) = self.progress else {
            return false;
        };
        let detail = redact::redact(detail_json);
        // SAFETY: a valid host callback, on the calling thread; detail outlives the call.
        unsafe { progress(self.ctx, done, total, detail.as_ptr(), detail.len()) != 0 }
    }
}

// ---------------------------------------------------------------------------------------------
// The shared path of the three JSON exports
// ---------------------------------------------------------------------------------------------

type Entry = fn(&dyn Host, Value) -> Result<api::Answer, PluginError>;

/// # Safety
/// The pointer arguments follow the contract of the JSON exports.
unsafe fn json_export(
    export: &'static str,
    entry: Entry,
    host: *const TaeEduHost,
    request: *const u8,
    request_len: usize,
) -> Result<api::Answer, PluginError> {
    let _guard = ExportGuard::enter(export)?;
    // The call's runtime and connections end when the export returns (also after a panic).
    let _engine = CallEngine;
    logging::install();
    // SAFETY: forwarded contract of the export.
    let host = unsafe { FfiHost::from_raw(host) }?;
    logging::with_sink(host.log_sink(), || {
        let started = Instant::now();
        log::debug!("{export}: request of {request_len} bytes");
        // SAFETY: forwarded contract of the export.
        let result = unsafe { request_bytes("request", request, request_len) }
            .and_then(|bytes| utf8("request", bytes))
            .and_then(parse_request)
            .and_then(|request| {
                #[cfg(test)]
                if request.get("__panic_for_test").is_some() {
                    panic!("panic requested by a unit test");
                }
                let result = entry(&host, request);
                // Host leases of a run that ended without releasing them (an error path).
                crate::process::claims::release_leftovers(&host);
                result
            });
        match &result {
            Ok(_) => log::debug!("{export}: OK in {} ms", started.elapsed().as_millis()),
            Err(error) => log_refused(export, error, started.elapsed().as_millis()),
        }
        result
    })
}

/// A refused call: at the default level one line in Portuguese (the user's message and the
/// status number), for the people who read the host's log; the code and the technical detail at
/// debug level, for the integrator.
fn log_refused(export: &str, error: &PluginError, elapsed_ms: u128) {
    log::warn!(
        "{export}: chamada recusada com o código {} em {elapsed_ms} ms: {}",
        error.status as i32,
        error.message
    );
    log::debug!(
        "{export}: {} ({}) in {elapsed_ms} ms: {}",
        error.status.code(),
        error.status as i32,
        error.detail
    );
}

// ---------------------------------------------------------------------------------------------
// The exports
// ---------------------------------------------------------------------------------------------

/// Answers the ABI version implemented by this library (1).
///
/// Parameters: none.
///
/// Returns: the ABI version. A host checks it once after loading the library and sets
/// `TaeEduHost.abi_version` to it.
///
/// Memory and lifetimes: nothing is allocated.
#[no_mangle]
pub extern "C" fn tae_edu_abi_version() -> u32 {
    ffi_boundary!(or(ABI_VERSION) { ABI_VERSION })
}

/// Describes, validates or tests the global parameters ("Parâmetros Globais → Integração com
/// TOTVS Sign"). Request: `{"action": "describe"}`, `{"action": "validate", "values": {...}}`
/// or `{"action": "test", "values": {...}?}` (docs/abi.md, "configure").
///
/// Parameters:
/// - `host`: the host callback table (see `TaeEduHost`); read only during this call.
/// - `request`, `request_len`: the UTF-8 JSON request (not NUL-terminated), at most 8 MiB.
/// - `out`, `out_len`: where the response buffer and its length are written (required). Each
///   non-NULL one is set to NULL/0 first, on every path. If either is NULL the call is refused
///   with 1 NULL_ARGUMENT before anything runs (no request is read, no callback is made) and no
///   response is written.
///
/// Returns: 0 (OK) with the JSON answer in `*out`; otherwise the status code (1 NULL_ARGUMENT,
/// 2 INVALID_UTF8, 3 INVALID_REQUEST, 4 INVALID_HOST_TABLE, 5 REENTRANT_CALL, 6 PANIC,
/// 7 HOST_ERROR, 9 AUTH_FAILED, 11 TAE_ERROR, 12 INVALID_CONFIG, 13 REQUEST_TOO_LARGE,
/// 99 INTERNAL) with the error JSON `{"ok": false, "error": {"code", "status", "message",
/// "detail", "fields"?}}` in `*out` (nothing is written when `out` or `out_len` is NULL).
///
/// Memory and lifetimes: `*out` is owned by the plugin; release it exactly once with
/// `tae_edu_buffer_free(*out, *out_len)`. The request buffer and the host table are not kept
/// after the call returns. Callbacks run on the calling thread, during this call only.
///
/// # Safety
/// `host` is NULL or a valid `TaeEduHost`; `request` is NULL or readable for `request_len`
/// bytes; `out` and `out_len` are each NULL or writable (NULL is refused, never dereferenced).
#[no_mangle]
pub unsafe extern "C" fn tae_edu_configure(
    host: *const TaeEduHost,
    request: *const u8,
    request_len: usize,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> i32 {
    ffi_boundary!(json("tae_edu_configure", out, out_len) {
        // SAFETY: this export's contract, forwarded.
        unsafe { json_export("tae_edu_configure", |h, r| api::configure(h, r).map(api::Answer::Value), host, request, request_len) }
    })
}

/// Runs one option (`send`, `delete`, `update_emails`, `check`, `download`) over the selected
/// contracts or integration records (docs/abi.md, "execute"). The answer lists every contract
/// with its outcome; status 0 even when some contracts failed.
///
/// Parameters:
/// - `host`: the host callback table (see `TaeEduHost`); read only during this call.
/// - `request`, `request_len`: the UTF-8 JSON request (not NUL-terminated), at most 8 MiB.
/// - `out`, `out_len`: where the response buffer and its length are written (required). Each
///   non-NULL one is set to NULL/0 first, on every path. If either is NULL the call is refused
///   with 1 NULL_ARGUMENT before anything runs (no request is read, no callback is made) and no
///   response is written.
///
/// Returns: 0 (OK) with the per-contract results in `*out`; a non-zero status only for what
/// stops the whole run before any contract (1–7, 8 CANCELLED, 9 AUTH_FAILED,
/// 10 PERMISSION_DENIED, 11 TAE_ERROR, 12 INVALID_CONFIG, 13, 99), with the error JSON in `*out`
/// (nothing is written, and no contract is touched, when `out` or `out_len` is NULL).
///
/// Memory and lifetimes: `*out` is owned by the plugin; release it exactly once with
/// `tae_edu_buffer_free(*out, *out_len)`. The request buffer and the host table are not kept
/// after the call returns. Callbacks (including `progress`) run on the calling thread, during
/// this call only.
///
/// # Safety
/// `host` is NULL or a valid `TaeEduHost`; `request` is NULL or readable for `request_len`
/// bytes; `out` and `out_len` are each NULL or writable (NULL is refused, never dereferenced).
#[no_mangle]
pub unsafe extern "C" fn tae_edu_execute(
    host: *const TaeEduHost,
    request: *const u8,
    request_len: usize,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> i32 {
    ffi_boundary!(json("tae_edu_execute", out, out_len) {
        // SAFETY: this export's contract, forwarded.
        unsafe { json_export("tae_edu_execute", api::execute_answer, host, request, request_len) }
    })
}

/// Lists the integration records (every document the process sent), filtered and paged,
/// newest first. Request: `{"filter": RecordFilter?, "page": 1, "page_size": 50}`
/// (docs/abi.md, "attachment-list").
///
/// Parameters:
/// - `host`: the host callback table (see `TaeEduHost`); read only during this call.
/// - `request`, `request_len`: the UTF-8 JSON request (not NUL-terminated), at most 8 MiB.
/// - `out`, `out_len`: where the response buffer and its length are written (required). Each
///   non-NULL one is set to NULL/0 first, on every path. If either is NULL the call is refused
///   with 1 NULL_ARGUMENT before anything runs (no request is read, no callback is made) and no
///   response is written.
///
/// Returns: 0 (OK) with `{"ok": true, "total", "page", "page_size", "records"}` in `*out`;
/// otherwise the status code with the error JSON in `*out` (nothing is written when `out` or
/// `out_len` is NULL).
///
/// Memory and lifetimes: `*out` is owned by the plugin; release it exactly once with
/// `tae_edu_buffer_free(*out, *out_len)`. The request buffer and the host table are not kept
/// after the call returns. Callbacks run on the calling thread, during this call only.
///
/// # Safety
/// `host` is NULL or a valid `TaeEduHost`; `request` is NULL or readable for `request_len`
/// bytes; `out` and `out_len` are each NULL or writable (NULL is refused, never dereferenced).
#[no_mangle]
pub unsafe extern "C" fn tae_edu_attachment_list(
    host: *const TaeEduHost,
    request: *const u8,
    request_len: usize,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> i32 {
    ffi_boundary!(json("tae_edu_attachment_list", out, out_len) {
        // SAFETY: this export's contract, forwarded.
        unsafe {
            json_export("tae_edu_attachment_list", |h, r| api::attachment_list(h, r).map(api::Answer::Value), host, request, request_len)
        }
    })
}

/// Releases a response buffer returned by `tae_edu_configure`, `tae_edu_execute` or
/// `tae_edu_attachment_list`.
///
/// Parameters:
/// - `buf`: the buffer (`*out` of that call); NULL is a no-op.
/// - `len`: its length (`*out_len` of that call), unchanged.
///
/// Returns: nothing.
///
/// Memory and lifetimes: after this call `buf` must not be accessed again. Each buffer is freed
/// exactly once, with this function only (never `free`, `CoTaskMemFree`, ...). May be called
/// from any thread, also from inside a host callback.
///
/// # Safety
/// `buf` is NULL or a buffer returned by this library with length `len`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn tae_edu_buffer_free(buf: *mut u8, len: usize) {
    ffi_boundary!(or(()) {
        if !buf.is_null() {
            // SAFETY: made by `into_raw_buffer` as a Box<[u8]> of exactly `len` bytes
            // (caller's contract), released once.
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(buf, len)) });
        }
    })
}

/// Drops the cached TAE token of one RM session (the host calls it when a user's session
/// closes). An unknown session id is a no-op.
///
/// Parameters:
/// - `session_id`, `len`: the RM session id, UTF-8, not NUL-terminated.
///
/// Returns: 0 (OK), 1 NULL_ARGUMENT, 2 INVALID_UTF8, 5 REENTRANT_CALL (called from inside a
/// host callback), 6 PANIC, 13 REQUEST_TOO_LARGE.
///
/// Memory and lifetimes: the session id is not kept after the call.
///
/// # Safety
/// `session_id` is NULL or readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn tae_edu_session_end(session_id: *const u8, len: usize) -> i32 {
    ffi_boundary!(status("tae_edu_session_end") {
        let _guard = ExportGuard::enter("tae_edu_session_end")?;
        logging::install();
        // SAFETY: this export's contract.
        let bytes = unsafe { request_bytes("session_id", session_id, len) }?;
        api::session_end(utf8("session_id", bytes)?);
        Ok(())
    })
}

/// Drops the plugin's state: every cached session token (each call's runtime, HTTP clients and
/// connections already end when that call returns). Idempotent; the next call of any export
/// recreates the state. The library itself stays
/// loaded (it is linked with `-z nodelete`; never unload it).
///
/// Parameters: none.
///
/// Returns: 0 (OK), 5 REENTRANT_CALL (called from inside a host callback), 6 PANIC.
///
/// Memory and lifetimes: buffers already returned stay valid until freed with
/// `tae_edu_buffer_free`.
#[no_mangle]
pub extern "C" fn tae_edu_shutdown() -> i32 {
    ffi_boundary!(status("tae_edu_shutdown") {
        let _guard = ExportGuard::enter("tae_edu_shutdown")?;
        api::shutdown();
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// `ctx` is null or points to an `AtomicUsize` counting the calls.
    unsafe extern "C" fn count_call(
        ctx: *mut c_void,
        _method: *const u8,
        _method_len: usize,
        _request: *const u8,
        _request_len: usize,
        out: *mut *mut u8,
        out_len: *mut usize,
    ) -> i32 {
        if !ctx.is_null() {
            // SAFETY: the test's counter outlives the host table.
            unsafe { &*(ctx as *const AtomicUsize) }.fetch_add(1, Ordering::SeqCst);
        }
        // SAFETY: the plugin passes valid out pointers.
        unsafe {
            *out = std::ptr::null_mut();
            *out_len = 0;
        }
        0
    }

    unsafe extern "C" fn no_free(_ctx: *mut c_void, _buf: *mut u8, _len: usize) {}

    fn table() -> TaeEduHost {
        TaeEduHost {
            abi_version: ABI_VERSION,
            struct_size: std::mem::size_of::<TaeEduHost>() as u32,
            ctx: std::ptr::null_mut(),
            call: Some(count_call),
            free_buffer: Some(no_free),
            log: None,
            progress: None,
        }
    }

    fn configure(host: &TaeEduHost, request: &[u8]) -> (i32, Value) {
        let mut out = std::ptr::null_mut();
        let mut out_len = 0usize;
        // SAFETY: valid table, request and out pointers.
        let status = unsafe {
            tae_edu_configure(
                host,
                request.as_ptr(),
                request.len(),
                &mut out,
                &mut out_len,
            )
        };
        assert!(!out.is_null(), "a response is always written");
        // SAFETY: a buffer just returned by the plugin.
        let body = serde_json::from_slice(unsafe { std::slice::from_raw_parts(out, out_len) })
            .expect("the response is JSON");
        // SAFETY: freed once.
        unsafe { tae_edu_buffer_free(out, out_len) };
        (status, body)
    }

    #[test]
    fn a_panic_inside_an_export_becomes_status_6_and_the_plugin_stays_usable() {
        let host = table();
        let (status, body) = configure(&host, br#"{"__panic_for_test": true}"#);
        assert_eq!(status, Status::Panic as i32);
        assert_eq!(body["ok"], false);
        assert_eq!(body["error"]["code"], "PANIC");
        assert_eq!(body["error"]["status"], 6);
        assert!(body["error"]["detail"]
            .as_str()
            .unwrap()
            .contains("panic requested by a unit test"));
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Erro interno"));
        // The re-entry flag was reset by the unwinding: the next call is not REENTRANT_CALL.
        assert!(!INSIDE_EXPORT.with(Cell::get));
        let (status, body) = configure(&host, b"not json");
        assert_eq!(status, Status::InvalidRequest as i32, "{body}");
    }

    #[test]
    fn the_status_boundary_turns_a_panic_into_status_6() {
        fn exploding() -> i32 {
            ffi_boundary!(status("exploding") {
                let _guard = ExportGuard::enter("exploding")?;
                panic!("boom")
            })
        }
        assert_eq!(exploding(), Status::Panic as i32);
        assert!(
            !INSIDE_EXPORT.with(Cell::get),
            "the guard was dropped while unwinding"
        );
    }

    #[test]
    fn the_host_is_never_called_from_another_thread() {
        let calls = AtomicUsize::new(0);
        let host_table = TaeEduHost {
            ctx: &calls as *const AtomicUsize as *mut c_void,
            ..table()
        };
        // SAFETY: a valid table.
        let host = unsafe { FfiHost::from_raw(&host_table) }.unwrap();
        assert!(host.call("params.get", b"{}").is_ok());
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        struct SendAnyway(FfiHost);
        // SAFETY: deliberately smuggled to another thread to prove the runtime check.
        unsafe impl Send for SendAnyway {}
        let smuggled = SendAnyway(host);
        let error = thread::spawn(move || {
            let smuggled = smuggled;
            let result = smuggled.0.call("params.get", b"{}");
            assert!(!smuggled.0.progress(1, 2, "{}"));
            result.unwrap_err()
        })
        .join()
        .unwrap();
        assert_eq!(error.status, -1);
        assert!(
            error.message.contains("only on the thread"),
            "{}",
            error.message
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "the callback was not invoked again"
        );
    }

    #[test]
    fn redact_value_masks_strings_and_keys_at_any_depth() {
        redact::register_secret("unit-test-secret-9f2");
        let mut value = serde_json::json!({
            "a": ["x unit-test-secret-9f2 y", {"unit-test-secret-9f2": 1}],
            "n": 3
        });
        redact_value(&mut value);
        let text = value.to_string();
        assert!(!text.contains("unit-test-secret-9f2"), "{text}");
        assert_eq!(value["a"][0], "x *** y");
        assert_eq!(value["a"][1]["***"], 1);
        redact::forget_secret("unit-test-secret-9f2");
    }

    /// The host of `kept_buffer_*`: answers a fresh 200 KB buffer of `0..=255` repeated and
    /// counts the buffers it handed out and got back (in `ctx`: two counters).
    unsafe extern "C" fn big_answer(
        ctx: *mut c_void,
        _method: *const u8,
        _method_len: usize,
        _request: *const u8,
        _request_len: usize,
        out: *mut *mut u8,
        out_len: *mut usize,
    ) -> i32 {
        let bytes: Box<[u8]> = (0..200 * 1024).map(|i| (i % 256) as u8).collect();
        let len = bytes.len();
        // SAFETY: the test's counters outlive the host table; valid out pointers.
        unsafe {
            (*(ctx as *const [AtomicUsize; 2]))[0].fetch_add(1, Ordering::SeqCst);
            *out = Box::into_raw(bytes).cast::<u8>();
            *out_len = len;
        }
        0
    }

    unsafe extern "C" fn free_big(ctx: *mut c_void, buf: *mut u8, len: usize) {
        // SAFETY: a buffer `big_answer` made with this length; the counters outlive the table.
        unsafe {
            drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(buf, len)));
            (*(ctx as *const [AtomicUsize; 2]))[1].fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn kept_buffer_is_read_in_place_until_the_host_is_dropped_then_never() {
        let counters = [AtomicUsize::new(0), AtomicUsize::new(0)];
        let mut t = table();
        t.ctx = &counters as *const [AtomicUsize; 2] as *mut c_void;
        t.call = Some(big_answer);
        t.free_buffer = Some(free_big);
        // SAFETY: a valid table whose callbacks outlive the host.
        let host = unsafe { FfiHost::from_raw(&t) }.unwrap();
        let kept = host.call_kept("file.read", b"{}").unwrap();
        assert!(
            kept.as_owned().is_none(),
            "kept in the host's buffer, not copied"
        );
        assert_eq!(kept.len(), 200 * 1024);
        assert_eq!(
            counters[1].load(Ordering::SeqCst),
            0,
            "not freed while the call runs"
        );
        let chunk = kept.chunk(65_536, 65_536).unwrap();
        assert_eq!(chunk.len(), 65_536);
        assert_eq!(chunk[0], 0);
        assert_eq!(chunk[1], 1);
        assert_eq!(kept.chunk(200 * 1024 - 10, 65_536).unwrap().len(), 10);
        assert_eq!(kept.with_slice(|b| b[255]), Some(255));
        // A reader on another thread (as a request body dropped late could be) is let through
        // while the buffer lives.
        let other = kept.clone();
        let read = thread::spawn(move || other.chunk(0, 4).map(|b| b.to_vec()))
            .join()
            .unwrap();
        assert_eq!(read, Some(vec![0, 1, 2, 3]));
        // `call` (not kept) copies and frees at once.
        assert_eq!(host.call("x", b"{}").unwrap().len(), 200 * 1024);
        assert_eq!(counters[1].load(Ordering::SeqCst), 1);
        drop(host);
        assert_eq!(counters[0].load(Ordering::SeqCst), 2);
        assert_eq!(
            counters[1].load(Ordering::SeqCst),
            2,
            "freed when the host is dropped"
        );
        assert!(kept.chunk(0, 4).is_none(), "never read after it was freed");
        assert!(kept.with_slice(|b| b.len()).is_none());
        let late = kept.clone();
        assert!(thread::spawn(move || late.chunk(0, 4))
            .join()
            .unwrap()
            .is_none());
    }
}
