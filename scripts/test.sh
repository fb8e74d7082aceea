#!/usr/bin/env bash
# The whole test suite: unit, integration, interop (official clients), ASan+UBSan unit
# tests, bounded libFuzzer runs and benchmark smoke runs. Last line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
jobs=${FERRY_TEST_JOBS:-2}

scripts/install-deps.sh || { echo "test.sh: installing dependencies failed" >&2; echo "0 passed, 1 failed"; exit 1; }
for d in tests/interop bench/baseline; do
  ( cd "$d" && npm ci --no-audit --no-fund --loglevel=error ) || { echo "npm ci in $d failed"; echo "0 passed, 1 failed"; exit 1; }
done

fail() {  # a step before the tests failed: say which, keep the summary line contract
  echo "test.sh: $1" >&2
  echo "0 passed, 1 failed"
  exit 1
}

builds=()
run_suite() {  # build dir, meson test args...
  local dir=$1; shift
  builds+=("$dir")
  meson test -C "$dir" --no-rebuild --print-errorlogs --num-processes "$jobs" "$@" || true
}

# 1. Main build: every suite except the sanitizer and fuzz builds below.
[ -f build/build.ninja ] || meson setup build --buildtype=debugoptimized || fail "meson setup build failed"
ninja -C build || fail "build failed"
run_suite build --no-suite fuzz

# 2. Unit tests under AddressSanitizer + UndefinedBehaviorSanitizer.
[ -f build-asan/build.ninja ] || meson setup build-asan --buildtype=debug -Db_sanitize=address,undefined \
  -Db_lundef=false || fail "meson setup build-asan failed"
unit_targets=$(meson introspect build-asan --tests | /usr/bin/python3 -c '
import json, sys
for t in json.load(sys.stdin):
    if "unit" in t["suite"] or any(s.endswith(":unit") for s in t["suite"]):
        print(t["cmd"][0])' | sed "s#^$PWD/build-asan/##" | sort -u)
ninja -C build-asan $unit_targets || fail "sanitizer build failed"
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 run_suite build-asan --suite unit

# 3. libFuzzer targets (clang), each for a bounded time.
[ -f build-fuzz/build.ninja ] || CXX=clang++ meson setup build-fuzz --buildtype=debugoptimized -Dfuzz=true \
  -Db_lundef=false || fail "meson setup build-fuzz failed"
fuzz_targets=$(meson introspect build-fuzz --tests | /usr/bin/python3 -c '
import json, sys
for t in json.load(sys.stdin):
    if any(s == "fuzz" or s.endswith(":fuzz") for s in t["suite"]):
        print(t["cmd"][0])' | sed "s#^$PWD/build-fuzz/##" | sort -u)
if [ -n "$fuzz_targets" ]; then
  ninja -C build-fuzz $fuzz_targets || fail "fuzz build failed"
  run_suite build-fuzz --suite fuzz
fi

/usr/bin/python3 scripts/summary.py "${builds[@]}"
