"""How strongly the blurring sampler passes an error in the network's ε̂ into z_s, per step.

For the denoising step t -> s of tools/golden_blurring.py (the paper's pseudo-code), an error e in DCT(ε̂) moves the
posterior mean by c2 * sigma_t * e per frequency. The script prints, for a 32×32 image and K ancestral steps, the
largest such gain over frequencies at several t, for sigma_B,max in {0, 1, 20}, and the gain of the implied clean
image x̂ = (u_t - sigma_t ε̂_u)/alpha_t, sigma_t/alpha_t = sigma_t/(a_t d_t).

Run:  tools/.venv/bin/python tools/blurring_error_gain.py
"""
import numpy as np

from golden_blurring import Blurring

K, N = 50, 32
print(f"{'t':>5} " + " ".join(f"{'σB=' + str(m) + ' gain μ':>14} {'x̂ gain':>9}" for m in (0, 1, 20)))
for i in range(0, K, 5):
    t, s = 1 - i / K, 1 - (i + 1) / K
    row = f"{t:5.2f} "
    for m in (0.0, 1.0, 20.0):
        p = Blurring(m, 0.001, -10.0, 10.0, N, N)
        alpha_s, sigma_s = p.get_alpha_sigma(s)
        alpha_t, sigma_t = p.get_alpha_sigma(t)
        alpha_ts = alpha_t / alpha_s
        sigma2_den = 1 / np.clip(1 / np.clip(sigma_s**2, 1e-8, None)
                                 + 1 / np.clip(sigma_t**2 / alpha_ts**2 - sigma_s**2, 1e-8, None), 1e-8, None)
        c2 = (1 / alpha_ts) * sigma2_den / np.clip(sigma_s**2, 1e-8, None)
        row += f"{np.max(c2 * sigma_t):14.3f} {np.max(sigma_t / alpha_t):9.3g} "
    print(row)

# The pseudo-code's `+ delta` in coeff_term1's denominator shrinks u_t by delta/sigma2_ts per step. With the exact
# denoiser for 1-D Gaussian data N(0.8, 0.51) (sigma_B,max = 0, so one frequency suffices), the output mean and
# variance propagate in closed form; more steps make sigma2_ts smaller and the bias larger.
print("\nK      output mean, var (delta = 1e-8, as in the paper)   (delta = 0)     data: 0.8, 0.51")


def output_moments(k, delta, mu=0.8, v=0.51):
    p = Blurring(0.0, 0.001, -10.0, 10.0, 1, 1)
    m, var = 0.0, 1.0
    for i in range(k):
        t, s = 1 - i / k, 1 - (i + 1) / k
        (alpha_s, sigma_s), (alpha_t, sigma_t) = p.get_alpha_sigma(s), p.get_alpha_sigma(t)
        alpha_s, alpha_t = alpha_s.item(), alpha_t.item()
        alpha_ts = alpha_t / alpha_s
        sigma2_ts = sigma_t**2 - alpha_ts**2 * sigma_s**2
        sigma2_den = 1 / max(1 / max(sigma_s**2, delta) + 1 / max(sigma_t**2 / alpha_ts**2 - sigma_s**2, delta), delta)
        c1 = alpha_ts * sigma2_den / (sigma2_ts + delta)
        c2 = (1 / alpha_ts) * sigma2_den / max(sigma_s**2, delta)
        d = alpha_t**2 * v + sigma_t**2  # u_t - sigma_t eps_hat = (1 - sigma_t^2/d) u_t + sigma_t^2 alpha_t mu / d
        slope, offset = c1 + c2 * (1 - sigma_t**2 / d), c2 * sigma_t**2 * alpha_t * mu / d
        m, var = slope * m + offset, slope**2 * var + (0.0 if i == k - 1 else sigma2_den)
    a0 = p.get_alpha_sigma(0.0)[0].item()
    return m / a0, var / a0**2


for k in (50, 200, 500, 2000, 10000):
    (m1, v1), (m0, v0) = output_moments(k, 1e-8), output_moments(k, 0.0)
    print(f"{k:<6} {m1:.4f}, {v1:.4f}{'':>34} {m0:.4f}, {v0:.4f}")
