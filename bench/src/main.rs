//! `tae-edu-bench`: the benchmark of issue 8. Drives the release-built plugin through
//! host-sim's `RmHost` (each measured run in a child process of the bench, `run-one`) against
//! tae-sim running as a separate process with a fixed injected latency, and prints (and writes
//! to `docs/PERFORMANCE.md`) the table: wall time, requests per contract by route, the latency
//! bound `requests × L / concurrency`, wall / bound, speed-up over concurrency 1, peak RSS and
//! CPU time of the host process; checks of many documents; one send of a 50 MB PDF.

mod child;
mod memhost;
mod procstat;
mod report;
mod rmway;
mod runner;
mod timeline;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "tae-edu-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    bench: BenchArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// One measured host process (used by the bench itself).
    #[command(hide = true)]
    RunOne(child::RunOneArgs),
}

/// What to measure. Defaults: the rows issue 15's targets need, the headline at L = 20 ms
/// (about 8 minutes on 2 cores); `--headline-latencies 20,80` adds RM's way at 80 ms (about
/// 7 minutes more); `--full` the whole product of L × N × c.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// A small subset (N = 100, check of 1,000, the 50 MB PDF, no headline): about a minute.
    #[arg(long)]
    pub quick: bool,
    /// The product of --latencies (0,20) × --sizes (100,1000,10000) × c = 1,4,16,32, each run
    /// estimated over --max-run-secs skipped.
    #[arg(long)]
    pub full: bool,
    /// Latencies (ms) of the headline: RM's own way (one contract at a time, one status read
    /// per document) against tae-edu, N = --headline-size. RM's way takes about 95 s at 20 ms
    /// and 6.5 minutes at 80 ms, so 80 is opt-in: `--headline-latencies 20,80`.
    #[arg(long, value_delimiter = ',', default_value = "20")]
    pub headline_latencies: Vec<u64>,
    #[arg(long, default_value_t = 1_000)]
    pub headline_size: usize,
    /// Skip the headline (RM's way against tae-edu).
    #[arg(long)]
    pub no_headline: bool,
    /// Skip the sends through the in-memory host (the plugin apart from host-sim).
    #[arg(long)]
    pub no_memory_host: bool,
    /// Injected latencies L (ms), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub latencies: Option<Vec<u64>>,
    /// Batch sizes N, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub sizes: Option<Vec<usize>>,
    /// Concurrencies (`max_concurrency`), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub concurrencies: Option<Vec<u32>>,
    /// Numbers of documents checked, comma-separated (0 = none).
    #[arg(long, value_delimiter = ',')]
    pub check_sizes: Option<Vec<usize>>,
    /// Runs whose estimated time is below --repeat-below-secs are repeated this many times
    /// (the median is reported, with the range).
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    #[arg(long, default_value_t = 6.0)]
    pub repeat_below_secs: f64,
    /// Runs estimated longer than this are skipped (and listed as skipped, with the reason).
    #[arg(long, default_value_t = 120.0)]
    pub max_run_secs: f64,
    /// Skip the send matrix (e.g. to profile a check alone).
    #[arg(long)]
    pub no_sends: bool,
    /// Skip the sends where the host renders the report per contract.
    #[arg(long)]
    pub no_report_source: bool,
    /// Skip the 50 MB PDF send.
    #[arg(long)]
    pub no_big_pdf: bool,
    /// Size of the big PDF (MB).
    #[arg(long, default_value_t = 50)]
    pub big_pdf_mb: usize,
    /// The plugin library (default: libtae_edu.so next to this executable).
    #[arg(long)]
    pub plugin: Option<PathBuf>,
    /// The tae-sim binary (default: next to this executable).
    #[arg(long)]
    pub tae_sim: Option<PathBuf>,
    /// An extra argument for every tae-sim process (repeatable), e.g. `--sim-arg=--tokio-timer`.
    #[arg(long, allow_hyphen_values = true)]
    pub sim_arg: Vec<String>,
    /// Where the table goes (default: docs/PERFORMANCE.md of the workspace); between the
    /// `bench:begin`/`bench:end` markers, keeping what is outside them.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print only; do not write the file.
    #[arg(long)]
    pub no_write: bool,
    /// A command prefix for the measured host process, for profiling one run, e.g.
    /// `--wrap "perf record -e cpu-clock -g -o /tmp/perf.data --"` (implies --no-write).
    #[arg(long)]
    pub wrap: Option<String>,
}

fn main() {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::RunOne(args)) => {
            let report = child::run(&args);
            println!(
                "{}",
                serde_json::to_string(&report).expect("serialising the report")
            );
        }
        None => {
            if let Err(e) = runner::run_all(&cli.bench) {
                eprintln!("tae-edu-bench: {e}");
                std::process::exit(1);
            }
        }
    }
}
