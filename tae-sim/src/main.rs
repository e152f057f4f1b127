//! `tae-sim`: the TAE stand-in as a program. Prints the base URL on its first stdout line, then
//! the admin credentials, and serves until SIGINT/SIGTERM.

use clap::Parser;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use tae_sim::{
    CancelModel, DropMode, FaultConfig, Latency, RateLimit, RateMap, SimOptions, SimServer,
};

/// A stand-in for the TOTVS Assinatura Eletrônica (TAE) REST API, with the portal's side under
/// /_sim/ and fault injection.
#[derive(Parser, Debug)]
#[command(name = "tae-sim", version)]
struct Args {
    /// Address to listen on (port 0 = any free port).
    #[arg(long, default_value = "127.0.0.1:8089")]
    addr: SocketAddr,
    /// Serve HTTPS with a generated CA (its PEM path is printed).
    #[arg(long)]
    tls: bool,
    /// Where ca.pem / cert.pem / key.pem are written with --tls.
    #[arg(long)]
    cert_dir: Option<PathBuf>,
    /// Seed of the fault RNG.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Fixed latency added to every TAE route (ms); with --latency-max-ms, the minimum.
    #[arg(long)]
    latency_ms: Option<u64>,
    /// Upper bound of a random latency range (ms).
    #[arg(long)]
    latency_max_ms: Option<u64>,
    /// Probability (0–1) of a 500/502/503 on every TAE route.
    #[arg(long)]
    error_rate: Option<f64>,
    /// Probability (0–1) that a burst of 429 starts.
    #[arg(long)]
    rate_limit: Option<f64>,
    /// Length of a 429 burst.
    #[arg(long, default_value_t = 3)]
    rate_limit_burst: u32,
    /// Retry-After of a 429 (seconds).
    #[arg(long, default_value_t = 1)]
    retry_after_secs: u64,
    /// Probability (0–1) that a request hangs for --hang-ms.
    #[arg(long)]
    hang_rate: Option<f64>,
    /// How long a hang lasts (ms).
    #[arg(long)]
    hang_ms: Option<u64>,
    /// Probability (0–1) that the connection is closed without an answer.
    #[arg(long)]
    drop_rate: Option<f64>,
    /// Whether a dropped request took effect: before | after | random.
    #[arg(long, default_value = "random")]
    drop_mode: String,
    /// Lifetime of issued tokens (seconds; default 12 h).
    #[arg(long)]
    token_ttl_secs: Option<u64>,
    /// A whole FaultConfig as JSON (overrides the single fault flags).
    #[arg(long)]
    faults_json: Option<String>,
    /// Answer 404 on D5 (documentos-empresa), to exercise a client's fallback.
    #[arg(long)]
    no_many_ids: bool,
    /// Print one stderr line per TAE request (method, path, status, time, injected fault).
    #[arg(long, short = 'v')]
    verbose: bool,
    /// Largest accepted PDF (MB).
    #[arg(long, default_value_t = 20)]
    max_upload_mb: usize,
    /// TAE's clock ahead of (positive) or behind (negative) the host's, in seconds.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    clock_offset_secs: i64,
    /// What cancel does: cancelled (status 7) | draft (back to 5) | vanish (not found).
    #[arg(long, default_value = "cancelled")]
    cancel_model: String,
    /// Let D4 filter by nomeDocumento (off by default: TAE most likely cannot).
    #[arg(long)]
    search_by_name: bool,
    /// Record each TAE request's arrival and answer times from the start (read them with
    /// `GET /_sim/timeline`; `POST /_sim/timeline {"recording": bool}` switches it at run time).
    #[arg(long)]
    timeline: bool,
    /// End the injected latency on tokio's millisecond timer (about 1 ms late per request)
    /// instead of the microsecond timer thread: to compare the two.
    #[arg(long)]
    tokio_timer: bool,
}

fn faults(args: &Args) -> Result<FaultConfig, String> {
    if let Some(json) = &args.faults_json {
        return serde_json::from_str(json).map_err(|e| format!("--faults-json: {e}"));
    }
    let drop_mode = match args.drop_mode.as_str() {
        "before" => DropMode::Before,
        "after" => DropMode::After,
        "random" => DropMode::Random,
        other => return Err(format!("--drop-mode: unknown value {other}")),
    };
    Ok(FaultConfig {
        latency_ms: match (args.latency_ms, args.latency_max_ms) {
            (None, None) => None,
            (Some(ms), None) => Some(Latency::Fixed(ms)),
            (min, Some(max)) => Some(Latency::Range {
                min: min.unwrap_or(0),
                max,
            }),
        },
        error_rate: args.error_rate.map(RateMap::all).unwrap_or_default(),
        error_statuses: Vec::new(),
        rate_limit: args.rate_limit.map(|rate| RateLimit {
            rate,
            burst: args.rate_limit_burst,
            retry_after_secs: args.retry_after_secs,
        }),
        hang_rate: args.hang_rate.map(RateMap::all).unwrap_or_default(),
        hang_ms: args.hang_ms,
        drop_rate: args.drop_rate.map(RateMap::all).unwrap_or_default(),
        drop_mode,
        token_ttl_secs: args.token_ttl_secs,
        ..FaultConfig::default()
    })
}

fn cancel_model(value: &str) -> Result<CancelModel, String> {
    serde_json::from_value(serde_json::Value::String(value.to_string()))
        .map_err(|_| format!("--cancel-model: unknown value {value} (cancelled, draft, vanish)"))
}

fn main() {
    let args = Args::parse();
    let cancel_model = match cancel_model(&args.cancel_model) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("tae-sim: {e}");
            std::process::exit(2);
        }
    };
    let faults = match faults(&args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("tae-sim: {e}");
            std::process::exit(2);
        }
    };
    let server = match SimServer::start(SimOptions {
        seed: args.seed,
        faults,
        tls: args.tls,
        addr: Some(args.addr),
        cert_dir: args.cert_dir.clone(),
        max_upload_mb: args.max_upload_mb,
        many_ids: !args.no_many_ids,
        log_requests: args.verbose,
        clock_offset_secs: args.clock_offset_secs,
    }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tae-sim: cannot start on {}: {e}", args.addr);
            std::process::exit(1);
        }
    };
    server.state().set_cancel_model(cancel_model);
    server.state().set_search_by_name(args.search_by_name);
    server.state().set_timeline(args.timeline);
    tae_sim::use_tokio_timer(args.tokio_timer);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", server.base_url());
    let _ = writeln!(
        out,
        "admin: {} / {}",
        tae_sim::ADMIN_EMAIL,
        tae_sim::ADMIN_PASSWORD
    );
    if let Some(ca) = server.ca_cert_path() {
        let _ = writeln!(out, "ca: {}", ca.display());
    }
    let _ = writeln!(out, "portal: {}/_sim/", server.base_url());
    let _ = out.flush();
    drop(out);

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tae-sim: {e}");
            std::process::exit(1);
        }
    };
    runtime.block_on(async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    });
    eprintln!("tae-sim: stopping");
    server.shutdown();
}
