"""Golden values for loading Stable Diffusion's own VAE (diffusers `AutoencoderKL` safetensors) into
prism's autoencoder (crates/prism/src/nn/autoencoder/diffusers.rs; issue 14 item 7).

Reference: diffusers' `AutoencoderKL` built from Stable Diffusion's VAE config (4 levels of
`DownEncoderBlock2D` / `UpDecoderBlock2D`, layers_per_block 2, 4 latent channels, mid-block
self-attention, GroupNorm ε 1e-6) but small: block_out_channels (128, 256, 512, 512) / 16 and
norm_num_groups 32 / 8. Every weight is redrawn from torch.manual_seed(0) (normal, std 0.15; GroupNorm
scales around 1) so that no default init (zeros, ones) hides a wrong mapping, then rounded to float16
and saved as float16, as many published VAE files are (`*.fp16.safetensors`); the golden outputs are
computed in float32 from those rounded weights. The input image [1, 3, 32, 32] is uniform in [-1, 1]
from the same generator.

Outputs (crates/prism/tests/data/):
  sd_vae_tiny/diffusion_pytorch_model.safetensors  the model's own state dict (diffusers keys, float16)
  sd_vae_tiny/config.json                          the model's diffusers config (scaling_factor 0.18215)
  sd_vae_tiny_golden.safetensors                   input, moments (quant_conv(E(x)): mean | logvar),
                                                   latent (= posterior mean · scaling_factor),
                                                   decoded (= D(post_quant_conv(latent / scaling_factor)))

Needs: torch 2.15.0, diffusers 0.42.1, safetensors (tools/requirements.txt).
Rerun:  /work/venv/bin/python tools/golden_sd_vae.py
"""
import json
from pathlib import Path

import torch
from diffusers import AutoencoderKL
from safetensors.torch import save_file

DATA = Path(__file__).resolve().parent.parent / "crates/prism/tests/data"
SD_CHANNELS = (128, 256, 512, 512)
SCALE = 16
SCALING_FACTOR = 0.18215  # SD 1.x / 2.x (SDXL's VAE: 0.13025)


def main():
    torch.manual_seed(0)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=tuple(c // SCALE for c in SD_CHANNELS),
        layers_per_block=2,
        act_fn="silu",
        latent_channels=4,
        norm_num_groups=32 // 8,
        sample_size=32,
        scaling_factor=SCALING_FACTOR,
    ).eval()
    with torch.no_grad():
        for name, p in vae.named_parameters():
            if "norm" in name and name.endswith(".weight"):
                p.copy_(1.0 + 0.15 * torch.randn_like(p))
            else:
                p.copy_(0.15 * torch.randn_like(p))
            p.copy_(p.half().float())
        x = torch.rand(1, 3, 32, 32) * 2 - 1
        moments = vae.quant_conv(vae.encoder(x))
        posterior = vae.encode(x).latent_dist
        assert torch.equal(posterior.mean, moments[:, :4])
        latent = posterior.mean * vae.config.scaling_factor
        decoded = vae.decode(latent / vae.config.scaling_factor).sample

    out = DATA / "sd_vae_tiny"
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.half().contiguous() for k, v in vae.state_dict().items()}, out / "diffusion_pytorch_model.safetensors")
    cfg = {k: v for k, v in dict(vae.config).items() if not k.startswith("_")}
    cfg["_class_name"] = "AutoencoderKL"
    (out / "config.json").write_text(json.dumps(cfg, indent=2, default=list) + "\n")
    save_file(
        {"input": x.contiguous(), "moments": moments.contiguous(), "latent": latent.contiguous(),
         "decoded": decoded.contiguous()},
        DATA / "sd_vae_tiny_golden.safetensors",
        metadata={"source": "tools/golden_sd_vae.py (diffusers 0.42.1 AutoencoderKL)",
                  "scaling_factor": str(SCALING_FACTOR)},
    )
    n = sum(p.numel() for p in vae.parameters())
    print(f"{n} parameters; |latent| max {latent.abs().max():.4f}; |decoded| max {decoded.abs().max():.4f}")


if __name__ == "__main__":
    main()
