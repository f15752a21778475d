#!/usr/bin/env bash
# The autoencoder results of docs/latent-diffusion.md: KL-f8 and VQ-f4 on Fluent Emoji 3D (64²), each
# with the full loss (L1 + LPIPS + PatchGAN from step 250) and with L1 only. The two runs of a preset
# train side by side, one thread each, for the same wall-clock budget (BUDGET seconds of `prism
# train`, stopped by SIGTERM, which saves), so they share the machine equally; `/usr/bin/time` records
# their CPU time. Then `prism eval --checkpoint RUN` scores each on the 91 held-out images (l1, PSNR,
# SSIM, LPIPS, rFID) and `prism reconstruct` draws a grid; with PYTHON set, tools/ae_grid_metrics.py
# recomputes PSNR/SSIM (scikit-image) and LPIPS (the lpips package) from the grid's 8-bit images as an
# independent check. Needs a release build (PRISM=…), the data (tools/fetch_data.sh fluent-emoji), the
# LPIPS weights (tools/convert_lpips.py) and the Inception (tools/fetch_inception.sh).
# Usage: tools/ae_evidence.sh [BUDGET_SECONDS] [OUT_DIR]
set -euo pipefail
budget=${1:-1200}
out=${2:-runs/ae}
prism=${PRISM:-target/release/prism}
mkdir -p "$out"
for preset in kl-f8 vq-f4; do
  for loss in full l1; do
    cfg="$out/$preset-$loss.toml"
    cp "configs/fluent-ae-$preset.toml" "$cfg"
    # Short runs: the discriminator from step 250 instead of 2000.
    sed -i 's/^start = 2000 .*/start = 250/; s/^start = 2000$/start = 250/' "$cfg"
    if [ "$loss" = l1 ]; then
      sed -i 's/^perceptual_weight = 1.0/perceptual_weight = 0.0/' "$cfg"
      sed -i '/^\[loss.gan\]/,/^discriminator/d' "$cfg"
    fi
    run="$out/$preset-$loss"
    ( RAYON_NUM_THREADS=1 /usr/bin/time -v -o "$run.time" timeout -s TERM "$budget" "$prism" train \
        --config "$cfg" --out "$run" --overwrite --quiet --no-pictures --steps 100000 >"$run.log" 2>&1 || true ) &
  done
  wait
  for loss in full l1; do
    run="$out/$preset-$loss"
    grep -E 'User time|Elapsed' "$run.time"
    tail -n 1 "$run/metrics.jsonl"
    "$prism" eval --checkpoint "$run" --num 91 --metrics l1,psnr,ssim,lpips,fid \
      --lpips data/weights/lpips-vgg16.safetensors \
      --features data/inception/inception-2015-12-05.safetensors --json "$run-eval.json"
    "$prism" reconstruct --checkpoint "$run" --num 91 --out "$run-held-out.png"
    if [ -n "${PYTHON:-}" ]; then
      "$PYTHON" tools/ae_grid_metrics.py "$run-held-out.png" --num 91 --size 64 \
        --lpips data/weights/lpips-vgg16.safetensors
    fi
  done
done
