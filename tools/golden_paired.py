"""Golden PSNR and SSIM for crates/prism/src/eval/{psnr,ssim}.rs, from scikit-image.

SSIM in the setup of Wang et al. (2004) that papers quote: `structural_similarity(a, b,
gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)` on images in
[0, 1] (11×11 Gaussian window with scipy's `truncate=3.5`, 'reflect' borders, K1 = 0.01,
K2 = 0.03, mean over the interior that the window covers fully, colour images averaged over
channels). PSNR: `peak_signal_noise_ratio(a, b, data_range=1.0)` over all channels of an image.

Inputs: deterministic (numpy default_rng(seed)) image pairs, a reference and a noisy/blurred copy,
clipped to [0, 1], stored in the JSON so the Rust test needs no Python.

Needs numpy, scipy, scikit-image (tools/requirements.txt).
Run: /work/venv/bin/python tools/golden_paired.py  (writes crates/prism/tests/data/paired.json)
"""
import json
import pathlib

import numpy as np
import scipy.ndimage as ndi
import skimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def pair(rng, c, h, w, noise):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([0.5 + 0.4 * np.sin(0.35 * x * (k + 1) + 0.21 * y + k) for k in range(c)])
    base = np.clip(base + 0.05 * rng.standard_normal(base.shape), 0, 1)
    other = np.stack([ndi.gaussian_filter(p, 0.7) for p in base])
    other = np.clip(other + noise * rng.standard_normal(base.shape), 0, 1)
    return base.astype(np.float32), other.astype(np.float32)


def main():
    rng = np.random.default_rng(15)
    cases = []
    for c, h, w, noise in [(1, 16, 16, 0.05), (3, 13, 21, 0.1), (3, 28, 28, 0.02), (1, 11, 12, 0.2)]:
        a, b = pair(rng, c, h, w, noise)
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        ssim = structural_similarity(
            a64, b64, channel_axis=0, gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False, data_range=1.0)
        psnr = peak_signal_noise_ratio(a64, b64, data_range=1.0)
        cases.append({"shape": [c, h, w], "a": a.ravel().tolist(), "b": b.ravel().tolist(),
                      "psnr": float(psnr), "ssim": float(ssim)})
    out = pathlib.Path(__file__).resolve().parent.parent / "crates/prism/tests/data/paired.json"
    out.write_text(json.dumps({
        "source": f"tools/golden_paired.py (scikit-image {skimage.__version__})",
        "cases": cases,
    }))
    print("wrote", out, [(c["psnr"], c["ssim"]) for c in cases])


if __name__ == "__main__":
    main()
