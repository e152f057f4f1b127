#!/usr/bin/env bash
# Fails unless the built library exports exactly the tae_edu_* symbols of docs/abi.md (no stray
# symbols from dependencies).   scripts/check-exports.sh [path/to/libtae_edu.so]
set -euo pipefail
cd "$(dirname "$0")/.."
lib="${1:-${CARGO_TARGET_DIR:-target}/debug/libtae_edu.so}"
expected="tae_edu_abi_version
tae_edu_attachment_list
tae_edu_buffer_free
tae_edu_configure
tae_edu_execute
tae_edu_session_end
tae_edu_shutdown"
actual="$(nm -D --defined-only "$lib" | awk '{print $NF}' | sort)"
if [ "$actual" != "$expected" ]; then
  echo "check-exports: $lib exports something other than the tae_edu_* ABI:" >&2
  diff <(echo "$expected") <(echo "$actual") >&2 || true
  exit 1
fi
if ! readelf -d "$lib" | grep -q 'NODELETE'; then
  echo "check-exports: $lib is not linked with -z nodelete" >&2
  exit 1
fi
echo "check-exports: $lib exports exactly the $(echo "$actual" | wc -l) tae_edu_* symbols (and is NODELETE)"
