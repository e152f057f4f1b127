#!/usr/bin/env bash
# Compiles the C# host test with Mono's mcs and runs it with mono against the built plugin and a
# tae-sim started here on loopback. Needs: the workspace built (`cargo build --workspace`),
# Debian's mono-mcs and mono-runtime. Set TAE_EDU_SKIP_DOTNET=1 to skip explicitly.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
case "$target" in /*) ;; *) target=$root/$target ;; esac
profile_dir=$target/debug

if [ "${TAE_EDU_SKIP_DOTNET:-0}" = 1 ]; then
  echo "dotnet host test: SKIPPED because TAE_EDU_SKIP_DOTNET=1"
  exit 0
fi
if ! command -v mcs >/dev/null || ! command -v mono >/dev/null; then
  echo "dotnet host test: Mono is missing (mcs/mono not found). Install Debian's mono-mcs and mono-runtime" >&2
  echo "(apt-get install -y mono-mcs mono-runtime), or set TAE_EDU_SKIP_DOTNET=1 to skip explicitly." >&2
  exit 1
fi
for f in "$profile_dir/libtae_edu.so" "$profile_dir/tae-sim"; do
  [ -e "$f" ] || { echo "dotnet host test: $f is missing; run cargo build --workspace first" >&2; exit 1; }
done

out=$(mktemp -d)
sim_pid=
cleanup() { [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null; rm -rf "$out"; }
trap cleanup EXIT

mcs -nologo -warnaserror -out:"$out/HostTest.exe" -r:System.dll -r:System.Core.dll \
  "$root/include/dotnet/TaeEdu.cs" "$root/tests/dotnet/MiniJson.cs" "$root/tests/dotnet/HostTest.cs"

mkfifo "$out/sim.out"
"$profile_dir/tae-sim" --addr 127.0.0.1:0 >"$out/sim.out" 2>"$out/sim.err" &
sim_pid=$!
exec 3<"$out/sim.out"
if ! read -r -t 30 base_url <&3; then
  echo "dotnet host test: tae-sim did not print its base URL" >&2
  cat "$out/sim.err" >&2
  exit 1
fi
# keep draining the simulator's stdout so it never blocks on a full pipe
cat <&3 >/dev/null &

LD_LIBRARY_PATH="$profile_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" mono "$out/HostTest.exe" "$base_url"
