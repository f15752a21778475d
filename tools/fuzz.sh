#!/usr/bin/env bash
# Runs each libFuzzer target of fuzz/ (config, idx, image, checkpoint) for SECONDS (default 60)
# with cargo-fuzz, then the bounded property tests with many cases (the same readers, plus the
# CLI's numeric flags), and reports inputs tried and crashes. Needs a nightly toolchain
# (`rustup toolchain install nightly`; libFuzzer's sanitizer flags are nightly-only) and
# `cargo install cargo-fuzz`. Without nightly it runs only the property tests.
# Usage: tools/fuzz.sh [SECONDS] [PROPTEST_CASES]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
cases=${2:-20000}
if cargo +nightly --version >/dev/null 2>&1 && cargo fuzz --version >/dev/null 2>&1; then
  for target in config idx image checkpoint; do
    mkdir -p "fuzz/corpus/$target"
    echo "== cargo fuzz: $target, ${seconds} s"
    (cd fuzz && cargo +nightly fuzz run --sanitizer none "$target" "corpus/$target" -- \
      -max_total_time="$seconds" -rss_limit_mb=4096 2>&1 | grep -E "^#[0-9]+.*DONE|Done [0-9]+ runs|SUMMARY|panicked|ERROR" || true)
  done
  ls fuzz/artifacts/*/crash-* 2>/dev/null && { echo "crashes found (above)"; exit 1; } || echo "no crashes"
else
  echo "cargo fuzz with a nightly toolchain not found: property tests only"
fi
echo "== property tests, $cases cases per reader"
PROPTEST_CASES=$cases cargo test --release -p prism --test malformed_inputs
PROPTEST_CASES=$((cases / 50 + 1)) cargo test --release -p prism-cli --test malformed_flags
