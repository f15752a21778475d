"""Golden values for prism's samplers, from a numpy re-implementation on 1-D Gaussian toy data.

References: /work/shared/reference/formulas.md §1 (DDPM ancestral step, DDIM(eta) step, DPM-Solver++(2M) as in
k-diffusion's sample_dpmpp_2m, in variance-exploding space). Data x ~ N(m, s^2), m = 0.3, s = 0.5, with the exact
(optimal) denoiser x_hat(z; lambda) = m + alpha s^2 / (alpha^2 s^2 + sigma^2) * (z - alpha m).
Schedule: cosine with logSNR clipped to [-15, 15]; t = 1 is pure noise, alpha^2 = sigmoid(lambda).

Rerun:  tools/.venv/bin/python tools/golden_samplers.py   ->  crates/prism/tests/data/samplers.json
"""
import json
import math
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "crates/prism/tests/data/samplers.json"
M, S = 0.3, 0.5
LMIN, LMAX = -15.0, 15.0


def logsnr(t):
    t_min, t_max = math.atan(math.exp(-LMAX / 2)), math.atan(math.exp(-LMIN / 2))
    return -2.0 * math.log(math.tan(t_min + t * (t_max - t_min)))


def alpha_sigma(lam):
    return math.sqrt(1.0 / (1.0 + math.exp(-lam))), math.sqrt(1.0 / (1.0 + math.exp(lam)))


def denoise(z, lam):
    a, s = alpha_sigma(lam)
    return M + a * S**2 / (a * a * S**2 + s * s) * (z - a * M)


def ddpm_step(z_t, x_hat, xi, lam_t, lam_s):
    (a_t, _), (a_s, s_s) = alpha_sigma(lam_t), alpha_sigma(lam_s)
    c = -math.expm1(lam_t - lam_s)
    return a_s * ((1 - c) * z_t / a_t + c * x_hat) + math.sqrt(s_s**2 * c) * xi


def ddim_step(z_t, x_hat, xi, lam_t, lam_s, eta):
    (a_t, s_t), (a_s, s_s) = alpha_sigma(lam_t), alpha_sigma(lam_s)
    c = -math.expm1(lam_t - lam_s)
    eps = (z_t - a_t * x_hat) / s_t
    var = eta**2 * s_s**2 * c
    return a_s * x_hat + math.sqrt(s_s**2 - var) * eps + math.sqrt(var) * xi


def sample_ddim(z, k):
    """K DDIM(eta=0) steps on t_i = 1 - i/K, i = 0..K, ending at t = 0 (lambda_max); returns z_0 / alpha_0."""
    ts = [1.0 - i / k for i in range(k + 1)]
    for i in range(k):
        lam_t, lam_s = logsnr(ts[i]), logsnr(ts[i + 1])
        z = ddim_step(z, denoise(z, lam_t), 0.0, lam_t, lam_s, eta=0.0)
    return z / alpha_sigma(logsnr(0.0))[0]


def sample_dpmpp_2m(z, k):
    sigmas = list(np.exp(-np.linspace(logsnr(1.0), logsnr(0.0), k) / 2)) + [0.0]

    def d_ve(x, sig):  # VE denoiser: x_VE = z / alpha, sigma_VE = exp(-lambda / 2)
        return denoise(x / math.sqrt(1.0 + sig**2), -2.0 * math.log(sig))

    x = z / alpha_sigma(logsnr(1.0))[0]
    d_prev = h_prev = None
    for i in range(k):
        d = d_ve(x, sigmas[i])
        if sigmas[i + 1] == 0:
            x = d
            continue
        h = -math.log(sigmas[i + 1]) + math.log(sigmas[i])
        if i == 0:
            d_use = d
        else:
            r = h_prev / h
            d_use = (1 + 1 / (2 * r)) * d - (1 / (2 * r)) * d_prev
        x = (sigmas[i + 1] / sigmas[i]) * x - math.expm1(-h) * d_use
        d_prev, h_prev = d, h
    return x


def rng_normal(seed, n):
    return np.random.default_rng(seed).standard_normal(n)


def main():
    z_t, x_hat, xi = rng_normal(1, 8), rng_normal(2, 8), rng_normal(3, 8)
    steps = []
    for lam_t, lam_s in [(-5.0, -3.0), (0.0, 1.5), (4.0, 9.0), (-12.0, -11.0)]:
        case = {"logsnr_t": lam_t, "logsnr_s": lam_s, "z_t": z_t.tolist(), "x_hat": x_hat.tolist(),
                "xi": xi.tolist(), "ddpm": ddpm_step(z_t, x_hat, xi, lam_t, lam_s).tolist()}
        for key, eta in [("ddim_eta0", 0.0), ("ddim_eta05", 0.5), ("ddim_eta1", 1.0)]:
            case[key] = ddim_step(z_t, x_hat, xi, lam_t, lam_s, eta).tolist()
        steps.append(case)
    samplers = {"ddim": sample_ddim, "dpmpp_2m": sample_dpmpp_2m}
    z1 = rng_normal(0, 8)
    trajectories = {name: {str(k): f(z1, k).tolist() for k in (10, 50)} for name, f in samplers.items()}
    # Deterministic samplers are affine in z1 for Gaussian data: out = A z1 + B, so with z1 ~ N(0, 1)
    # the exact output moments are mean = B, std = |A| (A, B from running the sampler on z1 = 0 and 1).
    moments = {"note": "exact output moments for z1 ~ N(0, 1): the samplers are affine in z1"}
    for name, f in samplers.items():
        moments[name] = {}
        for k in (10, 50, 1000):
            b = float(f(np.zeros(1), k)[0])
            a = float(f(np.ones(1), k)[0]) - b
            moments[name][str(k)] = {"mean": b, "std": abs(a)}
    out = {"data": {"mean": M, "std": S}, "schedule": {"kind": "cosine", "logsnr_min": LMIN, "logsnr_max": LMAX},
           "z1": z1.tolist(), "single_steps": steps, "trajectories": trajectories, "moments": moments}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
