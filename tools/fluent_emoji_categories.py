#!/usr/bin/env python3
"""Arrange the Fluent Emoji 3D images into one sub-folder per Unicode emoji category.

    python3 tools/fluent_emoji_categories.py EMOJI_JSON SRC OUT

EMOJI_JSON is `emoji.json` of the npm package emoji-datasource-google@16.0.0 (MIT; `unified` and
`non_qualified` codepoints, `category`, and the skin-tone variations of each emoji); SRC is
data/external/fluent-emoji-3d (its WebP files are named by codepoint: `1f004.webp`,
`0023-fe0f-20e3.webp`, `23-fe0f-20e3.webp`, `1f3f4-e0067_e0062_….webp`); OUT (emptied first)
gets one folder per category, named by a slug (`people-and-body`), each holding the category's
images as hard links to SRC's files (copies where linking fails). prism's folder loader reads
the sub-folders, sorted by name, as classes 0, 1, …; the script prints that table.

Codepoints are matched after normalising both sides: split on `-` and `_`, drop the variation
selector U+FE0F and the CANCEL TAG U+E007F that ends a tag sequence, drop leading zeros. A skin-tone variant takes its base emoji's category. Files
that match no emoji are listed and left out.

Standard library only (no packages; tools/requirements.txt).
"""

import json
import os
import re
import shutil
import sys
from collections import Counter


def normalise(codepoints: str) -> str:
    """`0023-FE0F-20E3` → `23-20e3`: lowercase hex, no leading zeros, without the variation
    selector U+FE0F and the tag sequence's CANCEL TAG U+E007F (the Fluent names of the England,
    Scotland and Wales flags leave it out)."""
    parts = [int(p, 16) for p in re.split(r"[-_]", codepoints.strip()) if p]
    return "-".join(f"{p:x}" for p in parts if p not in (0xFE0F, 0xE007F))


def slug(category: str) -> str:
    """`People & Body` → `people-and-body`."""
    return re.sub(r"[^a-z0-9]+", "-", category.lower().replace("&", "and")).strip("-")


def categories(emoji_json: str) -> dict:
    """Normalised codepoints → category, for every emoji and skin-tone variation."""
    with open(emoji_json, encoding="utf-8") as f:
        emoji = json.load(f)
    table = {}
    for e in emoji:
        names = [e.get("unified"), e.get("non_qualified")]
        for v in (e.get("skin_variations") or {}).values():
            names += [v.get("unified"), v.get("non_qualified")]
        for n in names:
            if n:
                table[normalise(n)] = e["category"]
    return table


def place(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    emoji_json, src, out = sys.argv[1:]
    table = categories(emoji_json)
    files = sorted(f for f in os.listdir(src) if f.lower().endswith(".webp"))
    if not files:
        print(f"no .webp files in {src}", file=sys.stderr)
        return 1
    shutil.rmtree(out, ignore_errors=True)
    counts, unmatched = Counter(), []
    for name in files:
        category = table.get(normalise(name[: -len(".webp")]))
        if category is None:
            unmatched.append(name)
            continue
        folder = os.path.join(out, slug(category))
        os.makedirs(folder, exist_ok=True)
        place(os.path.join(src, name), os.path.join(folder, name))
        counts[slug(category)] += 1
    matched = sum(counts.values())
    print(f"{matched} of {len(files)} images matched an emoji of {emoji_json}; {len(unmatched)} did not")
    for name in unmatched:
        print(f"  not matched (left out): {name}")
    print("class  images  folder")
    for i, folder in enumerate(sorted(counts)):
        print(f"{i:5}  {counts[folder]:6}  {folder}")
    print(f"{len(counts)} classes in {out}")
    return 0 if matched else 1


if __name__ == "__main__":
    sys.exit(main())
