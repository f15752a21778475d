"""Golden values for prism's 5/3 (LeGall) discrete wavelet transform (crates/prism/src/transform/dwt.rs).

Reference: PyWavelets `pywt.dwt2(x, 'bior2.2', mode='periodization')`, which is the 5/3 lifting scheme with
periodic extension scaled as cA = sqrt(2)*s, cD = -d/sqrt(2) (formula sheet section 2; the script asserts this
against a numpy lifting implementation before writing anything).

Layout: an image [C, H, W] becomes [4C, H/2, W/2] with the sub-bands band-major,
  channel = band*C + c,  band 0 = cA, 1 = cH (detail along H), 2 = cV (detail along W), 3 = cD,
exactly PyWavelets' order (cA, (cH, cV, cD)). Level L > 1 applies the same one-level transform to all channels
of level L-1 (every sub-band is split again: two levels take 3 x 512^2 to 48 x 128^2).

Images: float64 drawn from numpy.random.default_rng(0), standard normal, in the order of CASES.
Per case: "shape" [C, H, W], "levels", "image" (C-order flattened), "coeffs" (C-order flattened
[C * 4^levels, H / 2^levels, W / 2^levels]).

Rerun:  /path/to/venv/bin/python tools/golden_dwt.py   ->  crates/prism/tests/data/dwt.json
"""
import json
from pathlib import Path

import numpy as np
import pywt

OUT = Path(__file__).resolve().parent.parent / "crates/prism/tests/data/dwt.json"
CASES = [((3, 8, 8), 1), ((3, 8, 8), 2), ((1, 6, 10), 1), ((2, 8, 12), 2), ((1, 16, 16), 3)]


def dwt_level(x):
    """[C, H, W] -> [4C, H/2, W/2] with PyWavelets."""
    bands = [[], [], [], []]
    for plane in x:
        ca, (ch, cv, cd) = pywt.dwt2(plane, "bior2.2", mode="periodization")
        for b, band in enumerate((ca, ch, cv, cd)):
            bands[b].append(band)
    return np.concatenate([np.stack(b) for b in bands])


def lifting_1d(x):
    """Formula sheet 5/3 analysis with periodic extension along the last axis, PyWavelets scaling."""
    e, o = x[..., 0::2], x[..., 1::2]
    d = o - 0.5 * (e + np.roll(e, -1, -1))
    s = e + 0.25 * (np.roll(d, 1, -1) + d)
    return np.sqrt(2) * s, -d / np.sqrt(2)


def main():
    rng = np.random.default_rng(0)
    check = rng.standard_normal(16)
    ca, cd = pywt.dwt(check, "bior2.2", mode="periodization")
    s, d = lifting_1d(check)
    assert np.abs(ca - s).max() < 1e-12 and np.abs(cd - d).max() < 1e-12
    cases = []
    for shape, levels in CASES:
        x = rng.standard_normal(shape)
        y = x
        for _ in range(levels):
            y = dwt_level(y)
        cases.append(
            {
                "shape": list(shape),
                "levels": levels,
                "image": x.ravel().tolist(),
                "coeffs": y.ravel().tolist(),
            }
        )
    OUT.write_text(json.dumps({"pywt_version": pywt.__version__, "cases": cases}) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
