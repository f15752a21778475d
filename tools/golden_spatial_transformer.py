"""Golden values for prism's cross-attention transformer (crates/prism/src/nn/layers/spatial_transformer.rs).

Reference: diffusers' `Transformer2DModel` (continuous input, use_linear_projection=False) with its
`BasicTransformerBlock` (self-attention, cross-attention to a context sequence, GEGLU feed-forward), the module
LDM calls SpatialTransformer (formula sheet section 5). Every weight is redrawn from torch.manual_seed(0)
(normal, std 0.2; LayerNorm / GroupNorm scales around 1) so that no default init (zeros, ones) hides a
wrong mapping. The input [2, 32, 4, 4] and the context [2, 3, 12] are standard normal from the same generator.

Output: crates/prism/tests/data/spatial_transformer.safetensors with
  param.<prism parameter path>  each weight under prism's name (torch Linear [out, in] transposed to burn's [in, out])
  input, context, output        float32
  metadata "spec" = "channels,heads,head_dim,context_dim,depth,groups"

Needs: torch 2.15.0, diffusers 0.42.1, safetensors (tools/requirements.txt).
Rerun:  /work/venv/bin/python tools/golden_spatial_transformer.py
"""
from pathlib import Path

import torch
from diffusers.models.transformers.transformer_2d import Transformer2DModel
from safetensors.torch import save_file

OUT = Path(__file__).resolve().parent.parent / "crates/prism/tests/data/spatial_transformer.safetensors"
CHANNELS, HEADS, HEAD_DIM, CONTEXT_DIM, DEPTH, GROUPS = 32, 2, 8, 12, 2, 8


def prism_name(name: str) -> str:
    """diffusers' parameter path -> prism's."""
    n = name.replace("transformer_blocks.", "blocks.").replace("attn1.to_out.0.", "attn1.to_out.")
    n = n.replace("attn2.to_out.0.", "attn2.to_out.").replace("ff.net.0.proj.", "ff.proj.").replace("ff.net.2.", "ff.out.")
    if n.startswith("norm.") or ".norm" in n:
        n = n.replace(".weight", ".gamma").replace(".bias", ".beta")
    return n


def main():
    torch.manual_seed(0)
    model = Transformer2DModel(
        num_attention_heads=HEADS,
        attention_head_dim=HEAD_DIM,
        in_channels=CHANNELS,
        num_layers=DEPTH,
        cross_attention_dim=CONTEXT_DIM,
        norm_num_groups=GROUPS,
        activation_fn="geglu",
        attention_bias=False,
        use_linear_projection=False,
    ).eval()
    params = {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            is_norm = name.startswith("norm.") or ".norm" in name
            if is_norm and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            else:
                p.copy_(0.2 * torch.randn_like(p))
            w = p.detach().clone()
            if w.dim() == 2:  # Linear: torch [out, in] -> burn [in, out]
                w = w.t()
            params["param." + prism_name(name)] = w.contiguous()
        x = torch.randn(2, CHANNELS, 4, 4)
        context = torch.randn(2, 3, CONTEXT_DIM)
        out = model(x, encoder_hidden_states=context).sample
    tensors = dict(params, input=x, context=context, output=out)
    spec = ",".join(str(v) for v in (CHANNELS, HEADS, HEAD_DIM, CONTEXT_DIM, DEPTH, GROUPS))
    save_file({k: v.float().contiguous() for k, v in tensors.items()}, str(OUT), metadata={"spec": spec, "format": "golden"})
    print(f"wrote {OUT}: {len(params)} weights, output std {out.std():.4f}")
    for k in sorted(params):
        print(" ", k, tuple(params[k].shape))


if __name__ == "__main__":
    main()
