"""The exact resize gives the same pixels on every CPU: a real COCO image against a stored result.

The expected values (tests/data/preprocess_expected.json) were computed on x86 with INTER_LINEAR_EXACT, which was
measured bit-identical on x86, Cortex-A72 and Cortex-A76. Plain INTER_LINEAR (still the default of
``nanogfl.runtime.preprocess``: see RESIZE_INTERPOLATION there) leaves ~12% of these pixels off by one on x86
already (26-38% on aarch64), so it does not match. Regenerate with ``python tests/runtime/test_preprocess.py``.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from nanogfl.runtime.preprocess import EXACT_INTERPOLATION, preprocess, resize

EXPECTED_FILE = Path(__file__).resolve().parents[1] / "data" / "preprocess_expected.json"
IMAGE = "000000000139.jpg"  # of ../shared/data/coco_val2017_subset206/images, 640x426
SIZES = ((416, 416), (320, 256))  # (height, width); the second is non-square and a different scale per axis
SAMPLES = 16  # blob values stored per size, at fixed pseudo-random positions


def sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def sample_positions(shape: tuple[int, ...]) -> list[int]:
    return np.random.default_rng(0).integers(0, int(np.prod(shape)), SAMPLES).tolist()


def describe(image: np.ndarray, interpolation: int = EXACT_INTERPOLATION) -> dict:
    """What the test stores: hashes of the decoded and resized uint8 images and some normalised blob values."""
    options = {"interpolation": interpolation}
    sizes = {}
    for input_hw in SIZES:
        resized, _ = resize(image, input_hw, **options)
        blob, _ = preprocess(image, input_hw, **options)
        positions = sample_positions(blob.shape)
        sizes[f"{input_hw[0]}x{input_hw[1]}"] = {"resized_sha256": sha256(resized), "positions": positions,
                                                 "values": blob.ravel()[positions].tolist()}
    return {"image": IMAGE, "decoded_sha256": sha256(image), "sizes": sizes}


@pytest.fixture
def image(coco_val) -> np.ndarray:
    return cv2.imread(str(coco_val[1] / IMAGE))


def test_exact_preprocess_matches_stored_result(image):
    expected = json.loads(EXPECTED_FILE.read_text())
    actual = describe(image)
    assert actual["decoded_sha256"] == expected["decoded_sha256"], "the JPEG decoder gives other pixels"
    for size, stored in expected["sizes"].items():
        got = actual["sizes"][size]
        assert got["resized_sha256"] == stored["resized_sha256"], f"resize to {size} gives other pixels"
        assert got["positions"] == stored["positions"]
        np.testing.assert_allclose(got["values"], stored["values"], rtol=1e-6, atol=1e-6)


def test_plain_linear_resize_would_fail(image):
    """The stored result tells INTER_LINEAR from INTER_LINEAR_EXACT."""
    expected = json.loads(EXPECTED_FILE.read_text())
    linear = describe(image, cv2.INTER_LINEAR)
    assert all(linear["sizes"][size]["resized_sha256"] != stored["resized_sha256"]
               for size, stored in expected["sizes"].items())


if __name__ == "__main__":
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[3] / "shared" / "data"
    source = cv2.imread(str(folder / "coco_val2017_subset206" / "images" / IMAGE))
    EXPECTED_FILE.write_text(json.dumps(describe(source), indent=1) + "\n")
    print(f"wrote {EXPECTED_FILE}")
