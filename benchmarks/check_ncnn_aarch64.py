"""Correctness of an int8 (or any) ncnn export on emulated aarch64: the same ncnn wheel version for aarch64, run
under qemu-user with a CPU model chosen by ``--cpu`` (default cortex-a72, the Raspberry Pi 4's core: no dotprod,
no fp16 arithmetic), against x86 ncnn on the same preprocessed val images. Prints the max |diff| aarch64 vs x86
of the int8 model, and the output error of the int8 model vs the fp32 model on each machine. Speed under
emulation means nothing; speed on a Pi is not measured here.

    python benchmarks/check_ncnn_aarch64.py --int8 M.int8.param --fp32 M.param --python ARM_PY --site ARM_SITE

``ARM_PY``: an aarch64 python3.11 (e.g. Debian's python3.11-minimal arm64 .debs unpacked into ``--sysroot``);
``ARM_SITE``: a folder with the aarch64 wheels of ncnn and numpy unpacked (``pip download --platform
manylinux_2_28_aarch64 --python-version 3.11 --only-binary=:all: ncnn numpy``).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

VAL_IMAGES = REPO.parent / "shared" / "data" / "coco_val2017_subset206" / "images"

# Runs on the emulated machine: numpy + ncnn only.
INNER = """
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np, ncnn, platform
blobs = np.load(sys.argv[2])
outputs = {}
for key in sys.argv[4:]:
    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    for option in ("use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic", "use_bf16_storage"):
        setattr(net.opt, option, False)
    net.opt.num_threads = 1
    assert net.load_param(key + ".param") == 0 and net.load_model(key + ".bin") == 0, key
    results = []
    for blob in blobs:
        ex = net.create_extractor()
        ex.input("data", ncnn.Mat(np.ascontiguousarray(blob)))
        status, out = ex.extract("output")
        assert status == 0
        results.append(np.array(out))
    outputs[key] = np.stack(results)
np.savez(sys.argv[3], **{str(i): outputs[k] for i, k in enumerate(sys.argv[4:])})
print("ran on", platform.machine(), "ncnn", ncnn.__version__)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--int8", required=True, type=Path)
    parser.add_argument("--fp32", required=True, type=Path)
    parser.add_argument("--python", required=True, help="aarch64 python3.11 binary")
    parser.add_argument("--sysroot", required=True, help="aarch64 root (qemu -L)")
    parser.add_argument("--site", required=True, help="unpacked aarch64 ncnn + numpy wheels")
    parser.add_argument("--cpu", default="cortex-a72")
    parser.add_argument("--images", type=int, default=8)
    args = parser.parse_args()

    from nanogfl.exporter.int8_scan import output_error
    from nanogfl.exporter.ncnn_int8 import open_ncnn, run_ncnn
    from nanogfl.image_io import list_images, load_image
    from nanogfl.runtime.metadata import ModelMeta, metadata_path
    from nanogfl.runtime.preprocess import preprocess

    meta = ModelMeta.load(metadata_path(args.fp32))
    images = [load_image(f) for f in list_images(VAL_IMAGES)[:args.images]]
    blobs = np.stack([preprocess(image, meta.input_hw, meta.mean, meta.std)[0][0] for image in images])
    models = [args.int8, args.fp32]
    x86 = [[out[0] for out in run_ncnn(open_ncnn(m), [b[None] for b in blobs], "data", ["output"])] for m in models]
    with tempfile.TemporaryDirectory() as work:
        np.save(f"{work}/blobs.npy", blobs)
        (Path(work) / "inner.py").write_text(INNER)
        command = ["qemu-aarch64-static", "-cpu", args.cpu, "-L", args.sysroot, args.python, f"{work}/inner.py",
                   args.site, f"{work}/blobs.npy", f"{work}/out.npz", *(str(m.with_suffix("")) for m in models)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stderr[-2000:])
            return 1
        print(done.stdout.strip(), f"(qemu -cpu {args.cpu})")
        arm = np.load(f"{work}/out.npz")
        arm_outputs = [list(arm[str(i)]) for i in range(len(models))]
    print(f"{len(blobs)} val images at {meta.input_hw[0]}x{meta.input_hw[1]}")
    for index, label in enumerate(("int8", "fp32")):
        probs = max(float(np.abs(a - b)[:, :meta.num_classes].max()) for a, b in zip(arm_outputs[index], x86[index]))
        box = max(float(np.abs(a - b)[:, meta.num_classes:].max()) for a, b in zip(arm_outputs[index], x86[index]))
        print(f"{label} model, aarch64 vs x86: max |diff| probabilities {probs:.2e}, box logits {box:.2e}")
    for label, outputs in (("x86", x86), ("aarch64", arm_outputs)):
        error = output_error(outputs[1], outputs[0], meta.num_classes, meta.reg_max)
        print(f"int8 vs fp32 on {label:<8}: probs {error.probs:.4f}  box {error.box_bins:.4f} bins")
    return 0


if __name__ == "__main__":
    sys.exit(main())
