//! `proof-host`: one simulated RM application server in its own process, for the integrity
//! tests (`tests/tests/integrity_*.rs`). It loads the plugin (`$TAE_EDU_LIB`, else the build's
//! own), opens the school database given, runs one `execute` through host-sim's `RmHost`
//! (exactly the C ABI RM uses) and prints, one line each, flushed:
//!
//! - `PROGRESS {"done", "total", "detail"}` for every progress report of the plugin;
//! - `RESULT {"status", "response", "elapsed_ms", "ui_requests"}` at the end.
//!
//! Its only argument is a JSON object (see [`tae_edu_tests::proofs::HostSpec`]). It is kept
//! independent of host-sim's command line on purpose, so that the tests do not change when the
//! CLI does.

use host_sim::{Plugin, ProgressSink, RmHost, SchoolDb, UiScript};
use serde_json::{json, Value};
use std::io::Write;
use std::time::Instant;
use tae_edu_tests::proofs::HostSpec;

fn main() {
    let arg = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: proof-host '<HostSpec JSON>'");
        std::process::exit(2)
    });
    let spec: HostSpec = serde_json::from_str(&arg).unwrap_or_else(|e| {
        eprintln!("proof-host: bad spec: {e}");
        std::process::exit(2)
    });
    host_sim::install_crypto_provider();
    let plugin = match std::env::var_os("TAE_EDU_LIB") {
        Some(p) => Plugin::load(p),
        None => Plugin::load_default(),
    }
    .unwrap_or_else(|e| {
        eprintln!("proof-host: cannot load the plugin: {e}");
        std::process::exit(3)
    });
    let db = SchoolDb::open(&spec.db).unwrap_or_else(|e| {
        eprintln!("proof-host: cannot open {}: {e}", spec.db);
        std::process::exit(3)
    });
    let host = RmHost::new(db, &spec.login);
    if let Some(ui) = &spec.ui {
        host.set_ui(UiScript::with_credentials(&ui.email, &ui.password).then_cpf(&ui.cpf));
    }
    if spec.echo_log_level > 0 {
        host.echo_logs(spec.echo_log_level);
    }
    host.set_progress(ProgressSink::Observe(Box::new(|ev| {
        let line = json!({"done": ev.done, "total": ev.total, "detail": ev.detail});
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "PROGRESS {line}");
        let _ = out.flush();
        false
    })));
    let request = json!({
        "session": spec.session,
        "invoked_from": spec.invoked_from,
        "option": spec.option,
        "params": spec.params,
    });
    let started = Instant::now();
    let (status, response) = plugin.execute(&host, &request);
    let result: Value = json!({
        "status": status,
        "response": response,
        "elapsed_ms": started.elapsed().as_millis() as u64,
        "ui_requests": host.ui_requests().len(),
    });
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "RESULT {result}");
    let _ = out.flush();
}
