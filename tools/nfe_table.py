"""Markdown table of the sampler-vs-NFE evaluations in docs/eval/samplers/ (written by `prism eval --json`).

Usage: python3 tools/nfe_table.py [docs/eval/samplers]   (standard library only)
"""
import json
import sys
from pathlib import Path

SAMPLERS = ["dpmpp-2m", "euler", "heun", "dpmpp-2m-sde", "dpmpp-3m-sde", "unipc"]


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/eval/samplers")
    runs = {}
    for f in root.glob("*.json"):
        r = json.loads(f.read_text())
        runs[(r["samples"]["sampler"], r["samples"]["steps"])] = r
    steps = sorted({k for _, k in runs})
    head = "| sampler (spacing) | " + " | ".join(f"NFE {k}: SWD×10³ / FID" for k in steps) + " |"
    print(head)
    print("|" + "---|" * (len(steps) + 1))
    floor = None
    for s in SAMPLERS:
        cells, spacing = [], ""
        for k in steps:
            r = runs.get((s, k))
            if r is None:
                cells.append("not run")
                continue
            spacing = r["samples"]["spacing"]
            cells.append(f"{r['swd']['mean']:.1f} / {r['fid']['value']:.2f}")
            floor = (r["swd"]["real_vs_real"]["mean"], r["fid"]["real_vs_real"], r["num"])
        print(f"| `{s}` ({spacing}) | " + " | ".join(cells) + " |")
    if floor:
        print(f"| **real vs real** (N = {floor[2]}) | " + " | ".join(f"{floor[0]:.1f} / {floor[1]:.2f}" for _ in steps) + " |")


if __name__ == "__main__":
    main()
