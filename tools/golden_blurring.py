"""Golden values for prism's blurring diffusion (Hoogeboom & Salimans, ICLR 2023): the orthonormal 2-D DCT, the
forward process and one denoising step, from a numpy/scipy transcription of the paper's pseudo-code.

References: /work/shared/reference/formulas.md §3 and the paper's pseudo-code (seed 001): get_dt, get_alpha_sigma,
get_noise_scaling_cosine, diffuse and denoise, with scipy.fft.dctn(norm='ortho') as DCT. Arrays are NCHW; the
frequency grid generalises the paper's N×N one to H×W as Lambda_ij = (pi i/H)^2 + (pi j/W)^2. The denoising step takes
its noise xi in frequency space, as the pseudo-code does (IDCT(sqrt(sigma2_denoise) * xi)).

Rerun:  tools/.venv/bin/python tools/golden_blurring.py   ->  crates/prism/tests/data/blurring.json
"""
import json
from pathlib import Path

import numpy as np
from scipy.fft import dctn, idctn

OUT = Path(__file__).resolve().parent.parent / "crates/prism/tests/data/blurring.json"


def dct(x):
    return dctn(x, norm="ortho", axes=(-2, -1))


def idct(u):
    return idctn(u, norm="ortho", axes=(-2, -1))


class Blurring:
    """The pseudo-code's functions with their hyper-parameters bound."""

    def __init__(self, blur_sigma_max, min_scale, logsnr_min, logsnr_max, h, w):
        self.blur_sigma_max, self.min_scale = blur_sigma_max, min_scale
        self.logsnr_min, self.logsnr_max = logsnr_min, logsnr_max
        self.h, self.w = h, w

    def get_dt(self, t):
        sigma_blur = self.blur_sigma_max * np.sin(t * np.pi / 2) ** 2
        dissipation_t = sigma_blur**2 / 2
        fh = np.pi * np.linspace(0, self.h - 1, self.h) / self.h
        fw = np.pi * np.linspace(0, self.w - 1, self.w) / self.w
        labda = fh[:, None] ** 2 + fw[None, :] ** 2
        return (1 - self.min_scale) * np.exp(-labda * dissipation_t) + self.min_scale

    def get_noise_scaling_cosine(self, t):
        limit_max = np.arctan(np.exp(-0.5 * self.logsnr_max))
        limit_min = np.arctan(np.exp(-0.5 * self.logsnr_min)) - limit_max
        logsnr = -2 * np.log(np.tan(limit_min * t + limit_max))
        sigmoid = lambda x: 1 / (1 + np.exp(-x))
        return np.sqrt(sigmoid(logsnr)), np.sqrt(sigmoid(-logsnr))

    def get_alpha_sigma(self, t):
        dt = self.get_dt(t)
        a, sigma_t = self.get_noise_scaling_cosine(t)
        return a * dt, sigma_t

    def diffuse(self, x, t, eps):
        """x, eps: [B, C, H, W]; t: [B]."""
        out = []
        for b in range(x.shape[0]):
            alpha, sigma = self.get_alpha_sigma(t[b])
            out.append(idct(alpha * dct(x[b])) + sigma * eps[b])
        return np.stack(out)

    def denoise(self, z_t, t, s, hat_eps, xi, delta=1e-8):
        """The pseudo-code's denoise with s = t - 1/T, the network output hat_eps and noise xi given."""
        alpha_s, sigma_s = self.get_alpha_sigma(s)
        alpha_t, sigma_t = self.get_alpha_sigma(t)
        alpha_ts = alpha_t / alpha_s
        alpha_st = 1 / alpha_ts
        sigma2_ts = sigma_t**2 - alpha_ts**2 * sigma_s**2
        sigma2_denoise = 1 / np.clip(
            1 / np.clip(sigma_s**2, delta, None) + 1 / np.clip(sigma_t**2 / alpha_ts**2 - sigma_s**2, delta, None),
            delta,
            None,
        )
        coeff_term1 = alpha_ts * sigma2_denoise / (sigma2_ts + delta)
        coeff_term2 = alpha_st * sigma2_denoise / np.clip(sigma_s**2, delta, None)
        u_t = dct(z_t)
        term1 = idct(coeff_term1 * u_t)
        term2 = idct(coeff_term2 * (u_t - sigma_t * dct(hat_eps)))
        mu_denoise = term1 + term2
        return mu_denoise, mu_denoise + idct(np.sqrt(sigma2_denoise) * xi)


def flat(a):
    return [float(f"{v:.9g}") for v in np.asarray(a, dtype=np.float64).ravel()]


def main():
    rng = np.random.default_rng(20230501)
    out = {"dct": [], "processes": []}
    for shape in [(1, 1, 8, 8), (2, 3, 5, 7), (1, 2, 12, 4)]:
        x = rng.standard_normal(shape)
        out["dct"].append({"shape": list(shape), "x": flat(x), "dct": flat(dct(x)), "idct": flat(idct(x))})

    for sigma_max, min_scale, lmin, lmax, (h, w) in [
        (20.0, 0.001, -10.0, 10.0, (8, 8)),
        (1.0, 0.001, -10.0, 10.0, (8, 8)),
        (3.0, 0.01, -15.0, 15.0, (6, 10)),
    ]:
        p = Blurring(sigma_max, min_scale, lmin, lmax, h, w)
        shape = (2, 2, h, w)
        x = np.clip(0.5 * rng.standard_normal(shape), -1, 1)
        eps = rng.standard_normal(shape)
        forward = []
        for t in [(0.0, 0.3), (0.55, 0.8), (0.97, 1.0)]:
            forward.append({"t": list(t), "z_t": flat(p.diffuse(x, np.array(t), eps))})
        steps = []
        for t, s in [(1.0, 0.96), (0.6, 0.55), (0.25, 0.2), (0.04, 0.0)]:
            z_t = p.diffuse(x, np.array([t, t]), eps)
            hat_eps = eps + 0.3 * rng.standard_normal(shape)  # an imperfect network
            xi = rng.standard_normal(shape)
            mu, z_s = p.denoise(z_t, t, s, hat_eps, xi)
            steps.append({"t": t, "s": s, "z_t": flat(z_t), "eps_hat": flat(hat_eps), "xi": flat(xi),
                          "mean": flat(mu), "z_s": flat(z_s)})
        out["processes"].append({
            "blur_sigma_max": sigma_max, "min_scale": min_scale, "logsnr_min": lmin, "logsnr_max": lmax,
            "shape": list(shape), "x": flat(x), "eps": flat(eps), "forward": forward, "steps": steps,
            "alpha_t0.5": flat(p.get_alpha_sigma(0.5)[0]), "sigma_t0.5": float(p.get_alpha_sigma(0.5)[1]),
        })
    OUT.write_text(json.dumps(out))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
