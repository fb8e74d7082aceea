#!/usr/bin/env bash
# run-official.sh - runs the OFFICIAL Engine.IO v4 and Socket.IO v5 protocol test suites
# (docs/engine.io-protocol/v4-test-suite and docs/socket.io-protocol/v5-test-suite of the
# socketio/socket.io repository) against Ferry's sio-echo.
#
#   tests/conformance/run-official.sh <path-to-socket.io-checkout> [builddir]
#
# Nothing is vendored: each suite is copied from the given checkout into a temporary
# directory, its own package-lock.json is installed there with `npm ci` (needs the npm
# registry or a warm npm cache), and the copy is deleted afterwards (KEEP_TMP=1 keeps it).
# The suites hard-code http://localhost:3000; the copy is pointed at 127.0.0.1 and the
# port sio-echo picked, so nothing else may be listening on 3000 and no IPv6 lookup is
# involved.
#
# Environment:
#   SIO_ECHO=<path>   the sio-echo binary (default: <builddir>/tools/sio-echo, builddir
#                     defaulting to ./build relative to the repository root)
#   SUITES="eio sio"  which suites to run
#   KEEP_TMP=1        keep the temporary directory (printed) for inspection
#   MOCHA_RETRIES=n   retry a failing test n times (default 0). The polling "ping
#                     timeout" test sleeps exactly pingInterval + pingTimeout and has no
#                     margin: on a loaded machine it fails for the Node reference server
#                     as often as for Ferry (measured 16/40 vs 15/40 at load average 7).
# Exit status: 0 when every suite passed, 1 when a suite failed, 2 on a usage/setup error.
set -euo pipefail

usage() {
  echo "usage: $0 <path-to-socket.io-checkout> [builddir]" >&2
  exit 2
}
[[ $# -ge 1 && $# -le 2 ]] || usage

checkout=$(cd "$1" 2>/dev/null && pwd) || { echo "error: no such directory: $1" >&2; exit 2; }
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
builddir=${2:-$repo_root/build}
sio_echo=${SIO_ECHO:-$builddir/tools/sio-echo}
suites=${SUITES:-"eio sio"}

declare -A suite_dir=(
  [eio]="docs/engine.io-protocol/v4-test-suite"
  [sio]="docs/socket.io-protocol/v5-test-suite"
)

for s in $suites; do
  [[ -n "${suite_dir[$s]:-}" ]] || { echo "error: unknown suite '$s' (use eio, sio)" >&2; exit 2; }
  [[ -f "$checkout/${suite_dir[$s]}/test-suite.js" ]] || {
    echo "error: $checkout/${suite_dir[$s]}/test-suite.js not found: is $checkout a socket.io checkout?" >&2
    exit 2
  }
done
[[ -x "$sio_echo" ]] || {
  echo "error: sio-echo not found at $sio_echo (build it: ninja -C <builddir> tools/sio-echo, or set SIO_ECHO)" >&2
  exit 2
}
for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "error: $tool is required" >&2; exit 2; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ferry-official-suites.XXXXXX")
echo_pid=
cleanup() {
  if [[ -n "$echo_pid" ]] && kill -0 "$echo_pid" 2>/dev/null; then
    kill "$echo_pid" 2>/dev/null || true
    wait "$echo_pid" 2>/dev/null || true
  fi
  if [[ "${KEEP_TMP:-0}" == 1 ]]; then
    echo "kept $tmp"
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# sio-echo on a kernel-chosen port; its first stdout line names it.
"$sio_echo" --host 127.0.0.1 --port 0 >"$tmp/sio-echo.out" 2>"$tmp/sio-echo.err" &
echo_pid=$!
port=
for _ in $(seq 1 100); do
  port=$(sed -n 's/^sio-echo listening on [^ ]*:\([0-9][0-9]*\)$/\1/p' "$tmp/sio-echo.out")
  [[ -n "$port" ]] && break
  kill -0 "$echo_pid" 2>/dev/null || { echo "error: sio-echo exited: $(cat "$tmp/sio-echo.err")" >&2; exit 2; }
  sleep 0.1
done
[[ -n "$port" ]] || { echo "error: sio-echo did not report its port" >&2; exit 2; }
echo "sio-echo (pid $echo_pid) listening on 127.0.0.1:$port"
echo "suites from $checkout (commit $(git -C "$checkout" rev-parse --short HEAD 2>/dev/null || echo unknown))"

status=0
declare -A result
for s in $suites; do
  dir="$tmp/$s"
  mkdir -p "$dir"
  # the suite's files only, never a node_modules that may sit in the checkout
  tar -C "$checkout/${suite_dir[$s]}" --exclude=./node_modules -cf - . | tar -C "$dir" -xf -
  if ! grep -q 'http://localhost:3000' "$dir/test-suite.js"; then
    echo "error: $s suite: URL http://localhost:3000 not found in test-suite.js; the suite changed" >&2
    exit 2
  fi
  sed -i "s#http://localhost:3000#http://127.0.0.1:$port#g" "$dir/test-suite.js"

  echo "=== $s: npm ci"
  if ! (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >"$tmp/$s-npm.log" 2>&1); then
    cat "$tmp/$s-npm.log" >&2
    echo "error: npm ci failed for the $s suite" >&2
    exit 2
  fi
  echo "=== $s: mocha test-suite.js"
  if (cd "$dir" && ./node_modules/.bin/mocha --reporter spec --retries "${MOCHA_RETRIES:-0}" test-suite.js); then
    result[$s]=passed
  else
    result[$s]=FAILED
    status=1
  fi
  kill -0 "$echo_pid" 2>/dev/null || { echo "error: sio-echo died during the $s suite" >&2; result[$s]="FAILED (server died)"; status=1; break; }
done

echo
for s in $suites; do echo "$s suite (${suite_dir[$s]}): ${result[$s]:-not run}"; done
exit $status
