//! The plugin's log records reach the host's `log` callback, on the calling thread (also the
//! records of other threads), and no registered secret (password, token) ever appears in a log
//! line or a response.
//!
//! This file is its own test process: it installs the plugin's forwarding logger at level
//! `debug` (`TAE_EDU_LOG`) before any export runs.

use serde_json::{json, Value};
use std::ffi::c_void;
use std::rc::Rc;
use std::sync::{Mutex, Once};
use std::thread::{self, ThreadId};
use tae_edu::ffi::{
    tae_edu_buffer_free, tae_edu_configure, tae_edu_execute, TaeEduHost, ABI_VERSION,
};
use tae_edu::host::LogLevel;
use tae_edu::{logging, redact};

/// Installs the logger at `debug` once, and serialises the tests of this file: the queue of
/// lines from other threads is process-wide, so a parallel test could take another's lines.
fn init() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    let guard = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        std::env::set_var("TAE_EDU_LOG", "debug");
        logging::install();
        assert_eq!(log::max_level(), log::LevelFilter::Debug);
    });
    guard
}

/// Lines received by a sink, with the thread each arrived on.
type Received = Rc<Mutex<Vec<(LogLevel, String, ThreadId)>>>;

fn sink() -> (logging::HostSink, Received) {
    let received: Received = Rc::new(Mutex::new(Vec::new()));
    let r = received.clone();
    let sink: logging::HostSink = Rc::new(move |level, line: &str| {
        r.lock()
            .unwrap()
            .push((level, line.to_string(), thread::current().id()));
    });
    (sink, received)
}

#[test]
fn records_of_the_calling_thread_and_of_other_threads_reach_the_sink_on_the_calling_thread() {
    let _serial = init();
    let me = thread::current().id();
    let (sink, received) = sink();
    logging::with_sink(sink, || {
        log::info!("linha do thread chamador: contrato 145");
        thread::spawn(|| log::warn!("line from a runtime worker"))
            .join()
            .unwrap();
        // Not delivered yet on the worker: it waits for the calling thread.
    });
    let received = received.lock().unwrap().clone();
    let lines: Vec<&str> = received.iter().map(|(_, l, _)| l.as_str()).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("linha do thread chamador: contrato 145")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("line from a runtime worker")),
        "{lines:?}"
    );
    assert!(
        received.iter().all(|(_, _, t)| *t == me),
        "every line delivered on the calling thread"
    );
    let levels: Vec<LogLevel> = received.iter().map(|(l, _, _)| *l).collect();
    assert!(levels.contains(&LogLevel::Info) && levels.contains(&LogLevel::Warn));
}

#[test]
fn a_full_queue_drops_the_oldest_lines_and_says_so_in_portuguese() {
    let _serial = init();
    // 10 000 lines are kept while no export runs; 25 more push the 25 oldest out.
    thread::spawn(|| {
        for i in 0..10_025 {
            log::info!("linha de fundo {i:05}");
        }
    })
    .join()
    .unwrap();
    let (sink, received) = sink();
    logging::with_sink(sink, || {});
    let received = received.lock().unwrap().clone();
    let background: Vec<&String> = received
        .iter()
        .map(|(_, l, _)| l)
        .filter(|l| l.contains("linha de fundo"))
        .collect();
    // (Lines a background thread of another test may still log count too: hence the bounds.)
    assert!(
        background.len() <= 10_000 && background.len() >= 9_900,
        "{}",
        background.len()
    );
    assert!(background.last().unwrap().ends_with("linha de fundo 10024"));
    // The newest are kept, in order, without a gap.
    let numbers: Vec<u32> = background
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1));
    let notice: Vec<&(LogLevel, String, ThreadId)> = received
        .iter()
        .filter(|(_, l, _)| l.contains("descartadas"))
        .collect();
    assert_eq!(notice.len(), 1, "{notice:?}");
    assert_eq!(notice[0].0, LogLevel::Warn);
    let dropped: usize = notice[0]
        .1
        .split("tae_edu::logging: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {notice:?}"));
    assert!(dropped >= 25, "{notice:?}");
    assert!(
        background.len() + dropped >= 10_025,
        "every line delivered or counted as dropped"
    );
}

#[test]
fn lines_logged_between_exports_are_delivered_by_the_next_export() {
    let _serial = init();
    // A background thread logs while no export runs on any thread of this test...
    thread::spawn(|| log::error!("falha de rede registrada fora de uma chamada 7c1"))
        .join()
        .unwrap();
    // ...and the next sink to open receives it (at the start, before anything else).
    let (sink, received) = sink();
    logging::with_sink(sink, || {});
    let received = received.lock().unwrap().clone();
    assert!(
        received
            .iter()
            .any(|(level, l, _)| *level == LogLevel::Error && l.contains("fora de uma chamada 7c1")),
        "{received:?}"
    );
}

#[test]
fn registered_secrets_are_masked_in_every_log_line() {
    let _serial = init();
    let token = "eyJhbGciOiJkaXIi.test-token-5b9e21";
    let password = "senha-do-servico-Ç8#";
    redact::register_secret(token);
    redact::register_secret(password);
    let (sink, received) = sink();
    logging::with_sink(sink, || {
        log::info!("login ok, token {token}");
        log::debug!("Authorization: Bearer {token}; password={password}");
        let token = token.to_string();
        thread::spawn(move || log::warn!("worker saw {token}"))
            .join()
            .unwrap();
    });
    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 3, "{received:?}");
    for (_, line, _) in &received {
        assert!(
            !line.contains(token) && !line.contains(password),
            "secret in {line}"
        );
        assert!(line.contains("***"), "masked: {line}");
    }
}

// ----- through the exports, with a C-style host table ---------------------------------------

struct Host {
    owner: ThreadId,
    logs: Mutex<Vec<(i32, String, bool)>>,
    permission_answer: (i32, String),
}

unsafe extern "C" fn host_call(
    ctx: *mut c_void,
    _method: *const u8,
    _method_len: usize,
    _request: *const u8,
    _request_len: usize,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> i32 {
    // SAFETY: ctx is our Host.
    let h = unsafe { &*(ctx as *const Host) };
    let (status, body) = &h.permission_answer;
    let boxed = body.clone().into_bytes().into_boxed_slice();
    // SAFETY: valid out pointers.
    unsafe {
        *out_len = boxed.len();
        *out = Box::into_raw(boxed).cast::<u8>();
    }
    *status
}

unsafe extern "C" fn host_free_buffer(_ctx: *mut c_void, buf: *mut u8, len: usize) {
    // SAFETY: a Box<[u8]> of len bytes made by host_call.
    drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(buf, len)) });
}

unsafe extern "C" fn host_log(ctx: *mut c_void, level: i32, msg: *const u8, len: usize) {
    // SAFETY: ctx is our Host; msg valid for len bytes.
    let (h, msg) = unsafe { (&*(ctx as *const Host), std::slice::from_raw_parts(msg, len)) };
    let on_owner = thread::current().id() == h.owner;
    h.logs
        .lock()
        .unwrap()
        .push((level, String::from_utf8_lossy(msg).into_owned(), on_owner));
}

fn table(h: &Host) -> TaeEduHost {
    TaeEduHost {
        abi_version: ABI_VERSION,
        struct_size: std::mem::size_of::<TaeEduHost>() as u32,
        ctx: h as *const Host as *mut c_void,
        call: Some(host_call),
        free_buffer: Some(host_free_buffer),
        log: Some(host_log),
        progress: None,
    }
}

type JsonExport =
    unsafe extern "C" fn(*const TaeEduHost, *const u8, usize, *mut *mut u8, *mut usize) -> i32;

fn call(export: JsonExport, h: &Host, request: &Value) -> (i32, String) {
    let request = request.to_string();
    let (mut out, mut out_len) = (std::ptr::null_mut(), 0usize);
    // SAFETY: valid table, request and out pointers.
    let status = unsafe {
        export(
            &table(h),
            request.as_ptr(),
            request.len(),
            &mut out,
            &mut out_len,
        )
    };
    // SAFETY: the response is read and freed once.
    let text =
        String::from_utf8(unsafe { std::slice::from_raw_parts(out, out_len) }.to_vec()).unwrap();
    // SAFETY: the buffer this call returned, freed exactly once.
    unsafe { tae_edu_buffer_free(out, out_len) };
    (status, text)
}

#[test]
fn an_export_logs_to_the_host_on_the_calling_thread() {
    let _serial = init();
    let h = Host {
        owner: thread::current().id(),
        logs: Mutex::new(Vec::new()),
        permission_answer: (0, r#"{"granted":true}"#.into()),
    };
    let (status, _) = call(tae_edu_configure, &h, &json!({"action": "describe"}));
    assert_eq!(status, 0);
    let (status, _) = call(tae_edu_configure, &h, &json!({"action": "nope"}));
    assert_eq!(status, 3);
    let logs = h.logs.lock().unwrap().clone();
    assert!(
        logs.iter().any(
            |(level, l, _)| *level == 4 && l.contains("tae_edu_configure: request of 21 bytes")
        ),
        "{logs:?}"
    );
    // The refused call: one warning in Portuguese (what the user is told, and the status
    // number), the code and the technical detail only at debug level.
    let warnings: Vec<&String> = logs
        .iter()
        .filter(|(level, l, _)| *level == 2 && l.contains("tae_edu_configure"))
        .map(|(_, l, _)| l)
        .collect();
    assert_eq!(warnings.len(), 1, "{logs:?}");
    assert!(
        warnings[0].contains("chamada recusada com o código 3")
            && warnings[0].contains("Requisição inválida"),
        "the refused request's warning is in Portuguese: {logs:?}"
    );
    for english in [
        "INVALID_REQUEST",
        "unknown variant",
        " in ",
        "refused",
        "request",
    ] {
        assert!(
            !warnings[0].contains(english),
            "English `{english}` in the default-level line: {}",
            warnings[0]
        );
    }
    assert!(
        logs.iter()
            .any(|(level, l, _)| *level == 4 && l.contains("INVALID_REQUEST (3)")),
        "the code and the detail are logged at debug level: {logs:?}"
    );
    assert!(logs.iter().all(|(_, _, on_owner)| *on_owner), "{logs:?}");
}

#[test]
fn a_secret_in_a_host_answer_never_reaches_a_log_line_or_the_response() {
    let _serial = init();
    let secret = "host-token-Zq81-never-shown";
    redact::register_secret(secret);
    let h = Host {
        owner: thread::current().id(),
        logs: Mutex::new(Vec::new()),
        permission_answer: (
            5,
            format!(r#"{{"message":"sessão expirada, token {secret}"}}"#),
        ),
    };
    let request = json!({"session": "rm-7", "invoked_from": {"kind": "contract_view", "contract_keys": ["1;1;1"]},
                         "option": "check", "params": {}});
    let (status, response) = call(tae_edu_execute, &h, &request);
    assert_eq!(status, 7, "{response}");
    assert!(!response.contains(secret), "{response}");
    assert!(
        response.contains("sessão expirada, token ***"),
        "{response}"
    );
    let logs = h.logs.lock().unwrap().clone();
    assert!(
        logs.iter().any(|(level, l, _)| *level == 4
            && l.contains("HOST_ERROR")
            && l.contains("token ***")),
        "the failure's detail is logged at debug level, masked: {logs:?}"
    );
    assert!(
        logs.iter().any(|(level, l, _)| *level == 2
            && l.contains("chamada recusada com o código 7")
            && l.contains("O sistema hospedeiro (RM) não respondeu como esperado.")),
        "the refused call is logged in Portuguese at the default level: {logs:?}"
    );
    assert!(logs.iter().all(|(_, l, _)| !l.contains(secret)), "{logs:?}");
}

#[test]
fn a_real_tls_run_logs_only_on_the_calling_thread_and_never_the_password() {
    // configure "test" against tae-sim over HTTPS (its own CA): the TLS and HTTP work runs on the
    // plugin's runtime workers while the export blocks the calling thread. At debug level
    // (rustls, reqwest and hyper log too) every line the host receives must arrive on the
    // calling thread, none with the service password.
    let _serial = init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = tae_sim::SimServer::start(tae_sim::SimOptions {
        tls: true,
        ..tae_sim::SimOptions::default()
    })
    .expect("tae-sim starts with TLS");
    let base = sim.base_url();
    assert!(base.starts_with("https://"), "{base}");
    let ca = sim.ca_cert_path().expect("a CA file");
    let h = Host {
        owner: thread::current().id(),
        logs: Mutex::new(Vec::new()),
        permission_answer: (1, r#"{"message":"unused"}"#.into()),
    };
    let request = json!({"action": "test", "values": {
        "auth_url": format!("{base}/identityintegration"), "api_url": base,
        "service_user": tae_sim::ADMIN_EMAIL, "service_password": tae_sim::ADMIN_PASSWORD,
        "ca_file": ca.to_string_lossy(), "request_timeout_secs": 10}});
    let (status, response) = call(tae_edu_configure, &h, &request);
    assert_eq!(status, 0, "{response}");
    let body: Value = serde_json::from_str(&response).unwrap();
    assert_eq!(body["login_ok"], true, "{response}");
    assert!(!response.contains(tae_sim::ADMIN_PASSWORD));
    let logs = h.logs.lock().unwrap().clone();
    assert!(!logs.is_empty());
    assert!(logs.iter().all(|(_, _, on_owner)| *on_owner), "{logs:?}");
    assert!(
        logs.iter()
            .all(|(_, l, _)| !l.contains(tae_sim::ADMIN_PASSWORD)),
        "{logs:?}"
    );
    sim.shutdown();
}
