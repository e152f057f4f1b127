#!/usr/bin/env bash
# Builds tests/c/host_test.c against include/tae_edu.h with warnings as errors, links it to the
# built plugin, and runs it directly and under valgrind.
#   tests/c/run.sh [path/to/libtae_edu.so]    (default: $CARGO_TARGET_DIR or target, debug)
# Env: VALGRIND=0 skips the valgrind run (it is required by default, and in CI).
set -euo pipefail
cd "$(dirname "$0")/../.."

lib="${1:-${CARGO_TARGET_DIR:-target}/debug/libtae_edu.so}"
if [ ! -f "$lib" ]; then
  echo "tests/c: $lib not found; build it first: cargo build -p tae-edu" >&2
  exit 1
fi
libdir="$(cd "$(dirname "$lib")" && pwd)"
out="tests/c/build"
mkdir -p "$out"

# A private copy named libtae_edu.so, so the rpath finds exactly the library under test.
cp "$lib" "$out/libtae_edu.so"

gcc -std=c11 -Wall -Wextra -Wpedantic -Werror -g -O1 \
  -Iinclude tests/c/host_test.c \
  -L"$out" -ltae_edu -Wl,-rpath,"$(cd "$out" && pwd)" -lpthread \
  -o "$out/host_test"
# The header is also valid C++ (cbindgen cpp_compat): compile-check it with g++ when available.
if command -v g++ >/dev/null 2>&1; then
  printf '#include "tae_edu.h"\nint main(void) { return tae_edu_abi_version() == TAE_EDU_ABI_VERSION ? 0 : 1; }\n' \
    | g++ -std=c++17 -Wall -Wextra -Wpedantic -Werror -Iinclude -x c++ - -fsyntax-only
fi

echo "tests/c: running host_test against $libdir/$(basename "$lib")"
"$out/host_test"

if [ "${VALGRIND:-1}" != "0" ]; then
  if ! command -v valgrind >/dev/null 2>&1; then
    echo "tests/c: valgrind is not installed (apt-get install valgrind, or VALGRIND=0 to skip)" >&2
    exit 1
  fi
  echo "tests/c: running host_test under valgrind"
  valgrind --quiet --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
    --show-leak-kinds=definite "$out/host_test"
fi
