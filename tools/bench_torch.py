#!/usr/bin/env python3
"""PyTorch peer of prism's ADM-style U-Net, for a CPU speed comparison (fp32).

Measures (1) a full training step (forward, MSE loss, backward, AdamW step,
zero_grad) and (2) a sampling step (one forward under inference_mode).

Example:
    tools/.venv/bin/python tools/bench_torch.py --preset bench --json out.json

With --profile N it then records N more of each step with torch.profiler and splits their time by
operation class, the classes of tools/profile_prism.py (prism's own profile, from perf): each
profiler event's self time goes to the class of its op name (see `op_class`); the time of a step
that no op accounts for (Python, the profiler itself) is "outside ops".
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {
    "bench": dict(base_channels=64, channel_mults=[1, 2, 2], res_blocks=2,
                  attention_levels=[1, 2], head_channels=32, norm_groups=32,
                  in_channels=1, num_classes=10, image_size=32, batch=16),
    "fmnist": dict(base_channels=32, channel_mults=[1, 2, 2], res_blocks=1,
                   attention_levels=[2], head_channels=32, norm_groups=8,
                   in_channels=1, num_classes=10, image_size=32, batch=32),
}
DEFAULTS = dict(base_channels=64, channel_mults=[1, 2, 2], res_blocks=2,
                attention_levels=[1, 2], head_channels=32, norm_groups=32,
                in_channels=1, num_classes=0, image_size=32, batch=16)

GN_EPS = 1e-5

# The classes of tools/profile_prism.py, plus torch's fused GroupNorm backward (prism's GroupNorm
# backward is burn's element-wise and reduction steps) and the time outside any op.
CLASSES = [
    "conv forward",
    "conv backward",
    "matmul (linear + attention products)",
    "normalisation (GroupNorm forward)",
    "GroupNorm backward",
    "attention softmax",
    "element-wise, reductions, copies",
    "autodiff & dispatch bookkeeping",
    "optimizer (AdamW, EMA)",
    "allocation (malloc/free, page faults, zero-fill)",
    "outside ops (Python, profiler)",
]
VIEWS = {"aten::view", "aten::reshape", "aten::_reshape_alias", "aten::transpose", "aten::t",
         "aten::expand", "aten::as_strided", "aten::slice", "aten::select", "aten::chunk",
         "aten::split", "aten::unsqueeze", "aten::squeeze", "aten::permute", "aten::detach",
         "detach", "aten::alias", "aten::unbind", "aten::narrow", "aten::result_type",
         "aten::_unsafe_view", "aten::lift_fresh", "aten::to", "aten::numpy_T", "aten::flatten"}
ALLOCS = {"aten::empty", "aten::empty_strided", "aten::empty_like", "aten::resize_",
          "aten::as_strided_", "aten::new_empty", "aten::new_empty_strided"}


def op_class(name, in_optimizer):
    """The class of a torch.profiler event from its name."""
    if in_optimizer or name.startswith("Optimizer."):
        return "optimizer (AdamW, EMA)"
    if name in ALLOCS:
        return "allocation (malloc/free, page faults, zero-fill)"
    if "convolution_backward" in name:
        return "conv backward"
    if "conv" in name:
        return "conv forward"
    if name in {"aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear",
                "aten::baddbmm"}:
        return "matmul (linear + attention products)"
    if "group_norm_backward" in name:
        return "GroupNorm backward"
    if "group_norm" in name:
        return "normalisation (GroupNorm forward)"
    if "softmax" in name:
        return "attention softmax"
    if (name.endswith(("Backward0", "Backward1")) or name.startswith("autograd::")
            or "AccumulateGrad" in name or name in VIEWS):
        return "autodiff & dispatch bookkeeping"
    if name.startswith("aten::"):
        return "element-wise, reductions, copies"
    return "outside ops (Python, profiler)"


def profile_step(step, n):
    """Seconds per step of each class over `n` profiled calls of `step`."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        wall = time.perf_counter() - t0
    per = {c: 0.0 for c in CLASSES}
    for e in prof.events():
        anc, p = [], e.cpu_parent
        while p is not None:
            anc.append(p.name)
            p = p.cpu_parent
        in_opt = any(x.startswith("Optimizer.") for x in anc)
        per[op_class(e.name, in_opt)] += e.self_cpu_time_total * 1e-6
    tracked = sum(per.values())
    per["outside ops (Python, profiler)"] += max(0.0, wall - tracked)
    return {c: v / n for c, v in per.items()}, wall / n


def gn(groups, ch):
    return nn.GroupNorm(groups, ch, eps=GN_EPS)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, emb_dim, groups, dropout):
        super().__init__()
        self.norm1 = gn(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb_proj = nn.Linear(emb_dim, 2 * cout)
        self.norm2 = gn(groups, cout)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb_proj(F.silu(emb)).chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale[:, :, None, None]) + shift[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class AttnBlock(nn.Module):
    def __init__(self, ch, head_channels, groups):
        super().__init__()
        assert ch % head_channels == 0, (ch, head_channels)
        self.heads = ch // head_channels
        self.hc = head_channels
        self.norm = gn(groups, ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = nn.Conv2d(ch, ch, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x))
        q, k, v = qkv.chunk(3, dim=1)  # each (B, ch, H, W)

        def heads(t):  # (B, heads, tokens, hc)
            return t.reshape(b, self.heads, self.hc, h * w).transpose(2, 3)

        q, k, v = heads(q), heads(k), heads(v)
        att = torch.softmax(q @ k.transpose(2, 3) / math.sqrt(self.hc), dim=-1)
        o = (att @ v).transpose(2, 3).reshape(b, c, h, w)
        return x + self.proj(o)


class UNet(nn.Module):
    def __init__(self, in_channels, base_channels, channel_mults, num_res_blocks,
                 attention_levels, head_channels=32, norm_groups=32, dropout=0.0,
                 num_classes=0):
        super().__init__()
        C = base_channels
        E = 4 * C
        self.C = C
        self.num_classes = num_classes
        self.time_mlp = nn.Sequential(nn.Linear(C, E), nn.SiLU(), nn.Linear(E, E))
        self.label_emb = nn.Embedding(num_classes + 1, E) if num_classes > 0 else None
        self.conv_in = nn.Conv2d(in_channels, C, 3, padding=1)

        attn = set(attention_levels)
        skips = [C]
        ch = C
        self.down = nn.ModuleList()  # entries: ("res"/"attn"/"down", module)
        self.down_kinds = []
        for level, mult in enumerate(channel_mults):
            out = C * mult
            for _ in range(num_res_blocks):
                self.down.append(ResBlock(ch, out, E, norm_groups, dropout))
                self.down_kinds.append("res")
                ch = out
                if level in attn:
                    self.down.append(AttnBlock(ch, head_channels, norm_groups))
                    self.down_kinds.append("attn")
                skips.append(ch)
            if level != len(channel_mults) - 1:
                self.down.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
                self.down_kinds.append("down")
                skips.append(ch)

        self.mid1 = ResBlock(ch, ch, E, norm_groups, dropout)
        self.mid_attn = AttnBlock(ch, head_channels, norm_groups)
        self.mid2 = ResBlock(ch, ch, E, norm_groups, dropout)

        self.up = nn.ModuleList()
        self.up_kinds = []
        for level, mult in reversed(list(enumerate(channel_mults))):
            out = C * mult
            for _ in range(num_res_blocks + 1):
                self.up.append(ResBlock(ch + skips.pop(), out, E, norm_groups, dropout))
                self.up_kinds.append("res")
                ch = out
                if level in attn:
                    self.up.append(AttnBlock(ch, head_channels, norm_groups))
                    self.up_kinds.append("attn")
            if level != 0:
                self.up.append(nn.Conv2d(ch, ch, 3, padding=1))
                self.up_kinds.append("up")
        assert not skips

        self.norm_out = gn(norm_groups, ch)
        self.conv_out = nn.Conv2d(ch, in_channels, 3, padding=1)

    def noise_embedding(self, lam):
        half = self.C // 2
        k = torch.arange(half, dtype=torch.float32, device=lam.device)
        freqs = torch.exp(-math.log(10000.0) * k / half)
        args = lam.float()[:, None] * freqs[None]
        return torch.cat([torch.cos(args), torch.sin(args)], dim=1)

    def forward(self, z, lam, labels=None):
        emb = self.time_mlp(self.noise_embedding(lam))
        if self.label_emb is not None:
            if labels is None:
                labels = torch.full((z.shape[0],), self.num_classes,
                                    dtype=torch.long, device=z.device)
            emb = emb + self.label_emb(labels)
        h = self.conv_in(z)
        hs = [h]
        for kind, m in zip(self.down_kinds, self.down):
            if kind == "res":
                h = m(h, emb)
            elif kind == "attn":
                h = m(h)
                hs[-1] = h  # attention output replaces the res output as the skip
                continue
            else:
                h = m(h)
            hs.append(h)
        h = self.mid1(h, emb)
        h = self.mid_attn(h)
        h = self.mid2(h, emb)
        for kind, m in zip(self.up_kinds, self.up):
            if kind == "res":
                h = m(torch.cat([h, hs.pop()], dim=1), emb)
            elif kind == "attn":
                h = m(h)
            else:
                h = m(F.interpolate(h, scale_factor=2, mode="nearest"))
        assert not hs
        return self.conv_out(F.silu(self.norm_out(h)))


def parse_list(s):
    s = s.strip()
    return [int(x) for x in s.split(",") if x.strip()] if s else []


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS))
    p.add_argument("--base-channels", type=int)
    p.add_argument("--channel-mults", type=parse_list)
    p.add_argument("--res-blocks", type=int)
    p.add_argument("--attention-levels", type=parse_list)
    p.add_argument("--head-channels", type=int)
    p.add_argument("--norm-groups", type=int)
    p.add_argument("--in-channels", type=int)
    p.add_argument("--num-classes", type=int)
    p.add_argument("--image-size", type=int)
    p.add_argument("--batch", type=int)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", metavar="PATH")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="then profile N train and N sample steps by operation class")
    a = p.parse_args()

    cfg = dict(DEFAULTS)
    if a.preset:
        cfg.update(PRESETS[a.preset])
    for key in DEFAULTS:
        v = getattr(a, key)
        if v is not None:
            cfg[key] = v

    torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(0)

    model = UNet(cfg["in_channels"], cfg["base_channels"], cfg["channel_mults"],
                 cfg["res_blocks"], cfg["attention_levels"], cfg["head_channels"],
                 cfg["norm_groups"], 0.0, cfg["num_classes"])
    params = sum(p.numel() for p in model.parameters())
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"config: {json.dumps(cfg)}")
    print(f"params: {params}")

    B, S, Cin = cfg["batch"], cfg["image_size"], cfg["in_channels"]
    z = torch.randn(B, Cin, S, S)
    lam = torch.rand(B) * 30.0 - 15.0
    labels = (torch.randint(0, cfg["num_classes"], (B,))
              if cfg["num_classes"] > 0 else None)
    target = torch.randn(B, Cin, S, S)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)

    def train_step():
        out = model(z, lam, labels)
        loss = F.mse_loss(out, target)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss

    model.train()
    train_times = []
    for i in range(a.warmup + a.iters):
        t0 = time.perf_counter()
        train_step()
        dt = time.perf_counter() - t0
        if i >= a.warmup:
            train_times.append(dt)

    model.eval()
    sample_times = []
    with torch.inference_mode():
        for i in range(a.warmup + a.iters):
            t0 = time.perf_counter()
            model(z, lam, labels)
            dt = time.perf_counter() - t0
            if i >= a.warmup:
                sample_times.append(dt)

    tr_med = statistics.median(train_times)
    tr_mean = statistics.mean(train_times)
    sa_med = statistics.median(sample_times)
    ips = B / tr_med
    print(f"{'measure':<22}{'median s':>12}{'mean s':>12}{'img/s':>10}")
    print(f"{'train step':<22}{tr_med:>12.4f}{tr_mean:>12.4f}{ips:>10.1f}")
    print(f"{'sample step (fwd)':<22}{sa_med:>12.4f}"
          f"{statistics.mean(sample_times):>12.4f}{B / sa_med:>10.1f}")

    profiles = {}
    if a.profile > 0:
        model.train()
        tr, tr_wall = profile_step(train_step, a.profile)
        model.eval()
        with torch.inference_mode():
            sa, sa_wall = profile_step(lambda: model(z, lam, labels), a.profile)
        profiles = dict(train=tr, sample=sa, train_wall=tr_wall, sample_wall=sa_wall)
        print(f"torch.profiler, {a.profile} steps each (s per step; profiled step "
              f"{tr_wall:.4f} s train, {sa_wall:.4f} s sample):")
        print(f"{'class':<50}{'train':>9}{'sample':>9}")
        for c in CLASSES:
            print(f"{c:<50}{tr[c]:>9.4f}{sa[c]:>9.4f}")

    if a.json:
        res = dict(torch_version=torch.__version__, threads=torch.get_num_threads(),
                   params=params, config=cfg, train_step_s_median=tr_med,
                   train_step_s_mean=tr_mean, sample_step_s_median=sa_med,
                   images_per_s_train=ips, profile=profiles)
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)
        print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
