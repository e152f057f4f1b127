//! The table (Markdown) and the verdict on the targets of issue 8, from the measured runs.

use crate::runner::{Ctx, Kind, Measured, RunResult};
use crate::BenchArgs;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use tae_sim::api;

pub const BEGIN: &str = "<!-- bench:begin (written by tae-edu-bench; edit outside the markers) -->";
pub const END: &str = "<!-- bench:end -->";

/// Where and how the run happened.
pub struct Environment {
    pub command: String,
    pub date: String,
    pub cpu: String,
    pub cores: usize,
    pub load_before: String,
    pub load_after: String,
    pub git: String,
    pub plugin: String,
    pub total_secs: f64,
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn git(args: &[&str]) -> String {
    std::process::Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "?".into())
}

impl Environment {
    pub fn capture(ctx: &Ctx, args: &BenchArgs) -> Environment {
        let argv: Vec<String> = std::env::args().skip(1).collect();
        let target = ctx
            .exe
            .parent()
            .and_then(Path::parent)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "target".into());
        // Paths inside the workspace are shown relative to it (the block goes into the docs).
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(|p| format!("{}/", p.display()))
            .unwrap_or_default();
        // A target directory outside the workspace is this machine's own: the block shows the
        // command a reader runs, with the default one.
        let target = target
            .strip_prefix(&root)
            .map(str::to_string)
            .unwrap_or_else(|| "target".into());
        let mut command = if target == "target" {
            "cargo build --release -p tae-edu -p tae-sim -p tae-edu-bench && target/release/tae-edu-bench".to_string()
        } else {
            format!(
                "CARGO_TARGET_DIR={target} cargo build --release -p tae-edu -p tae-sim -p tae-edu-bench && {target}/release/tae-edu-bench"
            )
        };
        for a in &argv {
            command.push(' ');
            command.push_str(a);
        }
        let _ = args;
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|m| m.trim().to_string())
            })
            .unwrap_or_else(|| "?".into());
        let dirty = git(&[
            "status",
            "--porcelain",
            "--",
            "plugin",
            "host-sim",
            "tae-sim",
        ]);
        let dirty_n = dirty.lines().filter(|l| !l.trim().is_empty()).count();
        let git_desc = format!(
            "{}{}",
            git(&["rev-parse", "--short", "HEAD"]),
            if dirty_n > 0 {
                format!(" + {dirty_n} uncommitted file(s) in plugin/, host-sim/, tae-sim/")
            } else {
                String::new()
            }
        );
        let plugin = std::fs::metadata(&ctx.plugin)
            .ok()
            .and_then(|m| m.modified().ok())
            .map(|t| {
                let t: chrono::DateTime<chrono::Utc> = t.into();
                let shown = ctx.plugin.display().to_string();
                let shown = match shown.strip_prefix(&root) {
                    Some(inside) => inside.to_string(),
                    // Outside the workspace: the same library of a default build.
                    None => format!(
                        "target/release/{}",
                        ctx.plugin
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    ),
                };
                format!("{shown} (built {})", t.format("%Y-%m-%d %H:%M UTC"))
            })
            .unwrap_or_else(|| ctx.plugin.display().to_string());
        Environment {
            command,
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            cpu,
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0),
            load_before: load_average(),
            load_after: String::new(),
            git: git_desc,
            plugin,
            total_secs: 0.0,
        }
    }

    pub fn finish(mut self, total_secs: f64) -> Environment {
        self.load_after = load_average();
        self.total_secs = total_secs;
        self
    }
}

/// Short names of tae-sim's counter keys, in table order.
const ROUTES: &[(&str, &[&str])] = &[
    ("login", &[api::LOGIN_V3, api::LOGIN_V2, api::LOGIN_API]),
    ("profile", &[api::PROFILE]),
    ("lookup", &[api::USER_EMAIL_LIST]),
    ("register", &[api::REGISTER]),
    ("upload", &[api::UPLOAD]),
    ("publish", &[api::PUBLISH_V1, api::PUBLISH_V2]),
    ("read", &[api::READ_V2, api::READ_V1]),
    ("many-ids", &[api::MANY_DOCUMENTS]),
    ("search", &[api::SEARCH]),
];

/// Requests by short route name ("other" for anything else).
pub fn by_route(counters: &BTreeMap<String, u64>) -> BTreeMap<&'static str, u64> {
    let mut out: BTreeMap<&'static str, u64> = BTreeMap::new();
    for (key, n) in counters {
        let template = key.split_once(' ').map(|(_, t)| t).unwrap_or(key);
        let name = ROUTES
            .iter()
            .find(|(_, ts)| ts.contains(&template))
            .map(|(name, _)| *name)
            .unwrap_or("other");
        *out.entry(name).or_insert(0) += n;
    }
    out
}

fn route_order() -> Vec<&'static str> {
    ROUTES
        .iter()
        .map(|(n, _)| *n)
        .chain(std::iter::once("other"))
        .collect()
}

fn mb(kb: u64) -> String {
    format!("{:.1}", kb as f64 / 1024.0)
}

fn secs(ms: f64) -> String {
    if ms >= 10_000.0 {
        format!("{:.1}", ms / 1000.0)
    } else {
        format!("{:.2}", ms / 1000.0)
    }
}

fn wall_cell(r: &RunResult, m: &Measured) -> String {
    match r.wall_range_ms() {
        Some((lo, hi)) if r.reps.len() > 1 => format!(
            "{} ({}–{}, {} runs)",
            secs(m.child.wall_ms),
            secs(lo),
            secs(hi),
            r.reps.len()
        ),
        _ => secs(m.child.wall_ms),
    }
}

fn cpu_per_contract_ms(m: &Measured, n: usize) -> f64 {
    (m.child.cpu_user_ms + m.child.cpu_sys_ms) / n.max(1) as f64
}

fn sys_share(m: &Measured) -> f64 {
    let total = m.child.cpu_user_ms + m.child.cpu_sys_ms;
    if total > 0.0 {
        100.0 * m.child.cpu_sys_ms / total
    } else {
        0.0
    }
}

/// The latency bound `requests × L / concurrency` in ms (None at L = 0).
fn bound_ms(m: &Measured, latency_ms: u64, concurrency: u32) -> Option<f64> {
    (latency_ms > 0).then(|| m.requests() as f64 * latency_ms as f64 / concurrency.max(1) as f64)
}

fn speedup(all: &[RunResult], r: &RunResult) -> Option<f64> {
    let base = all.iter().find(|o| {
        o.spec.kind == r.spec.kind
            && o.spec.latency_ms == r.spec.latency_ms
            && o.spec.n == r.spec.n
            && o.spec.report_source == r.spec.report_source
            && o.spec.concurrency == 1
    })?;
    let b = base.median()?;
    let m = r.median()?;
    (base.failed.is_none() && m.child.wall_ms > 0.0).then(|| b.child.wall_ms / m.child.wall_ms)
}

fn send_table(out: &mut String, runs: &[RunResult], all: &[RunResult]) {
    out.push_str("| L (ms) | N | c | source | wall (s) | requests | req./contract | bound (s) | wall / bound | speed-up vs c=1 | peak RSS (MB) | CPU / contract (ms) | of which sys |\n");
    out.push_str("|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in runs {
        let s = &r.spec;
        let source = if s.report_source { "report" } else { "file" };
        let head = format!(
            "| {} | {} | {} | {source} ",
            s.latency_ms,
            thousands(s.n as u64),
            s.concurrency
        );
        if let Some(why) = &r.skipped {
            let _ = writeln!(out, "{head}| — | | | | | | | | {why} | |");
            continue;
        }
        let Some(m) = r.median() else {
            let _ = writeln!(
                out,
                "{head}| FAILED: {} | | | | | | | | | |",
                r.failed.as_deref().unwrap_or("?")
            );
            continue;
        };
        let req = m.requests();
        let bound = bound_ms(m, s.latency_ms, s.concurrency);
        let note = m
            .child
            .error
            .as_ref()
            .map(|e| format!(" ⚠ {e}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{head}| {}{note} | {} | {:.2} | {} | {} | {} | {} | {:.3} | {:.0}% |",
            wall_cell(r, m),
            thousands(req),
            req as f64 / s.n.max(1) as f64,
            bound.map(secs).unwrap_or_else(|| "–".into()),
            bound
                .map(|b| format!("{:.2}", m.child.wall_ms / b))
                .unwrap_or_else(|| "–".into()),
            speedup(all, r)
                .map(|x| format!("{x:.1}×"))
                .unwrap_or_else(|| "–".into()),
            mb(m.child.peak_rss_kb),
            cpu_per_contract_ms(m, s.n),
            sys_share(m),
        );
    }
}

fn route_table(out: &mut String, runs: &[RunResult]) {
    let order = route_order();
    out.push_str("| L (ms) | N | c | source | distinct responsibles |");
    for r in &order {
        let _ = write!(out, " {r} |");
    }
    out.push_str(" host calls / contract |\n|---:|---:|---:|---|---:|");
    for _ in &order {
        out.push_str("---:|");
    }
    out.push_str("---|\n");
    for r in runs {
        let Some(m) = r.median() else { continue };
        let s = &r.spec;
        let routes = by_route(&m.counters);
        let _ = write!(
            out,
            "| {} | {} | {} | {} | {} |",
            s.latency_ms,
            thousands(s.n as u64),
            s.concurrency,
            if s.report_source { "report" } else { "file" },
            thousands(m.distinct_responsibles)
        );
        for name in &order {
            let v = routes.get(name).copied().unwrap_or(0);
            if v == 0 {
                out.push_str(" 0 |");
            } else {
                let _ = write!(out, " {} ({:.3}) |", v, v as f64 / s.n.max(1) as f64);
            }
        }
        let host: Vec<String> = m
            .child
            .host_calls
            .iter()
            .map(|(k, v)| format!("{k} {:.2}", *v as f64 / s.n.max(1) as f64))
            .collect();
        let _ = writeln!(out, " {} |", host.join(", "));
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A target's verdict with its figures.
struct Verdict {
    name: &'static str,
    met: Option<bool>,
    figures: String,
}

fn mark(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "**met**",
        Some(false) => "**missed**",
        None => "not measured",
    }
}

fn find(
    runs: &[RunResult],
    kind: Kind,
    l: u64,
    n: usize,
    c: u32,
    report_source: bool,
) -> Option<&RunResult> {
    runs.iter().find(|r| {
        r.spec.kind == kind
            && r.spec.latency_ms == l
            && r.spec.n == n
            && r.spec.concurrency == c
            && r.spec.report_source == report_source
            && r.spec.many_ids
    })
}

/// Least-squares slope (KB per contract) of peak RSS against N, over the runs given as
/// (N, peak KB); `None` with fewer than two distinct N.
pub fn rss_slope_kb(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    Some(sxy / sxx)
}

fn valid(r: &RunResult) -> Option<&Measured> {
    let m = r.median()?;
    (r.failed.is_none() && m.child.error.is_none()).then_some(m)
}

fn verdicts(sends: &[RunResult], big: &[RunResult]) -> Vec<Verdict> {
    let mut v = Vec::new();

    // 1. Requests per contract, N = 1,000.
    let req = sends
        .iter()
        .filter(|r| r.spec.n == 1_000 && r.spec.kind == Kind::Send)
        .find_map(|r| Some((r, valid(r)?)));
    v.push(match req {
        Some((r, m)) => {
            let per = m.requests() as f64 / 1_000.0;
            let routes = by_route(&m.counters);
            Verdict {
                name: "requests per contract ≤ 2.80 (N = 1,000, none registered yet)",
                met: Some(per <= 2.80),
                figures: format!(
                    "{per:.2} ({} requests; {} distinct responsibles; {}; run {})",
                    thousands(m.requests()),
                    thousands(m.distinct_responsibles),
                    route_order()
                        .iter()
                        .filter_map(|k| Some(format!("{k} {}", routes.get(k)?)))
                        .collect::<Vec<_>>()
                        .join(", "),
                    r.spec.label()
                ),
            }
        }
        None => Verdict {
            name: "requests per contract ≤ 2.80 (N = 1,000, none registered yet)",
            met: None,
            figures: "no valid send of N = 1,000 in this run".into(),
        },
    });

    // 2. Wall / bound at L = 20, c = 16, N = 1,000 and 10,000.
    let mut parts = Vec::new();
    let mut ok = Some(true);
    for n in [1_000usize, 10_000] {
        match find(sends, Kind::Send, 20, n, 16, false).and_then(|r| Some((r, valid(r)?))) {
            Some((_, m)) => {
                let b = bound_ms(m, 20, 16).unwrap_or(f64::INFINITY);
                let ratio = m.child.wall_ms / b;
                ok = ok.map(|o| o && ratio <= 1.10);
                parts.push(format!(
                    "N = {}: wall {} s, bound {} s, {ratio:.2}",
                    thousands(n as u64),
                    secs(m.child.wall_ms),
                    secs(b)
                ));
            }
            None => {
                ok = None;
                parts.push(format!("N = {}: not measured", thousands(n as u64)));
            }
        }
    }
    v.push(Verdict {
        name: "wall / bound ≤ 1.10 at L = 20 ms, c = 16, N = 1,000 and N = 10,000",
        met: ok,
        figures: parts.join("; "),
    });

    // 3. CPU per contract at L = 0, N = 1,000 (host-sim's host).
    for (c, limit) in [(16u32, 0.40), (1, 0.60)] {
        let name = if c == 16 {
            "host-process CPU per contract ≤ 0.40 ms at L = 0, N = 1,000, c = 16 (plugin + host-sim)"
        } else {
            "host-process CPU per contract ≤ 0.60 ms at L = 0, N = 1,000, c = 1 (plugin + host-sim)"
        };
        v.push(
            match find(sends, Kind::Send, 0, 1_000, c, false).and_then(|r| Some((r, valid(r)?))) {
                Some((r, m)) => {
                    let cpu = cpu_per_contract_ms(m, 1_000);
                    let range: Vec<f64> = r
                        .reps
                        .iter()
                        .map(|m| cpu_per_contract_ms(m, 1_000))
                        .collect();
                    Verdict {
                        name,
                        met: Some(cpu <= limit),
                        figures: format!(
                            "{cpu:.3} ms (median-wall run of {}; all runs {})",
                            r.reps.len(),
                            range
                                .iter()
                                .map(|x| format!("{x:.3}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    }
                }
                None => Verdict {
                    name,
                    met: None,
                    figures: "not measured".into(),
                },
            },
        );
    }

    // 4. Peak RSS slope from N = 100 to N = 10,000.
    let mut parts = Vec::new();
    let mut ok = None;
    for (l, c) in [(0u64, 16u32), (0, 1), (20, 16)] {
        let points: Vec<(f64, f64)> = sends
            .iter()
            .filter(|r| {
                r.spec.kind == Kind::Send
                    && r.spec.latency_ms == l
                    && r.spec.concurrency == c
                    && !r.spec.report_source
                    && r.spec.host == crate::child::HostKind::Sim
            })
            .filter_map(|r| Some((r.spec.n as f64, valid(r)?.child.peak_rss_kb as f64)))
            .collect();
        let lo = points.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
        let hi = points.iter().map(|p| p.0).fold(0.0, f64::max);
        if let Some(slope) = rss_slope_kb(&points) {
            if l == 0 && c == 16 && lo <= 100.0 && hi >= 10_000.0 {
                ok = Some(slope <= 1.0);
            }
            parts.push(format!(
                "L = {l}, c = {c}: {slope:.2} KB per contract over N = {} ({})",
                points
                    .iter()
                    .map(|p| thousands(p.0 as u64))
                    .collect::<Vec<_>>()
                    .join(", "),
                points
                    .iter()
                    .map(|p| format!("{:.1} MB", p.1 / 1024.0))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    v.push(Verdict {
        name: "peak RSS growth per extra contract ≤ 1 KB, N = 100 → 10,000 (judged at L = 0, c = 16)",
        met: ok,
        figures: format!(
            "{} (least-squares slope of the peak RSS of the call, VmHWM reset just before it, against N, over every N measured at that L and c)",
            if parts.is_empty() {
                "not measured".to_string()
            } else {
                parts.join("; ")
            }
        ),
    });

    // 5. The big PDF: copies above the host's own buffer.
    let reference = big
        .iter()
        .find(|r| r.spec.kind == Kind::BigPdfReference)
        .and_then(RunResult::median);
    let big_run = big
        .iter()
        .find(|r| r.spec.kind == Kind::BigPdf)
        .and_then(RunResult::median);
    let name = "50 MB PDF: memory above the host's own buffer ≤ 1 copy";
    v.push(match (reference, big_run) {
        (Some(reference), Some(m)) if m.child.error.is_none() => {
            let size_kb = m.document_bytes as f64 / 1024.0;
            let extra_kb = (m.child.peak_rss_kb as f64 - m.child.rss_before_kb as f64)
                - (reference.child.peak_rss_kb as f64 - reference.child.rss_before_kb as f64);
            let copies = extra_kb / size_kb;
            let above = copies - 1.0;
            Verdict {
                name,
                met: Some(above <= 1.0),
                figures: format!(
                    "{above:.2} copies above the host's buffer — the send of the {:.1} MB file peaks {} MB above its start, the same send of the {:.1} KB PDF {} MB: {copies:.2} copies of the file at the peak, of which 1 is the host's own buffer (`file.read`'s answer, which the host holds until the plugin frees it)",
                    size_kb / 1024.0,
                    mb(m.child.peak_rss_kb.saturating_sub(m.child.rss_before_kb)),
                    reference.document_bytes as f64 / 1024.0,
                    mb(reference
                        .child
                        .peak_rss_kb
                        .saturating_sub(reference.child.rss_before_kb)),
                ),
            }
        }
        (_, Some(m)) => Verdict {
            name,
            met: Some(false),
            figures: format!(
                "the send failed: {}",
                m.child.error.as_deref().unwrap_or("no reference run")
            ),
        },
        _ => Verdict {
            name,
            met: None,
            figures: "not run".into(),
        },
    });
    v
}

fn headline_table(out: &mut String, headline: &[(RunResult, RunResult)]) {
    out.push_str("### Headline: RM's own way against tae-edu\n\n");
    out.push_str(
        "RM's own way, emulated by the bench's sequential client against the same tae-sim: one \
         login, then per contract, one after the other, the user lookup by e-mail, the \
         registration when TAE does not know the responsible, the upload and the publish; then \
         one read per document for its status (no database writes, no report rendering: both in \
         its favour). tae-edu: one `execute` of the send (default `max_concurrency`, host-sim's \
         host), then one `execute` of the check (many-ids route), in one host process. Same N, \
         same seed, a fresh tae-sim each.\n\n",
    );
    out.push_str("| L (ms) | N | RM's way: send (s) | check (s) | total (s) | requests (send + check) | tae-edu: send (s) | check (s) | total (s) | check requests | RM's way / tae-edu (total) | send | check |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (rm, te) in headline {
        let head = format!(
            "| {} | {} ",
            rm.spec.latency_ms,
            thousands(rm.spec.n as u64)
        );
        let rm_m = valid(rm).and_then(|m| Some((m, m.rm_way.as_ref()?)));
        let te_m = valid(te).and_then(|m| Some((m, m.child.pre_send_wall_ms?)));
        match (rm_m, te_m) {
            (Some((rm_m, w)), Some((te_m, te_send))) => {
                let rm_req: u64 =
                    w.send_counters.values().sum::<u64>() + w.check_counters.values().sum::<u64>();
                let te_total = te_send + te_m.child.wall_ms;
                let rm_total = w.send_ms + w.check_ms;
                let _ = rm_m;
                let _ = writeln!(
                    out,
                    "{head}| {} | {} | {} | {} | {} | {} | {} | {} | **{:.1}×** | {:.1}× | {:.1}× |",
                    secs(w.send_ms),
                    secs(w.check_ms),
                    secs(rm_total),
                    thousands(rm_req),
                    secs(te_send),
                    secs(te_m.child.wall_ms),
                    secs(te_total),
                    thousands(te_m.requests()),
                    rm_total / te_total,
                    w.send_ms / te_send,
                    w.check_ms / te_m.child.wall_ms.max(0.001),
                );
            }
            _ => {
                let why = |r: &RunResult| {
                    r.skipped
                        .clone()
                        .or_else(|| r.failed.clone())
                        .or_else(|| r.median().and_then(|m| m.child.error.clone()))
                        .unwrap_or_else(|| "?".into())
                };
                let _ = writeln!(
                    out,
                    "{head}| not measured: RM's way: {}; tae-edu: {} | | | | | | | | | | |",
                    if rm_m.is_some() { "ok".into() } else { why(rm) },
                    if te_m.is_some() { "ok".into() } else { why(te) }
                );
            }
        }
    }
    out.push_str("\ntae-edu's requests: the check's only (the send's are not counted apart in this run; see the send table for them). RM's way's requests by route: ");
    let mut first = true;
    for (rm, _) in headline {
        if let Some(w) = rm.median().and_then(|m| m.rm_way.as_ref()) {
            if !first {
                out.push_str("; ");
            }
            first = false;
            let mut all = w.send_counters.clone();
            for (k, n) in &w.check_counters {
                *all.entry(k.clone()).or_insert(0) += n;
            }
            let _ = write!(
                out,
                "L = {}: {}",
                rm.spec.latency_ms,
                by_route(&all)
                    .iter()
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    out.push_str(".\n\n");
}

fn decomposition_section(out: &mut String, sends: &[RunResult], memory: &[RunResult]) {
    let rows: Vec<(&RunResult, crate::timeline::Decomposition, u64)> = sends
        .iter()
        .chain(memory)
        .filter(|r| r.spec.latency_ms > 0)
        .filter_map(|r| {
            let m = valid(r)?;
            let t = m.timeline.as_ref()?;
            let d = crate::timeline::decompose(
                &t.entries,
                r.spec.latency_ms,
                r.spec.concurrency,
                m.child.call_start_us,
                m.child.call_end_us,
            )?;
            Some((r, d, t.connections))
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    out.push_str("\n### Where the time goes at the latency bound\n\n");
    out.push_str(
        "From tae-sim's request timeline (`--timeline`: per request, its arrival and the moment \
         its answer left, on the system clock) and the call's start and end in the host process. \
         `wall − bound` splits exactly into: **edges** (the call before the first request \
         arrives and after the last answer), **server overshoot** (`(Σ server time − R × L) / c`: \
         tae-sim answering later than L), and **idle slots** (`(c × span − Σ server time) / c`: \
         the c request slots not all busy), split into ramp-up (until the requests in flight \
         first reach their full level, `min(c, max in flight)`), tail (after they last left it) \
         and steady (between: the client's gaps — record writes, waits between a contract's \
         steps, the calling thread busy). Seconds, and share of `wall − bound`. Connections: \
         accepted by tae-sim during the run (the bench's own counter reads included). Client \
         turnaround: on each connection, from an answer leaving tae-sim to the next request \
         arriving on it. Host: host-sim's `RmHost` (SQLite), or the bench's in-memory host (the \
         same send without host-sim's record writes on the calling thread; see below).\n\n",
    );
    out.push_str("| host | L | N | c | wall (s) | bound (s) | wall / bound | server time mean / p50 / p99 / max (ms) | in flight: mean / steady / full level | edges (s) | overshoot (s) | idle: ramp-up | steady | tail (s) | ramp-up / tail length (s) | connections | client turnaround per request, mean / p50 (ms) |\n|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---|---:|---|\n");
    for (r, d, conns) in rows {
        let excess = (d.wall_ms - d.bound_ms).max(1e-9);
        let share = |x: f64| format!("{} ({:.0}%)", secs(x), 100.0 * x / excess);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {:.2} | {:.2} / {:.2} / {:.2} / {:.2} | {:.1} / {:.1} / {:.0} | {} | {} | {} | {} | {} | {} / {} | {} | {:.2} / {:.2} |",
            match r.spec.host {
                crate::child::HostKind::Sim => "host-sim",
                crate::child::HostKind::Memory => "memory",
            },
            r.spec.latency_ms,
            thousands(r.spec.n as u64),
            r.spec.concurrency,
            secs(d.wall_ms),
            secs(d.bound_ms),
            d.wall_ms / d.bound_ms,
            d.server_mean_ms,
            d.server_p50_ms,
            d.server_p99_ms,
            d.server_max_ms,
            d.in_flight_mean,
            d.in_flight_steady,
            d.full_level,
            share(d.edges_ms()),
            share(d.overshoot_ms),
            share(d.idle_ramp_ms),
            share(d.idle_steady_ms),
            share(d.idle_tail_ms),
            secs(d.ramp_ms),
            secs(d.tail_ms),
            conns,
            d.turnaround_mean_ms,
            d.turnaround_p50_ms
        );
    }
}

fn host_share_section(out: &mut String, sends: &[RunResult], memory: &[RunResult]) {
    if memory.is_empty() {
        return;
    }
    out.push_str("\n### The plugin apart from the host\n\n");
    out.push_str(
        "The same send (L = 0, `file` source) with host-sim's `RmHost` (SQLite, the real record \
         writes) and with the bench's in-memory host (`run-one --host memory`: the contracts \
         seed_bulk generated, loaded before the call; records in a `HashMap`; the PDF in memory; \
         leases always granted). CPU of the whole host process per contract; the difference is \
         host-sim's share. Medians of the repeated runs (all runs in brackets).\n\n",
    );
    out.push_str("| N | c | CPU/contract with host-sim (ms) | with the memory host (ms) | host-sim's share | wall host-sim / memory (s) | host calls / contract (memory host) |\n|---:|---:|---:|---:|---:|---|---|\n");
    let all_cpu = |r: &RunResult| {
        r.reps
            .iter()
            .map(|m| format!("{:.3}", cpu_per_contract_ms(m, r.spec.n)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for r in memory.iter().filter(|r| r.spec.latency_ms == 0) {
        let s = &r.spec;
        let sim = find(sends, Kind::Send, 0, s.n, s.concurrency, false);
        let (Some(mm), Some((sr, sm))) = (valid(r), sim.and_then(|x| Some((x, valid(x)?)))) else {
            let _ = writeln!(
                out,
                "| {} | {} | not measured | {} | | | |",
                thousands(s.n as u64),
                s.concurrency,
                r.failed.as_deref().unwrap_or("")
            );
            continue;
        };
        let a = cpu_per_contract_ms(sm, s.n);
        let b = cpu_per_contract_ms(mm, s.n);
        let _ = writeln!(
            out,
            "| {} | {} | {a:.3} [{}] | {b:.3} [{}] | {:.0}% | {} / {} | {} |",
            thousands(s.n as u64),
            s.concurrency,
            all_cpu(sr),
            all_cpu(r),
            100.0 * (a - b) / a.max(1e-9),
            secs(sm.child.wall_ms),
            secs(mm.child.wall_ms),
            mm.child
                .host_calls
                .iter()
                .map(|(k, v)| format!("{k} {:.2}", *v as f64 / s.n.max(1) as f64))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

/// The whole Markdown block.
pub fn render(
    env: &Environment,
    headline: &[(RunResult, RunResult)],
    sends: &[RunResult],
    memory: &[RunResult],
    extra: &[RunResult],
    checks: &[RunResult],
    big: &[RunResult],
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## Results of {} \n", env.date);
    let _ = writeln!(out, "Command:\n\n```sh\n{}\n```\n", env.command);
    let _ = writeln!(
        out,
        "Machine: {} core(s), {}; load average {} before, {} after (the cores are shared with \
         other builds: figures are noisy). Git {}; plugin {}. Whole run: {:.0} s.\n",
        env.cores, env.cpu, env.load_before, env.load_after, env.git, env.plugin, env.total_secs
    );
    if !headline.is_empty() {
        headline_table(&mut out, headline);
    }
    out.push_str(
        "Each run: a fresh `tae-sim` process (`--latency-ms L`), a fresh SQLite school database \
         seeded with `seed_bulk(N)` (about 3 of 4 contracts have their own financial responsible, \
         none registered in TAE yet), and a child host process (`tae-edu-bench run-one`) that \
         loads the release plugin into host-sim's `RmHost` and runs one `execute` (menu filter \
         over the N contracts; the RM user authenticates once through the scripted screen and is \
         registered once through the CPF screen). Wall, CPU (getrusage, all threads: plugin and \
         host-sim) and peak RSS (`VmHWM`, reset just before the call) cover that `execute` only. \
         Requests are tae-sim's counters for the run. The bound is `requests × L / c`. Runs \
         shorter than a few seconds are repeated (median, with the range).\n\n",
    );
    let doc = sends
        .iter()
        .chain(extra)
        .find_map(|r| r.median())
        .map(|m| m.document_bytes)
        .unwrap_or(0);
    let _ = writeln!(
        out,
        "### Send\n\nSource `file`: one contract PDF ({:.1} KB, rendered by host-sim) sent for every contract; `report`: the host renders each contract's PDF (host-sim's printpdf renderer, in the host's CPU).\n",
        doc as f64 / 1024.0
    );
    let mut all: Vec<RunResult> = sends.to_vec();
    all.extend(extra.iter().cloned());
    send_table(&mut out, &all, &all);
    decomposition_section(&mut out, sends, memory);
    host_share_section(&mut out, sends, memory);
    out.push_str("\n### Requests by route (count, and per contract)\n\n`lookup` and `register` include the RM user's own (once per session); `host calls` are host-sim callbacks per contract.\n\n");
    route_table(&mut out, &all);

    out.push_str("\n### Check of many documents\n\nAfter an unmeasured send of the N contracts (same process, same RM session, so no new login), tae-sim's counters are reset and `check` runs over the N pending documents.\n\n");
    out.push_str("| L (ms) | documents | c | many-ids route | wall (s) | requests | by route | peak RSS (MB) | CPU / document (ms) | host calls / document |\n|---:|---:|---:|---|---:|---:|---|---:|---:|---|\n");
    for r in checks {
        let s = &r.spec;
        let head = format!(
            "| {} | {} | {} | {} ",
            s.latency_ms,
            thousands(s.n as u64),
            s.concurrency,
            if s.many_ids { "yes" } else { "no (404)" }
        );
        match (r.median(), &r.skipped) {
            (_, Some(why)) => {
                let _ = writeln!(out, "{head}| — | | {why} | | | |");
            }
            (Some(m), _) => {
                let note = m
                    .child
                    .error
                    .as_ref()
                    .map(|e| format!(" ⚠ {e}"))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "{head}| {}{note} | {} | {} | {} | {:.3} | {} |",
                    wall_cell(r, m),
                    thousands(m.requests()),
                    by_route(&m.counters)
                        .iter()
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    mb(m.child.peak_rss_kb),
                    cpu_per_contract_ms(m, s.n),
                    m.child
                        .host_calls
                        .iter()
                        .map(|(k, v)| format!("{k} {:.2}", *v as f64 / s.n.max(1) as f64))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            (None, _) => {
                let _ = writeln!(
                    out,
                    "{head}| FAILED: {} | | | | | |",
                    r.failed.as_deref().unwrap_or("?")
                );
            }
        }
    }

    if !big.is_empty() {
        out.push_str("\n### One send with a big PDF\n\nOne contract, `file` source, `max_file_mb` = 100, L = 0. The reference is the same send with the small PDF.\n\n");
        out.push_str("| PDF | size (MB) | wall (s) | RSS before (MB) | peak RSS (MB) | peak − before (MB) |\n|---|---:|---:|---:|---:|---:|\n");
        for r in big {
            let name = match r.spec.kind {
                Kind::BigPdf => "big",
                _ => "reference (small)",
            };
            match r.median() {
                Some(m) => {
                    let note = m
                        .child
                        .error
                        .as_ref()
                        .map(|e| format!(" ⚠ {e}"))
                        .unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "| {name} | {:.2} | {}{note} | {} | {} | {} |",
                        m.document_bytes as f64 / 1_048_576.0,
                        wall_cell(r, m),
                        mb(m.child.rss_before_kb),
                        mb(m.child.peak_rss_kb),
                        mb(m.child.peak_rss_kb.saturating_sub(m.child.rss_before_kb))
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "| {name} | | FAILED: {} | | | |",
                        r.failed.as_deref().unwrap_or("?")
                    );
                }
            }
        }
    }

    let skipped: Vec<String> = sends
        .iter()
        .chain(extra)
        .chain(checks)
        .filter_map(|r| Some(format!("{} — {}", r.spec.label(), r.skipped.as_ref()?)))
        .collect();
    if !skipped.is_empty() {
        out.push_str("\n### Skipped runs\n\n");
        for s in skipped {
            let _ = writeln!(out, "- {s}");
        }
    }

    out.push_str("\n### Targets of issue 15 (this run)\n\n");
    for v in verdicts(sends, big) {
        let _ = writeln!(out, "- {}: {} — {}", v.name, mark(v.met), v.figures);
    }
    out
}

/// Writes `block` between the markers of `path`, keeping the rest; creates the file (with a
/// title) when missing, and appends the markers when the file has none.
pub fn write_between_markers(path: &Path, block: &str) -> Result<(), String> {
    let current = std::fs::read_to_string(path).unwrap_or_default();
    let framed = format!("{BEGIN}\n{block}\n{END}");
    let text = match (current.find(BEGIN), current.find(END)) {
        (Some(b), Some(e)) if e > b => {
            format!("{}{framed}{}", &current[..b], &current[e + END.len()..])
        }
        _ if current.trim().is_empty() => format!("# Performance\n\n{framed}\n"),
        _ => format!("{}\n\n{framed}\n", current.trim_end()),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_get_short_names() {
        let mut c = BTreeMap::new();
        c.insert(format!("POST {}", api::UPLOAD), 10);
        c.insert(format!("POST {}", api::PUBLISH_V1), 10);
        c.insert(format!("POST {}", api::LOGIN_V3), 1);
        c.insert("GET /something/else".to_string(), 2);
        let r = by_route(&c);
        assert_eq!(r["upload"], 10);
        assert_eq!(r["publish"], 10);
        assert_eq!(r["login"], 1);
        assert_eq!(r["other"], 2);
    }

    #[test]
    fn markers_keep_the_hand_written_text() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("PERF.md");
        write_between_markers(&p, "table 1").unwrap();
        let first = std::fs::read_to_string(&p).unwrap();
        assert!(first.starts_with("# Performance"));
        std::fs::write(
            &p,
            first.replace("# Performance", "# Performance\n\nNotas à mão."),
        )
        .unwrap();
        write_between_markers(&p, "table 2").unwrap();
        let second = std::fs::read_to_string(&p).unwrap();
        assert!(second.contains("Notas à mão."));
        assert!(second.contains("table 2") && !second.contains("table 1"));
    }

    #[test]
    fn rss_slope_is_the_least_squares_fit() {
        // 12 MB + 5 KB per contract, with ±100 KB of noise at the middle point.
        let pts = [
            (100.0, 12_288.0 + 500.0),
            (1_000.0, 12_288.0 + 5_100.0),
            (10_000.0, 12_288.0 + 50_000.0),
        ];
        let slope = rss_slope_kb(&pts).unwrap();
        assert!((slope - 5.0).abs() < 0.02, "{slope}");
        assert!(rss_slope_kb(&pts[..1]).is_none());
        assert!(rss_slope_kb(&[(5.0, 1.0), (5.0, 2.0)]).is_none());
    }

    #[test]
    fn thousands_separator() {
        assert_eq!(thousands(5), "5");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
