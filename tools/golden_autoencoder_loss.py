"""Golden values for the first-stage autoencoder's losses (crates/prism/src/objective/autoencoder/),
from PyTorch transcriptions of the reference code (CompVis latent-diffusion / taming-transformers):

- `kl`: `DiagonalGaussianDistribution.kl()` summed over the batch / B, cross-checked with
  `torch.distributions.kl_divergence`.
- `vq`: `VectorQuantizer2` (legacy=False): nearest codes, `β·mean((sg(z_q)−z)²) + mean((z_q−sg(z))²)`.
- `gan`: taming's `NLayerDiscriminator(input_nc=3, ndf=4, n_layers=3)` (BatchNorm, train mode) and
  `LPIPSWithDiscriminator`'s adaptive weight on a tiny "decoder": x̂ = conv3x3(h) (the last layer),
  nll = Σ(|x−x̂|/exp(logvar) + logvar)/B, g = −mean(D(x̂)),
  λ = clamp(‖∇_W nll‖/(‖∇_W g‖ + 1e-4), 0, 1e4)·disc_weight (torch.autograd.grad), and the hinge and
  vanilla discriminator losses and the non-saturating generator loss.

Needs torch, numpy. Run: python tools/golden_autoencoder_loss.py  (writes crates/prism/tests/data/autoencoder_loss.json)
"""
import json
import pathlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)


def flat(t):
    return t.detach().double().reshape(-1).tolist()


def nlayer_discriminator(input_nc=3, ndf=64, n_layers=3):
    """taming/modules/discriminator/model.py NLayerDiscriminator (use_actnorm=False)."""
    kw, padw = 4, 1
    seq = [nn.Conv2d(input_nc, ndf, kw, 2, padw), nn.LeakyReLU(0.2, True)]
    mult = 1
    for n in range(1, n_layers):
        prev, mult = mult, min(2 ** n, 8)
        seq += [nn.Conv2d(ndf * prev, ndf * mult, kw, 2, padw, bias=False), nn.BatchNorm2d(ndf * mult), nn.LeakyReLU(0.2, True)]
    prev, mult = mult, min(2 ** n_layers, 8)
    seq += [nn.Conv2d(ndf * prev, ndf * mult, kw, 1, padw, bias=False), nn.BatchNorm2d(ndf * mult), nn.LeakyReLU(0.2, True)]
    seq += [nn.Conv2d(ndf * mult, 1, kw, 1, padw)]
    m = nn.Module()
    m.main = nn.Sequential(*seq)  # taming's state-dict names: main.N.*
    m.forward = m.main.forward
    return m


def kl_case():
    moments = torch.randn(2, 8, 3, 3) * 1.5
    mean, logvar = torch.chunk(moments, 2, dim=1)
    logvar = torch.clamp(logvar, -30.0, 20.0)
    var = torch.exp(logvar)
    kl = 0.5 * torch.sum(mean ** 2 + var - 1.0 - logvar, dim=[1, 2, 3])
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(mean, var.sqrt()), torch.distributions.Normal(0.0, 1.0)).sum(dim=[1, 2, 3])
    assert torch.allclose(kl, ref, rtol=1e-4)
    return {"moments": flat(moments), "shape": [2, 8, 3, 3], "kl": float(kl.sum() / 2)}


def vq_case():
    z = torch.randn(2, 3, 2, 2)
    codebook = torch.randn(8, 3) * 0.7
    beta = 0.25
    zf = z.permute(0, 2, 3, 1).reshape(-1, 3)
    d = (zf ** 2).sum(1, keepdim=True) + (codebook ** 2).sum(1) - 2 * zf @ codebook.t()
    idx = torch.argmin(d, dim=1)
    zq = codebook[idx].view(2, 2, 2, 3).permute(0, 3, 1, 2)
    loss = beta * torch.mean((zq.detach() - z) ** 2) + torch.mean((zq - z.detach()) ** 2)
    counts = np.bincount(idx.numpy(), minlength=8) / idx.numel()
    perplexity = float(np.exp(-np.sum(counts * np.log(counts + 1e-10))))
    return {"z": flat(z), "codebook": flat(codebook), "indices": idx.tolist(), "loss": float(loss),
            "perplexity": perplexity}


def gan_case():
    disc = nlayer_discriminator(3, 4, 3)
    disc.train()
    sd = {k: v.clone() for k, v in disc.state_dict().items() if "num_batches" not in k}
    for k in list(sd):
        if k.endswith(".weight") and sd[k].dim() == 1:  # BatchNorm γ: not all ones
            sd[k] = sd[k] + 0.1 * torch.randn_like(sd[k])
        if k.endswith("running_var"):
            sd[k] = sd[k] + 0.5 * torch.rand_like(sd[k])
    disc.load_state_dict(sd, strict=False)
    last = nn.Conv2d(4, 3, 3, 1, 1)
    h = torch.randn(2, 4, 32, 32)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    logvar = torch.tensor(0.3)
    disc_weight = 0.5
    x_hat = last(h)
    rec = torch.abs(x - x_hat)
    nll = torch.sum(rec / torch.exp(logvar) + logvar) / x.shape[0]
    logits_fake = disc(x_hat)
    g_loss = -torch.mean(logits_fake)
    nll_grads = torch.autograd.grad(nll, last.weight, retain_graph=True)[0]
    g_grads = torch.autograd.grad(g_loss, last.weight, retain_graph=True)[0]
    d_weight = torch.norm(nll_grads) / (torch.norm(g_grads) + 1e-4)
    d_weight = torch.clamp(d_weight, 0.0, 1e4).detach() * disc_weight
    with torch.no_grad():
        real = disc(x)
        fake = disc(x_hat.detach())
    hinge = 0.5 * (torch.mean(F.relu(1.0 - real)) + torch.mean(F.relu(1.0 + fake)))
    vanilla = 0.5 * (torch.mean(F.softplus(-real)) + torch.mean(F.softplus(fake)))
    nonsat = torch.mean(F.softplus(-logits_fake))
    return {
        "disc": {k: {"shape": list(v.shape), "data": flat(v)} for k, v in sd.items()},
        "last_weight": flat(last.weight), "last_bias": flat(last.bias),
        "h": flat(h), "x": flat(x), "logvar": float(logvar), "disc_weight": disc_weight,
        "nll": float(nll), "g_loss": float(g_loss), "logits_fake_first": flat(logits_fake)[:4],
        "logits_shape": list(logits_fake.shape),
        "nll_grad_norm": float(torch.norm(nll_grads)), "g_grad_norm": float(torch.norm(g_grads)),
        "d_weight": float(d_weight), "hinge_d_loss": float(hinge), "vanilla_d_loss": float(vanilla),
        "nonsaturating_g_loss": float(nonsat),
    }


def main():
    out = {"source": f"tools/golden_autoencoder_loss.py (torch {torch.__version__})",
           "kl": kl_case(), "vq": vq_case(), "gan": gan_case()}
    path = pathlib.Path(__file__).resolve().parent.parent / "crates/prism/tests/data/autoencoder_loss.json"
    path.write_text(json.dumps(out))
    print("wrote", path, {k: out["gan"][k] for k in ("nll", "g_loss", "d_weight", "hinge_d_loss")})


if __name__ == "__main__":
    main()
