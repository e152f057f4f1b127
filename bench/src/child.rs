//! `tae-edu-bench run-one`: the measured host process. Loads the release plugin, opens the
//! seeded school database through host-sim's `RmHost`, and runs one `execute` (for a check:
//! a send first, unmeasured, then the check), printing a [`ChildReport`] as one JSON line.

use crate::memhost::MemoryHost;
use crate::procstat;
use host_sim::seed::{DEMO_PERIOD, DEMO_RM_USER, DEMO_RM_USER_CPF};
use host_sim::{Plugin, RmHost, SchoolDb, UiScript};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

/// The RM session every benchmark run uses.
pub const BENCH_SESSION: &str = "rm-sessao-bench-1";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
pub enum Op {
    Send,
    Check,
}

/// Which host serves the plugin's callbacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
pub enum HostKind {
    /// host-sim's `RmHost` over the SQLite school database.
    Sim,
    /// [`crate::memhost::MemoryHost`]: everything in memory (send with the `file` source only).
    Memory,
}

#[derive(clap::Args, Debug, Clone)]
pub struct RunOneArgs {
    /// The plugin library to load.
    #[arg(long)]
    pub plugin: PathBuf,
    /// The seeded school database (its global parameters point at tae-sim).
    #[arg(long)]
    pub db: PathBuf,
    /// tae-sim's base URL (to reset its counters between the send and a check).
    #[arg(long)]
    pub base_url: String,
    #[arg(long, value_enum)]
    pub op: Op,
    /// The PDF sent for every contract; without it, the host renders the contract report per
    /// contract (host-sim's printpdf renderer).
    #[arg(long)]
    pub file: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "sim")]
    pub host: HostKind,
}

/// What the measured process reports about the measured `execute`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ChildReport {
    /// The plugin's status code (0 = OK).
    pub status: i32,
    /// Why the run is not valid (plugin error, not every contract processed, ...).
    pub error: Option<String>,
    /// The response's outcome counts (sent, skipped, failed, ...).
    pub outcomes: BTreeMap<String, u64>,
    pub total: u64,
    pub wall_ms: f64,
    pub cpu_user_ms: f64,
    pub cpu_sys_ms: f64,
    /// Resident set before the measured call (plugin loaded, database open).
    pub rss_before_kb: u64,
    /// Peak resident set during the measured call (since a reset just before it, when the
    /// kernel allows; else since the process started).
    pub peak_rss_kb: u64,
    pub peak_reset: bool,
    /// Host methods the plugin called during the measured call.
    pub host_calls: BTreeMap<String, u64>,
    /// The measured call's start and end, in microseconds since the Unix epoch (to line up
    /// with tae-sim's timeline).
    pub call_start_us: u64,
    pub call_end_us: u64,
    /// For a check: the send before it.
    pub pre_send_wall_ms: Option<f64>,
    pub pre_send_outcomes: Option<BTreeMap<String, u64>>,
}

fn outcome_counts(response: &Value) -> (BTreeMap<String, u64>, u64) {
    let mut counts = BTreeMap::new();
    let results = response
        .get("results")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for r in &results {
        let o = r.get("outcome").and_then(Value::as_str).unwrap_or("?");
        *counts.entry(o.to_string()).or_insert(0) += 1;
    }
    (counts, results.len() as u64)
}

fn first_failure(response: &Value) -> Option<String> {
    response
        .get("results")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| {
            !matches!(
                r.get("outcome").and_then(Value::as_str),
                Some("sent") | Some("pending")
            )
        })
        .and_then(|r| r.get("message").and_then(Value::as_str))
        .map(str::to_string)
}

fn error_text(status: i32, response: &Value) -> String {
    let e = &response["error"];
    format!(
        "status {status}: {} ({})",
        e["message"].as_str().unwrap_or("?"),
        e["detail"].as_str().unwrap_or("")
    )
}

/// Runs one measured `execute` and answers its report (errors inside the report).
pub fn run(args: &RunOneArgs) -> ChildReport {
    match run_inner(args) {
        Ok(r) => r,
        Err(e) => ChildReport {
            status: -1,
            error: Some(e),
            ..Default::default()
        },
    }
}

fn run_inner(args: &RunOneArgs) -> Result<ChildReport, String> {
    host_sim::install_crypto_provider();
    if args.host == HostKind::Memory {
        return run_memory(args);
    }
    let plugin = Plugin::load(&args.plugin)?;
    let db = SchoolDb::open(&args.db).map_err(|e| e.to_string())?;
    // Counted, not loaded: memory the host process touched before the call stays in its
    // RSS (the allocator keeps it), and would grow the call's peak with N.
    let contracts = db
        .conn()
        .query_row("SELECT COUNT(*) FROM contracts", [], |r| r.get::<_, i64>(0))
        .map_err(|e| e.to_string())? as u64;
    let host = RmHost::new(db, DEMO_RM_USER);
    host.set_ui(
        UiScript::with_credentials(tae_sim::ADMIN_EMAIL, tae_sim::ADMIN_PASSWORD)
            .then_cpf(DEMO_RM_USER_CPF),
    );
    let source = match &args.file {
        Some(p) => json!({"kind": "file", "path": p}),
        None => json!({"kind": "report", "report_code": host_sim::CONTRACT_REPORT_CODE}),
    };
    let menu = json!({"kind": "menu", "filter": {"codcoligada": 1, "period": DEMO_PERIOD}});
    let send = json!({"session": BENCH_SESSION, "invoked_from": menu, "option": "send",
                      "params": {"source": source}});
    let mut report = ChildReport::default();
    let request = match args.op {
        Op::Send => send,
        Op::Check => {
            let t = Instant::now();
            let (status, response) = plugin.execute(&host, &send);
            if status != 0 {
                return Err(format!(
                    "send before check: {}",
                    error_text(status, &response)
                ));
            }
            let (counts, _) = outcome_counts(&response);
            if counts.get("sent").copied().unwrap_or(0) != contracts {
                return Err(format!(
                    "send before check: {counts:?} of {contracts} contracts; first: {:?}",
                    first_failure(&response)
                ));
            }
            report.pre_send_wall_ms = Some(t.elapsed().as_secs_f64() * 1000.0);
            report.pre_send_outcomes = Some(counts);
            let http = reqwest::blocking::Client::new();
            http.post(format!("{}/_sim/counters/reset", args.base_url))
                .send()
                .and_then(|r| r.error_for_status())
                .map_err(|e| format!("cannot reset tae-sim's counters: {e}"))?;
            json!({"session": BENCH_SESSION, "invoked_from": menu, "option": "check", "params": {}})
        }
    };
    let calls_before = host.call_counts();

    let request_bytes = serde_json::to_vec(&request).map_err(|e| e.to_string())?;
    // The measured call.
    report.peak_reset = procstat::reset_peak_rss();
    report.rss_before_kb = procstat::status_kb("VmRSS").unwrap_or(0);
    let (u0, s0) = procstat::cpu_times_us();
    report.call_start_us = tae_sim::unix_micros();
    let t = Instant::now();
    // The call ends when the answer's bytes are in the host's hands; the host's own reading
    // of them (here a JSON tree for the checks below) is after it, outside the figures.
    let (status, answer) = plugin.execute_bytes(&host, &request_bytes);
    end_of_call(&mut report, t, (u0, s0));
    if std::env::var_os("TAE_EDU_BENCH_EXIT_AFTER_CALL").is_some() {
        // For a heap profiler's peak to fall inside the call (docs/PERFORMANCE.md).
        std::process::exit(0);
    }
    let response: Value = serde_json::from_slice(&answer)
        .map_err(|e| format!("the plugin's answer is not JSON: {e}"))?;
    drop(answer);

    report.status = status;
    for (method, n) in host.call_counts() {
        let d = n - calls_before.get(&method).copied().unwrap_or(0);
        if d > 0 {
            report.host_calls.insert(method, d);
        }
    }
    if status != 0 {
        report.error = Some(error_text(status, &response));
        return Ok(report);
    }
    judge(&mut report, args.op, contracts, &response);
    Ok(report)
}

/// Checks that every contract got the expected outcome (else the report carries an error).
/// Closes the measured window of the call started at `t` with the CPU times `cpu0`: wall,
/// end time, peak RSS and CPU.
fn end_of_call(report: &mut ChildReport, t: Instant, cpu0: (u64, u64)) {
    report.wall_ms = t.elapsed().as_secs_f64() * 1000.0;
    report.call_end_us = tae_sim::unix_micros();
    let (u1, s1) = procstat::cpu_times_us();
    report.peak_rss_kb = procstat::status_kb("VmHWM").unwrap_or(0);
    report.cpu_user_ms = u1.saturating_sub(cpu0.0) as f64 / 1000.0;
    report.cpu_sys_ms = s1.saturating_sub(cpu0.1) as f64 / 1000.0;
}

fn judge(report: &mut ChildReport, op: Op, contracts: u64, response: &Value) {
    let (counts, total) = outcome_counts(response);
    report.total = total;
    let expected = match op {
        Op::Send => "sent",
        Op::Check => "pending",
    };
    let good = counts.get(expected).copied().unwrap_or(0);
    if good != contracts || total != contracts {
        report.error = Some(format!(
            "{good} of {contracts} contracts {expected}; outcomes {counts:?}; first other: {:?}",
            first_failure(response)
        ));
    }
    report.outcomes = counts;
}

/// A send through [`MemoryHost`]: the seeded database is read before the measured call only.
fn run_memory(args: &RunOneArgs) -> Result<ChildReport, String> {
    if args.op != Op::Send {
        return Err("the memory host runs sends only".into());
    }
    let file = args
        .file
        .as_ref()
        .ok_or("the memory host needs --file (it does not render reports)")?;
    let plugin = Plugin::load(&args.plugin)?;
    let menu = json!({"kind": "menu", "filter": {"codcoligada": 1, "period": DEMO_PERIOD}});
    let host = {
        let db = SchoolDb::open(&args.db).map_err(|e| e.to_string())?;
        MemoryHost::load(
            &db,
            DEMO_RM_USER,
            &menu["filter"],
            &file.display().to_string(),
            UiScript::with_credentials(tae_sim::ADMIN_EMAIL, tae_sim::ADMIN_PASSWORD)
                .then_cpf(DEMO_RM_USER_CPF),
        )?
    };
    let contracts = host.contract_count() as u64;
    let send = json!({"session": BENCH_SESSION, "invoked_from": menu, "option": "send",
                      "params": {"source": {"kind": "file", "path": file}}});
    let request = serde_json::to_vec(&send).map_err(|e| e.to_string())?;
    let table = host.table();
    let mut report = ChildReport {
        peak_reset: procstat::reset_peak_rss(),
        rss_before_kb: procstat::status_kb("VmRSS").unwrap_or(0),
        ..Default::default()
    };
    let (u0, s0) = procstat::cpu_times_us();
    report.call_start_us = tae_sim::unix_micros();
    let t = Instant::now();
    // SAFETY: the table points at `host`, alive until the end of this function; the request
    // slice is valid for its length.
    let (status, bytes) = unsafe {
        plugin.call_raw(
            host_sim::Export::Execute,
            &table,
            request.as_ptr(),
            request.len(),
            true,
        )
    };
    end_of_call(&mut report, t, (u0, s0));
    report.status = status;
    report.host_calls = host.call_counts();
    let response: Value = serde_json::from_slice(&bytes.unwrap_or_default()).unwrap_or(Value::Null);
    if status != 0 {
        report.error = Some(error_text(status, &response));
        return Ok(report);
    }
    judge(&mut report, Op::Send, contracts, &response);
    if report.error.is_none() && host.record_count() < contracts as usize {
        report.error = Some(format!(
            "the memory host holds {} records for {contracts} contracts",
            host.record_count()
        ));
    }
    Ok(report)
}
