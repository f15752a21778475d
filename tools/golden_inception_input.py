"""Golden inputs and features of the FID Inception's three input pipelines, with the deterministic
synthetic weights of tools/golden_inception.py, for crates/prism/src/nn/inception/input.rs:

- clean: clean-fid's own resizer (`cleanfid.resize.make_resizer("PIL", False, "bicubic", (299, 299))`,
  PIL bicubic on float channels, clip) then `(v - 128)/128` and pytorch-fid's network definition
  (no resize, no normalisation) — exactly what clean-fid's `mode="clean"` feeds
  `inception-2015-12-05.pt`'s `layers`;
- legacy_tensorflow: torch-fidelity's `FeatureExtractorInceptionV3` (its pure-PyTorch TF1
  `resize_bilinear`, `(v - 128)/128`, its own network definition), 2048-d features;
- pytorch_fid: pytorch-fid's `InceptionV3` (bilinear resize, `2x - 1`).

Images: two 3×21×26 uint8 images (non-square, so rows and columns are told apart), which prism
reads as bytes/127.5 − 1. Stored: the images, the 299×299 network input at 64 fixed positions
per mode, and the features.

Needs torch, torchvision, pytorch-fid, clean-fid, torch-fidelity, pillow (tools/requirements.txt).
Run: /work/venv/bin/python tools/golden_inception_input.py  (writes crates/prism/tests/data/inception_input.json)
"""
import json
import pathlib
import sys

import numpy as np
import torch
import pytorch_fid.inception as pi
import torch_fidelity.feature_extractor_inceptionv3 as tfi
from cleanfid.resize import make_resizer

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from golden_inception import synthetic  # noqa: E402


def synthetic_state(module):
    return {n: (synthetic(n, tuple(t.shape)) if t.is_floating_point() else t) for n, t in module.state_dict().items()}


def pytorch_fid_net(resize, normalize):
    orig = torch.nn.Module.load_state_dict
    pi.load_state_dict_from_url = lambda *a, **k: None
    torch.nn.Module.load_state_dict = lambda self, _sd, *a, **k: orig(self, synthetic_state(self))
    try:
        model = pi.InceptionV3([3], resize_input=resize, normalize_input=normalize).eval()
    finally:
        torch.nn.Module.load_state_dict = orig
    return model


def torch_fidelity_net():
    orig = torch.nn.Module.load_state_dict
    tfi.load_state_dict_from_url = lambda *a, **k: {}
    torch.nn.Module.load_state_dict = lambda self, _sd, *a, **k: orig(self, synthetic_state(self))
    try:
        model = tfi.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"]).eval()
    finally:
        torch.nn.Module.load_state_dict = orig
    return model


def main():
    h, w = 21, 26
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    imgs = np.stack([
        np.stack([127.5 + 120 * np.sin(0.45 * x + 0.3 * (k + c + 1) * y + k + 2 * c) for c in range(3)])
        for k in range(2)
    ])
    imgs = np.clip(np.round(imgs), 0, 255).astype(np.uint8)  # [2, 3, h, w]
    rng = np.random.default_rng(5)
    pos = [[int(c), int(a), int(b)] for c, a, b in zip(rng.integers(0, 3, 64), rng.integers(0, 299, 64), rng.integers(0, 299, 64))]

    out = {"images": imgs.ravel().tolist(), "shape": list(imgs.shape), "positions": pos, "modes": {}}
    with torch.no_grad():
        # clean
        resize = make_resizer("PIL", False, "bicubic", (299, 299))
        resized = np.stack([resize(im.transpose(1, 2, 0)).transpose(2, 0, 1) for im in imgs])
        x_clean = torch.from_numpy(resized.astype(np.float32))
        x_clean = (x_clean - 128) / 128
        feats = pytorch_fid_net(False, False)(x_clean)[0].flatten(1).double().numpy()
        out["modes"]["clean"] = {"input": [float(x_clean[0, c, a, b]) for c, a, b in pos], "features": feats.tolist()}
        # legacy_tensorflow
        from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x as tf_resize
        t = torch.from_numpy(imgs)
        x_tf = (tf_resize(t.float(), size=(299, 299), align_corners=False) - 128) / 128
        feats = torch_fidelity_net()(t)[0].double().numpy()
        out["modes"]["legacy_tensorflow"] = {"input": [float(x_tf[0, c, a, b]) for c, a, b in pos], "features": feats.tolist()}
        # pytorch_fid
        x01 = t.float() / 255
        x_pf = 2 * torch.nn.functional.interpolate(x01, size=(299, 299), mode="bilinear", align_corners=False) - 1
        feats = pytorch_fid_net(True, True)(x01)[0].flatten(1).double().numpy()
        out["modes"]["pytorch_fid"] = {"input": [float(x_pf[0, c, a, b]) for c, a, b in pos], "features": feats.tolist()}
    out["source"] = "tools/golden_inception_input.py (clean-fid resizer + pytorch-fid 0.3.0 network; torch-fidelity; pytorch-fid), synthetic weights"
    path = pathlib.Path(__file__).resolve().parent.parent / "crates/prism/tests/data/inception_input.json"
    path.write_text(json.dumps(out))
    print("wrote", path, {m: v["features"][0][:3] for m, v in out["modes"].items()})


if __name__ == "__main__":
    main()
