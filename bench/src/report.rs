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
        let mut command = format!(
            "CARGO_TARGET_DIR={target} cargo build --release -p tae-edu -p tae-sim -p tae-edu-bench && {target}/release/tae-edu-bench"
        );
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
                format!(
                    "{} (built {})",
                    ctx.plugin.display(),
                    t.format("%Y-%m-%d %H:%M UTC")
                )
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

fn verdicts(
    sends: &[RunResult],
    extra: &[RunResult],
    checks: &[RunResult],
    big: &[RunResult],
) -> Vec<Verdict> {
    let mut v = Vec::new();

    // 1. L = 20, c = 16, N = 1,000.
    let t1 = find(sends, Kind::Send, 20, 1_000, 16, false)
        .filter(|r| r.failed.is_none())
        .and_then(|r| {
            let m = r.median()?;
            let b = bound_ms(m, 20, 16)?;
            Some((m.child.wall_ms, b, speedup(sends, r)))
        });
    v.push(match t1 {
        Some((wall, bound, sp)) => {
            let ratio = wall / bound;
            let ok_ratio = ratio <= 1.25;
            let ok_sp = sp.map(|x| x >= 12.0);
            Verdict {
                name: "L = 20 ms, c = 16, N = 1,000: wall ≤ 1.25 × bound and ≥ 12× faster than c = 1",
                met: Some(ok_ratio && ok_sp.unwrap_or(false)),
                figures: format!(
                    "wall {} s, bound {} s, wall / bound = {ratio:.2} ({}); speed-up over c = 1: {} ({})",
                    secs(wall),
                    secs(bound),
                    if ok_ratio { "≤ 1.25" } else { "> 1.25" },
                    sp.map(|x| format!("{x:.1}×")).unwrap_or_else(|| "c = 1 not measured".into()),
                    match ok_sp {
                        Some(true) => "≥ 12×",
                        Some(false) => "< 12×",
                        None => "–",
                    }
                ),
            }
        }
        None => Verdict {
            name: "L = 20 ms, c = 16, N = 1,000: wall ≤ 1.25 × bound and ≥ 12× faster than c = 1",
            met: None,
            figures: "the run is not in this benchmark (or failed)".into(),
        },
    });

    // 2. Requests per contract.
    let mut checked = 0;
    let mut bad = Vec::new();
    let mut example = String::new();
    for r in sends.iter().chain(extra) {
        let Some(m) = r.median() else { continue };
        if m.child.error.is_some() {
            continue;
        }
        checked += 1;
        let n = r.spec.n as u64;
        let routes = by_route(&m.counters);
        let get = |k: &str| routes.get(k).copied().unwrap_or(0);
        // + 1: the RM user's own lookup and registration, once per session.
        let d = m.distinct_responsibles + 1;
        let mut problems = Vec::new();
        if get("upload") > n {
            problems.push(format!("upload {} > N", get("upload")));
        }
        if get("publish") > n {
            problems.push(format!("publish {} > N", get("publish")));
        }
        if get("lookup") > d {
            problems.push(format!("lookup {} > {d}", get("lookup")));
        }
        if get("register") > d {
            problems.push(format!("register {} > {d}", get("register")));
        }
        if get("login") > 1 {
            problems.push(format!("login {}", get("login")));
        }
        let others: u64 = routes
            .iter()
            .filter(|(k, _)| {
                ![
                    "upload", "publish", "lookup", "register", "login", "profile",
                ]
                .contains(k)
            })
            .map(|(_, v)| v)
            .sum();
        if others > 0 || get("profile") > 1 {
            problems.push(format!(
                "other requests {others}, profile {}",
                get("profile")
            ));
        }
        if !problems.is_empty() {
            bad.push(format!("{}: {}", r.spec.label(), problems.join(", ")));
        }
        if r.spec.n == 1_000 && example.is_empty() {
            example = format!(
                "N = 1,000 ({} distinct responsibles): upload {}, publish {}, lookup {}, register {}, login {}, profile {} — {:.2} requests per contract",
                m.distinct_responsibles,
                get("upload"),
                get("publish"),
                get("lookup"),
                get("register"),
                get("login"),
                get("profile"),
                m.requests() as f64 / n as f64
            );
        }
    }
    v.push(Verdict {
        name: "requests ≤ upload + publish per contract + lookup (+ registration) per distinct responsible; no login per contract",
        met: (checked > 0).then_some(bad.is_empty()),
        figures: if bad.is_empty() {
            format!("all {checked} valid send runs within the limit; {example}")
        } else {
            format!("{} of {checked} runs over: {}", bad.len(), bad.join("; "))
        },
    });

    // 3. Check.
    let mut parts = Vec::new();
    let mut ok = None;
    for r in checks.iter().filter(|r| r.spec.many_ids) {
        let Some(m) = r.median() else { continue };
        let allowed = r.spec.n.div_ceil(1000) as u64;
        let req = m.requests();
        let this_ok = req <= allowed && m.child.error.is_none();
        ok = Some(ok.unwrap_or(true) && this_ok);
        parts.push(format!(
            "{} documents: {req} request(s) ({}), wall {} s",
            thousands(r.spec.n as u64),
            by_route(&m.counters)
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            secs(m.child.wall_ms)
        ));
    }
    v.push(Verdict {
        name: "check: at most one request per 1,000 documents with the many-ids route",
        met: ok,
        figures: parts.join("; "),
    });

    // 4. CPU at L = 0.
    let cpu: Vec<(String, f64)> = sends
        .iter()
        .filter(|r| r.spec.latency_ms == 0)
        .filter_map(|r| {
            let m = r.median()?;
            Some((
                format!("N={} c={}", r.spec.n, r.spec.concurrency),
                cpu_per_contract_ms(m, r.spec.n),
            ))
        })
        .collect();
    let worst = cpu
        .iter()
        .cloned()
        .fold(None::<(String, f64)>, |acc, x| match acc {
            Some(a) if a.1 >= x.1 => Some(a),
            _ => Some(x),
        });
    let best = cpu
        .iter()
        .cloned()
        .fold(None::<(String, f64)>, |acc, x| match acc {
            Some(a) if a.1 <= x.1 => Some(a),
            _ => Some(x),
        });
    let report_cpu = extra
        .iter()
        .filter(|r| r.spec.latency_ms == 0)
        .filter_map(|r| Some(cpu_per_contract_ms(r.median()?, r.spec.n)))
        .next();
    v.push(Verdict {
        name: "host-process CPU at L = 0 ≤ 1 ms per contract (including host-sim's work)",
        met: worst.as_ref().map(|w| w.1 <= 1.0),
        figures: format!(
            "file source: {} to {} ms per contract (best {}, worst {}){}",
            best.as_ref()
                .map(|b| format!("{:.3}", b.1))
                .unwrap_or_default(),
            worst
                .as_ref()
                .map(|w| format!("{:.3}", w.1))
                .unwrap_or_default(),
            best.map(|b| b.0).unwrap_or_default(),
            worst.map(|w| w.0).unwrap_or_default(),
            report_cpu
                .map(|c| format!("; with the host rendering the report per contract: {c:.3} ms"))
                .unwrap_or_default()
        ),
    });

    // 5. Peak RSS: concurrency × document + constant, reported for 5,000 contracts.
    let mut rss_parts = Vec::new();
    let mut rss_ok = None;
    let largest = sends.iter().map(|r| r.spec.n).max().unwrap_or(0);
    let smallest = sends.iter().map(|r| r.spec.n).min().unwrap_or(0);
    for r in sends.iter().filter(|r| r.spec.n == largest) {
        let Some(m) = r.median() else { continue };
        let small = find(
            sends,
            Kind::Send,
            r.spec.latency_ms,
            smallest,
            r.spec.concurrency,
            false,
        )
        .and_then(RunResult::median);
        let doc_kb = m.document_bytes as f64 / 1024.0;
        let growth = small.map(|s| {
            (m.child.peak_rss_kb as f64 - s.child.peak_rss_kb as f64)
                / (largest - smallest).max(1) as f64
        });
        rss_parts.push(format!(
            "L={} c={}: {} MB (before the call {} MB; c × document = {:.2} MB){}",
            r.spec.latency_ms,
            r.spec.concurrency,
            mb(m.child.peak_rss_kb),
            mb(m.child.rss_before_kb),
            r.spec.concurrency as f64 * doc_kb / 1024.0,
            growth
                .map(|g| format!("; {:.2} KB more per contract than at N = {smallest}", g))
                .unwrap_or_default()
        ));
        // "Bounded" = growth with N at most about a document's worth of JSON per contract.
        if let Some(g) = growth {
            rss_ok = Some(rss_ok.unwrap_or(true) && g <= 2.0);
        }
    }
    v.push(Verdict {
        name: "peak RSS bounded by concurrency × document size + a constant (N largest)",
        met: if largest >= 5_000 { rss_ok } else { None },
        figures: format!(
            "N = {}: {} (judged met when the peak grows by ≤ 2 KB per extra contract, i.e. only the per-contract result of the response)",
            thousands(largest as u64),
            rss_parts.join("; ")
        ),
    });

    // 6. The big PDF.
    let reference = big
        .iter()
        .find(|r| r.spec.kind == Kind::BigPdfReference)
        .and_then(RunResult::median);
    let big_run = big
        .iter()
        .find(|r| r.spec.kind == Kind::BigPdf)
        .and_then(|r| Some((r, r.median()?)));
    v.push(match (reference, big_run) {
        (Some(reference), Some((r, m))) if m.child.error.is_none() => {
            let size_kb = m.document_bytes as f64 / 1024.0;
            let extra_kb = (m.child.peak_rss_kb as f64 - m.child.rss_before_kb as f64)
                - (reference.child.peak_rss_kb as f64 - reference.child.rss_before_kb as f64);
            let copies = extra_kb / size_kb;
            let _ = r;
            Verdict {
                name: "the 50 MB PDF is not held in memory more than twice",
                met: Some(copies <= 2.0),
                figures: format!(
                    "file {:.1} MB: peak RSS {} MB (before the call {} MB); the same send with the {:.1} KB PDF peaks {} MB above its start, the big one {} MB above its start: {copies:.2} copies of the file at the peak",
                    size_kb / 1024.0,
                    mb(m.child.peak_rss_kb),
                    mb(m.child.rss_before_kb),
                    reference.document_bytes as f64 / 1024.0,
                    mb(reference.child.peak_rss_kb.saturating_sub(reference.child.rss_before_kb)),
                    mb(m.child.peak_rss_kb.saturating_sub(m.child.rss_before_kb)),
                ),
            }
        }
        (_, Some((_, m))) => Verdict {
            name: "the 50 MB PDF is not held in memory more than twice",
            met: Some(false),
            figures: format!(
                "the send failed: {}",
                m.child.error.as_deref().unwrap_or("no reference run")
            ),
        },
        _ => Verdict {
            name: "the 50 MB PDF is not held in memory more than twice",
            met: None,
            figures: "not run".into(),
        },
    });
    v
}

/// The whole Markdown block.
pub fn render(
    env: &Environment,
    sends: &[RunResult],
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

    out.push_str("\n### Targets of issue 8 (this run)\n\n");
    for v in verdicts(sends, extra, checks, big) {
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
    fn thousands_separator() {
        assert_eq!(thousands(5), "5");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
