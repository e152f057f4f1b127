//! The C side of the host: the `TaeEduHost` table of `docs/abi.md` as a `#[repr(C)]` struct,
//! and the `extern "C"` trampolines the plugin calls through it.
//!
//! Each trampoline turns the raw pointers into slices (null-checked), finds the host behind
//! `ctx` (any [`CHost`]: [`RmHost`], or the bench's in-memory host), and runs the Rust method
//! inside `catch_unwind`, so a panic never unwinds into the plugin. Responses go out in host-owned buffers (a leaked `Box<[u8]>`) that the plugin
//! hands back to `free_buffer`; [`RmHost::outstanding_buffers`] counts the ones not yet freed.
//! Status codes of `call`: 0 done, 1 the method failed (the buffer holds
//! `{"message", ...}`), 2 null `ctx`, 3 the host panicked.
//!
//! A host in another language (RM is .NET) does the same with its own FFI: fill the struct,
//! keep `ctx` and the delegates alive for the whole export call, and never let an exception
//! cross the boundary.

use super::{MethodError, RmHost};
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;

/// The ABI version this host implements.
pub const HOST_ABI_VERSION: u32 = 1;

/// `int32_t (*call)(void *ctx, const uint8_t *method, size_t method_len, const uint8_t *request,
/// size_t request_len, uint8_t **out, size_t *out_len)`
pub type HostCallFn = unsafe extern "C" fn(
    *mut c_void,
    *const u8,
    usize,
    *const u8,
    usize,
    *mut *mut u8,
    *mut usize,
) -> i32;
/// `void (*free_buffer)(void *ctx, uint8_t *buf, size_t len)`
pub type HostFreeFn = unsafe extern "C" fn(*mut c_void, *mut u8, usize);
/// `void (*log)(void *ctx, int32_t level, const uint8_t *msg, size_t msg_len)`
pub type HostLogFn = unsafe extern "C" fn(*mut c_void, i32, *const u8, usize);
/// `int32_t (*progress)(void *ctx, uint32_t done, uint32_t total, const uint8_t *detail, size_t detail_len)`
pub type HostProgressFn = unsafe extern "C" fn(*mut c_void, u32, u32, *const u8, usize) -> i32;

/// The host callback table, laid out exactly as `TaeEduHost` in `include/tae_edu.h`.
/// Null function pointers are `None` (tests build bad tables on purpose).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TaeEduHost {
    pub abi_version: u32,
    pub struct_size: u32,
    pub ctx: *mut c_void,
    pub call: Option<HostCallFn>,
    pub free_buffer: Option<HostFreeFn>,
    pub log: Option<HostLogFn>,
    pub progress: Option<HostProgressFn>,
}

/// A Rust host the trampolines serve: what `call`, `log` and `progress` do, and the count of
/// buffers handed out. [`RmHost`] is one; so is the bench's in-memory host.
pub trait CHost {
    /// Serves one `call`.
    fn handle(&self, method: &str, request: &[u8]) -> Result<Vec<u8>, MethodError>;
    /// Refuses a callback on another thread than the export's (by default every thread).
    fn check_thread(&self) -> Result<(), String> {
        Ok(())
    }
    /// A log line of the plugin.
    fn on_log(&self, _level: i32, _message: String) {}
    /// A progress report; `true` asks the plugin to cancel.
    fn on_progress(&self, _done: u32, _total: u32, _detail: &[u8]) -> bool {
        false
    }
    /// A response buffer was handed to the plugin (`+1`) or handed back (`-1`).
    fn count_buffer(&self, _delta: i64) {}
}

impl CHost for RmHost {
    fn handle(&self, method: &str, request: &[u8]) -> Result<Vec<u8>, MethodError> {
        RmHost::handle(self, method, request)
    }
    fn check_thread(&self) -> Result<(), String> {
        RmHost::check_thread(self)
    }
    fn on_log(&self, level: i32, message: String) {
        RmHost::on_log(self, level, message)
    }
    fn on_progress(&self, done: u32, total: u32, detail: &[u8]) -> bool {
        RmHost::on_progress(self, done, total, detail)
    }
    fn count_buffer(&self, delta: i64) {
        self.outstanding_buffers.fetch_add(delta, Ordering::SeqCst);
    }
}

/// The callback table for one export call, serving `host`. `ctx` points at `host`: the table
/// must not outlive it nor be used after it moved.
pub fn table_for<H: CHost>(host: &H) -> TaeEduHost {
    TaeEduHost {
        abi_version: HOST_ABI_VERSION,
        struct_size: std::mem::size_of::<TaeEduHost>() as u32,
        ctx: host as *const H as *mut c_void,
        call: Some(host_call::<H>),
        free_buffer: Some(host_free_buffer::<H>),
        log: Some(host_log::<H>),
        progress: Some(host_progress::<H>),
    }
}

impl RmHost {
    /// The callback table for one export call ([`table_for`]).
    pub fn table(&self) -> TaeEduHost {
        table_for(self)
    }
}

fn into_host_buffer<H: CHost>(host: &H, bytes: Vec<u8>, out: *mut *mut u8, out_len: *mut usize) {
    if out.is_null() || out_len.is_null() {
        return;
    }
    let boxed: Box<[u8]> = bytes.into_boxed_slice();
    let len = boxed.len();
    let ptr = Box::into_raw(boxed) as *mut u8;
    host.count_buffer(1);
    // SAFETY: both pointers were checked non-null; the plugin passes pointers to its locals.
    unsafe {
        *out = ptr;
        *out_len = len;
    }
}

/// # Safety
/// `ptr` must be null or valid for `len` bytes.
unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> Option<&'a [u8]> {
    if ptr.is_null() {
        if len == 0 {
            return Some(&[]);
        }
        return None;
    }
    // SAFETY: the caller guarantees `ptr` is valid for `len` bytes.
    Some(unsafe { std::slice::from_raw_parts(ptr, len) })
}

unsafe extern "C" fn host_call<H: CHost>(
    ctx: *mut c_void,
    method: *const u8,
    method_len: usize,
    request: *const u8,
    request_len: usize,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> i32 {
    if ctx.is_null() {
        return 2;
    }
    // SAFETY: ctx is the host that built this table, alive for the whole export call.
    let host = unsafe { &*(ctx as *const H) };
    if !out.is_null() && !out_len.is_null() {
        // SAFETY: checked non-null above.
        unsafe {
            *out = std::ptr::null_mut();
            *out_len = 0;
        }
    }
    let result = catch_unwind(AssertUnwindSafe(|| -> Result<Vec<u8>, MethodError> {
        host.check_thread()?;
        // SAFETY: the plugin passes (pointer, length) pairs it owns for the duration of the call.
        let method = unsafe { bytes(method, method_len) }.ok_or("null method")?;
        let method =
            std::str::from_utf8(method).map_err(|_| "method name is not UTF-8".to_string())?;
        // SAFETY: as above.
        let request = unsafe { bytes(request, request_len) }.ok_or("null request")?;
        host.handle(method, request)
    }));
    match result {
        Ok(Ok(response)) => {
            into_host_buffer(host, response, out, out_len);
            0
        }
        Ok(Err(failure)) => {
            let body = serde_json::to_vec(&failure.to_json()).unwrap_or_default();
            into_host_buffer(host, body, out, out_len);
            1
        }
        Err(_) => {
            let body = br#"{"message": "host panicked while serving the call"}"#.to_vec();
            into_host_buffer(host, body, out, out_len);
            3
        }
    }
}

unsafe extern "C" fn host_free_buffer<H: CHost>(ctx: *mut c_void, buf: *mut u8, len: usize) {
    if buf.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `buf`/`len` come from `into_host_buffer` (a leaked `Box<[u8]>` of that length).
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(buf, len)) });
        if !ctx.is_null() {
            // SAFETY: ctx is the live host of this table.
            let host = unsafe { &*(ctx as *const H) };
            host.count_buffer(-1);
        }
    }));
}

unsafe extern "C" fn host_log<H: CHost>(
    ctx: *mut c_void,
    level: i32,
    msg: *const u8,
    msg_len: usize,
) {
    if ctx.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: ctx is the live host of this table.
        let host = unsafe { &*(ctx as *const H) };
        if host.check_thread().is_err() {
            return;
        }
        // SAFETY: the plugin passes a (pointer, length) pair valid for this call.
        let Some(msg) = (unsafe { bytes(msg, msg_len) }) else {
            return;
        };
        host.on_log(level, String::from_utf8_lossy(msg).into_owned());
    }));
}

unsafe extern "C" fn host_progress<H: CHost>(
    ctx: *mut c_void,
    done: u32,
    total: u32,
    detail: *const u8,
    detail_len: usize,
) -> i32 {
    if ctx.is_null() {
        return 0;
    }
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: ctx is the live host of this table.
        let host = unsafe { &*(ctx as *const H) };
        if host.check_thread().is_err() {
            return false;
        }
        // SAFETY: the plugin passes a (pointer, length) pair valid for this call.
        let detail = unsafe { bytes(detail, detail_len) }.unwrap_or(b"null");
        host.on_progress(done, total, detail)
    }));
    match result {
        Ok(true) => 1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::SchoolDb;

    fn host() -> RmHost {
        RmHost::new(SchoolDb::in_memory().unwrap(), "secretaria")
    }

    #[test]
    fn table_layout_matches_the_c_header() {
        // 4 + 4 + 5 pointers on 64-bit targets.
        assert_eq!(
            std::mem::size_of::<TaeEduHost>(),
            8 + 5 * std::mem::size_of::<usize>()
        );
        let h = host();
        let t = h.table();
        assert_eq!(t.abi_version, 1);
        assert_eq!(t.struct_size as usize, std::mem::size_of::<TaeEduHost>());
    }

    /// `file.read` hands the plugin the very buffer `std::fs::read` filled: it is sized to the
    /// file (capacity = length), so turning it into the host buffer neither reallocates nor
    /// copies (the 50 MB PDF is in memory once on the host side).
    #[test]
    fn file_read_buffer_is_handed_over_without_a_copy() {
        let h = host();
        let dir = tempfile::tempdir().unwrap();
        for size in [0usize, 1, 12_345, 5 * 1024 * 1024 + 7] {
            let p = dir.path().join(format!("f{size}.pdf"));
            std::fs::write(&p, vec![b'x'; size]).unwrap();
            let bytes = super::super::read_file(&p).unwrap();
            assert_eq!((bytes.len(), bytes.capacity()), (size, size));
            let at = bytes.as_ptr();
            let mut out: *mut u8 = std::ptr::null_mut();
            let mut len = 0usize;
            into_host_buffer(&h, bytes, &mut out, &mut len);
            assert_eq!(len, size);
            if size > 0 {
                assert_eq!(
                    out as *const u8, at,
                    "the buffer moved (copied) for {size} bytes"
                );
            }
            // SAFETY: freeing the buffer just handed out, once.
            unsafe { host_free_buffer::<RmHost>(&h as *const RmHost as *mut c_void, out, len) };
        }
        assert_eq!(h.outstanding_buffers(), 0);
    }
}
