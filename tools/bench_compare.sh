#!/usr/bin/env bash
# One run, same machine: prism's criterion benchmark of the U-Net training and sampling steps, then
# the PyTorch peer (tools/bench_torch.py, 2 threads, fp32) on the same architectures and batch sizes.
# Needs the Python venv: python3 -m venv tools/.venv && tools/.venv/bin/pip install -r tools/requirements.txt
# (or PYTHON=/path/to/python with those packages).
# Writes target/bench/{prism.txt,torch-*.json} and prints both.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target/bench
# `--workspace` shares the build of `cargo test --workspace --release` (same burn features).
cargo bench --workspace --profile release --bench unet -- --noplot 2>&1 | tee target/bench/prism.txt | grep -E "^unet/|time:|thrpt:"
for preset in fmnist bench; do
  "${PYTHON:-tools/.venv/bin/python}" tools/bench_torch.py --preset "$preset" --warmup 2 --iters 10 --threads 2 \
    --json "target/bench/torch-$preset.json"
done
