"""Golden values for Laplacian pyramid diffusion (formula sheet §4; NVIDIA Edify Image), from an independent
numpy re-implementation, written to crates/prism/tests/data/laplacian.json:

"pyramid": down = 2x2 average pooling, up = nearest (np.repeat); bands x^(K) = down^(K-1)(x),
    x^(k) = down^(k-1)(x) - up(down^k(x)), finest first, for K = 2, 3, 4 (reconstruction checked here).
"haar": the orthonormal Haar packet: one level equals PyWavelets' dwt2(x, 'haar') (cA, cH, cV, cD; checked here
    against pywt), channel layout band-major (channel = band*C + c), each further level splitting every channel.
"process": the forward process with the clipped cosine schedule (lambda(t) = -2 log tan(t_min + t (t_max - t_min)),
    t_min = atan(exp(-lmax/2)), t_max = atan(exp(-lmin/2))), a = sqrt(sigmoid(lambda)), s = sqrt(sigmoid(-lambda)),
    d_k(t) = cos^2(pi/2 (t - s_k)/(t_k - s_k)) clipped to [0, 1] between s_k and t_k, alpha_k = a d_k,
    level j(t) = #{k: t > t_k}, state = c_j down^j(sum_k alpha_k up^(k-1)(x^(k)) + s eps), c_j = 1/sqrt(a^2 + s^2/4^j),
    computed at full resolution and pooled (prism pools first; the two agree because down is linear).
"switch": z_high = c_(k-1) (up(z_low / c_k) + (s/2^(k-1)) (xi - up(down(xi)))) at t = t_k.

All arrays row-major [B, C, H, W], float64 written as JSON numbers. Inputs from numpy.random.default_rng(0).
Needs numpy and PyWavelets (tools/requirements.txt).
Rerun:  /work/venv/bin/python tools/golden_laplacian.py
"""
import json
from pathlib import Path

import numpy as np
import pywt

OUT = Path(__file__).resolve().parent.parent / "crates/prism/tests/data/laplacian.json"


def down(x):
    b, c, h, w = x.shape
    return x.reshape(b, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))


def up(x, f=2):
    return np.repeat(np.repeat(x, f, axis=2), f, axis=3)


def bands(x, k):
    out, cur = [], x
    for _ in range(k - 1):
        coarser = down(cur)
        out.append(cur - up(coarser))
        cur = coarser
    out.append(cur)
    return out


def reconstruct(bs):
    x = bs[-1]
    for b in reversed(bs[:-1]):
        x = up(x) + b
    return x


def haar_level(x):
    a, b_ = x[:, :, 0::2, 0::2], x[:, :, 0::2, 1::2]
    c, d = x[:, :, 1::2, 0::2], x[:, :, 1::2, 1::2]
    return np.concatenate([(a + b_ + c + d) / 2, (a + b_ - c - d) / 2, (a - b_ + c - d) / 2, (a - b_ - c + d) / 2], 1)


def haar_packet(x, levels):
    for _ in range(levels):
        x = haar_level(x)
    return x


def lam(t, lmin=-15.0, lmax=15.0):
    tmin, tmax = np.arctan(np.exp(-lmax / 2)), np.arctan(np.exp(-lmin / 2))
    return -2 * np.log(np.tan(tmin + t * (tmax - tmin)))


def sig(x):
    return 1 / (1 + np.exp(-x))


def atten(k, t, K, sw, fs):
    if k >= K:
        return 1.0
    s, e = fs[k - 1], sw[k - 1]
    u = np.clip((t - s) / (e - s), 0.0, 1.0)
    return float(np.cos(np.pi / 2 * u) ** 2)


def scale(j, t):
    a2, s2 = sig(lam(t)), sig(-lam(t))
    return 1 / np.sqrt(a2 + s2 / 4 ** j)


def state(x, eps, t, K, sw, fs, j=None):
    if j is None:
        j = sum(t > s for s in sw)
    a, s = np.sqrt(sig(lam(t))), np.sqrt(sig(-lam(t)))
    bs = bands(x, K)
    z = s * eps
    for k in range(1, K + 1):
        z = z + a * atten(k, t, K, sw, fs) * up(bs[k - 1], 2 ** (k - 1))
    for _ in range(j):
        z = down(z)
    return scale(j, t) * z


def flat(a):
    return [float(v) for v in np.asarray(a, dtype=np.float64).ravel()]


def main():
    rng = np.random.default_rng(0)
    pyramid = []
    for shape, k in [((1, 1, 8, 8), 2), ((2, 3, 8, 4), 3), ((1, 2, 16, 16), 4)]:
        x = rng.uniform(-1, 1, size=shape)
        bs = bands(x, k)
        assert np.allclose(reconstruct(bs), x, atol=1e-12)
        pyramid.append({"shape": list(shape), "levels": k, "x": flat(x), "bands": [flat(b) for b in bs]})

    haar = []
    for shape, levels in [((1, 2, 4, 6), 1), ((2, 1, 8, 8), 2), ((1, 3, 16, 8), 3)]:
        x = rng.uniform(-1, 1, size=shape)
        y = haar_packet(x, levels)
        if levels == 1:
            ca, (ch, cv, cd) = pywt.dwt2(x, "haar", axes=(2, 3))
            ref = np.concatenate([ca, ch, cv, cd], 1)
            err = float(np.max(np.abs(ref - y)))
            print(f"haar vs pywt: {err:.2e}")
            assert err < 1e-12
        haar.append({"shape": list(shape), "levels": levels, "x": flat(x), "packet": flat(y)})

    process = []
    for K, sw, fs in [(3, [0.3, 0.6], [0.0, 0.1]), (2, [0.5], [0.0]), (4, [0.2, 0.4, 0.7], [0.0, 0.0, 0.0])]:
        shape = (2, 1, 8, 8)
        x = rng.uniform(-1, 1, size=shape)
        eps = rng.standard_normal(shape)
        cases = []
        for t in [0.05, 0.25, 0.3, 0.45, 0.65, 0.9, 1.0]:
            cases.append({"t": t, "z": flat(state(x, eps, t, K, sw, fs)),
                          "attenuation": [atten(k, t, K, sw, fs) for k in range(1, K + 1)]})
        switches = []
        for k, tk in enumerate(sw, start=1):
            z_low = state(x, eps, tk, K, sw, fs, j=k)
            xi = rng.standard_normal((2, 1, 8 >> (k - 1), 8 >> (k - 1)))
            s = np.sqrt(sig(-lam(tk)))
            z_high = scale(k - 1, tk) * (up(z_low / scale(k, tk)) + s / 2 ** (k - 1) * (xi - up(down(xi))))
            switches.append({"k": k, "t": tk, "z_low": flat(z_low), "xi": flat(xi), "z_high": flat(z_high)})
        process.append({"levels": K, "switch_times": sw, "fade_starts": fs, "image_size": 8, "shape": list(shape),
                        "x": flat(x), "eps": flat(eps), "cases": cases, "switches": switches})

    OUT.parent.mkdir(parents=True, exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"generator": "tools/golden_laplacian.py", "numpy": np.__version__, "pywt": pywt.__version__,
                   "pyramid": pyramid, "haar": haar, "process": process}, f)
        f.write("\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
