"""`nanogfl benchmark`: several models side by side in one run, table + JSON, optional COCO AP."""
import json

import pytest

from nanogfl.cli import main


def test_two_models_two_sizes_side_by_side(official_model, tiny_onnx, coco_images, tmp_path, capsys):
    out = tmp_path / "bench.json"
    status = main(["benchmark", "--model", str(official_model), str(tiny_onnx), "--threads", "1",
                   "--runs", "4", "--warmup", "1", "--image", str(coco_images[0]), "--json", str(out)])
    table = capsys.readouterr().out
    assert status == 0
    report = json.loads(out.read_text())
    rows = report["results"]
    assert [(r["backend"], tuple(r["input_hw"])) for r in rows] == [("ncnn", (416, 416)), ("onnxruntime", (128, 160))]
    for row in rows:
        stats = row["stats"]
        for stage in ("preprocess_ms", "inference_ms", "postprocess_ms", "total_ms", "bare_forward_ms"):
            assert 0 < stats[stage]["median"] <= stats[stage]["p90"]
        assert row["fps"] == pytest.approx(1000 / stats["total_ms"]["median"])
        median = {stage: stats[stage]["median"] for stage in stats}
        assert row["postprocess_share"] == pytest.approx(median["postprocess_ms"] / median["inference_ms"])
        assert row["pipeline_over_bare"] == pytest.approx(median["total_ms"] / median["bare_forward_ms"])
        assert row["threads"] == 1 and row["size_mb"] > 0.5 and row["accuracy"] == {}
    assert rows[0]["detections"] > 3  # the real model on a real photo
    assert report["environment"]["cpu_count"] >= 1 and report["runs"] == 4
    assert "nanodet-plus-m_416.param" in table and "tiny.onnx" in table and "pipe/bare" in table


def test_several_sizes_and_a_missing_backend(official_model, capsys):
    status = main(["benchmark", "--model", str(official_model), "--size", "160", "--size", "192", "224",
                   "--runs", "2", "--warmup", "0", "--threads", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert status == 0
    assert any("160x160" in line for line in lines) and any("192x224" in line for line in lines)
    assert main(["benchmark", "--model", str(official_model), "--backend", "onnxruntime"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_accuracy_on_a_small_coco_subset(official_model, coco_val, tmp_path, capsys):
    pytest.importorskip("pycocotools")
    ann_file, image_dir = coco_val
    data = json.loads(ann_file.read_text())
    keep = {image["id"] for image in data["images"][:4]}
    data["images"] = [image for image in data["images"] if image["id"] in keep]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in keep]
    subset = tmp_path / "subset.json"
    subset.write_text(json.dumps(data))
    out = tmp_path / "bench.json"
    status = main(["benchmark", "--model", str(official_model), "--runs", "1", "--warmup", "0", "--threads", "1",
                   "--ann", str(subset), "--images", str(image_dir), "--json", str(out)])
    assert status == 0, capsys.readouterr().err
    accuracy = json.loads(out.read_text())["results"][0]["accuracy"]
    assert 0.2 < accuracy["AP"] < accuracy["AP50"] <= 1.0
    assert main(["benchmark", "--model", str(official_model), "--ann", str(subset)]) == 2  # --images missing
