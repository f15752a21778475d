#!/usr/bin/env bash
# Kills `prism train` with SIGKILL at random moments, resumes it each time, and checks that the
# final weights, EMA and optimiser state equal the uninterrupted run's bit for bit. CI runs the
# same test with 3 kills; this runs ROUNDS (default 50) kills per seed for each of SEEDS seeds.
# Usage: tools/kill9_resume.sh [ROUNDS] [SEEDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-50}
seeds=${2:-1}
cargo test --release -p prism-cli --test reliability --no-run
for seed in $(seq 1 "$seeds"); do
  echo "== seed $seed: $rounds kills"
  PRISM_KILL9_ROUNDS=$rounds PRISM_KILL9_SEED=$seed \
    cargo test --release -p prism-cli --test reliability kill_9 -- --nocapture 2>&1 |
    grep -E "kills|test result|panicked|assert" || true
done
