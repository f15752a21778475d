"""Golden features of pytorch-fid's Inception-v3 (FID variant) with deterministic synthetic weights,
for crates/prism/src/nn/inception/. The real FID weights cannot be installed here (every FID
package downloads them at run time), so this checks the architecture, the BN folding, the pooling
variants and the 299×299 bilinear resize against pytorch-fid's own network definition.

Weights: each tensor is a pure function of its state-dict name (SplitMix64 stream seeded with the
FNV-1a hash of the name; see `synthetic_uniform` in inception.rs). Inputs: two 32×32 grey images
v(y, x) = 0.5 + 0.5·sin(0.3x + 0.2(k+1)y + k) in [0, 1], repeated to RGB as prism does.

Needs torch, torchvision and pytorch-fid (tools/requirements.txt).
Run: tools/.venv/bin/python tools/golden_inception.py  (writes crates/prism/tests/data/inception.json)
"""
import json
import pathlib

import numpy as np
import torch
import pytorch_fid.inception as pi

MASK = (1 << 64) - 1


def fnv1a(name):
    h = 0xCBF29CE484222325
    for b in name.encode():
        h ^= b
        h = (h * 0x100000001B3) & MASK
    return h


def uniform(name, n):
    with np.errstate(over="ignore"):
        i = np.arange(n, dtype=np.uint64)
        z = np.uint64(fnv1a(name)) + np.uint64(0x9E3779B97F4A7C15) * (i + np.uint64(1))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return ((z >> np.uint64(40)).astype(np.float64) / float(1 << 24) * 2.0 - 1.0).astype(np.float32)


def synthetic(name, shape):
    n = int(np.prod(shape))
    u = uniform(name, n)
    if name.endswith("conv.weight"):
        fan_in = int(np.prod(shape[1:]))
        v = np.float32(np.sqrt(3.0) * np.sqrt(2.0 / fan_in)) * u
    elif name.endswith("bn.weight"):
        v = 1 + 0.1 * u
    elif name.endswith("bn.running_var"):
        v = 1 + 0.25 * (u + 1)
    else:
        v = 0.1 * u
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


def main():
    orig = torch.nn.Module.load_state_dict

    def fake_load(self, _sd, *a, **k):
        sd = {n: (synthetic(n, tuple(t.shape)) if t.is_floating_point() else t) for n, t in self.state_dict().items()}
        return orig(self, sd)

    pi.load_state_dict_from_url = lambda *a, **k: None
    torch.nn.Module.load_state_dict = fake_load
    model = pi.InceptionV3([pi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    torch.nn.Module.load_state_dict = orig

    y, x = np.mgrid[0:32, 0:32].astype(np.float64)
    imgs = np.stack([0.5 + 0.5 * np.sin(0.3 * x + 0.2 * (k + 1) * y + k) for k in range(2)]).astype(np.float32)
    batch = torch.from_numpy(imgs)[:, None].repeat(1, 3, 1, 1)
    with torch.no_grad():
        feats = model(batch)[0].squeeze(-1).squeeze(-1).double().numpy()
    out = pathlib.Path(__file__).resolve().parent.parent / "crates/prism/tests/data/inception.json"
    out.write_text(json.dumps({
        "source": "tools/golden_inception.py (pytorch-fid 0.3.0 InceptionV3, dims=2048, synthetic weights)",
        "uniform_check": {"name": "Mixed_7c.branch_pool.conv.weight", "first": uniform("Mixed_7c.branch_pool.conv.weight", 4).tolist()},
        "features": feats.tolist(),
    }))
    print("wrote", out, feats.shape, feats[:, :4])


if __name__ == "__main__":
    main()
