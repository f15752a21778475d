#!/usr/bin/env bash
# The autoencoder results of docs/latent-diffusion.md: KL-f8 and VQ-f4 on Fluent Emoji 3D (64²), each
# with the full loss (L1 + LPIPS + PatchGAN) and with L1 only, for the same wall-clock budget
# (BUDGET seconds of `prism train`, stopped by SIGTERM, which saves), then held-out metrics from
# `prism reconstruct` grids (tools/ae_grid_metrics.py: PSNR/SSIM with scikit-image, LPIPS with the
# lpips package). Needs target/release/prism (cargo build --release), the data
# (tools/fetch_data.sh fluent-emoji), the LPIPS weights (tools/convert_lpips.py) and the tools venv.
# Usage: tools/ae_evidence.sh [BUDGET_SECONDS] [OUT_DIR]
set -euo pipefail
budget=${1:-300}
out=${2:-runs/ae-evidence}
prism=${PRISM:-target/release/prism}
python=${PYTHON:-python}
mkdir -p "$out"
for preset in kl-f8 vq-f4; do
  for loss in full l1; do
    cfg="$out/$preset-$loss.toml"
    cp "configs/fluent-ae-$preset.toml" "$cfg"
    # Short runs: the discriminator from step 100 instead of 2000.
    sed -i 's/^start = 2000 .*/start = 100/; s/^start = 2000$/start = 100/' "$cfg"
    if [ "$loss" = l1 ]; then
      sed -i 's/^perceptual_weight = 1.0/perceptual_weight = 0.0/' "$cfg"
      sed -i '/^\[loss.gan\]/,/^discriminator/d' "$cfg"
    fi
    run="$out/$preset-$loss"
    timeout -s TERM "$budget" nice "$prism" train --config "$cfg" --out "$run" --overwrite --quiet --steps 100000 || true
    "$prism" reconstruct --checkpoint "$run" --num 91 --out "$run/held-out.png"
    echo "$preset $loss $(tail -n 1 "$run/metrics.jsonl")" | tee -a "$out/summary.txt"
    echo "$preset $loss $("$python" tools/ae_grid_metrics.py "$run/held-out.png" --num 91 --size 64)" | tee -a "$out/summary.txt"
  done
done
