"""Golden values for prism's Laplacian pyramid (one level), as used by the multi-scale sliced Wasserstein
distance of Karras et al. 2018 (Progressive GAN): 5x5 binomial kernel [1,4,6,4,1] (x) [1,4,6,4,1] / 256,
reflect-101 borders (gfedcb|abcdefgh|gfedcba).

Reference: OpenCV's cv2.pyrDown / cv2.pyrUp (default border BORDER_REFLECT_101), which implement exactly this
pyramid. A pure-numpy re-implementation is checked against OpenCV (tolerance 1e-5) and the result recorded
per case in "numpy_matches_opencv".

Images: float32, numpy.random.default_rng(0), uniform in [-1, 1], drawn in order
  "rgb32"     (H, W, C) = (32, 32, 3)
  "grey20x12" (H, W)    = (20, 12)      (C = 1)
  "rgb16x10"  (H, W, C) = (16, 10, 3)
Per case: "shape" [H, W, C]; "image"; "down" = pyrDown(image) with "down_shape" [(H+1)//2, (W+1)//2, C];
"up" = pyrUp(down, dstsize=(W, H)); "laplacian" = image - up. All arrays flattened channel-planar
(image.transpose(2, 0, 1).ravel(), i.e. index c*H*W + y*W + x).

Rerun:  tools/.venv/bin/python tools/golden_pyramid.py   ->  crates/prism/tests/data/pyramid.json
"""
import json
from pathlib import Path

import cv2
import numpy as np

OUT = Path(__file__).resolve().parent.parent / "crates/prism/tests/data/pyramid.json"
TOL = 1e-5
K = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def conv_axis(x, k, axis):
    """Correlate (kernel is symmetric) along `axis` with reflect-101 padding (numpy mode="reflect")."""
    pad = [(0, 0)] * x.ndim
    pad[axis] = (2, 2)
    xp = np.pad(x, pad, mode="reflect")
    n = x.shape[axis]
    out = np.zeros_like(x)
    for i, w in enumerate(k):
        out += w * np.take(xp, np.arange(i, i + n), axis=axis)
    return out


def np_pyr_down(img):
    """img: (H, W, C) float64 -> (ceil(H/2), ceil(W/2), C)."""
    y = conv_axis(conv_axis(img, K, 0), K, 1)
    return y[::2, ::2]


def np_pyr_up(img, dst_hw):
    """img: (h, w, C) -> zero-insert to (2h, 2w), convolve with 4*K (x) K... i.e. [1,4,6,4,1]/8 per axis,
    reflect-101 padding of the zero-inserted image, then crop to dst_hw = (H, W)."""
    h, w, c = img.shape
    z = np.zeros((2 * h, 2 * w, c))
    z[::2, ::2] = img
    y = conv_axis(conv_axis(z, 2.0 * K, 0), 2.0 * K, 1)
    return y[: dst_hw[0], : dst_hw[1]]


def planar(a):
    """(H, W, C) -> channel-planar flat list of Python floats."""
    return [float(v) for v in np.asarray(a, dtype=np.float64).transpose(2, 0, 1).ravel()]


def as_hwc(a):
    return a[:, :, None] if a.ndim == 2 else a


def main():
    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    specs = [("rgb32", (32, 32, 3)), ("grey20x12", (20, 12)), ("rgb16x10", (16, 10, 3))]
    cases = []
    for name, shape in specs:
        image = rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)
        H, W = shape[0], shape[1]
        down = cv2.pyrDown(image)  # default borderType = BORDER_REFLECT_101
        assert down.shape[:2] == ((H + 1) // 2, (W + 1) // 2), down.shape
        up = cv2.pyrUp(down, dstsize=(W, H))
        assert up.shape[:2] == (H, W), up.shape
        lap = image - up

        img3, down3, up3 = as_hwc(image), as_hwc(down), as_hwc(up)
        nd = np_pyr_down(img3.astype(np.float64))
        # numpy pyrUp on the *OpenCV* down output, so the two checks are independent.
        nu = np_pyr_up(down3.astype(np.float64), (H, W))
        dd = float(np.max(np.abs(nd - down3)))
        du = float(np.max(np.abs(nu - up3)))
        print(f"{name}: shape {list(img3.shape)} down {list(down3.shape)}  "
              f"max|numpy-opencv| down {dd:.3e} up {du:.3e}")

        cases.append({
            "name": name,
            "shape": list(img3.shape),
            "image": planar(img3),
            "down_shape": list(down3.shape),
            "down": planar(down3),
            "up": planar(up3),
            "laplacian": planar(as_hwc(lap)),
            "numpy_matches_opencv": {"down": dd <= TOL, "up": du <= TOL},
        })

    OUT.parent.mkdir(parents=True, exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"generator": "tools/golden_pyramid.py", "opencv_version": cv2.__version__, "cases": cases}, f)
        f.write("\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
