#!/usr/bin/env bash
# Regenerates include/tae_edu.h with the pinned cbindgen into a temporary file and fails when it
# differs from the committed header.  `--update` rewrites the committed header instead.
set -euo pipefail
cd "$(dirname "$0")/.."

CBINDGEN_VERSION=0.29.4
if ! version="$(cbindgen --version 2>/dev/null)" || [ "$version" != "cbindgen $CBINDGEN_VERSION" ]; then
  echo "check-header: cbindgen $CBINDGEN_VERSION is required (found: ${version:-none})." >&2
  echo "  install it with: cargo install cbindgen --version $CBINDGEN_VERSION --locked" >&2
  exit 1
fi

generate() {
  cbindgen --quiet --config plugin/cbindgen.toml --crate tae-edu --output "$1" plugin
}

if [ "${1:-}" = "--update" ]; then
  generate include/tae_edu.h
  echo "check-header: include/tae_edu.h regenerated"
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
generate "$tmp/tae_edu.h"
if ! diff -u include/tae_edu.h "$tmp/tae_edu.h"; then
  echo "check-header: include/tae_edu.h is out of date with plugin/src (see the diff above);" >&2
  echo "  run scripts/check-header.sh --update and commit the header." >&2
  exit 1
fi
echo "check-header: include/tae_edu.h matches the code"
