"""``nanogfl val --batch N`` of a checkpoint scores what one image at a time scores; ``--device`` / fp16 are
refused in one line where they cannot run."""
from __future__ import annotations

import json

import pytest
import torch
from helpers import tiny_coco

from nanogfl.cli import main
from nanogfl.importer.pipeline import import_model


@pytest.fixture(scope="module")
def checkpoint(official_ncnn, tmp_path_factory):
    out = tmp_path_factory.mktemp("batched") / "nanodet-plus-m_320.pt"
    import_model(official_ncnn, out, "nanodet-plus-m", (320, 320), log=lambda _: None)
    return out


@pytest.mark.parametrize("size", [[], ["--size", "256"]], ids=["checkpoint size", "--size 256"])
def test_batched_val_scores_like_one_image_at_a_time(checkpoint, coco_val, tmp_path, size):
    ann, images = coco_val
    tiny = tiny_coco(ann, tmp_path, 12)
    scores = []
    for batch in ("1", "5"):
        out = tmp_path / f"val{batch}.json"
        assert main(["val", "--model", str(checkpoint), "--ann", str(tiny), "--images", str(images), "--batch", batch,
                     *size, "--json", str(out)]) == 0
        scores.append(json.loads(out.read_text()))
    assert scores[0]["AP"] > 0.1 and scores[1]["AP"] == pytest.approx(scores[0]["AP"], abs=1e-3)
    assert scores[0]["input_size"] == scores[1]["input_size"] == ([256, 256] if size else [320, 320])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the messages of a machine without CUDA")
def test_device_and_fp16_where_they_cannot_run(checkpoint, coco_val, capsys):
    ann, images = coco_val
    base = ["val", "--model", str(checkpoint), "--ann", str(ann), "--images", str(images)]
    assert main([*base, "--device", "cuda"]) == 2
    assert "no CUDA GPU here" in capsys.readouterr().err
    assert main([*base, "--precision", "fp16"]) == 2
    assert "CUDA only" in capsys.readouterr().err
