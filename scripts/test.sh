#!/usr/bin/env bash
# The project's test command (README): builds the workspace (which produces the plugin's
# cdylib), runs every Rust test, checks the generated header and the exported symbols, and runs
# the C host test (directly and under valgrind).  Respects CARGO_TARGET_DIR (default: target).
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir="${CARGO_TARGET_DIR:-target}"
step() { printf '\n==> %s\n' "$*"; }

step "cargo build --workspace"
cargo build --workspace

step "cargo test --workspace"
cargo test --workspace

step "header drift check (include/tae_edu.h vs cbindgen 0.29.4)"
scripts/check-header.sh

step "exported symbols of libtae_edu.so"
scripts/check-exports.sh "$target_dir/debug/libtae_edu.so"

step "C host test (gcc -Werror, valgrind)"
tests/c/run.sh "$target_dir/debug/libtae_edu.so"

printf '\n==> all tests passed\n'
