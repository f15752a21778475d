#!/usr/bin/env bash
# Where the time goes, prism against PyTorch, in one run on one machine (BENCHMARKS.md, "Where the
# time goes"). For each net (fmnist, bench) and step (train, sample): prism's step time (criterion)
# and its profile by operation class (Linux perf + tools/profile_prism.py), then PyTorch's step times
# and torch.profiler profile of the same architecture (tools/bench_torch.py --profile).
# Needs: perf (Debian: linux-perf; run as root or with perf_event_paranoid <= 1), the Python venv of
# tools/requirements.txt (PYTHON, default tools/.venv/bin/python), a built bench binary:
#   cargo bench --profile release -p prism --bench unet --no-run
# Writes target/profile/*; prints the tables. PROFILE_SECONDS (default 20) per prism profile;
# THREADS (default 2): rayon threads for prism (RAYON_NUM_THREADS), intra-op threads for torch. On a
# machine shared with other work, THREADS=1 keeps the comparison fair: two busy-waiting OpenMP
# threads of which one is descheduled slow torch down by an order of magnitude.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-tools/.venv/bin/python}
SECONDS_EACH=${PROFILE_SECONDS:-20}
THREADS=${THREADS:-2}
export RAYON_NUM_THREADS=$THREADS
out=target/profile
mkdir -p "$out"
bench=${BENCH:-$(ls -t "${CARGO_TARGET_DIR:-target}"/release/deps/unet-* | grep -v '\.d$' | head -1)}
echo "bench binary: $bench"
echo "load before: $(uptime)"
for net in fmnist bench; do
  for step in train sample; do
    name="unet/${step}_step/f32/${net}"
    echo "== prism $name"
    "$bench" --bench "$name" --noplot --discard-baseline 2>&1 | tee "$out/prism-$net-$step.txt" | grep -E "time:" || true
    secs=$(grep -oE "time: +\[[^]]*\]" "$out/prism-$net-$step.txt" | head -1 | awk '{
      v=$4; u=$5; if (u=="ms") v/=1000; if (u=="µs"||u=="us") v/=1e6; print v }')
    perf record -q -F 499 -e cpu-clock -e sched:sched_switch --call-graph dwarf,16384 \
      -o "$out/perf-$net-$step.data" -- "$bench" --bench --profile-time "$SECONDS_EACH" "$name" \
      >/dev/null 2>&1
    perf script -i "$out/perf-$net-$step.data" -F pid,tid,time,event,ip,sym \
      >"$out/perf-$net-$step.txt" 2>/dev/null
    python3 tools/profile_prism.py "$out/perf-$net-$step.txt" --step-seconds "$secs" \
      --json "$out/prism-$net-$step.json"
    rm -f "$out/perf-$net-$step.data"
  done
  echo "== torch $net"
  "$PYTHON" tools/bench_torch.py --preset "$net" --warmup 2 --iters 10 --threads "$THREADS" --profile 5 \
    --json "$out/torch-$net.json" 2>&1 | grep -v -E "^(USDT|ERROR)"
done
echo "load after: $(uptime)"
