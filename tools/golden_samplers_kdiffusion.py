"""Golden values for prism's Euler, Heun, DPM-Solver++(2M) SDE, DPM-Solver++(3M) SDE and UniPC samplers and the
Karras spacing, from the reference implementations themselves: k-diffusion 0.1.1.post1 (`get_sigmas_karras`,
`sample_euler`, `sample_heun`, `sample_dpmpp_2m_sde`, `sample_dpmpp_3m_sde`) and diffusers 0.42.1
(`UniPCMultistepScheduler`, defaults: solver_order=2, bh2, predict_x0, lower_order_final), run in float64 with torch.

Setting (as tools/golden_samplers.py): 1-D Gaussian data x ~ N(m, s^2), m = 0.3, s = 0.5, the exact denoiser
x_hat(z; lambda) = m + alpha s^2 / (alpha^2 s^2 + sigma^2) (z - alpha m), cosine schedule with logSNR in [-15, 15].
k-diffusion works in variance-exploding form: x = z / alpha, sigma_VE = exp(-lambda / 2); the sampler starts from
x = z1 / alpha(t=1) on the Karras grid between sigma_VE(t=0) and sigma_VE(t=1) (rho = 7) with k-diffusion's appended
sigma = 0. diffusers' UniPC works on z itself; its sigmas are overwritten with the same grid. The SDE samplers get
their noise from a noise_sampler that returns fixed standard normal draws (step i gets xi[i]): prism's tests feed
the same draws (k-diffusion's default BrownianTree is not used).

Moments: every sampler is affine in z1 and in the noise draws for Gaussian data, out = A z1 + sum_j c_j xi_j + B,
so for z1 ~ N(0, 1) and xi_j ~ N(0, 1) the exact output mean is B and std sqrt(A^2 + sum c_j^2).

Needs: numpy, torch, diffusers 0.42.1, k-diffusion 0.1.1.post1 with torchsde, torchdiffeq, trampoline, tqdm
(`pip install --no-deps k-diffusion==0.1.1.post1 torchsde torchdiffeq trampoline`; only k_diffusion.sampling is loaded).
Rerun:  /work/venv/bin/python tools/golden_samplers_kdiffusion.py  ->  crates/prism/tests/data/samplers_kdiffusion.json
"""
import json
import math
from pathlib import Path

import numpy as np
import torch
from diffusers import UniPCMultistepScheduler

def _load_kdiffusion_sampling():
    """k_diffusion.sampling alone (the package's __init__ pulls in its training stack: jsonmerge, kornia, ...)."""
    import importlib.util
    import sys
    import types

    root = Path(importlib.util.find_spec("k_diffusion").submodule_search_locations[0])
    pkg = types.ModuleType("k_diffusion")
    pkg.__path__ = [str(root)]
    sys.modules["k_diffusion"] = pkg
    for name in ("utils", "sampling"):
        spec = importlib.util.spec_from_file_location(f"k_diffusion.{name}", root / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[f"k_diffusion.{name}"] = mod
        spec.loader.exec_module(mod)
        setattr(pkg, name, mod)
    return pkg.sampling


kd = _load_kdiffusion_sampling()

torch.set_default_dtype(torch.float64)
OUT = Path(__file__).resolve().parent.parent / "crates/prism/tests/data/samplers_kdiffusion.json"
M, S = 0.3, 0.5
LMIN, LMAX = -15.0, 15.0


def logsnr(t):
    t_min, t_max = math.atan(math.exp(-LMAX / 2)), math.atan(math.exp(-LMIN / 2))
    return -2.0 * math.log(math.tan(t_min + t * (t_max - t_min)))


SIGMA_MIN, SIGMA_MAX = math.exp(-logsnr(0.0) / 2), math.exp(-logsnr(1.0) / 2)
ALPHA_1 = 1.0 / math.sqrt(1.0 + SIGMA_MAX**2)


def denoise_vp(z, lam):
    a = math.sqrt(1.0 / (1.0 + math.exp(-lam)))
    s = math.sqrt(1.0 / (1.0 + math.exp(lam)))
    return M + a * S**2 / (a * a * S**2 + s * s) * (z - a * M)


def denoise_ve(x, sigma):
    sig = float(sigma.reshape(-1)[0])
    return denoise_vp(x / math.sqrt(1.0 + sig**2), -2.0 * math.log(sig))


def karras(n):
    return kd.get_sigmas_karras(n, SIGMA_MIN, SIGMA_MAX, rho=7.0)  # n levels + the appended 0


class Fixed:
    """A noise sampler handing out xi[0], xi[1], ... (each of the state's shape)."""

    def __init__(self, xi):
        self.xi, self.i = xi, 0

    def __call__(self, sigma, sigma_next):
        out = self.xi[self.i]
        self.i += 1
        return out


def k_sampler(fn, levels, stochastic):
    def run(z1, xi):
        x = torch.as_tensor(z1, dtype=torch.float64) / ALPHA_1
        kw = {"noise_sampler": Fixed(torch.as_tensor(xi)), "eta": 1.0} if stochastic else {}
        return fn(denoise_ve, x, karras(levels), disable=True, **kw).numpy()
    return run


def unipc(k):
    def run(z1, xi):
        sch = UniPCMultistepScheduler(num_train_timesteps=1000, prediction_type="sample")
        sch.set_timesteps(k)
        sch.sigmas = karras(k).clone()
        z = torch.as_tensor(z1, dtype=torch.float64).reshape(-1, 1)  # diffusers wants [batch, channels, ...]
        for i, t in enumerate(sch.timesteps):
            sig = float(sch.sigmas[i])
            z = sch.step(denoise_vp(z, -2.0 * math.log(sig)), t, z).prev_sample
        return z.reshape(-1).numpy()
    return run


def sampler(name, k):
    """The reference run of sampler `name` with k network evaluations, and its number of noise draws."""
    if name == "euler":
        return k_sampler(kd.sample_euler, k, False), 0
    if name == "heun":
        assert k % 2 == 1, "k-diffusion's Heun uses 2n - 1 evaluations on n levels"
        return k_sampler(kd.sample_heun, (k + 1) // 2, False), 0
    if name == "dpmpp_2m_sde":
        return k_sampler(kd.sample_dpmpp_2m_sde, k, True), k - 1
    if name == "dpmpp_3m_sde":
        return k_sampler(kd.sample_dpmpp_3m_sde, k, True), k - 1
    if name == "unipc":
        return unipc(k), 0
    raise ValueError(name)


def moments(name, k):
    run, draws = sampler(name, k)
    # Element 0: z1 = 0, no noise (B); element 1: z1 = 1 (A + B); element 1 + j: unit noise at draw j (c_j + B).
    n = 2 + draws
    z1 = np.zeros(n)
    z1[1] = 1.0
    xi = np.zeros((max(draws, 1), n))
    for j in range(draws):
        xi[j, 2 + j] = 1.0
    out = run(z1, xi)
    b = out[0]
    a = out[1] - b
    c = out[2:] - b
    return {"mean": float(b), "std": float(math.sqrt(a * a + float(np.sum(c * c))))}


NAMES = ["euler", "heun", "dpmpp_2m_sde", "dpmpp_3m_sde", "unipc"]


def steps_of(name):
    return (9, 49) if name == "heun" else (10, 50)


def main():
    z1 = np.random.default_rng(0).standard_normal(8)
    trajectories, noise = {}, {}
    for name in NAMES:
        trajectories[name] = {}
        for k in steps_of(name):
            run, draws = sampler(name, k)
            xi = np.random.default_rng(100 + k).standard_normal((max(draws, 1), 8))
            if draws:
                noise[str(k)] = xi.tolist()
            trajectories[name][str(k)] = run(z1, xi).tolist()
    mom = {name: {str(k): moments(name, k) for k in (*steps_of(name), 999 if name == "heun" else 1000)}
           for name in NAMES}
    out = {
        "versions": {"k_diffusion": "0.1.1.post1", "diffusers": "0.42.1", "torch": torch.__version__},
        "data": {"mean": M, "std": S},
        "schedule": {"kind": "cosine", "logsnr_min": LMIN, "logsnr_max": LMAX},
        "karras": {str(n): karras(n)[:-1].tolist() for n in (1, 2, 5, 10)},
        "sigma_min": SIGMA_MIN, "sigma_max": SIGMA_MAX,
        "z1": z1.tolist(), "noise": noise, "trajectories": trajectories, "moments": mom,
    }
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
