"""Published peer models (../shared/data) through `nanogfl peer-meta`, `nanogfl val` and `nanogfl benchmark`:
AP on coco_val2017_subset206 against the numbers their SOURCE.txt states."""
import json
from pathlib import Path

import pytest

from nanogfl.cli import main
from nanogfl.evaluation import evaluate_coco
from nanogfl.runtime.backends import open_model
from nanogfl.runtime.metadata import ModelMeta
from nanogfl.runtime.peers.templates import FAMILY_METAS

REPO = Path(__file__).resolve().parents[2]


def _link(folder: Path, *sources: Path) -> Path:
    for source in sources:
        (folder / source.name).symlink_to(source)
    return folder / sources[0].name


@pytest.fixture
def yolox_nano(shared_data, tmp_path) -> Path:
    model = _link(tmp_path, shared_data / "yolox_nano_onnx" / "yolox_nano.onnx")
    assert main(["peer-meta", "--family", "yolox", "--model", str(model)]) == 0
    return model


@pytest.fixture
def yolo_fastestv2(shared_data, tmp_path) -> Path:
    folder = shared_data / "yolo_fastestv2_ncnn"
    model = _link(tmp_path, folder / "yolo-fastestv2-opt.param", folder / "yolo-fastestv2-opt.bin")
    assert main(["peer-meta", "--family", "yolo_fastestv2", "--model", str(model)]) == 0
    return model


def test_shipped_jsons_equal_the_templates():
    for name, family in (("yolox_nano", "yolox"), ("yolo-fastestv2", "yolo_fastestv2"), ("picodet_s_320", "picodet")):
        assert ModelMeta.load(REPO / "peers" / f"{name}.json") == FAMILY_METAS[family]()


def test_yolox_nano_ap_matches_source(yolox_nano, coco_val, tmp_path):
    # SOURCE.txt: multi-label, score > 0.01, class-aware NMS IoU 0.65 -> AP 0.288, AP50 0.450
    metrics = evaluate_coco(open_model(yolox_nano), *coco_val, score_threshold=0.01, iou_threshold=0.65)
    assert metrics["AP"] == pytest.approx(0.288, abs=0.005)
    assert metrics["AP50"] == pytest.approx(0.450, abs=0.005)
    out = tmp_path / "val.json"  # and through `nanogfl val`, with the evaluation defaults (score 0.05, IoU 0.6)
    assert main(["val", "--model", str(yolox_nano), "--ann", str(coco_val[0]), "--images", str(coco_val[1]),
                 "--json", str(out)]) == 0
    assert json.loads(out.read_text())["AP"] == pytest.approx(0.278, abs=0.003)  # measured once, README table


def test_yolo_fastestv2_ap_on_first_40_images(yolo_fastestv2, coco_val):
    # The full 206 images (SOURCE.txt: top-1 class, score > 0.01, NMS 0.6 -> AP 0.150, AP50 0.273; measured
    # here 0.1502 / 0.2738) take minutes on 2 cores: benchmarks/bench_peers.py runs them. This asserts the
    # first 40 images at the evaluation defaults against the value measured once with the same code.
    metrics = evaluate_coco(open_model(yolo_fastestv2), *coco_val, max_images=40)
    assert metrics["AP"] == pytest.approx(FASTESTV2_AP_FIRST_40, abs=0.005)


FASTESTV2_AP_FIRST_40 = 0.1729  # AP50 0.3369


def test_benchmark_runs_peers_side_by_side(yolox_nano, yolo_fastestv2, official_model, capsys):
    assert main(["benchmark", "--model", str(official_model), str(yolox_nano), str(yolo_fastestv2),
                 "--warmup", "1", "--runs", "2"]) == 0
    table = capsys.readouterr().out
    for name in (official_model.name, yolox_nano.name, yolo_fastestv2.name):
        assert name in table
