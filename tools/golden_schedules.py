"""Golden values for prism's noise schedules (logSNR form), written independently of the Rust code.

References: /work/shared/reference/formulas.md §1 (cosine with logSNR clipping, shifted and interpolated
schedules from "simple diffusion", Hoogeboom et al. 2023), DDPM's linear beta schedule (Ho et al. 2020),
and diffusers.DDPMScheduler(beta_schedule="linear").alphas_cumprod for the discrete cross-check.

Conventions: t in [0,1], t=1 is pure noise, lambda = log(alpha^2/sigma^2), alpha^2 = sigmoid(lambda).
dlogsnr_dt is a float64 finite difference (h=1e-6) of the lambda function: central (2nd order) inside,
4th-order one-sided at t=0 and t=1; the linear_beta cases use the piecewise analytic derivative instead.

Rerun:  tools/.venv/bin/python tools/golden_schedules.py   ->  crates/prism/tests/data/schedules.json
"""
import json
import math
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "crates/prism/tests/data/schedules.json"
T = np.linspace(0.0, 1.0, 41)
H = 1e-6


def cosine(t, lmin, lmax):
    t_min, t_max = math.atan(math.exp(-lmax / 2)), math.atan(math.exp(-lmin / 2))
    return -2.0 * np.log(np.tan(t_min + np.asarray(t, dtype=np.float64) * (t_max - t_min)))


def shifted(t, lmin, lmax, image_size, reference_size, clip):
    shift = 2.0 * math.log(reference_size / image_size)
    if clip == "clip_then_shift":
        return cosine(t, lmin, lmax) + shift
    if clip == "shifted_limits":
        return cosine(t, lmin - shift, lmax - shift) + shift
    raise ValueError(clip)


def interpolated(t, lmin, lmax, image_size, low_reference, high_reference, clip):
    t = np.asarray(t, dtype=np.float64)
    lo = shifted(t, lmin, lmax, image_size, low_reference, clip)
    hi = shifted(t, lmin, lmax, image_size, high_reference, clip)
    return t * lo + (1.0 - t) * hi


def linear_beta(t, beta_start, beta_end, num_train_steps, logsnr_max):
    """Returns (lambda, dlambda/dt) for DDPM's linear betas, log(alpha_bar) linear between integer steps."""
    n = num_train_steps
    knots = np.concatenate([[0.0], np.cumsum(np.log1p(-np.linspace(beta_start, beta_end, n)))])
    u = np.asarray(t, dtype=np.float64) * n
    log_ab = np.interp(u, np.arange(n + 1, dtype=np.float64), knots)
    with np.errstate(divide="ignore"):
        raw = log_ab - np.log(-np.expm1(log_ab))  # +inf at t = 0
    lam = np.minimum(raw, logsnr_max)
    k = np.minimum(np.floor(u).astype(int), n - 1)  # segment to the right of t (last one at t = 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = n * (knots[k + 1] - knots[k]) / (-np.expm1(log_ab))
    d = np.where(raw > logsnr_max, 0.0, d)
    return lam, d


def finite_diff(f, t):
    d = (f(t + H) - f(t - H)) / (2 * H)
    # Ends: 4th-order one-sided stencil (the cosine's curvature at the clip limits is large for h = 1e-6).
    c = [-25.0, 48.0, -36.0, 16.0, -3.0]
    d[0] = sum(ci * f(t[0] + i * H) for i, ci in enumerate(c)) / (12 * H)
    d[-1] = -sum(ci * f(t[-1] - i * H) for i, ci in enumerate(c)) / (12 * H)
    return d


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def bisect(f, target, tol=1e-14):
    """t with f(t) = target for a decreasing f on [0, 1]."""
    lo, hi = 0.0, 1.0
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if float(f(mid)) > target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def make_case(name, kind, fn, params, analytic=None):
    if analytic is None:
        lam, d = fn(T), finite_diff(fn, T)
    else:
        lam, d = analytic(T)
    case = {"name": name, "kind": kind, **params, "logsnr": lam.tolist(), "dlogsnr_dt": d.tolist(),
            "alpha": np.sqrt(sigmoid(lam)).tolist(), "sigma": np.sqrt(sigmoid(-lam)).tolist()}
    return case, fn


def add_inverse(case, fn):
    l1, l0 = float(fn(1.0)), float(fn(0.0))
    targets = np.linspace(l1, l0, 13)[1:-1]
    case["inverse"] = {"logsnr": targets.tolist(), "t": [bisect(fn, float(x)) for x in targets]}


def diffusers_linear():
    try:
        import torch
        from diffusers import DDPMScheduler
    except ImportError:  # fallback: numpy float32 re-implementation of the same computation
        betas = np.linspace(1e-4, 0.02, 1000, dtype=np.float32)
        ac, dtype, src = np.cumprod(1 - betas, dtype=np.float32), "float32", "numpy re-implementation"
    else:
        s = DDPMScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear")
        ac, dtype = s.alphas_cumprod, str(s.alphas_cumprod.dtype).replace("torch.", "")
        ac, src = ac.double().numpy(), f"diffusers {__import__('diffusers').__version__}, torch {torch.__version__}"
    ac64 = np.cumprod(1.0 - np.linspace(1e-4, 0.02, 1000))  # same recipe in float64, for tighter checks
    return {"beta_start": 0.0001, "beta_end": 0.02, "num_train_timesteps": 1000, "dtype": dtype, "source": src,
            "alphas_cumprod": [float(x) for x in ac], "alphas_cumprod_float64": ac64.tolist()}


def main():
    cases = []
    for name, lmin, lmax in [("cosine_pm15", -15, 15), ("cosine_pm10", -10, 10), ("cosine_m20_p5", -20, 5)]:
        fn = lambda t, a=lmin, b=lmax: cosine(t, a, b)
        case, fn = make_case(name, "cosine", fn, {"logsnr_min": lmin, "logsnr_max": lmax})
        if name == "cosine_pm15":
            add_inverse(case, fn)
        cases.append(case)
    for d in (256, 128, 32):
        for clip in ("clip_then_shift", "shifted_limits"):
            fn = lambda t, d=d, clip=clip: shifted(t, -15, 15, d, 64, clip)
            params = {"logsnr_min": -15, "logsnr_max": 15, "image_size": d, "reference_size": 64, "clip": clip}
            cases.append(make_case(f"shifted_{clip}_{d}_64", "shifted", fn, params)[0])
    for clip in ("clip_then_shift", "shifted_limits"):
        fn = lambda t, clip=clip: interpolated(t, -15, 15, 512, 32, 256, clip)
        params = {"logsnr_min": -15, "logsnr_max": 15, "image_size": 512, "low_reference": 32,
                  "high_reference": 256, "clip": clip}
        case, fn = make_case(f"interpolated_{clip}_512_32_256", "interpolated", fn, params)
        if clip == "clip_then_shift":
            add_inverse(case, fn)
        cases.append(case)
    for n, beta_end in [(1000, 0.02), (4000, 0.01)]:
        params = {"beta_start": 1e-4, "beta_end": beta_end, "num_train_steps": n, "logsnr_max": 15}
        analytic = lambda t, n=n, b=beta_end: linear_beta(t, 1e-4, b, n, 15)
        cases.append(make_case(f"linear_beta_{n}", "linear_beta", None, params, analytic)[0])
    out = {"t": T.tolist(), "finite_difference_h": H, "cases": cases, "diffusers_linear": diffusers_linear()}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT} ({len(cases)} cases)")


if __name__ == "__main__":
    main()
