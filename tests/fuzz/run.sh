#!/usr/bin/env bash
# Runs every fuzz target for a few seconds each (make test) or longer (make fuzz FUZZ_SECONDS=600).
# A crash fails the run and leaves the reproducer in tests/fuzz/artifacts/<target>/.
set -euo pipefail
seconds=${1:-20}
cd "$(dirname "$0")"
# libFuzzer needs -Z sanitizer flags; RUSTC_BOOTSTRAP lets the stable toolchain accept them.
export RUSTC_BOOTSTRAP=1
for target in $(cargo fuzz list); do
  mkdir -p "corpus/$target"
  log=$(mktemp)
  if cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 \
      >"$log" 2>&1; then
    echo "fuzz: $target ok, $(grep -Eo 'Done [0-9]+ runs in [0-9]+ second\(s\)' "$log" | tail -1)"
  else
    echo "fuzz: $target FAILED"
    tail -n 60 "$log"
    exit 1
  fi
  rm -f "$log"
done
