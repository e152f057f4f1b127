//! The boundary rules of the C ABI, exercised through the exported functions themselves (linked
//! as an rlib; `tests/c` runs the same exports from C through the built cdylib):
//! null pointers, invalid UTF-8, oversized and non-JSON requests, host-table validation,
//! re-entry from inside a host callback and from inside a tokio runtime, callbacks only on the
//! calling thread (also with network work on the plugin's runtime, against tae-sim), buffer
//! ownership, session_end and shutdown. The panic rule is tested in `plugin/src/ffi.rs` (its
//! trigger exists only in `cfg(test)` builds).

use serde_json::{json, Value};
use std::ffi::c_void;
use std::sync::Mutex;
use std::thread::{self, ThreadId};
use tae_edu::ffi::{
    tae_edu_abi_version, tae_edu_attachment_list, tae_edu_buffer_free, tae_edu_configure,
    tae_edu_execute, tae_edu_session_end, tae_edu_shutdown, TaeEduHost, ABI_VERSION,
    MAX_REQUEST_BYTES,
};

/// What a test host answers and records. Shared with the callbacks through `ctx`; every field
/// behind a mutex, because the point of some tests is to notice a callback on a wrong thread.
struct TestHost {
    owner: ThreadId,
    /// method -> (status, response bytes)
    answers: Mutex<Vec<(String, i32, Vec<u8>)>>,
    calls: Mutex<Vec<String>>,
    logs: Mutex<Vec<(i32, String)>>,
    off_thread: Mutex<Vec<String>>,
    live_buffers: Mutex<i64>,
    /// When set, every `call` first tries to re-enter the plugin and records the status.
    reenter: Mutex<bool>,
    reentry_statuses: Mutex<Vec<i32>>,
}

impl TestHost {
    fn new() -> TestHost {
        TestHost {
            owner: thread::current().id(),
            answers: Mutex::new(Vec::new()),
            calls: Mutex::new(Vec::new()),
            logs: Mutex::new(Vec::new()),
            off_thread: Mutex::new(Vec::new()),
            live_buffers: Mutex::new(0),
            reenter: Mutex::new(false),
            reentry_statuses: Mutex::new(Vec::new()),
        }
    }

    fn answer(self, method: &str, status: i32, body: Value) -> TestHost {
        self.answers.lock().unwrap().push((
            method.to_string(),
            status,
            body.to_string().into_bytes(),
        ));
        self
    }

    fn table(&self) -> TaeEduHost {
        TaeEduHost {
            abi_version: ABI_VERSION,
            struct_size: std::mem::size_of::<TaeEduHost>() as u32,
            ctx: self as *const TestHost as *mut c_void,
            call: Some(host_call),
            free_buffer: Some(host_free_buffer),
            log: Some(host_log),
            progress: Some(host_progress),
        }
    }

    fn note_thread(&self, what: &str) {
        if thread::current().id() != self.owner {
            self.off_thread
                .lock()
                .unwrap()
                .push(format!("{what} on {:?}", thread::current().id()));
        }
    }
}

/// # Safety
/// `ctx` is the `TestHost` of the table.
unsafe fn host<'a>(ctx: *mut c_void) -> &'a TestHost {
    // SAFETY: every table built by `TestHost::table` points at a live TestHost.
    unsafe { &*(ctx as *const TestHost) }
}

unsafe extern "C" fn host_call(
    ctx: *mut c_void,
    method: *const u8,
    method_len: usize,
    request: *const u8,
    request_len: usize,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> i32 {
    // SAFETY: the plugin passes our ctx and valid buffers for the documented lengths.
    let (h, method, request) = unsafe {
        (
            host(ctx),
            std::slice::from_raw_parts(method, method_len),
            std::slice::from_raw_parts(request, request_len),
        )
    };
    let method = String::from_utf8_lossy(method).into_owned();
    h.note_thread(&format!("call {method}"));
    h.calls.lock().unwrap().push(method.clone());
    if *h.reenter.lock().unwrap() {
        let mut buf = std::ptr::null_mut();
        let mut len = 0;
        let describe = br#"{"action":"describe"}"#;
        // SAFETY: valid arguments; this call must be refused without touching the table.
        let status = unsafe {
            tae_edu_configure(
                &h.table(),
                describe.as_ptr(),
                describe.len(),
                &mut buf,
                &mut len,
            )
        };
        // SAFETY: whatever came back is freed once.
        unsafe { tae_edu_buffer_free(buf, len) };
        h.reentry_statuses.lock().unwrap().push(status);
        h.reentry_statuses.lock().unwrap().push(tae_edu_shutdown());
    }
    let request_is_json = serde_json::from_slice::<Value>(request).is_ok();
    let (status, body) = h
        .answers
        .lock()
        .unwrap()
        .iter()
        .find(|(m, _, _)| *m == method)
        .map(|(_, s, b)| (*s, b.clone()))
        .unwrap_or((1, br#"{"message":"unknown method"}"#.to_vec()));
    let status = if request_is_json { status } else { 2 };
    let boxed = body.into_boxed_slice();
    // SAFETY: out/out_len are valid for writes.
    unsafe {
        *out_len = boxed.len();
        *out = Box::into_raw(boxed).cast::<u8>();
    }
    *h.live_buffers.lock().unwrap() += 1;
    status
}

unsafe extern "C" fn host_free_buffer(ctx: *mut c_void, buf: *mut u8, len: usize) {
    // SAFETY: our ctx.
    let h = unsafe { host(ctx) };
    h.note_thread("free_buffer");
    if !buf.is_null() {
        // SAFETY: a Box<[u8]> of `len` bytes made by host_call.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(buf, len)) });
        *h.live_buffers.lock().unwrap() -= 1;
    }
}

unsafe extern "C" fn host_log(ctx: *mut c_void, level: i32, msg: *const u8, len: usize) {
    // SAFETY: our ctx; msg valid for len bytes.
    let (h, msg) = unsafe { (host(ctx), std::slice::from_raw_parts(msg, len)) };
    h.note_thread("log");
    h.logs
        .lock()
        .unwrap()
        .push((level, String::from_utf8_lossy(msg).into_owned()));
}

unsafe extern "C" fn host_progress(
    ctx: *mut c_void,
    _done: u32,
    _total: u32,
    _detail: *const u8,
    _len: usize,
) -> i32 {
    // SAFETY: our ctx.
    unsafe { host(ctx) }.note_thread("progress");
    0
}

type JsonExport =
    unsafe extern "C" fn(*const TaeEduHost, *const u8, usize, *mut *mut u8, *mut usize) -> i32;

/// Calls a JSON export with raw request bytes; answers the status and the parsed response
/// (which must always be a JSON object), freeing the buffer.
fn call_raw(export: JsonExport, table: *const TaeEduHost, request: &[u8]) -> (i32, Value) {
    let mut out: *mut u8 = std::ptr::dangling_mut(); // garbage: the plugin must overwrite it
    let mut out_len: usize = 77;
    // SAFETY: request valid for its length; out pointers valid.
    let status = unsafe {
        export(
            table,
            request.as_ptr(),
            request.len(),
            &mut out,
            &mut out_len,
        )
    };
    assert!(
        !out.is_null() && out_len > 0,
        "a response is written on every path"
    );
    // SAFETY: a buffer just returned by the plugin.
    let bytes = unsafe { std::slice::from_raw_parts(out, out_len) }.to_vec();
    // SAFETY: freed once.
    unsafe { tae_edu_buffer_free(out, out_len) };
    let body: Value = serde_json::from_slice(&bytes).expect("the response is JSON");
    assert!(body.is_object());
    (status, body)
}

fn call(export: JsonExport, table: &TaeEduHost, request: &Value) -> (i32, Value) {
    call_raw(export, table, request.to_string().as_bytes())
}

fn assert_error(status: i32, body: &Value, expected: i32, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["ok"], false, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body["error"]["status"], expected, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(!message.is_empty());
    assert!(body["error"]["detail"].as_str().is_some());
}

fn describe() -> Value {
    json!({"action": "describe"})
}

#[test]
fn abi_version_is_1() {
    assert_eq!(tae_edu_abi_version(), 1);
    assert_eq!(ABI_VERSION, 1);
}

#[test]
fn configure_describe_answers_the_fields() {
    let h = TestHost::new();
    let (status, body) = call(tae_edu_configure, &h.table(), &describe());
    assert_eq!(status, 0, "{body}");
    assert_eq!(body["ok"], true);
    assert!(
        body["fields"].as_array().is_some_and(|f| !f.is_empty()),
        "{body}"
    );
}

#[test]
fn null_pointers_are_refused_with_status_1() {
    let h = TestHost::new();
    let table = h.table();
    // Null host.
    let (status, body) = call_raw(
        tae_edu_configure,
        std::ptr::null(),
        describe().to_string().as_bytes(),
    );
    assert_error(status, &body, 1, "NULL_ARGUMENT");
    assert!(body["error"]["detail"].as_str().unwrap().contains("host"));
    // Null request (with a non-zero length that must not be read).
    let mut out = std::ptr::null_mut();
    let mut out_len = 0;
    // SAFETY: a null request is what is tested; out pointers valid.
    let status = unsafe { tae_edu_execute(&table, std::ptr::null(), 5, &mut out, &mut out_len) };
    assert_eq!(status, 1);
    // SAFETY: the error response is freed once.
    let bytes = unsafe { std::slice::from_raw_parts(out, out_len) }.to_vec();
    // SAFETY: `out`/`out_len` are the buffer this call returned; freed exactly once.
    unsafe { tae_edu_buffer_free(out, out_len) };
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_error(status, &body, 1, "NULL_ARGUMENT");
    assert!(body["error"]["detail"]
        .as_str()
        .unwrap()
        .contains("request"));
    // Null session id; NULL buffer free is a no-op.
    // SAFETY: null is what is tested.
    assert_eq!(unsafe { tae_edu_session_end(std::ptr::null(), 4) }, 1);
    // SAFETY: NULL is documented as a no-op (whatever the length).
    unsafe { tae_edu_buffer_free(std::ptr::null_mut(), 0) };
    // SAFETY: as above.
    unsafe { tae_edu_buffer_free(std::ptr::null_mut(), 1234) };
}

/// The out-pointer rule: a NULL `out` or `out_len` is refused with NULL_ARGUMENT before anything
/// runs (no host callback, so no batch whose results nobody could read), and the other, non-NULL
/// one is still cleared to NULL/0.
#[test]
fn a_null_out_pointer_is_refused_before_anything_runs() {
    let h = TestHost::new().answer("user.has_permission", 0, json!({"granted": true}));
    let table = h.table();
    let execute = json!({"session": "rm-1", "option": "check", "params": {},
        "invoked_from": {"kind": "contract_view", "contract_keys": ["1;2026001;145"]}})
    .to_string();
    let requests: [(&str, JsonExport, String); 3] = [
        ("configure", tae_edu_configure, describe().to_string()),
        ("execute", tae_edu_execute, execute),
        (
            "attachment_list",
            tae_edu_attachment_list,
            json!({"page": 1, "page_size": 10}).to_string(),
        ),
    ];
    for (name, export, request) in &requests {
        // Both NULL.
        // SAFETY: valid table and request; NULL outputs are what is tested.
        let status = unsafe {
            export(
                &table,
                request.as_ptr(),
                request.len(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        assert_eq!(status, 1, "{name}: NULL out and out_len");
        // NULL `out`, valid `out_len`: refused, and `*out_len` cleared.
        let mut only_len = 77usize;
        // SAFETY: valid table, request and `out_len`; NULL `out` is what is tested.
        let status = unsafe {
            export(
                &table,
                request.as_ptr(),
                request.len(),
                std::ptr::null_mut(),
                &mut only_len,
            )
        };
        assert_eq!(status, 1, "{name}: NULL out");
        assert_eq!(only_len, 0, "{name}: out_len is set to 0 first");
        // Valid `out` (holding garbage), NULL `out_len`: refused, and `*out` cleared.
        let mut only_out: *mut u8 = std::ptr::dangling_mut();
        // SAFETY: valid table, request and `out`; NULL `out_len` is what is tested.
        let status = unsafe {
            export(
                &table,
                request.as_ptr(),
                request.len(),
                &mut only_out,
                std::ptr::null_mut(),
            )
        };
        assert_eq!(status, 1, "{name}: NULL out_len");
        assert!(only_out.is_null(), "{name}: out is set to NULL first");
        // Also before the other checks: a NULL host or request with NULL out is still 1.
        // SAFETY: all NULL; nothing may be dereferenced.
        let status = unsafe {
            export(
                std::ptr::null(),
                std::ptr::null(),
                5,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        assert_eq!(status, 1, "{name}: everything NULL");
    }
    // Nothing ran: no host method was called, no log line was sent, no buffer is outstanding.
    assert!(h.calls.lock().unwrap().is_empty(), "{:?}", h.calls);
    assert!(h.logs.lock().unwrap().is_empty(), "{:?}", h.logs);
    assert_eq!(*h.live_buffers.lock().unwrap(), 0);
    // The same execute with both out pointers runs: the rule, not the request, refused it.
    let (status, body) = call(
        tae_edu_execute,
        &table,
        &serde_json::from_str(&requests[1].2).unwrap(),
    );
    assert_ne!(status, 1, "{body}");
    assert!(
        h.calls
            .lock()
            .unwrap()
            .contains(&"user.has_permission".to_string()),
        "{:?}",
        h.calls
    );
}

#[test]
fn invalid_utf8_is_refused_with_status_2() {
    let h = TestHost::new();
    let (status, body) = call_raw(
        tae_edu_configure,
        &h.table(),
        b"{\"action\":\"desc\xC3\x28\"}",
    );
    assert_error(status, &body, 2, "INVALID_UTF8");
    assert!(
        body["error"]["detail"]
            .as_str()
            .unwrap()
            .contains("offset 15"),
        "{body}"
    );
    // SAFETY: valid pointer and length.
    assert_eq!(unsafe { tae_edu_session_end(b"\xFF\xFE".as_ptr(), 2) }, 2);
}

#[test]
fn non_json_and_non_object_requests_are_refused_with_status_3() {
    let h = TestHost::new();
    let table = h.table();
    for request in [
        &b"not json"[..],
        b"",
        b"[1,2]",
        b"\"describe\"",
        b"{\"action\":",
    ] {
        for export in [
            tae_edu_configure as JsonExport,
            tae_edu_execute,
            tae_edu_attachment_list,
        ] {
            let (status, body) = call_raw(export, &table, request);
            assert_error(status, &body, 3, "INVALID_REQUEST");
        }
    }
}

#[test]
fn requests_over_8_mib_are_refused_with_status_13_without_being_read() {
    let h = TestHost::new();
    let table = h.table();
    let byte = b'{';
    let mut out = std::ptr::null_mut();
    let mut out_len = 0;
    // SAFETY: the length is over the limit, so the plugin must not read past the first byte
    // (reading it would be caught by Miri / valgrind in the C test).
    let status =
        unsafe { tae_edu_configure(&table, &byte, MAX_REQUEST_BYTES + 1, &mut out, &mut out_len) };
    // SAFETY: the response is freed once.
    let bytes = unsafe { std::slice::from_raw_parts(out, out_len) }.to_vec();
    // SAFETY: the buffer this call returned, freed exactly once.
    unsafe { tae_edu_buffer_free(out, out_len) };
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_error(status, &body, 13, "REQUEST_TOO_LARGE");
    // Exactly 8 MiB is accepted as far as size goes (then parsed: a JSON object padded with spaces).
    let mut big = vec![b' '; MAX_REQUEST_BYTES];
    big[..21].copy_from_slice(br#"{"action":"describe"}"#);
    let (status, body) = call_raw(tae_edu_configure, &table, &big);
    assert_eq!(status, 0, "{body}");
}

#[test]
fn wrong_host_tables_are_refused_with_status_4() {
    let h = TestHost::new();
    let good = h.table();
    let cases = [
        (
            "abi_version 0",
            TaeEduHost {
                abi_version: 0,
                ..h.table()
            },
        ),
        (
            "abi_version 2",
            TaeEduHost {
                abi_version: 2,
                ..h.table()
            },
        ),
        (
            "struct_size 0",
            TaeEduHost {
                struct_size: 0,
                ..h.table()
            },
        ),
        (
            "struct_size - 1",
            TaeEduHost {
                struct_size: good.struct_size - 1,
                ..h.table()
            },
        ),
        (
            "struct_size of v0 prefix",
            TaeEduHost {
                struct_size: 8,
                ..h.table()
            },
        ),
        (
            "null call",
            TaeEduHost {
                call: None,
                ..h.table()
            },
        ),
        (
            "null free_buffer",
            TaeEduHost {
                free_buffer: None,
                ..h.table()
            },
        ),
    ];
    for (what, table) in cases {
        for export in [
            tae_edu_configure as JsonExport,
            tae_edu_execute,
            tae_edu_attachment_list,
        ] {
            let (status, body) = call(export, &table, &describe());
            assert_eq!(status, 4, "{what}: {body}");
            assert_error(status, &body, 4, "INVALID_HOST_TABLE");
        }
    }
    assert!(
        h.calls.lock().unwrap().is_empty(),
        "a refused table is never called"
    );
    assert!(
        h.logs.lock().unwrap().is_empty(),
        "a refused table's log is never called"
    );

    // A newer host's larger table is accepted; log and progress are optional.
    #[repr(C)]
    struct NewerHost {
        base: TaeEduHost,
        appended: u64,
    }
    let newer = NewerHost {
        base: TaeEduHost {
            struct_size: std::mem::size_of::<NewerHost>() as u32,
            log: None,
            progress: None,
            ..h.table()
        },
        appended: 0,
    };
    let (status, body) = call(tae_edu_configure, &newer.base, &describe());
    assert_eq!(status, 0, "{body}");
    let _ = newer.appended;
}

#[test]
fn reentry_from_inside_a_host_callback_is_refused_with_status_5() {
    let h = TestHost::new().answer("user.has_permission", 0, json!({"granted": false}));
    *h.reenter.lock().unwrap() = true;
    let request = json!({"session": "rm-1", "invoked_from": {"kind": "contract_view", "contract_keys": ["1;1;1"]},
                         "option": "check", "params": {}});
    let (status, body) = call(tae_edu_execute, &h.table(), &request);
    assert_error(status, &body, 10, "PERMISSION_DENIED");
    let statuses = h.reentry_statuses.lock().unwrap().clone();
    assert!(!statuses.is_empty(), "the host was called");
    assert!(
        statuses.iter().all(|s| *s == 5),
        "every re-entry refused: {statuses:?}"
    );
    *h.reenter.lock().unwrap() = false;
    // The flag is cleared when the export returns: the same thread can call again.
    let (status, _) = call(tae_edu_configure, &h.table(), &describe());
    assert_eq!(status, 0);
    assert_eq!(tae_edu_shutdown(), 0);
}

#[test]
fn a_call_from_inside_a_tokio_runtime_is_refused_with_status_5() {
    let h = TestHost::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (status, body) =
        runtime.block_on(async { call(tae_edu_configure, &h.table(), &describe()) });
    assert_error(status, &body, 5, "REENTRANT_CALL");
    assert!(body["error"]["detail"]
        .as_str()
        .unwrap()
        .contains("tokio runtime"));
    assert_eq!(runtime.block_on(async { tae_edu_shutdown() }), 5);
    // Outside the runtime, on the same thread, all is well.
    let (status, _) = call(tae_edu_configure, &h.table(), &describe());
    assert_eq!(status, 0);
}

#[test]
fn a_failing_host_method_is_status_7_with_its_message() {
    let h = TestHost::new().answer(
        "user.has_permission",
        3,
        json!({"message": "perfil indisponível"}),
    );
    let request = json!({"session": "rm-1", "invoked_from": {"kind": "contract_view", "contract_keys": ["1;1;1"]},
                         "option": "check", "params": {}});
    let (status, body) = call(tae_edu_execute, &h.table(), &request);
    assert_error(status, &body, 7, "HOST_ERROR");
    assert!(body.to_string().contains("perfil indisponível"), "{body}");
    assert_eq!(
        *h.live_buffers.lock().unwrap(),
        0,
        "the host's buffer was freed"
    );
}

#[test]
fn callbacks_run_only_on_the_calling_thread_of_each_export() {
    // Several host threads at once, each with its own table: every callback of a call must run
    // on the thread that made that call. The plugin's runtime does the network work (a login to
    // tae-sim) on its worker threads meanwhile.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = tae_sim::SimServer::start(tae_sim::SimOptions::default()).expect("tae-sim starts");
    let base = sim.base_url();
    let workers: Vec<_> = (0..3)
        .map(|n| {
            let base = base.clone();
            thread::spawn(move || {
                let params = json!({"values": {
                    "auth_url": format!("{base}/identityintegration"), "api_url": base,
                    "service_user": tae_sim::ADMIN_EMAIL, "service_password": tae_sim::ADMIN_PASSWORD,
                    "request_timeout_secs": 10}});
                let h = TestHost::new().answer("params.get", 0, params);
                let (status, body) = call(tae_edu_configure, &h.table(), &json!({"action": "test"}));
                assert_eq!(status, 0, "thread {n}: {body}");
                assert_eq!(body["login_ok"], true, "thread {n}: {body}");
                assert!(h.calls.lock().unwrap().iter().any(|m| m == "params.get"));
                let off = h.off_thread.lock().unwrap().clone();
                assert!(off.is_empty(), "thread {n}: callbacks off the calling thread: {off:?}");
                assert_eq!(*h.live_buffers.lock().unwrap(), 0);
                let logs = h.logs.lock().unwrap().clone();
                assert!(
                    !logs.iter().any(|(_, l)| l.contains(tae_sim::ADMIN_PASSWORD)),
                    "the service password reached a log line"
                );
                assert!(!body.to_string().contains(tae_sim::ADMIN_PASSWORD));
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("a host thread failed");
    }
    sim.shutdown();
}

#[test]
fn session_end_and_shutdown_are_idempotent() {
    let session = b"rm-session-ffi";
    // SAFETY: valid pointer and length.
    assert_eq!(
        unsafe { tae_edu_session_end(session.as_ptr(), session.len()) },
        0
    );
    assert_eq!(
        // SAFETY: as above: valid pointer and length.
        unsafe { tae_edu_session_end(session.as_ptr(), session.len()) },
        0
    );
    assert_eq!(tae_edu_shutdown(), 0);
    assert_eq!(tae_edu_shutdown(), 0);
    // The next call recreates the state.
    let h = TestHost::new();
    let (status, _) = call(tae_edu_configure, &h.table(), &describe());
    assert_eq!(status, 0);
}
