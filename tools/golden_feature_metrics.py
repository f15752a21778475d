"""Golden values for prism's feature-network metrics (crates/prism/src/eval/{fid,kid,precision_recall}.rs).

References, all independent of prism:
- FID: pytorch-fid 0.3.0's `calculate_frechet_distance` (scipy.linalg.sqrtm).
- MMD² (KID's per-subset value): the unbiased cubic-kernel estimator as written in torch-fidelity /
  Bińkowski et al. 2018, in numpy.
- Precision/recall (k = 3): Kynkäänniemi et al. 2019's reference algorithm in numpy (k-th nearest
  neighbour radius via np.partition over a row that includes the point itself).

Run: tools/.venv/bin/python tools/golden_feature_metrics.py  (writes crates/prism/tests/data/feature_metrics.json)
"""
import json
import pathlib

import numpy as np
from pytorch_fid.fid_score import calculate_frechet_distance


def mmd2_unbiased(x, y):
    d = x.shape[1]
    m = x.shape[0]
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        - 2 * kxy.sum() / (m * m)
    )


def pr(real, fake, k=3):
    def dists(a, b):
        return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))

    r_real = np.partition(dists(real, real), k, axis=1)[:, k]
    r_fake = np.partition(dists(fake, fake), k, axis=1)[:, k]
    d_fr = dists(fake, real)
    precision = float((d_fr <= r_real[None, :]).any(axis=1).mean())
    recall = float((d_fr.T <= r_fake[None, :]).any(axis=1).mean())
    return precision, recall


def main():
    rng = np.random.default_rng(20261122)
    cases = []
    for n_real, n_fake, dim, shift, scale in [(64, 64, 8, 0.0, 1.0), (80, 60, 16, 0.5, 1.3), (50, 50, 4, 2.0, 0.5)]:
        mix = rng.normal(size=(dim, dim)) / np.sqrt(dim)
        real = (rng.normal(size=(n_real, dim)) @ mix).astype(np.float32)
        fake = (rng.normal(size=(n_fake, dim)) @ mix * scale + shift).astype(np.float32)
        r64, f64 = real.astype(np.float64), fake.astype(np.float64)
        m = min(n_real, n_fake)
        fid = calculate_frechet_distance(r64.mean(0), np.cov(r64, rowvar=False), f64.mean(0), np.cov(f64, rowvar=False))
        precision, recall = pr(r64, f64, 3)
        cases.append({
            "dim": dim,
            "real": real.ravel().tolist(),
            "fake": fake.ravel().tolist(),
            "fid": float(fid),
            "mmd2_first_m": mmd2_unbiased(r64[:m], f64[:m]),
            "m": m,
            "precision": precision,
            "recall": recall,
        })
    out = pathlib.Path(__file__).resolve().parent.parent / "crates/prism/tests/data/feature_metrics.json"
    out.write_text(json.dumps({"source": "tools/golden_feature_metrics.py (pytorch-fid 0.3.0, numpy)", "cases": cases}))
    print("wrote", out)


if __name__ == "__main__":
    main()
