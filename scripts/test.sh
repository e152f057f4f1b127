#!/usr/bin/env bash
# The project's test command (README): builds the workspace (which produces the plugin's
# cdylib), runs every Rust test, checks the generated header and the exported symbols, and runs
# the C host test (directly and under valgrind) and the C# host test (Mono).
# Respects CARGO_TARGET_DIR (default: target).
#
# The build must pass before anything else runs. After it, every step runs even when an earlier
# one failed (so one report shows every failure); the script exits non-zero if any step failed.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir="${CARGO_TARGET_DIR:-target}"
lib="$target_dir/debug/libtae_edu.so"
failed=()

step() { printf '\n==> %s\n' "$1"; }
run() {
  local name="$1"
  shift
  step "$name"
  if "$@"; then
    printf '==> ok: %s\n' "$name"
  else
    printf '==> FAILED: %s\n' "$name" >&2
    failed+=("$name")
  fi
}

step "cargo build --workspace"
cargo build --workspace

run "cargo test --workspace" cargo test --workspace --no-fail-fast
run "header drift check (include/tae_edu.h vs cbindgen 0.29.4)" scripts/check-header.sh
run "exported symbols of libtae_edu.so" scripts/check-exports.sh "$lib"
run "C host test (gcc -Werror, valgrind)" tests/c/run.sh "$lib"
run "C# host test on Mono (P/Invoke binding include/dotnet/TaeEdu.cs)" tests/dotnet/run.sh

if [ "${#failed[@]}" -gt 0 ]; then
  printf '\n==> %d step(s) failed:\n' "${#failed[@]}" >&2
  printf '    - %s\n' "${failed[@]}" >&2
  exit 1
fi
printf '\n==> all tests passed\n'
