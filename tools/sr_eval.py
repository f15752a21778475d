#!/usr/bin/env python3
"""Evidence for docs/super-resolution.md: PSNR and SSIM of 4x super-resolution against bicubic and
nearest upsampling, measured with scikit-image on the PNGs that `prism upscale` writes.

NOT part of prism's library or tests: an evaluation script for the figures in the docs. The figures
in docs/super-resolution.md come from prism's own golden-tested metrics (`prism eval --pairs`) on the
folders this script writes; `score` is the scikit-image cross-check (its SSIM uses scikit-image's
default 7x7 uniform window, prism's the paper's Gaussian window, so SSIMs differ slightly).

Needs: numpy, pillow, scikit-image (versions used: numpy 2.4.6, pillow 13.0.0, scikit-image 0.26.0).

  tools/sr_eval.py prepare DATA_DIR HELD_OUT COUNT OUT_DIR
      The last HELD_OUT files of DATA_DIR (sorted, as prism's data.held_out split takes them), the
      first COUNT of those: composited on white, written as OUT_DIR/truth/NAME.png; average-pooled
      by 4 (as the stage's training condition) and rounded to 8 bits as OUT_DIR/low/NAME.png.
  tools/sr_eval.py baselines OUT_DIR
      Writes OUT_DIR/bicubic/NAME.png and OUT_DIR/nearest/NAME.png (PIL BICUBIC / NEAREST upsampling
      of OUT_DIR/low to the truth's size), so that every method can be scored the same way with
      `prism eval --pairs OUT_DIR/truth FOLDER --metrics psnr,ssim,lpips --lpips WEIGHTS`.
  tools/sr_eval.py score OUT_DIR [SR_DIR]
      PSNR / SSIM (data range 255, SSIM over RGB with channel_axis) of bicubic (PIL BICUBIC) and
      nearest upsampling of OUT_DIR/low, and of SR_DIR/NAME.png when given, against OUT_DIR/truth;
      prints mean +- standard error over the images as JSON.
"""
import json
import os
import sys

import numpy as np
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

FACTOR = 4
EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")


def composite(path):
    img = Image.open(path).convert("RGBA")
    white = Image.new("RGBA", img.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(white, img).convert("RGB"))


def prepare(data_dir, held_out, count, out_dir):
    files = sorted(f for f in os.listdir(data_dir) if f.lower().endswith(EXTENSIONS))
    chosen = files[len(files) - held_out :][:count]
    os.makedirs(os.path.join(out_dir, "truth"), exist_ok=True)
    os.makedirs(os.path.join(out_dir, "low"), exist_ok=True)
    for f in chosen:
        x = composite(os.path.join(data_dir, f)).astype(np.float64)
        h, w, c = x.shape
        low = x.reshape(h // FACTOR, FACTOR, w // FACTOR, FACTOR, c).mean(axis=(1, 3))
        name = os.path.splitext(f)[0] + ".png"
        Image.fromarray(x.astype(np.uint8)).save(os.path.join(out_dir, "truth", name))
        Image.fromarray(np.clip(np.round(low), 0, 255).astype(np.uint8)).save(
            os.path.join(out_dir, "low", name)
        )
    print(f"{len(chosen)} held-out images in {out_dir}/truth and {out_dir}/low")


def baselines(out_dir):
    names = sorted(os.listdir(os.path.join(out_dir, "truth")))
    for kind, method in (("bicubic", Image.BICUBIC), ("nearest", Image.NEAREST)):
        os.makedirs(os.path.join(out_dir, kind), exist_ok=True)
        for name in names:
            truth = Image.open(os.path.join(out_dir, "truth", name))
            low = Image.open(os.path.join(out_dir, "low", name)).convert("RGB")
            low.resize(truth.size, method).save(os.path.join(out_dir, kind, name))
    print(f"{len(names)} images in {out_dir}/bicubic and {out_dir}/nearest")


def metrics(a, b):
    return (
        peak_signal_noise_ratio(b, a, data_range=255),
        structural_similarity(b, a, data_range=255, channel_axis=2),
    )


def summary(values):
    v = np.asarray(values)
    return {"mean": float(v.mean()), "stderr": float(v.std(ddof=1) / np.sqrt(len(v)))}


def score(out_dir, sr_dir=None):
    names = sorted(os.listdir(os.path.join(out_dir, "truth")))
    rows = {"bicubic": [], "nearest": []}
    if sr_dir:
        rows["prism"] = []
    for name in names:
        truth = np.asarray(Image.open(os.path.join(out_dir, "truth", name)).convert("RGB"))
        low = Image.open(os.path.join(out_dir, "low", name)).convert("RGB")
        size = (truth.shape[1], truth.shape[0])
        rows["bicubic"].append(metrics(np.asarray(low.resize(size, Image.BICUBIC)), truth))
        rows["nearest"].append(metrics(np.asarray(low.resize(size, Image.NEAREST)), truth))
        if sr_dir:
            sr = np.asarray(Image.open(os.path.join(sr_dir, name)).convert("RGB"))
            rows["prism"].append(metrics(sr, truth))
    report = {"images": len(names), "factor": FACTOR}
    for k, v in rows.items():
        report[k] = {"psnr": summary([p for p, _ in v]), "ssim": summary([s for _, s in v])}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    if len(sys.argv) >= 6 and sys.argv[1] == "prepare":
        prepare(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    elif len(sys.argv) == 3 and sys.argv[1] == "baselines":
        baselines(sys.argv[2])
    elif len(sys.argv) in (3, 4) and sys.argv[1] == "score":
        score(sys.argv[2], sys.argv[3] if len(sys.argv) == 4 else None)
    else:
        print(__doc__)
        sys.exit(2)
