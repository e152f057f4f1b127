#!/usr/bin/env bash
# The project's test command (README): sets up what the tests need, builds the workspace (which
# produces the plugin's cdylib), runs every Rust test, checks the generated header and the
# exported symbols, and runs the C host test (directly and under valgrind) and the C# host test
# (Mono). Respects CARGO_TARGET_DIR (default: target).
#
#   scripts/test.sh              set up, then run every step
#   scripts/test.sh --setup-only set up (or report what is missing) and stop
#
# Setup, before anything is built:
# - the pinned cbindgen: installed with `cargo install` when missing or of another version (no
#   root needed; into cargo's bin directory, added to PATH here);
# - the Debian packages (gcc, valgrind, qpdf, poppler-utils, Mono, ...): when some are missing,
#   installed with apt-get if running as root; otherwise one message lists what is missing and
#   the command that installs it, and the script fails before building anything.
# Environment:
#   TAE_EDU_TEST_ROOT=0|1   treat the user as non-root / root (default: `id -u` = 0), e.g.
#                           TAE_EDU_TEST_ROOT=0 to see the message instead of installing;
#   VALGRIND=0              skip the valgrind run of the C host test (then valgrind is not needed);
#   TAE_EDU_SKIP_DOTNET=1   skip the C# host test (then Mono is not needed).
#
# After the build, every step runs even when an earlier one failed (so one report shows every
# failure); the script exits non-zero if any step failed.
set -euo pipefail
cd "$(dirname "$0")/.."

CBINDGEN_VERSION=0.29.4

# ---------------------------------------------------------------------------------------------
# Setup
# ---------------------------------------------------------------------------------------------

# Debian package -> how to tell it is installed (a command on PATH, or a file).
declare -A provides=(
  [gcc]="cmd:gcc"
  [g++]="cmd:g++"
  [libc6-dev]="file:/usr/include/stdio.h"
  [binutils]="cmd:nm cmd:readelf"
  [valgrind]="cmd:valgrind"
  [qpdf]="cmd:qpdf"
  [poppler-utils]="cmd:pdfinfo"
  [mono-mcs]="cmd:mcs"
  [mono-runtime]="cmd:mono"
)
wanted=(gcc g++ libc6-dev binutils qpdf poppler-utils)
[ "${VALGRIND:-1}" != "0" ] && wanted+=(valgrind)
[ "${TAE_EDU_SKIP_DOTNET:-0}" != "1" ] && wanted+=(mono-mcs mono-runtime)

package_present() {
  local check
  for check in ${provides[$1]}; do
    case "$check" in
      cmd:*) command -v "${check#cmd:}" >/dev/null 2>&1 || return 1 ;;
      file:*) [ -e "${check#file:}" ] || return 1 ;;
    esac
  done
}

cargo_bin="${CARGO_INSTALL_ROOT:-${CARGO_HOME:-$HOME/.cargo}}/bin"
case ":$PATH:" in *":$cargo_bin:"*) ;; *) export PATH="$cargo_bin:$PATH" ;; esac
cbindgen_present() {
  [ "$(cbindgen --version 2>/dev/null || true)" = "cbindgen $CBINDGEN_VERSION" ]
}
cbindgen_install="cargo install cbindgen --version $CBINDGEN_VERSION --locked"

if [ -n "${TAE_EDU_TEST_ROOT:-}" ]; then
  as_root="$TAE_EDU_TEST_ROOT"
elif [ "$(id -u)" = "0" ]; then
  as_root=1
else
  as_root=0
fi

missing=()
for package in "${wanted[@]}"; do
  package_present "$package" || missing+=("$package")
done
apt_install="apt-get install -y --no-install-recommends ${missing[*]}"

if [ "${#missing[@]}" -gt 0 ] && { [ "$as_root" != "1" ] || ! command -v apt-get >/dev/null 2>&1; }; then
  {
    echo "scripts/test.sh: the tests need programs that are not installed:"
    echo "  Debian packages: ${missing[*]}"
    cbindgen_present || echo "  cbindgen $CBINDGEN_VERSION (this script installs it itself with: $cbindgen_install)"
    echo "Install them as root, then run scripts/test.sh again:"
    echo "  sudo apt-get update && sudo $apt_install"
    echo "(or run scripts/test.sh as root, which installs them; VALGRIND=0 and"
    echo " TAE_EDU_SKIP_DOTNET=1 skip the steps that need valgrind and Mono.)"
  } >&2
  exit 1
fi
if [ "${#missing[@]}" -gt 0 ]; then
  printf '==> installing the missing Debian packages: %s\n' "${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update </dev/null
  # shellcheck disable=SC2086
  apt-get install -y --no-install-recommends "${missing[@]}" </dev/null
  still=()
  for package in "${missing[@]}"; do
    package_present "$package" || still+=("$package")
  done
  if [ "${#still[@]}" -gt 0 ]; then
    echo "scripts/test.sh: apt-get ran but these are still missing: ${still[*]}" >&2
    exit 1
  fi
fi
if ! cbindgen_present; then
  printf '==> installing cbindgen %s (%s)\n' "$CBINDGEN_VERSION" "$cbindgen_install"
  if ! $cbindgen_install </dev/null || ! cbindgen_present; then
    {
      echo "scripts/test.sh: cbindgen $CBINDGEN_VERSION is missing and could not be installed."
      echo "Install it with:  $cbindgen_install  (needs access to crates.io), then run again."
    } >&2
    exit 1
  fi
fi
printf '==> setup: %s; cbindgen %s; Debian packages present: %s\n' \
  "$(cargo --version)" "$CBINDGEN_VERSION" "${wanted[*]}"
if [ "${1:-}" = "--setup-only" ]; then
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------------------------

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
run "header drift check (include/tae_edu.h vs cbindgen $CBINDGEN_VERSION)" scripts/check-header.sh
run "exported symbols of libtae_edu.so" scripts/check-exports.sh "$lib"
run "C host test (gcc -Werror, valgrind)" tests/c/run.sh "$lib"
run "C# host test on Mono (P/Invoke binding include/dotnet/TaeEdu.cs)" tests/dotnet/run.sh

if [ "${#failed[@]}" -gt 0 ]; then
  printf '\n==> %d step(s) failed:\n' "${#failed[@]}" >&2
  printf '    - %s\n' "${failed[@]}" >&2
  exit 1
fi
printf '\n==> all tests passed\n'
