//! host-sim: a simulated TOTVS RM host for the tae-edu plugin.
//!
//! `host-sim demo` walks the whole process end to end against an embedded tae-sim. The other
//! commands run one entry point at a time against the embedded tae-sim or any TAE base URL;
//! see `src/cli/`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
