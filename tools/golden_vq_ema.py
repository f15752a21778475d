"""Golden values for the VQ codebook's maintenance (crates/prism/src/nn/autoencoder/codebook.rs):
EMA codebook updates and dead-code restarts, from vector-quantize-pytorch's `Codebook` (the
`EuclideanCodebook` of older releases) itself.

Three runs of STEPS steps each on the same fixed inputs (formula sheet section 5; van den Oord et al.
2017 App. A.1, Jukebox's restarts):
  ema            ema_update=True,  threshold_ema_dead_code=0   (EMA updates only)
  ema_restart    ema_update=True,  threshold_ema_dead_code=0.6 (EMA updates, then restarts)
  grad_restart   learnable_codebook=True, ema_update=False, threshold 0.6 (usage averages and restarts;
                 the codebook itself would move by its gradient, which is not taken here)
decay 0.8, eps 1e-5, K = 8 codes of D = 3 channels, inputs z of shape [2, 3, 3, 3] (18 vectors a step),
standard normal from numpy's default_rng(0); the initial codebook uniform in [-1, 1) from the same
generator, its last three codes moved by +4 (far from the data: unused, they die and restart). Randomness is not compared: the library's draw of the
replacement vectors (`replace_sample_fn`) is replaced by a fixed permutation from the same generator,
and the file records which code took which vector.

Output: crates/prism/tests/data/vq_ema.safetensors (float32):
  init.embed                      [K, D]   the initial codebook (cluster sizes start at 1, embed_avg = embed)
  z.<s>                           [2, D, 3, 3]  the unquantised latent of step s (rows in [B, h, w] order)
  <run>.<s>.indices               [18]     nearest codes (as float32)
  <run>.<s>.restarts              [r, 2]   (code, vector) pairs restarted in step s (absent when none)
  <run>.<s>.embed / .cluster_size / .embed_avg   the state after step s (embed_avg: EMA runs only)
  metadata: decay, eps, threshold, steps, n_embed, dim, version (of vector-quantize-pytorch)

Needs: torch 2.15.0, vector-quantize-pytorch 1.32.0 (pulls einops, einx), numpy, safetensors
(tools/requirements.txt). Rerun:  /work/venv/bin/python tools/golden_vq_ema.py
"""
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from vector_quantize_pytorch.vector_quantize_pytorch import Codebook

OUT = Path(__file__).resolve().parent.parent / "crates/prism/tests/data/vq_ema.safetensors"
K, D, STEPS = 8, 3, 5
DECAY, EPS, THRESHOLD = 0.8, 1e-5, 0.6
SHAPE = (2, D, 3, 3)


def main():
    rng = np.random.default_rng(0)
    init = rng.uniform(-1.0, 1.0, (K, D)).astype(np.float32)
    init[K - 3:] += 4.0  # three codes far from the data: unused, they die and restart
    zs = [rng.standard_normal(SHAPE).astype(np.float32) for _ in range(STEPS)]
    n = SHAPE[0] * SHAPE[2] * SHAPE[3]
    perms = [rng.permutation(n) for _ in range(STEPS)]
    out = {"init.embed": torch.from_numpy(init)}
    for s, z in enumerate(zs):
        out[f"z.{s}"] = torch.from_numpy(z)
    runs = {
        "ema": dict(ema_update=True, threshold_ema_dead_code=0),
        "ema_restart": dict(ema_update=True, threshold_ema_dead_code=THRESHOLD),
        "grad_restart": dict(ema_update=False, learnable_codebook=True, threshold_ema_dead_code=THRESHOLD),
    }
    restarted = {}
    for name, kw in runs.items():
        torch.manual_seed(0)
        cb = Codebook(dim=D, codebook_size=K, decay=DECAY, eps=EPS, **kw).train()
        with torch.no_grad():
            cb.embed.data.copy_(torch.from_numpy(init)[None])
            cb.embed_avg.data.copy_(torch.from_numpy(init)[None])
            cb.cluster_size.data.fill_(1.0)
        restarted[name] = 0
        for s, z in enumerate(zs):
            log = []

            def fixed(samples, num, perm=perms[s], log=log):
                idx = torch.from_numpy(perm[:num])
                log.append(idx)
                return samples[:, idx]

            cb.replace_sample_fn = fixed
            dead_before = None

            # the dead codes are those below the threshold after this step's averaging: record them
            # from the mask the library builds (expire_codes_ compares cluster_size to the threshold)
            orig_replace = cb.replace

            def replace(batch_samples, batch_mask, seq_mask=None, orig=orig_replace):
                nonlocal dead_before
                dead_before = batch_mask[0].nonzero(as_tuple=True)[0].clone()
                return orig(batch_samples, batch_mask, seq_mask)

            cb.replace = replace
            rows = torch.from_numpy(z).permute(0, 2, 3, 1).reshape(1, n, D)
            with torch.no_grad():
                _, ind, _ = cb(rows)
            out[f"{name}.{s}.indices"] = ind.reshape(-1).float()
            if dead_before is not None:
                assert len(dead_before) <= n, "a random subset of dead codes would be drawn"
                pairs = torch.stack([dead_before, log[0]], dim=1).float()
                out[f"{name}.{s}.restarts"] = pairs
                restarted[name] += len(dead_before)
            out[f"{name}.{s}.embed"] = cb.embed.detach()[0].clone()
            out[f"{name}.{s}.cluster_size"] = cb.cluster_size.detach()[0].clone()
            if kw["ema_update"]:
                out[f"{name}.{s}.embed_avg"] = cb.embed_avg.detach()[0].clone()
    assert restarted["ema"] == 0 and restarted["ema_restart"] > 0 and restarted["grad_restart"] > 0, restarted
    meta = {
        "decay": str(DECAY),
        "eps": str(EPS),
        "threshold": str(THRESHOLD),
        "steps": str(STEPS),
        "n_embed": str(K),
        "dim": str(D),
        "version": "vector-quantize-pytorch " + version("vector-quantize-pytorch"),
    }
    save_file({k: v.contiguous().float() for k, v in out.items()}, str(OUT), metadata=meta)
    print(f"wrote {OUT}: restarts {restarted}")


if __name__ == "__main__":
    main()
