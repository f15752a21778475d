"""PSNR, SSIM and LPIPS of an autoencoder's reconstructions, from the grid `prism reconstruct` writes
(inputs in the upper rows, reconstructions below, 2-pixel borders; both halves padded to whole rows),
with scikit-image (`peak_signal_noise_ratio`, `structural_similarity` with Gaussian weights σ = 1.5 and
population covariances, 8-bit images, data_range 255)
and the `lpips` package (net='vgg', weights from tools/convert_lpips.py). Used for the tables of
docs/latent-diffusion.md; prism's own PSNR/SSIM live in its eval module.

Needs numpy, scikit-image, pillow, torch, lpips, safetensors.
Run: python tools/ae_grid_metrics.py GRID.png --num N --size S [--lpips data/weights/lpips-vgg16.safetensors]
"""
import argparse
import json
import math
import pathlib

import numpy as np
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def tiles(grid, num, size):
    cols = math.ceil(math.sqrt(num))
    rows = math.ceil(num / cols)
    pad = 2
    out = []
    for half in range(2):
        for i in range(num):
            r, c = half * rows + i // cols, i % cols
            y, x = pad + r * (size + pad), pad + c * (size + pad)
            out.append(grid[y:y + size, x:x + size])
    return np.stack(out[:num]), np.stack(out[num:])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("grid", type=pathlib.Path)
    ap.add_argument("--num", type=int, required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--lpips", type=pathlib.Path, default=pathlib.Path("data/weights/lpips-vgg16.safetensors"))
    a = ap.parse_args()
    grid = np.asarray(Image.open(a.grid).convert("RGB"))
    x, y = tiles(grid, a.num, a.size)
    psnr = [peak_signal_noise_ratio(p, q, data_range=255) for p, q in zip(x, y)]
    # Wang et al.'s SSIM (Gaussian window σ = 1.5, population covariances), as `prism eval` computes it.
    ssim = [structural_similarity(p, q, channel_axis=2, data_range=255, gaussian_weights=True,
                                  sigma=1.5, use_sample_covariance=False) for p, q in zip(x, y)]
    out = {"images": a.num, "psnr": float(np.mean(psnr)), "ssim": float(np.mean(ssim)),
           "l1": float(np.mean(np.abs(x.astype(np.float64) - y.astype(np.float64))) / 127.5)}
    if a.lpips.exists():
        import lpips
        import torch
        from safetensors.torch import load_file
        net = lpips.LPIPS(pretrained=True, net="vgg", pnet_rand=True, verbose=False).eval()
        w = load_file(str(a.lpips))
        w.update({f"lins.{i}.model.1.weight": w[f"lin{i}.model.1.weight"] for i in range(5)})
        net.load_state_dict({**net.state_dict(), **w})
        t = lambda v: torch.from_numpy(v).permute(0, 3, 1, 2).float() / 127.5 - 1
        with torch.no_grad():
            out["lpips"] = float(net(t(x), t(y)).mean())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
