//! Bad input at the ABI, through the built library: null pointers, invalid UTF-8, bytes that are
//! not JSON, JSON of the wrong shape or types, a 10 MB request, an unknown option, unknown
//! fields, a host table with a wrong version or size, a host callback that fails or answers
//! garbage or nothing. Each gets a non-zero status and a JSON error; none panics across the
//! boundary (a panic there would abort this process); a property test feeds arbitrary bytes to
//! every entry point. (The boundary rules themselves are unit-tested by the ffi engineer in
//! `plugin/tests/ffi_*.rs`; this file attacks the built cdylib from outside.)

#[path = "reliability_support.rs"]
mod support;

use host_sim::host::{HostCallFn, HostFreeFn, TaeEduHost};
use host_sim::seed::seed_demo;
use host_sim::{Export, Plugin, RmHost, SchoolDb};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::ffi::c_void;
use support::*;

const EXPORTS: [Export; 3] = [Export::Configure, Export::Execute, Export::AttachmentList];

/// A host over the demo school, with no TAE configured and screens cancelled: nothing here
/// reaches the network.
fn demo_host() -> RmHost {
    let db = SchoolDb::in_memory().unwrap();
    seed_demo(&db).unwrap();
    RmHost::new(db, host_sim::seed::DEMO_RM_USER)
}

/// Asserts the error contract: non-zero status, a JSON error `{ok:false, error:{code, status,
/// message}}` whose status matches; answers the error object.
fn assert_error(what: &str, status: i32, body: &[u8]) -> Value {
    assert_ne!(status, 0, "{what}: status 0");
    assert_ne!(
        status,
        6,
        "{what}: PANIC: {}",
        String::from_utf8_lossy(body)
    );
    let v: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "{what}: the error is not JSON ({e}): {:?}",
            String::from_utf8_lossy(body)
        )
    });
    assert_eq!(v["ok"], false, "{what}: {v}");
    assert_eq!(v["error"]["status"], status, "{what}: {v}");
    assert!(
        v["error"]["code"].as_str().is_some_and(|c| !c.is_empty()),
        "{what}: {v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.trim().is_empty()),
        "{what}: {v}"
    );
    v["error"].clone()
}

fn call(p: &Plugin, which: Export, host: &RmHost, req: &[u8]) -> (i32, Vec<u8>) {
    p.call_bytes(which, host, req)
}

#[test]
fn null_pointers_get_null_argument() {
    let p = plugin();
    let host = demo_host();
    let table = host.table();
    let execute = br#"{"session":"s","option":"check","params":{},"invoked_from":{"kind":"contract_view","contract_keys":["1;2026001;145"]}}"#;
    for which in EXPORTS {
        // Null request with a length.
        host.begin_call();
        // SAFETY: a valid table; a null request is what is tested (its length must not be read).
        let (s, out) = unsafe { p.call_raw(which, &table, std::ptr::null(), 10, true) };
        host.end_call();
        assert_eq!(s, 1, "{which:?} null request");
        assert_error("null request", s, &out.unwrap());
        // Null host table.
        let req = br#"{"action":"describe"}"#;
        // SAFETY: a valid request; a null host table is what is tested.
        let (s, out) =
            unsafe { p.call_raw(which, std::ptr::null(), req.as_ptr(), req.len(), true) };
        assert_eq!(s, 1, "{which:?} null host");
        assert_error("null host", s, &out.unwrap());
        // Null out / out_len with a valid host and a valid request: NULL_ARGUMENT before
        // anything runs — not one host method is called (no batch whose results nobody could
        // read), nothing is written.
        let req: &[u8] = if which == Export::Execute {
            execute
        } else if which == Export::AttachmentList {
            br#"{"page":1,"page_size":10}"#
        } else {
            br#"{"action":"describe"}"#
        };
        let calls_before: u64 = host.call_counts().values().sum();
        host.begin_call();
        // SAFETY: a valid table and request; null out pointers are what is tested.
        let (s, out) = unsafe { p.call_raw(which, &table, req.as_ptr(), req.len(), false) };
        host.end_call();
        assert_eq!(s, 1, "{which:?} null out");
        assert!(out.is_none());
        assert_eq!(
            host.call_counts().values().sum::<u64>(),
            calls_before,
            "{which:?}: a host method was called although the answer could not be written"
        );
    }
    // SAFETY: a null session id is what is tested.
    assert_eq!(unsafe { p.session_end_raw(std::ptr::null(), 5) }, 1);
    p.buffer_free_null();
    assert_eq!(host.outstanding_buffers(), 0);
}

#[test]
fn bad_bytes_and_bad_json() {
    let p = plugin();
    let host = demo_host();
    let cases: Vec<(&str, Vec<u8>, i32)> = vec![
        ("invalid UTF-8", b"{\"action\":\"\xff\xfe\"}".to_vec(), 2),
        ("lone continuation byte", vec![0x80], 2),
        ("not JSON", b"hello".to_vec(), 3),
        ("truncated JSON", b"{\"action\": ".to_vec(), 3),
        ("empty", Vec::new(), 3),
        ("JSON array", b"[1,2,3]".to_vec(), 3),
        ("JSON string", b"\"execute\"".to_vec(), 3),
        ("JSON null", b"null".to_vec(), 3),
        ("NUL bytes", b"{\"a\":1}\0\0".to_vec(), 3),
    ];
    for which in EXPORTS {
        for (what, bytes, want) in &cases {
            let (s, out) = call(&p, which, &host, bytes);
            let e = assert_error(&format!("{which:?} {what}"), s, &out);
            // An empty request may be refused as a null argument by a host that passes NULL.
            if !(bytes.is_empty() && s == 1) {
                assert_eq!(s, *want, "{which:?} {what}: {e}");
            }
        }
    }
    // session_end with invalid UTF-8.
    let bad = [0xffu8, 0xfe];
    // SAFETY: invalid UTF-8 bytes, valid for their length.
    assert_eq!(unsafe { p.session_end_raw(bad.as_ptr(), bad.len()) }, 2);
    assert_eq!(p.session_end("sessao-que-nunca-existiu"), 0);
}

#[test]
fn wrong_shapes_types_unknown_options_and_fields() {
    let p = plugin();
    let host = demo_host();
    let exec = |req: Value| {
        let (s, out) = call(
            &p,
            Export::Execute,
            &host,
            &serde_json::to_vec(&req).unwrap(),
        );
        (s, out)
    };
    let key = "1;2026001;145";
    let cases = vec![
        (
            "option unknown",
            json!({"session": "s", "invoked_from": {"kind": "contract_view", "contract_keys": [key]}, "option": "explodir", "params": {}}),
        ),
        (
            "option of wrong type",
            json!({"session": "s", "invoked_from": {"kind": "contract_view", "contract_keys": [key]}, "option": 7, "params": {}}),
        ),
        (
            "session of wrong type",
            json!({"session": 42, "invoked_from": {"kind": "contract_view", "contract_keys": [key]}, "option": "check", "params": {}}),
        ),
        (
            "session missing",
            json!({"invoked_from": {"kind": "contract_view", "contract_keys": [key]}, "option": "check", "params": {}}),
        ),
        (
            "invoked_from unknown kind",
            json!({"session": "s", "invoked_from": {"kind": "teletransporte"}, "option": "check", "params": {}}),
        ),
        (
            "contract_keys not a list",
            json!({"session": "s", "invoked_from": {"kind": "contract_view", "contract_keys": key}, "option": "check", "params": {}}),
        ),
        (
            "contract_keys of numbers",
            json!({"session": "s", "invoked_from": {"kind": "contract_view", "contract_keys": [1, 2]}, "option": "check", "params": {}}),
        ),
        (
            "unknown top-level field",
            json!({"session": "s", "invoked_from": {"kind": "contract_view", "contract_keys": [key]}, "option": "check", "params": {}, "dry_run": true}),
        ),
        (
            "unknown param",
            json!({"session": "s", "invoked_from": {"kind": "contract_view", "contract_keys": [key]}, "option": "check", "params": {"force": true}}),
        ),
        (
            "unknown send param",
            json!({"session": "s", "invoked_from": {"kind": "contract_view", "contract_keys": [key]}, "option": "send", "params": {"source": {"kind": "report", "report_code": "EDU.CONTRATO"}, "sorce": 1}}),
        ),
        (
            "params not an object",
            json!({"session": "s", "invoked_from": {"kind": "contract_view", "contract_keys": [key]}, "option": "check", "params": [1]}),
        ),
        (
            "send without source",
            json!({"session": "s", "invoked_from": {"kind": "contract_view", "contract_keys": [key]}, "option": "send", "params": {}}),
        ),
        (
            "send source of wrong kind",
            json!({"session": "s", "invoked_from": {"kind": "contract_view", "contract_keys": [key]}, "option": "send", "params": {"source": {"kind": "fax"}}}),
        ),
        (
            "download kind out of range",
            json!({"session": "s", "invoked_from": {"kind": "contract_view", "contract_keys": [key]}, "option": "download", "params": {"kind": 99}}),
        ),
    ];
    for (what, req) in cases {
        let (s, out) = exec(req);
        let e = assert_error(what, s, &out);
        assert_eq!(s, 3, "{what}: {e}");
    }
    // No screen was ever shown for a refused request.
    assert!(host.ui_requests().is_empty(), "{:?}", host.ui_requests());

    for (what, req) in [
        ("configure unknown action", json!({"action": "formatar"})),
        (
            "configure unknown field",
            json!({"action": "describe", "extra": 1}),
        ),
        (
            "configure action of wrong type",
            json!({"action": ["describe"]}),
        ),
    ] {
        let (s, out) = call(
            &p,
            Export::Configure,
            &host,
            &serde_json::to_vec(&req).unwrap(),
        );
        let e = assert_error(what, s, &out);
        assert_eq!(s, 3, "{what}: {e}");
    }
    for (what, req) in [
        ("page 0", json!({"page": 0, "page_size": 10})),
        ("page_size 0", json!({"page": 1, "page_size": 0})),
        ("page_size 501", json!({"page": 1, "page_size": 501})),
        ("page of wrong type", json!({"page": "1", "page_size": 10})),
        (
            "unknown field",
            json!({"page": 1, "page_size": 10, "sort": "asc"}),
        ),
        (
            "unknown filter field",
            json!({"filter": {"estado": "x"}, "page": 1, "page_size": 10}),
        ),
    ] {
        let (s, out) = call(
            &p,
            Export::AttachmentList,
            &host,
            &serde_json::to_vec(&req).unwrap(),
        );
        let e = assert_error(what, s, &out);
        assert_eq!(s, 3, "{what}: {e}");
    }
    // configure validate with values of the wrong types: INVALID_CONFIG with the fields named.
    let (s, out) = call(
        &p,
        Export::Configure,
        &host,
        &serde_json::to_vec(&json!({"action": "validate", "values": {
            "auth_url": 5, "api_url": "ftp://x", "request_timeout_secs": "trinta", "max_concurrency": 0,
            "witness_count": 9, "recipient_auth_type": "telepatia", "max_file_mb": 1000, "campo_novo": 1
        }}))
        .unwrap(),
    );
    let e = assert_error("validate bad values", s, &out);
    assert_eq!(s, 12, "{e}");
    let fields = e["fields"].as_object().expect("error.fields");
    for f in [
        "auth_url",
        "api_url",
        "request_timeout_secs",
        "max_concurrency",
        "witness_count",
        "recipient_auth_type",
        "max_file_mb",
    ] {
        assert!(fields.contains_key(f), "field {f} not named: {e}");
    }
}

#[test]
fn ten_megabyte_request_is_refused() {
    let p = plugin();
    let host = demo_host();
    // Valid JSON, 10 MB: a huge contract key list.
    let mut req =
        br#"{"session":"s","invoked_from":{"kind":"contract_view","contract_keys":[""#.to_vec();
    req.extend(std::iter::repeat_n(b'x', 10 * 1024 * 1024));
    req.extend(br#""]},"option":"check","params":{}}"#);
    for which in EXPORTS {
        let (s, out) = call(&p, which, &host, &req);
        let e = assert_error("10 MB", s, &out);
        assert_eq!(s, 13, "{e}");
    }
    assert_eq!(host.call_count("contracts.get"), 0);
}

#[test]
fn host_tables_with_wrong_version_size_or_callbacks() {
    let p = plugin();
    let host = demo_host();
    let good = host.table();
    let req = br#"{"action":"describe"}"#;
    let t = |f: &dyn Fn(&mut TaeEduHost)| {
        let mut x = good;
        f(&mut x);
        x
    };
    let cases: Vec<(&str, TaeEduHost)> = vec![
        ("abi_version 0", t(&|x| x.abi_version = 0)),
        ("abi_version 2", t(&|x| x.abi_version = 2)),
        ("struct_size 0", t(&|x| x.struct_size = 0)),
        ("struct_size 8", t(&|x| x.struct_size = 8)),
        ("struct_size one short", t(&|x| x.struct_size -= 1)),
        ("null call", t(&|x| x.call = None)),
        ("null free_buffer", t(&|x| x.free_buffer = None)),
    ];
    for (what, table) in &cases {
        for which in EXPORTS {
            host.begin_call();
            // SAFETY: `table` lives for the call (its callbacks and ctx point at `host`); the request is valid for its length.
            let (s, out) = unsafe { p.call_raw(which, table, req.as_ptr(), req.len(), true) };
            host.end_call();
            let e = assert_error(what, s, &out.unwrap());
            assert_eq!(s, 4, "{what} {which:?}: {e}");
        }
    }
    // Optional callbacks may be null: describe still works.
    let lean = TaeEduHost {
        log: None,
        progress: None,
        ..good
    };
    host.begin_call();
    // SAFETY: a table over the live `host` with NULL optional callbacks; the request is valid for its length.
    let (s, out) = unsafe { p.call_raw(Export::Configure, &lean, req.as_ptr(), req.len(), true) };
    host.end_call();
    assert_eq!(s, 0, "{}", String::from_utf8_lossy(&out.unwrap()));
    // A larger table (a newer host) is accepted.
    let bigger = TaeEduHost {
        struct_size: good.struct_size + 64,
        ..good
    };
    let mut padded = vec![0u8; std::mem::size_of::<TaeEduHost>() + 64];
    // SAFETY: `padded` has room for the whole table; `bigger` is a valid TaeEduHost; they do not overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(
            &bigger as *const TaeEduHost as *const u8,
            padded.as_mut_ptr(),
            std::mem::size_of::<TaeEduHost>(),
        )
    };
    host.begin_call();
    // SAFETY: `padded` holds a valid table followed by 64 zero bytes, all readable (struct_size says so); the request is valid.
    let (s, _) = unsafe {
        p.call_raw(
            Export::Configure,
            padded.as_ptr() as *const TaeEduHost,
            req.as_ptr(),
            req.len(),
            true,
        )
    };
    host.end_call();
    assert_eq!(s, 0);
}

#[test]
fn host_callbacks_that_fail_or_answer_garbage_or_nothing() {
    let p = plugin();
    let check_all = json!({"session": unique_session("abi"), "invoked_from": {"kind": "menu", "filter": {"codcoligada": 1}}, "option": "check", "params": {}});
    let answers: Vec<(&str, Result<Vec<u8>, String>)> = vec![
        ("an error", Err("banco de dados indisponível".into())),
        ("garbage bytes", Ok(vec![0xff, 0x00, 0x13, 0x37])),
        ("nothing", Ok(Vec::new())),
        (
            "JSON of the wrong shape",
            Ok(br#"{"values": [1,2,3]}"#.to_vec()),
        ),
        ("a JSON array", Ok(b"[]".to_vec())),
    ];
    for (what, answer) in answers {
        let host = demo_host();
        let a = answer.clone();
        host.set_override("params.get", Box::new(move |_| Some(a.clone())));
        let (s, out) = p.execute_bytes(&host, &serde_json::to_vec(&check_all).unwrap());
        let e = assert_error(&format!("params.get answers {what}"), s, &out);
        assert!([7, 12].contains(&s), "params.get answers {what}: {e}");
        assert_eq!(
            host.outstanding_buffers(),
            0,
            "host buffers not freed ({what})"
        );
    }
    // contracts.find / contracts.get failing or answering garbage: a status, never a crash.
    for method in ["contracts.find", "user.current", "user.has_permission"] {
        for (what, answer) in [
            ("an error", Err::<Vec<u8>, String>("falha".into())),
            ("garbage", Ok(vec![0xc3, 0x28])),
            ("nothing", Ok(Vec::new())),
            ("wrong shape", Ok(br#"{"contracts": "todos"}"#.to_vec())),
        ] {
            let host = demo_host();
            let a = answer.clone();
            host.set_override(method, Box::new(move |_| Some(a.clone())));
            let (s, out) = p.execute_bytes(&host, &serde_json::to_vec(&check_all).unwrap());
            let e = assert_error(&format!("{method} answers {what}"), s, &out);
            assert!(
                [7, 9, 10, 12].contains(&s),
                "{method} answers {what}: status {s} {e}"
            );
            assert_eq!(host.outstanding_buffers(), 0);
        }
    }
}

// A raw host whose `call` answers 0 without writing `out` (a broken host), or writes a buffer
// with a huge length that the plugin must not trust beyond what it asks for.
unsafe extern "C" fn call_ok_without_output(
    _ctx: *mut c_void,
    _m: *const u8,
    _ml: usize,
    _r: *const u8,
    _rl: usize,
    _out: *mut *mut u8,
    _out_len: *mut usize,
) -> i32 {
    0
}

unsafe extern "C" fn call_fails_without_output(
    _ctx: *mut c_void,
    _m: *const u8,
    _ml: usize,
    _r: *const u8,
    _rl: usize,
    _out: *mut *mut u8,
    _out_len: *mut usize,
) -> i32 {
    -1
}

unsafe extern "C" fn free_nothing(_ctx: *mut c_void, _b: *mut u8, _l: usize) {}

#[test]
fn raw_host_answering_nothing() {
    let p = plugin();
    let req = serde_json::to_vec(&json!({"session": "raw", "invoked_from": {"kind": "menu", "filter": {}}, "option": "check", "params": {}})).unwrap();
    for (what, f) in [
        ("0 without output", call_ok_without_output as HostCallFn),
        ("-1 without output", call_fails_without_output as HostCallFn),
    ] {
        let table = TaeEduHost {
            abi_version: 1,
            struct_size: std::mem::size_of::<TaeEduHost>() as u32,
            ctx: std::ptr::null_mut(),
            call: Some(f),
            free_buffer: Some(free_nothing as HostFreeFn),
            log: None,
            progress: None,
        };
        for which in EXPORTS {
            let body: Vec<u8> = if which == Export::Configure {
                br#"{"action":"test"}"#.to_vec()
            } else if which == Export::AttachmentList {
                br#"{"page":1,"page_size":10}"#.to_vec()
            } else {
                req.clone()
            };
            // SAFETY: the callbacks ignore the null ctx and never touch `out` beyond their contract;
            // the body is valid for its length.
            let (s, out) = unsafe { p.call_raw(which, &table, body.as_ptr(), body.len(), true) };
            let e = assert_error(&format!("{which:?}: host {what}"), s, &out.unwrap());
            assert_eq!(s, 7, "{which:?}: host {what}: {e}");
        }
    }
}

fn check_any_answer(what: &str, s: i32, out: Option<Vec<u8>>) {
    assert!(
        (0..=13).contains(&s) || s == 99,
        "{what}: status {s} outside the ABI's codes"
    );
    assert_ne!(s, 6, "{what}: PANIC");
    let out = out.expect("a response buffer");
    let v: Value = serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("{what}: response is not JSON ({e})"));
    if s != 0 {
        assert_eq!(v["ok"], false);
        assert_eq!(v["error"]["status"], s);
    }
}

/// Strings that steer the fuzzer towards requests the plugin actually parses.
fn vocabulary() -> impl Strategy<Value = Value> {
    let word = prop::sample::select(vec![
        "action",
        "describe",
        "validate",
        "test",
        "values",
        "session",
        "invoked_from",
        "kind",
        "menu",
        "contract_view",
        "attachment",
        "contract_keys",
        "record_ids",
        "filter",
        "option",
        "send",
        "delete",
        "update_emails",
        "check",
        "download",
        "reconcile",
        "fix",
        "period",
        "from",
        "to",
        "2026-11-30",
        "params",
        "source",
        "file",
        "report",
        "path",
        "report_code",
        "page",
        "page_size",
        "status",
        "codcoligada",
        "1;2026001;145",
        "EDU.CONTRATO",
        "/nao/existe.pdf",
        "",
        "ç\u{0}é",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        word.clone().prop_map(|w| json!(w)),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(word.clone().prop_map(String::from), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_to_every_entry_point(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let p = plugin();
        let host = demo_host();
        for which in EXPORTS {
            host.begin_call();
            let t = host.table();
            // SAFETY: a table over the live `host`; the bytes are valid for their length.
            let (s, out) = unsafe { p.call_raw(which, &t, bytes.as_ptr(), bytes.len(), true) };
            host.end_call();
            check_any_answer(&format!("{which:?}"), s, out);
        }
        // SAFETY: the bytes are valid for their length.
        let s = unsafe { p.session_end_raw(bytes.as_ptr(), bytes.len()) };
        prop_assert!(s == 0 || s == 2, "session_end status {}", s);
        prop_assert_eq!(host.outstanding_buffers(), 0);
    }

    #[test]
    fn arbitrary_json_to_every_entry_point(v in vocabulary()) {
        let p = plugin();
        let host = demo_host();
        let bytes = serde_json::to_vec(&v).unwrap();
        for which in EXPORTS {
            let (s, out) = p.call_bytes(which, &host, &bytes);
            check_any_answer(&format!("{which:?} {v}"), s, Some(out));
        }
        prop_assert_eq!(host.outstanding_buffers(), 0);
        prop_assert_eq!(host.foreign_thread_calls(), 0);
    }
}
