"""Times the standard FID Inception in PyTorch on the same 1,000 Fashion-MNIST images that
`prism eval --reference DIR --save-stats F` embeds (BENCHMARKS.md): clean-fid's own pipeline
(`get_folder_features`, mode="clean": PIL bicubic to 299², the wheel's TorchScript `layers`),
batch 50, CPU, `torch.set_num_threads(T)`.

Run: /work/venv/bin/python tools/bench_inception_torch.py DIR default_1.pt [threads] [FEATS.npy]
(FEATS.npy: also save the [N, 2048] features, e.g. to compare them with prism's `--save-stats` file
and to compute clean-fid's FID from them with `cleanfid.fid.frechet_distance`.)
"""
import sys
import time

import numpy as np
import torch
from cleanfid import fid as cfid


def main():
    folder, pt = sys.argv[1], sys.argv[2]
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    torch.set_num_threads(threads)
    layers = torch.jit.load(pt).net.layers.eval()

    def model(x):
        with torch.no_grad():
            return layers((x - 128) / 128).reshape(x.shape[0], 2048)

    t0 = time.perf_counter()
    feats = cfid.get_folder_features(folder, model, num_workers=0, batch_size=50, device=torch.device("cpu"),
                                     mode="clean", verbose=False)
    dt = time.perf_counter() - t0
    print(f"torch {torch.__version__}, {threads} threads: {feats.shape[0]} images in {dt:.1f} s "
          f"({feats.shape[0] / dt:.2f} images/s)")
    if len(sys.argv) > 4:
        np.save(sys.argv[4], feats)


if __name__ == "__main__":
    main()
