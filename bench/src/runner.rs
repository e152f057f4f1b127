//! The bench's own process: for each run, a fresh tae-sim process with the injected latency, a
//! fresh school database seeded with `seed_bulk(N)`, and a child host process (`run-one`) that
//! does the measured `execute`; then tae-sim's request counters.

use crate::child::{ChildReport, HostKind};
use crate::report;
use crate::rmway::{RmWayReport, Signer};
use crate::BenchArgs;
use host_sim::{render_contract_pdf, seed_bulk, ReportOptions, SchoolDb};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// What one run measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A send of N contracts.
    Send,
    /// A check of N documents (after an unmeasured send of them).
    Check,
    /// One contract with the big PDF (`file` source).
    BigPdf,
    /// One contract with the small PDF, otherwise as `BigPdf` (the reference for its memory).
    BigPdfReference,
    /// "RM's own way": the bench's sequential client sends the N contracts and reads each
    /// document's status (no plugin).
    RmWay,
}

#[derive(Clone, Debug)]
pub struct Spec {
    pub kind: Kind,
    pub latency_ms: u64,
    pub n: usize,
    pub concurrency: u32,
    /// The host renders the contract report per contract instead of one file for all.
    pub report_source: bool,
    /// tae-sim offers the many-ids route (D5).
    pub many_ids: bool,
    /// Which host serves the plugin.
    pub host: HostKind,
    /// tae-sim records its request timeline (read after the run).
    pub timeline: bool,
}

impl Spec {
    fn send(latency_ms: u64, n: usize, concurrency: u32) -> Spec {
        Spec {
            kind: Kind::Send,
            latency_ms,
            n,
            concurrency,
            report_source: false,
            many_ids: true,
            host: HostKind::Sim,
            timeline: latency_ms > 0,
        }
    }

    /// `max_concurrency` as set, or "default" when the bench leaves the parameter unset (0).
    pub fn concurrency_label(&self) -> String {
        if self.concurrency == 0 {
            "default".into()
        } else {
            self.concurrency.to_string()
        }
    }

    pub fn label(&self) -> String {
        format!(
            "{:?} L={} N={} c={}{}{}{}",
            self.kind,
            self.latency_ms,
            self.n,
            self.concurrency_label(),
            if self.report_source { " report" } else { "" },
            if self.many_ids { "" } else { " no-many-ids" },
            if self.host == HostKind::Memory {
                " memory-host"
            } else {
                ""
            }
        )
    }

    /// A rough duration, to decide repeats and skips: about 3.6 requests per contract, each
    /// taking L, `concurrency` at a time; at L = 0, a few ms of CPU per contract.
    fn estimated_secs(&self) -> f64 {
        let n = self.n as f64;
        if self.kind == Kind::RmWay {
            // Sequential: lookup, registration (3 of 4), upload, publish, then one read.
            return n * 4.75 * self.latency_ms as f64 / 1000.0 + n * 0.004;
        }
        let c = if self.concurrency == 0 {
            8.0
        } else {
            self.concurrency as f64
        };
        let per_send = if self.latency_ms > 0 {
            n * 3.6 * self.latency_ms as f64 / c / 1000.0
        } else {
            n * 0.004
        };
        let per_send = per_send + 0.3;
        match self.kind {
            Kind::Check => per_send * 1.5,
            _ => per_send,
        }
    }
}

/// One measured run.
#[derive(Clone, Debug)]
pub struct Measured {
    pub child: ChildReport,
    /// tae-sim's counters after the run: "<METHOD> <route template>" → requests.
    pub counters: BTreeMap<String, u64>,
    /// Distinct financial responsibles (by e-mail) among the N contracts.
    pub distinct_responsibles: u64,
    /// Size of the PDF sent per contract (the file; for the report source, the first contract's).
    pub document_bytes: u64,
    /// Time to start tae-sim and seed the database (not measured).
    pub setup_ms: f64,
    /// tae-sim's request timeline of the run, when recorded.
    pub timeline: Option<tae_sim::TimelineDump>,
    /// For [`Kind::RmWay`]: what the sequential client measured.
    pub rm_way: Option<RmWayReport>,
}

impl Measured {
    pub fn requests(&self) -> u64 {
        self.counters.values().sum()
    }
}

/// A run with its repetitions (the reported one is the median by wall time).
#[derive(Clone, Debug)]
pub struct RunResult {
    pub spec: Spec,
    pub reps: Vec<Measured>,
    pub skipped: Option<String>,
    pub failed: Option<String>,
}

impl RunResult {
    /// The repetition with the median wall time.
    pub fn median(&self) -> Option<&Measured> {
        let mut v: Vec<&Measured> = self.reps.iter().collect();
        v.sort_by(|a, b| a.child.wall_ms.total_cmp(&b.child.wall_ms));
        v.get(v.len().saturating_sub(1) / 2).copied()
    }

    pub fn wall_range_ms(&self) -> Option<(f64, f64)> {
        let walls: Vec<f64> = self.reps.iter().map(|m| m.child.wall_ms).collect();
        if walls.is_empty() {
            return None;
        }
        Some((
            walls.iter().copied().fold(f64::INFINITY, f64::min),
            walls.iter().copied().fold(0.0, f64::max),
        ))
    }
}

/// Paths of what the bench drives.
pub struct Ctx {
    pub plugin: PathBuf,
    pub tae_sim: PathBuf,
    pub exe: PathBuf,
    pub big_pdf_mb: usize,
    /// A command prefix for the measured host process (profiling).
    pub wrap: Option<String>,
    /// Extra arguments for tae-sim.
    pub sim_args: Vec<String>,
}

/// A tae-sim process of this bench (killed, by its handle, when dropped).
struct SimProcess {
    child: Child,
    base_url: String,
}

impl SimProcess {
    fn start(
        bin: &Path,
        latency_ms: u64,
        many_ids: bool,
        timeline: bool,
        extra: &[String],
    ) -> Result<SimProcess, String> {
        let mut cmd = Command::new(bin);
        cmd.args(["--addr", "127.0.0.1:0", "--max-upload-mb", "100"]);
        cmd.args(extra);
        if timeline {
            cmd.arg("--timeline");
        }
        if latency_ms > 0 {
            cmd.args(["--latency-ms", &latency_ms.to_string()]);
        }
        if !many_ids {
            cmd.arg("--no-many-ids");
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let stdout = child.stdout.take().ok_or("tae-sim has no stdout")?;
        let mut line = String::new();
        let mut reader = BufReader::new(stdout);
        let read = reader.read_line(&mut line);
        let mut sim = SimProcess {
            child,
            base_url: line.trim().to_string(),
        };
        match read {
            Ok(n) if n > 0 && sim.base_url.starts_with("http") => {}
            _ => {
                sim.stop();
                return Err(format!(
                    "tae-sim did not print its base URL (got {:?})",
                    sim.base_url
                ));
            }
        }
        // Keep draining its stdout so it never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                sink.clear();
            }
        });
        Ok(sim)
    }

    fn counters(&self) -> Result<BTreeMap<String, u64>, String> {
        reqwest::blocking::get(format!("{}/_sim/counters", self.base_url))
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.json::<BTreeMap<String, u64>>())
            .map_err(|e| format!("cannot read tae-sim's counters: {e}"))
    }

    fn timeline(&self) -> Result<tae_sim::TimelineDump, String> {
        reqwest::blocking::get(format!("{}/_sim/timeline", self.base_url))
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.json::<tae_sim::TimelineDump>())
            .map_err(|e| format!("cannot read tae-sim's timeline: {e}"))
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A valid PDF of about `mb` MB: one page, plus one incompressible stream object.
pub fn big_pdf(mb: usize) -> Vec<u8> {
    let target = mb * 1024 * 1024;
    let mut out: Vec<u8> = Vec::with_capacity(target + 4096);
    let mut offsets = Vec::new();
    out.extend_from_slice(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n");
    let mut obj = |out: &mut Vec<u8>, body: &[u8]| {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", offsets.len()).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    };
    obj(&mut out, b"<< /Type /Catalog /Pages 2 0 R >>");
    obj(&mut out, b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>");
    obj(
        &mut out,
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
    );
    let text = b"BT /F1 12 Tf 72 770 Td (Contrato - anexo grande) Tj ET";
    let mut content = format!("<< /Length {} >>\nstream\n", text.len()).into_bytes();
    content.extend_from_slice(text);
    content.extend_from_slice(b"\nendstream");
    obj(&mut out, &content);
    let payload_len = target.saturating_sub(out.len() + 512);
    let mut payload = Vec::with_capacity(payload_len + 64);
    payload.extend_from_slice(format!("<< /Length {payload_len} >>\nstream\n").as_bytes());
    let start = payload.len();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while payload.len() - start < payload_len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        payload.extend_from_slice(&x.to_le_bytes());
    }
    payload.truncate(start + payload_len);
    payload.extend_from_slice(b"\nendstream");
    obj(&mut out, &payload);
    let xref_at = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", offsets.len() + 1).as_bytes(),
    );
    for off in &offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref_at}\n%%EOF\n",
            offsets.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// Seeds the database; answers the distinct responsibles, the first contract's PDF and the
/// signers (for RM's way).
fn setup_db(
    db_path: &Path,
    spec: &Spec,
    base_url: &str,
) -> Result<(u64, Vec<u8>, Vec<Signer>), String> {
    let db = SchoolDb::open(db_path).map_err(|e| e.to_string())?;
    seed_bulk(&db, spec.n).map_err(|e| e.to_string())?;
    db.configure_tae(base_url, tae_sim::ADMIN_EMAIL, tae_sim::ADMIN_PASSWORD)
        .map_err(|e| e.to_string())?;
    if spec.concurrency > 0 {
        db.set_param("max_concurrency", &json!(spec.concurrency))
            .map_err(|e| e.to_string())?;
    }
    db.set_param("max_file_mb", &json!(100))
        .map_err(|e| e.to_string())?;
    let contracts = db.all_contracts().map_err(|e| e.to_string())?;
    let distinct: BTreeSet<String> = contracts
        .iter()
        .filter_map(|c| c.financial_responsible.as_ref())
        .filter_map(|r| r.email.clone())
        .map(|e| e.to_lowercase())
        .collect();
    let first = contracts.first().ok_or("the seed made no contract")?;
    let pdf = render_contract_pdf(first, &ReportOptions::default());
    let signers = contracts
        .iter()
        .filter_map(|c| {
            let r = c.financial_responsible.as_ref()?;
            Some(Signer {
                contract_key: format!("{};{};{}", c.codcoligada, c.codcontrato, c.ra),
                name: r.name.clone(),
                email: r.email.clone()?,
                cpf: r.cpf.clone()?,
            })
        })
        .collect();
    Ok((distinct.len() as u64, pdf, signers))
}

fn measure_once(ctx: &Ctx, spec: &Spec) -> Result<Measured, String> {
    let setup = Instant::now();
    let dir = tempfile::Builder::new()
        .prefix("tae-edu-bench-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let sim = SimProcess::start(
        &ctx.tae_sim,
        spec.latency_ms,
        spec.many_ids,
        spec.timeline,
        &ctx.sim_args,
    )?;
    let db_path = dir.path().join("escola.db");
    let (distinct, small_pdf, signers) = setup_db(&db_path, spec, &sim.base_url)?;
    if spec.kind == Kind::RmWay {
        let setup_ms = setup.elapsed().as_secs_f64() * 1000.0;
        let rm = crate::rmway::run(&sim.base_url, &signers, &small_pdf)?;
        let mut child = ChildReport {
            wall_ms: rm.send_ms + rm.check_ms,
            total: rm.sent,
            ..Default::default()
        };
        if rm.sent != spec.n as u64 || rm.checked != spec.n as u64 {
            child.error = Some(format!(
                "RM's way sent {} and checked {} of {}",
                rm.sent, rm.checked, spec.n
            ));
        }
        let counters = sim.counters()?;
        return Ok(Measured {
            child,
            counters,
            distinct_responsibles: distinct,
            document_bytes: small_pdf.len() as u64,
            setup_ms,
            timeline: None,
            rm_way: Some(rm),
        });
    }
    let (file, document_bytes) = match spec.kind {
        Kind::BigPdf => {
            let pdf = big_pdf(ctx.big_pdf_mb);
            let p = dir.path().join("contrato-grande.pdf");
            std::fs::write(&p, &pdf).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
            (Some(p), pdf.len() as u64)
        }
        _ if spec.report_source => (None, small_pdf.len() as u64),
        _ => {
            let p = dir.path().join("contrato.pdf");
            std::fs::write(&p, &small_pdf)
                .map_err(|e| format!("cannot write {}: {e}", p.display()))?;
            (Some(p), small_pdf.len() as u64)
        }
    };
    let setup_ms = setup.elapsed().as_secs_f64() * 1000.0;
    let mut cmd = match &ctx.wrap {
        Some(prefix) => {
            let mut words = prefix.split_whitespace();
            let mut c = Command::new(words.next().ok_or("--wrap is empty")?);
            c.args(words).arg(&ctx.exe);
            c
        }
        None => Command::new(&ctx.exe),
    };
    cmd.arg("run-one")
        .arg("--plugin")
        .arg(&ctx.plugin)
        .arg("--db")
        .arg(&db_path)
        .args(["--base-url", &sim.base_url])
        .args([
            "--op",
            match spec.kind {
                Kind::Check => "check",
                _ => "send",
            },
        ]);
    if let Some(f) = &file {
        cmd.arg("--file").arg(f);
    }
    if spec.host == HostKind::Memory {
        cmd.args(["--host", "memory"]);
    }
    cmd.stdin(Stdio::null()).stderr(Stdio::inherit());
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run the host process: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| {
            format!(
                "the host process answered no report ({}); stdout: {}",
                out.status,
                stdout.chars().take(500).collect::<String>()
            )
        })?;
    let child: ChildReport = serde_json::from_str(line)
        .map_err(|e| format!("unreadable report from the host process: {e}"))?;
    let counters = sim.counters()?;
    let timeline = if spec.timeline {
        Some(sim.timeline()?)
    } else {
        None
    };
    drop(sim);
    Ok(Measured {
        child,
        counters,
        distinct_responsibles: distinct,
        document_bytes,
        setup_ms,
        timeline,
        rm_way: None,
    })
}

/// Runs one spec (with repeats when cheap), printing a progress line.
fn run_spec(ctx: &Ctx, args: &BenchArgs, spec: Spec) -> RunResult {
    let est = spec.estimated_secs();
    if est > args.max_run_secs {
        let reason = format!(
            "skipped: estimated {:.0} s, over --max-run-secs {:.0}",
            est, args.max_run_secs
        );
        eprintln!("  {:<40} {reason}", spec.label());
        return RunResult {
            spec,
            reps: Vec::new(),
            skipped: Some(reason),
            failed: None,
        };
    }
    let reps = if est < args.repeat_below_secs {
        args.repeat.max(1)
    } else {
        1
    };
    let mut result = RunResult {
        spec,
        reps: Vec::new(),
        skipped: None,
        failed: None,
    };
    for _ in 0..reps {
        eprint!("  {:<40} ", result.spec.label());
        let _ = std::io::stderr().flush();
        match measure_once(ctx, &result.spec) {
            Ok(m) => {
                eprintln!(
                    "setup {:>6.0} ms  wall {:>9.1} ms  requests {:>6}  cpu {:>8.1} ms  peak RSS {:>7.1} MB{}",
                    m.setup_ms,
                    m.child.wall_ms,
                    m.requests(),
                    m.child.cpu_user_ms + m.child.cpu_sys_ms,
                    m.child.peak_rss_kb as f64 / 1024.0,
                    m.child
                        .error
                        .as_ref()
                        .map(|e| format!("  ERROR: {e}"))
                        .unwrap_or_default()
                );
                if let Some(e) = &m.child.error {
                    result.failed = Some(e.clone());
                }
                result.reps.push(m);
            }
            Err(e) => {
                eprintln!("FAILED: {e}");
                result.failed = Some(e);
                break;
            }
        }
    }
    result
}

fn beside_exe(exe: &Path, name: &str) -> PathBuf {
    exe.parent().unwrap_or(Path::new(".")).join(name)
}

/// The whole benchmark.
pub fn run_all(args: &BenchArgs) -> Result<(), String> {
    host_sim::install_crypto_provider();
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let ctx = Ctx {
        plugin: args
            .plugin
            .clone()
            .unwrap_or_else(|| beside_exe(&exe, host_sim::plugin::PLUGIN_FILE_NAME)),
        tae_sim: args
            .tae_sim
            .clone()
            .unwrap_or_else(|| beside_exe(&exe, "tae-sim")),
        exe: exe.clone(),
        big_pdf_mb: args.big_pdf_mb,
        wrap: args.wrap.clone(),
        sim_args: args.sim_arg.clone(),
    };
    for (what, p) in [("plugin", &ctx.plugin), ("tae-sim", &ctx.tae_sim)] {
        if !p.is_file() {
            return Err(format!(
                "the {what} is not at {} — build it first: cargo build --release -p tae-edu -p tae-sim -p tae-edu-bench",
                p.display()
            ));
        }
    }
    let latencies = args.latencies.clone().unwrap_or_else(|| vec![0, 20]);
    let explicit = args.sizes.is_some()
        || args.concurrencies.is_some()
        || args.latencies.is_some()
        || args.quick
        || args.full;
    let sizes = args.sizes.clone().unwrap_or_else(|| {
        if args.quick {
            vec![100]
        } else {
            vec![100, 1_000, 10_000]
        }
    });
    let concurrencies = args.concurrencies.clone().unwrap_or_else(|| {
        if args.full {
            vec![1, 4, 16, 32]
        } else {
            vec![1, 16]
        }
    });
    let check_sizes: Vec<usize> = args
        .check_sizes
        .clone()
        .unwrap_or_else(|| {
            if args.quick {
                vec![1_000]
            } else {
                vec![1_000, 5_000]
            }
        })
        .into_iter()
        .filter(|n| *n > 0)
        .collect();

    let started = Instant::now();
    let env = report::Environment::capture(&ctx, args);
    eprintln!(
        "tae-edu-bench: plugin {}, tae-sim {}; load average {}",
        ctx.plugin.display(),
        ctx.tae_sim.display(),
        env.load_before
    );
    // The headline: RM's own way against tae-edu (default concurrency, send then check), run
    // whatever --max-run-secs says (they were asked for).
    let mut headline = Vec::new();
    if !args.no_headline && !args.quick {
        let forced = BenchArgs {
            max_run_secs: f64::INFINITY,
            ..args.clone()
        };
        for &l in &args.headline_latencies {
            let n = args.headline_size;
            let tae_edu = Spec {
                kind: Kind::Check,
                timeline: false,
                ..Spec::send(l, n, 0)
            };
            let rm = Spec {
                kind: Kind::RmWay,
                timeline: false,
                ..Spec::send(l, n, 1)
            };
            headline.push((
                run_spec(&ctx, &forced, rm),
                run_spec(&ctx, &forced, tae_edu),
            ));
        }
    }
    // The send matrix: by default the rows issue 15's targets need (L = 0 at c = 1 and 16 for
    // N = 100, 1,000, 10,000; L = 20 at c = 16 for N = 1,000 and 10,000); with --sizes,
    // --concurrencies, --latencies or --full, their product.
    let mut matrix: Vec<Spec> = Vec::new();
    if explicit {
        for &l in &latencies {
            for &n in &sizes {
                for &c in &concurrencies {
                    matrix.push(Spec::send(l, n, c));
                }
            }
        }
    } else {
        for &n in &sizes {
            for &c in &concurrencies {
                matrix.push(Spec::send(0, n, c));
            }
        }
        for &n in sizes.iter().filter(|n| **n >= 1_000) {
            matrix.push(Spec::send(20, n, 16));
        }
    }
    let mut sends = Vec::new();
    for spec in matrix.into_iter().filter(|_| !args.no_sends) {
        sends.push(run_spec(&ctx, args, spec));
    }
    // The plugin apart from host-sim: the same L = 0 sends with the memory host.
    let mut memory = Vec::new();
    if !args.no_memory_host && !args.no_sends {
        let n = if args.quick { 100 } else { 1_000 };
        for &c in concurrencies.iter().filter(|c| **c == 1 || **c == 16) {
            memory.push(run_spec(
                &ctx,
                args,
                Spec {
                    host: HostKind::Memory,
                    ..Spec::send(0, n, c)
                },
            ));
        }
        // And at the first latency above 0, c = 16, for the sizes of the latency-bound target:
        // the bound without host-sim's record writes on the calling thread.
        if let Some(&l) = latencies.iter().find(|l| **l > 0) {
            let bound_sizes: Vec<usize> = if args.quick {
                vec![n]
            } else {
                sizes.iter().copied().filter(|n| *n >= 1_000).collect()
            };
            for n in bound_sizes {
                memory.push(run_spec(
                    &ctx,
                    args,
                    Spec {
                        host: HostKind::Memory,
                        ..Spec::send(l, n, 16)
                    },
                ));
            }
        }
    }
    // The host renders the report per contract (host-sim's PDF renderer in the host's CPU).
    let mut extra = Vec::new();
    let report_n = if args.quick { 100 } else { 1_000 };
    for &l in latencies.iter().filter(|_| !args.no_report_source) {
        extra.push(run_spec(
            &ctx,
            args,
            Spec {
                report_source: true,
                ..Spec::send(l, report_n, 16)
            },
        ));
    }
    let check_latency = latencies.iter().copied().max().unwrap_or(20);
    let mut checks = Vec::new();
    for &n in &check_sizes {
        checks.push(run_spec(
            &ctx,
            args,
            Spec {
                kind: Kind::Check,
                ..Spec::send(check_latency, n, 16)
            },
        ));
    }
    if let Some(&n) = check_sizes.first() {
        checks.push(run_spec(
            &ctx,
            args,
            Spec {
                kind: Kind::Check,
                many_ids: false,
                ..Spec::send(check_latency, n, 16)
            },
        ));
    }
    let mut big = Vec::new();
    if !args.no_big_pdf {
        for kind in [Kind::BigPdfReference, Kind::BigPdf] {
            big.push(run_spec(
                &ctx,
                args,
                Spec {
                    kind,
                    ..Spec::send(0, 1, 1)
                },
            ));
        }
    }
    let env = env.finish(started.elapsed().as_secs_f64());
    let text = report::render(&env, &headline, &sends, &memory, &extra, &checks, &big);
    println!("{text}");
    if !args.no_write && args.wrap.is_none() {
        let out = args.out.clone().unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .unwrap_or(Path::new("."))
                .join("docs")
                .join("PERFORMANCE.md")
        });
        report::write_between_markers(&out, &text)?;
        eprintln!("tae-edu-bench: wrote {}", out.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_pdf_is_a_pdf_of_the_size_asked() {
        let pdf = big_pdf(2);
        assert!(pdf.starts_with(b"%PDF-1.4"));
        assert!(pdf.ends_with(b"%%EOF\n"));
        let mb = pdf.len() as f64 / 1_048_576.0;
        assert!((1.9..2.1).contains(&mb), "{mb}");
        let doc = lopdf_free_check(&pdf);
        assert!(doc, "xref offsets point at objects");
    }

    /// Every xref offset points at "<n> 0 obj".
    fn lopdf_free_check(pdf: &[u8]) -> bool {
        let text = String::from_utf8_lossy(&pdf[pdf.len() - 400..]).to_string();
        let Some(start) = text.find("xref\n") else {
            return false;
        };
        let offsets: Vec<usize> = text[start..]
            .lines()
            .filter(|l| l.ends_with(" n ") || l.ends_with(" n"))
            .filter_map(|l| l.split(' ').next()?.parse().ok())
            .collect();
        !offsets.is_empty()
            && offsets
                .iter()
                .enumerate()
                .all(|(i, off)| pdf[*off..].starts_with(format!("{} 0 obj", i + 1).as_bytes()))
    }

    #[test]
    fn estimates_skip_the_slow_sequential_runs() {
        assert!(Spec::send(20, 5_000, 1).estimated_secs() > 300.0);
        assert!(Spec::send(20, 1_000, 16).estimated_secs() < 10.0);
        assert!(Spec::send(0, 100, 1).estimated_secs() < 2.0);
    }
}
