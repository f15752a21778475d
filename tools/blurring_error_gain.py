"""How strongly the blurring sampler passes an error in the network's ε̂ into z_s, per step.

For the denoising step t -> s of tools/golden_blurring.py (the paper's pseudo-code), an error e in DCT(ε̂) moves the
posterior mean by c2 * sigma_t * e per frequency. The script prints, for a 32×32 image and K ancestral steps, the
largest such gain over frequencies at several t, for sigma_B,max in {0, 1, 20}, and the gain of the implied clean
image x̂ = (u_t - sigma_t ε̂_u)/alpha_t, sigma_t/alpha_t = sigma_t/(a_t d_t).

Run:  /work/venv/bin/python tools/blurring_error_gain.py
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
