"""The runtime's resize gives the same pixels on every CPU: a real COCO image against a stored result.

The expected values (tests/data/preprocess_expected.json) were computed on x86. The same bits came out on emulated
Cortex-A72, Cortex-A76 and a CPU with SVE2 (qemu, the aarch64 OpenCV 5.0 and 4.14 wheels; all 206 val images in
``benchmarks/cross_cpu_preprocess.py``), where a plain ``cv2.resize(INTER_LINEAR)`` differs on 22-38% of the
values. Regenerate with ``python tests/runtime/test_preprocess.py`` after a deliberate change of preprocessing.
"""
from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from nanogfl.runtime.preprocess import preprocess, preprocess_keep_ratio, resize, resize_factors

EXPECTED_FILE = Path(__file__).resolve().parents[1] / "data" / "preprocess_expected.json"
IMAGE = "000000000139.jpg"  # of ../shared/data/coco_val2017_subset206/images, 640x426
SIZES = ((416, 416), (320, 256))  # (height, width); the second is non-square and a different scale per axis
KEEP_RATIO = (800, 1333)


def sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def describe(image: np.ndarray) -> dict:
    """What the test stores: hashes of the decoded image, and of the resized image and the whole network input
    for each size."""
    sizes = {}
    for input_hw in SIZES:
        sizes[f"{input_hw[0]}x{input_hw[1]}"] = {"resized_sha256": sha256(resize(image, input_hw)[0]),
                                                 "blob_sha256": sha256(preprocess(image, input_hw)[0])}
    sizes["keep-ratio 800x1333"] = {"blob_sha256": sha256(preprocess_keep_ratio(image, KEEP_RATIO)[0])}
    return {"image": IMAGE, "decoded_sha256": sha256(image), "sizes": sizes}


@pytest.fixture
def image(coco_val) -> np.ndarray:
    return cv2.imread(str(coco_val[1] / IMAGE))


def test_preprocess_matches_stored_result(image):
    expected = json.loads(EXPECTED_FILE.read_text())
    actual = describe(image)
    assert actual["decoded_sha256"] == expected["decoded_sha256"], "the JPEG decoder gives other pixels"
    assert actual["sizes"].keys() == expected["sizes"].keys()
    for size, stored in expected["sizes"].items():
        for key, value in stored.items():
            assert actual["sizes"][size][key] == value, f"{key} differs at {size}"


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                    reason="the stored values are x86's plain INTER_LINEAR; aarch64's differ (the point of the detour)")
def test_values_are_plain_linear_on_x86(image):
    """On x86 the detour changes no value, so every AP measured before it stands."""
    for input_hw in SIZES:
        plain = cv2.resize(image, input_hw[::-1], interpolation=cv2.INTER_LINEAR)
        np.testing.assert_array_equal(resize(image, input_hw)[0], plain)


@pytest.mark.parametrize("src", [100, 333, 426, 480, 640, 1080, 1333, 1920, 4000])
@pytest.mark.parametrize("size", [8, 160, 256, 320, 416, 640, 800, 1333])
def test_factors_round_back_to_the_size_and_miss_it_past_float_epsilon(src, size):
    """OpenCV rounds ``src * factor`` to the output size; KleidiCV declines unless it is within FLT_EPSILON."""
    fx, fy = resize_factors((src, src), (size, size))
    assert fx == fy
    assert round(src * fx) == size
    assert np.finfo(np.float32).eps < abs(src * fx - size) < 1e-3
    assert cv2.resize(np.zeros((src, src, 3), np.uint8), None, fx=fx, fy=fy).shape[:2] == (size, size)


def test_cross_cpu_tool_writes_and_compares(coco_val, tmp_path):
    """``benchmarks/cross_cpu_preprocess.py``: hashes written here compare equal here; a changed hash is reported."""
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "cross_cpu_preprocess.py"
    hashes = tmp_path / "pc.json"
    run = [sys.executable, str(script), "--images", str(coco_val[1]), "--limit", "3", "--size", "320"]
    subprocess.run([*run, "--out", str(hashes)], check=True, capture_output=True)
    same = subprocess.run([*run, "--compare", str(hashes)], capture_output=True, text=True)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "3 of 3 identical" in same.stdout
    record = json.loads(hashes.read_text())
    next(iter(record["images"].values()))["stretch 320"] = "0" * 16
    hashes.write_text(json.dumps(record))
    changed = subprocess.run([*run, "--compare", str(hashes)], capture_output=True, text=True)
    assert changed.returncode == 1
    assert [line.split()[-4:] for line in changed.stdout.splitlines() if "stretch 320" in line] == [
        ["2", "of", "3", "identical"]]


if __name__ == "__main__":
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[3] / "shared" / "data"
    source = cv2.imread(str(folder / "coco_val2017_subset206" / "images" / IMAGE))
    EXPECTED_FILE.write_text(json.dumps(describe(source), indent=1) + "\n")
    print(f"wrote {EXPECTED_FILE}")
