//! Loading the plugin (`libtae_edu.so` / `tae_edu.dll`) with libloading, and safe wrappers over
//! its exports.
//!
//! The `Library` is leaked: a Rust cdylib must never be unloaded (thread-local destructors run
//! after `dlclose` crash), so every resolved symbol lives for the whole process.

use crate::host::{RmHost, TaeEduHost, HOST_ABI_VERSION};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

type AbiVersionFn = unsafe extern "C" fn() -> u32;
type ExportFn =
    unsafe extern "C" fn(*const TaeEduHost, *const u8, usize, *mut *mut u8, *mut usize) -> i32;
type BufferFreeFn = unsafe extern "C" fn(*mut u8, usize);
type SessionEndFn = unsafe extern "C" fn(*const u8, usize) -> i32;
type ShutdownFn = unsafe extern "C" fn() -> i32;

/// The file name of the plugin on this platform.
pub const PLUGIN_FILE_NAME: &str = if cfg!(windows) {
    "tae_edu.dll"
} else if cfg!(target_os = "macos") {
    "libtae_edu.dylib"
} else {
    "libtae_edu.so"
};

/// The three JSON exports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Export {
    Configure,
    Execute,
    AttachmentList,
}

/// A loaded plugin: plain function pointers into a library that is never unloaded.
#[derive(Clone, Copy, Debug)]
pub struct Plugin {
    abi_version: AbiVersionFn,
    configure: ExportFn,
    execute: ExportFn,
    attachment_list: ExportFn,
    buffer_free: BufferFreeFn,
    session_end: SessionEndFn,
    shutdown: ShutdownFn,
}

impl Plugin {
    /// Loads the library at `path`, resolves every `tae_edu_*` export and checks the ABI version.
    pub fn load(path: impl AsRef<Path>) -> Result<Plugin, String> {
        let path = path.as_ref();
        // SAFETY: loading a library runs its initialisers; libtae_edu's are Rust statics only.
        let lib = unsafe { libloading::Library::new(path) }
            .map_err(|e| format!("não foi possível carregar o plugin {}: {e}", path.display()))?;
        let lib: &'static libloading::Library = Box::leak(Box::new(lib));
        fn sym<T: Copy + 'static>(
            lib: &'static libloading::Library,
            name: &str,
            path: &Path,
        ) -> Result<T, String> {
            // SAFETY: the types above are the signatures of include/tae_edu.h; the library is
            // leaked, so the symbol stays valid for the whole process.
            unsafe { lib.get::<T>(name.as_bytes()) }
                .map(|s| *s)
                .map_err(|e| {
                    format!(
                        "o plugin {} não tem a função exportada `{name}`: {e}",
                        path.display()
                    )
                })
        }
        let plugin = Plugin {
            abi_version: sym(lib, "tae_edu_abi_version", path)?,
            configure: sym(lib, "tae_edu_configure", path)?,
            execute: sym(lib, "tae_edu_execute", path)?,
            attachment_list: sym(lib, "tae_edu_attachment_list", path)?,
            buffer_free: sym(lib, "tae_edu_buffer_free", path)?,
            session_end: sym(lib, "tae_edu_session_end", path)?,
            shutdown: sym(lib, "tae_edu_shutdown", path)?,
        };
        let v = plugin.abi_version();
        if v != HOST_ABI_VERSION {
            return Err(format!(
                "o plugin {} usa a versão {v} da ABI; este host usa a versão {HOST_ABI_VERSION}",
                path.display()
            ));
        }
        Ok(plugin)
    }

    /// Loads the plugin of this build (see [`locate_plugin`]), once per process.
    pub fn load_default() -> Result<Plugin, String> {
        static DEFAULT: OnceLock<Result<Plugin, String>> = OnceLock::new();
        DEFAULT
            .get_or_init(|| Plugin::load(locate_plugin()?))
            .clone()
    }

    pub fn abi_version(&self) -> u32 {
        // SAFETY: resolved from the leaked library; takes no arguments.
        unsafe { (self.abi_version)() }
    }

    fn export(&self, which: Export) -> ExportFn {
        match which {
            Export::Configure => self.configure,
            Export::Execute => self.execute,
            Export::AttachmentList => self.attachment_list,
        }
    }

    /// Calls an export with `host`'s table and raw request bytes; answers the status and the
    /// response bytes (freed with `tae_edu_buffer_free`).
    pub fn call_bytes(&self, which: Export, host: &RmHost, request: &[u8]) -> (i32, Vec<u8>) {
        let table = host.table();
        host.begin_call();
        // SAFETY: the table points at `host`, which outlives the call; the request slice is
        // valid for its length; the output pointers are to locals.
        let out = unsafe { self.call_raw(which, &table, request.as_ptr(), request.len(), true) };
        host.end_call();
        (out.0, out.1.unwrap_or_default())
    }

    /// Calls an export with `host`'s table and raw request bytes; `read` sees the plugin's
    /// response in the plugin's own buffer (empty when there is none), before it is freed: no
    /// copy of the response is made.
    pub fn call_with<R>(
        &self,
        which: Export,
        host: &RmHost,
        request: &[u8],
        read: impl FnOnce(&[u8]) -> R,
    ) -> (i32, R) {
        let table = host.table();
        let mut out: *mut u8 = std::ptr::null_mut();
        let mut out_len: usize = 0;
        host.begin_call();
        // SAFETY: the table points at `host`, which outlives the call; the request slice is
        // valid for its length; the output pointers are to locals.
        let status = unsafe {
            (self.export(which))(
                &table,
                request.as_ptr(),
                request.len(),
                &mut out,
                &mut out_len,
            )
        };
        host.end_call();
        if out.is_null() {
            return (status, read(&[]));
        }
        // SAFETY: the plugin wrote a buffer of `out_len` bytes that we own until freed.
        let answer = read(unsafe { std::slice::from_raw_parts(out, out_len) });
        // SAFETY: returning the plugin's own buffer, once.
        unsafe { (self.buffer_free)(out, out_len) };
        (status, answer)
    }

    /// Lowest level: any pointers, for bad-input tests. With `want_output` false, `out` and
    /// `out_len` are passed as null.
    ///
    /// # Safety
    /// `host` must be null or point to a table whose callbacks and `ctx` are valid for the call;
    /// `request` must be null or valid for `len` bytes.
    pub unsafe fn call_raw(
        &self,
        which: Export,
        host: *const TaeEduHost,
        request: *const u8,
        len: usize,
        want_output: bool,
    ) -> (i32, Option<Vec<u8>>) {
        let mut out: *mut u8 = std::ptr::null_mut();
        let mut out_len: usize = 0;
        let (out_p, len_p): (*mut *mut u8, *mut usize) = if want_output {
            (&mut out, &mut out_len)
        } else {
            (std::ptr::null_mut(), std::ptr::null_mut())
        };
        // SAFETY: forwarded from the caller's contract.
        let status = unsafe { (self.export(which))(host, request, len, out_p, len_p) };
        let bytes = if out.is_null() {
            None
        } else {
            // SAFETY: the plugin wrote a buffer of `out_len` bytes that we own until freed.
            let v = unsafe { std::slice::from_raw_parts(out, out_len) }.to_vec();
            // SAFETY: returning the plugin's own buffer, once.
            unsafe { (self.buffer_free)(out, out_len) };
            Some(v)
        };
        (status, bytes)
    }

    /// Calls an export with a JSON request; answers the status and the response JSON (a JSON
    /// string holding the text when the plugin answered something that is not JSON; null when
    /// it answered nothing).
    pub fn call_json(&self, which: Export, host: &RmHost, request: &Value) -> (i32, Value) {
        let req = serde_json::to_vec(request).expect("serialising a Value");
        self.call_with(which, host, &req, parse_response)
    }

    pub fn configure(&self, host: &RmHost, request: &Value) -> (i32, Value) {
        self.call_json(Export::Configure, host, request)
    }

    pub fn execute(&self, host: &RmHost, request: &Value) -> (i32, Value) {
        self.call_json(Export::Execute, host, request)
    }

    pub fn attachment_list(&self, host: &RmHost, request: &Value) -> (i32, Value) {
        self.call_json(Export::AttachmentList, host, request)
    }

    pub fn configure_bytes(&self, host: &RmHost, request: &[u8]) -> (i32, Vec<u8>) {
        self.call_bytes(Export::Configure, host, request)
    }

    pub fn execute_bytes(&self, host: &RmHost, request: &[u8]) -> (i32, Vec<u8>) {
        self.call_bytes(Export::Execute, host, request)
    }

    pub fn attachment_list_bytes(&self, host: &RmHost, request: &[u8]) -> (i32, Vec<u8>) {
        self.call_bytes(Export::AttachmentList, host, request)
    }

    /// Drops one RM session's cached TAE token.
    pub fn session_end(&self, session: &str) -> i32 {
        // SAFETY: the slice is valid for its length during the call.
        unsafe { (self.session_end)(session.as_ptr(), session.len()) }
    }

    /// `tae_edu_session_end` with raw pointers (null tests).
    ///
    /// # Safety
    /// `ptr` must be null or valid for `len` bytes.
    pub unsafe fn session_end_raw(&self, ptr: *const u8, len: usize) -> i32 {
        // SAFETY: forwarded from the caller's contract.
        unsafe { (self.session_end)(ptr, len) }
    }

    /// Drops the plugin's runtime, client and tokens (idempotent).
    pub fn shutdown(&self) -> i32 {
        // SAFETY: takes no arguments.
        unsafe { (self.shutdown)() }
    }

    /// `tae_edu_buffer_free(NULL, 0)`, which must be a no-op.
    pub fn buffer_free_null(&self) {
        // SAFETY: the ABI defines freeing NULL as a no-op.
        unsafe { (self.buffer_free)(std::ptr::null_mut(), 0) }
    }
}

fn parse_response(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

/// The workspace this host-sim was built from (where `cargo build -p tae-edu` runs).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Finds the plugin of the current build: `$TAE_EDU_LIB` when set; else `libtae_edu.so` in the
/// target profile directory of the running executable (`target/<profile>/`, also from
/// `deps/`). When it is missing or older than the plugin's sources, builds it once per process
/// with `cargo build -p tae-edu` (same profile and target directory), so `cargo test` works on
/// a fresh clone.
pub fn locate_plugin() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("TAE_EDU_LIB") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            return Err(format!(
                "TAE_EDU_LIB aponta para {}, que não existe",
                p.display()
            ));
        }
        return Ok(p);
    }
    let exe = std::env::current_exe()
        .map_err(|e| format!("não foi possível localizar o executável em uso: {e}"))?;
    let mut dir = exe
        .parent()
        .ok_or("o executável em uso não está em uma pasta")?
        .to_path_buf();
    if matches!(
        dir.file_name().and_then(|n| n.to_str()),
        Some("deps") | Some("examples")
    ) {
        dir = dir
            .parent()
            .ok_or("pasta do perfil de compilação não encontrada")?
            .to_path_buf();
    }
    let lib = dir.join(PLUGIN_FILE_NAME);
    if is_stale(&lib) {
        static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
        BUILT.get_or_init(|| build_plugin(&dir)).clone()?;
    }
    if !lib.is_file() {
        return Err(format!(
            "o plugin não foi encontrado em {} (compile-o com `cargo build -p tae-edu` ou indique-o em TAE_EDU_LIB)",
            lib.display()
        ));
    }
    Ok(lib)
}

fn newest_mtime(path: &Path) -> Option<std::time::SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    let mut newest = meta.modified().ok();
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).ok()?.flatten() {
            if let Some(t) = newest_mtime(&entry.path()) {
                newest = Some(newest.map_or(t, |n| n.max(t)));
            }
        }
    }
    newest
}

fn is_stale(lib: &Path) -> bool {
    let Some(lib_time) = std::fs::metadata(lib).ok().and_then(|m| m.modified().ok()) else {
        return true;
    };
    let root = workspace_root();
    let plugin_dir = root.join("plugin");
    if !plugin_dir.is_dir() {
        return false; // installed elsewhere: nothing to compare with
    }
    let sources = [plugin_dir.join("src"), plugin_dir.join("Cargo.toml")];
    sources
        .iter()
        .filter_map(|p| newest_mtime(p))
        .any(|t| t > lib_time)
}

fn build_plugin(profile_dir: &Path) -> Result<(), String> {
    let root = workspace_root();
    if !root.join("plugin").is_dir() {
        return Err(format!(
            "os fontes do plugin não estão em {} para compilá-lo",
            root.join("plugin").display()
        ));
    }
    let target_dir = profile_dir.parent().ok_or("pasta target não encontrada")?;
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("debug")
        .to_string();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "-p", "tae-edu", "--lib"])
        .env("CARGO_TARGET_DIR", target_dir);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    eprintln!(
        "host-sim: compilando o plugin (cargo build -p tae-edu, perfil {profile}, target {})…",
        target_dir.display()
    );
    let status = cmd
        .status()
        .map_err(|e| format!("não foi possível executar o cargo para compilar o plugin: {e}"))?;
    if !status.success() {
        return Err(format!("`cargo build -p tae-edu` falhou ({status})"));
    }
    Ok(())
}
