"""Golden LPIPS distances for crates/prism/src/nn/lpips.rs from the `lpips` package (LPIPS(net='vgg'),
version 0.1), the reference implementation of Zhang et al. 2018.

1. `synthetic`: the same architecture with deterministic synthetic weights (every tensor a pure
   function of its state-dict name: the SplitMix64/FNV-1a stream of tools/golden_inception.py;
   conv weights √3·u·√(2/fan_in), biases 0.1u, lin weights (u+1)/C), on two 32×32 RGB pairs:
   distances and the gradient of their sum with respect to the second batch. CI checks these.
2. `real`: the converted ImageNet weights (tools/convert_lpips.py → data/weights/lpips-vgg16.safetensors)
   on two 64×64 pairs; the opt-in test `lpips_matches_the_lpips_package_with_real_weights` checks them
   when that file is present.

Images: x0[k](c, y, x) = sin(0.21x + 0.17(k+1)y + 0.9c + k), x1 = clip(x0 + 0.3 sin(0.7x − 0.5y + c + 2k), −1, 1).
Needs torch, lpips==0.1.4, safetensors, numpy, pytorch-fid (for the shared uniform stream).
Run: python tools/golden_lpips.py  (writes crates/prism/tests/data/lpips.json)
"""
import json
import pathlib
import sys

import numpy as np
import torch
import lpips
from safetensors.torch import load_file

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from golden_inception import uniform  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent


def synthetic(name, shape):
    n = int(np.prod(shape))
    u = uniform(name, n)
    if name.startswith("lin"):
        v = (u + 1) / np.float32(shape[1])
    elif len(shape) == 4:
        fan_in = int(np.prod(shape[1:]))
        v = np.float32(np.sqrt(3.0) * np.sqrt(2.0 / fan_in)) * u
    else:
        v = np.float32(0.1) * u
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


def images(side):
    y, x = np.mgrid[0:side, 0:side].astype(np.float64)
    x0 = np.stack([np.stack([np.sin(0.21 * x + 0.17 * (k + 1) * y + 0.9 * c + k) for c in range(3)]) for k in range(2)])
    x1 = np.stack([np.stack([np.sin(0.7 * x - 0.5 * y + c + 2 * k) for c in range(3)]) for k in range(2)])
    x1 = np.clip(x0 + 0.3 * x1, -1, 1)
    return torch.from_numpy(x0.astype(np.float32)), torch.from_numpy(x1.astype(np.float32))


def model():
    m = lpips.LPIPS(pretrained=True, net="vgg", pnet_rand=True, verbose=False).eval()
    for p in m.parameters():
        p.requires_grad_(False)
    return m


def main():
    m = model()
    # `lins.N` is the same module as `linN` (a ModuleList over them): both get linN's values.
    name = lambda k: f"lin{k.split('.')[1]}.model.1.weight" if k.startswith("lins.") else k
    sd = {k: (synthetic(name(k), tuple(v.shape)) if (k.startswith("net.") or k.startswith("lin")) else v)
          for k, v in m.state_dict().items()}
    m.load_state_dict(sd)
    x0, x1 = images(32)
    x1 = x1.clone().requires_grad_(True)
    d = m(x0, x1)
    d.sum().backward()
    grad = x1.grad.double().numpy().reshape(-1)
    out = {
        "source": f"tools/golden_lpips.py (lpips {lpips.__version__ if hasattr(lpips, '__version__') else '0.1.4'}, torch {torch.__version__})",
        "synthetic": {
            "uniform_check": {"name": "net.slice3.12.weight", "first": uniform("net.slice3.12.weight", 4).tolist()},
            "side": 32,
            "distances": d.detach().double().numpy().reshape(-1).tolist(),
            "grad_first": grad[:16].tolist(),
            "grad_abs_sum": float(np.abs(grad).sum()),
        },
    }
    weights = ROOT / "data/weights/lpips-vgg16.safetensors"
    if weights.exists():
        real = model()
        converted = load_file(str(weights))
        converted.update({f"lins.{i}.model.1.weight": converted[f"lin{i}.model.1.weight"] for i in range(5)})
        real.load_state_dict({**real.state_dict(), **converted})
        x0, x1 = images(64)
        with torch.no_grad():
            out["real"] = {"side": 64, "distances": real(x0, x1).double().numpy().reshape(-1).tolist(),
                           "self": real(x0, x0).double().numpy().reshape(-1).tolist()}
    path = ROOT / "crates/prism/tests/data/lpips.json"
    path.write_text(json.dumps(out, indent=1))
    print("wrote", path, out["synthetic"]["distances"], out.get("real"))


if __name__ == "__main__":
    main()
