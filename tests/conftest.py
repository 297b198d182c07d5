import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"reference data not found at {path} (the ../shared/data folder beside the repo)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return _require(SHARED_DATA)


@pytest.fixture(scope="session")
def coco_val(shared_data) -> tuple[Path, Path]:
    root = _require(shared_data / "coco_val2017_subset206")
    return root / "instances_val2017_subset.json", root / "images"


@pytest.fixture(scope="session")
def coco_train(shared_data) -> tuple[Path, Path]:
    root = _require(shared_data / "coco_train2017_subset209")
    return root / "instances_train2017_subset.json", root / "images"


@pytest.fixture(scope="session")
def official_ncnn(shared_data) -> Path:
    """NanoDet-Plus-m 416 official fp16 ncnn .param (class columns are logits)."""
    return _require(shared_data / "nanodet_plus_m_416_ncnn" / "nanodet-plus-m_416.param")


@pytest.fixture(autouse=True, scope="session")
def _limit_threads():
    try:
        import torch
    except ImportError:
        yield
        return
    torch.set_num_threads(2)
    yield
