#!/usr/bin/env bash
# Times `prism bench` (training step and sampling step) for the shipped presets on whatever GPU this
# machine has, and reports the GPU memory it used. Builds nothing: give it a prism binary built with
# a GPU feature beforehand, e.g.
#   cargo build --release -p prism-cli --features cuda    # NVIDIA (see README 'GPU' for what it needs)
#   cargo build --release -p prism-cli --features wgpu    # Vulkan / Metal / DX12 (any vendor)
# Usage: tools/gpu_bench.sh [PRISM_BINARY] [PRESET.toml ...]
#   PRISM_BINARY  default: target/release/prism ($CARGO_TARGET_DIR/release/prism when set)
#   PRESETS       default: configs/simple-{64,128,256,512}.toml configs/fashion-mnist-cond.toml
# Environment: BURN_DEVICE=cuda|vulkan|wgpu|… picks burn's backend when several are compiled in;
#   BENCH_FLAGS adds flags to every `prism bench` (default: --train-steps 5 --sample-steps 5).
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${1:-${CARGO_TARGET_DIR:-target}/release/prism}
shift || true
if [[ ! -x $bin ]]; then
  echo "no prism binary at '$bin': build one with --features cuda or --features wgpu first (this script builds nothing)" >&2
  exit 1
fi
presets=("$@")
if [[ ${#presets[@]} -eq 0 ]]; then
  presets=(configs/simple-64.toml configs/simple-128.toml configs/simple-256.toml configs/simple-512.toml configs/fashion-mnist-cond.toml)
fi
flags=${BENCH_FLAGS:---train-steps 5 --sample-steps 5}

echo "== GPU"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  gpu=nvidia
elif command -v vulkaninfo >/dev/null 2>&1; then
  vulkaninfo --summary 2>/dev/null | grep -E "deviceName|driverName|apiVersion" || true
  gpu=vulkan
else
  echo "no nvidia-smi or vulkaninfo: GPU memory will not be reported"
  gpu=none
fi

# Peak GPU memory used while `prism` runs, sampled every 0.2 s (NVIDIA only; other vendors have no
# portable query: prism's own report is then the host's peak resident memory).
watch_memory() {
  local out=$1 peak=0 used
  while :; do
    used=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits 2>/dev/null | sort -n | tail -1)
    [[ -n $used && $used -gt $peak ]] && peak=$used && echo "$peak" >"$out"
    sleep 0.2
  done
}

printf '\n%-32s %14s %14s %16s\n' preset "train step s" "sample step s" "GPU memory MiB"
echo "(train: mean after the first step; sample: total / steps; GPU memory: peak nvidia-smi memory.used, 0 = not measured)"
for preset in "${presets[@]}"; do
  log=$(mktemp)
  mem=$(mktemp)
  echo 0 >"$mem"
  if [[ $gpu == nvidia ]]; then
    watch_memory "$mem" &
    watcher=$!
  fi
  # shellcheck disable=SC2086
  if ! "$bin" bench --config "$preset" $flags >"$log" 2>&1; then
    echo "prism bench failed for $preset:" >&2
    tail -5 "$log" >&2
  fi
  [[ $gpu == nvidia ]] && kill "$watcher" 2>/dev/null && wait "$watcher" 2>/dev/null || true
  train=$(grep -E "^training" "$log" | grep -oE "[0-9.]+ s mean" | head -1 | cut -d' ' -f1)
  sample=$(grep -E "^sampling" "$log" | grep -oE "[0-9.]+ s per step" | head -1 | cut -d' ' -f1)
  printf '%-32s %14s %14s %16s\n' "$preset" "${train:-?}" "${sample:-?}" "$(cat "$mem")"
  grep -E "^prism: device|peak resident" "$log" | sed 's/^/    /'
  rm -f "$log" "$mem"
done
