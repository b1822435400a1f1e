#!/usr/bin/env bash
# Builds the ASan/UBSan Debug variant of the addon and runs the vitest suite against it.
# Exits non-zero on any test failure or any sanitizer report. Big inputs are scaled down
# (SLUICE_TEST_SCALE=small) to keep the run short.
set -uo pipefail
cd "$(dirname "$0")/.."

node scripts/build.mjs --debug --sanitize || exit 1

asan=$(gcc -print-file-name=libasan.so)
ubsan=$(gcc -print-file-name=libubsan.so)
for lib in "$asan" "$ubsan"; do
  if [ ! -e "$lib" ]; then
    echo "test-sanitize: $lib not found (install gcc's libasan/libubsan)" >&2
    exit 1
  fi
done

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

# Node itself is not instrumented and leaks at exit by design, hence detect_leaks=0.
status=0
env \
  SLUICE_SANITIZE=1 \
  SLUICE_TEST_SCALE=small \
  SLUICE_NATIVE_PATH="$PWD/build/Sanitize/sluice_native.node" \
  LD_PRELOAD="$asan $ubsan" \
  ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0:log_path=$logs/asan" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$logs/ubsan" \
  node node_modules/vitest/vitest.mjs run "$@" || status=$?

if compgen -G "$logs/*" >/dev/null; then
  echo "test-sanitize: sanitizer reports:" >&2
  cat "$logs"/* >&2
  exit 1
fi
if [ "$status" -ne 0 ]; then
  echo "test-sanitize: vitest failed with status $status" >&2
fi
exit "$status"
