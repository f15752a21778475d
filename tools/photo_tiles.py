#!/usr/bin/env python3
"""Cut folders of large photographs into a fixed set of square tiles, holding out whole photographs.

Issue 4, item 8 (evidence at 128 and 256 px): the ~27 photographs that install offline are too few to
give a held-out split of individual images, so each photograph is scaled (area filter) to a shorter
side of `--short`, cut into a centred grid of non-overlapping `--size`² tiles, and every
`--held-out-every`-th photograph (in sorted order of file name, across all folders) goes to the
held-out end. Tiles are named so that sorting puts the held-out photographs' tiles last, which is
where prism's `data.held_out` takes its split from:

    a_<photo>_<row>_<col>.png   training tiles
    z_<photo>_<row>_<col>.png   held-out tiles (set data.held_out to the count this prints)

Deterministic (no randomness). Needs numpy and opencv-python-headless (tools/requirements.txt).

    tools/fetch_data.sh photos && tools/fetch_data.sh mate-nature
    python3 tools/photo_tiles.py --size 128 --short 512 --out data/external/photo-tiles-128 \
        data/external/photos data/external/mate-nature
"""

import argparse
import json
import sys
from pathlib import Path

import cv2


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--size", type=int, required=True, help="tile side in pixels")
    ap.add_argument("--short", type=int, required=True, help="shorter side after scaling")
    ap.add_argument("--held-out-every", type=int, default=5)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    photos = sorted(
        (p for d in args.folders for p in d.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")),
        key=lambda p: p.name.lower(),
    )
    if not photos:
        print("no photographs found", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    counts = {"train": 0, "held_out": 0}
    held_names = []
    for i, path in enumerate(photos):
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            print(f"{path}: cannot decode", file=sys.stderr)
            return 1
        h, w = img.shape[:2]
        s = args.short / min(h, w)
        nh, nw = round(h * s), round(w * s)
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
        rows, cols = nh // args.size, nw // args.size
        oy, ox = (nh - rows * args.size) // 2, (nw - cols * args.size) // 2
        held = i % args.held_out_every == args.held_out_every - 1
        prefix = "z" if held else "a"
        if held:
            held_names.append(path.name)
        stem = path.stem.replace(" ", "_")
        for r in range(rows):
            for c in range(cols):
                y, x = oy + r * args.size, ox + c * args.size
                tile = img[y : y + args.size, x : x + args.size]
                cv2.imwrite(str(args.out / f"{prefix}_{stem}_{r:02}_{c:02}.png"), tile)
                counts["held_out" if held else "train"] += 1
    manifest = {
        "size": args.size,
        "short": args.short,
        "photos": len(photos),
        "held_out_photos": held_names,
        **counts,
    }
    (args.out / "tiles.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(json.dumps(manifest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
