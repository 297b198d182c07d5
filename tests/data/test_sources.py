"""Dataset readers on the real COCO subsets, and VOC / YOLO files written from them (round-trip to COCO)."""
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import coco_objects, expected_xyxy, write_voc, write_yolo

from nanogfl.data import CocoSource, VocSource, YoloSource, build_source
from nanogfl.data.yolo import find_class_names
from nanogfl.errors import UserError


def test_coco_train_subset_counts(coco_train):
    ann_file, image_dir = coco_train
    source = CocoSource(ann_file, image_dir)
    data = json.loads(ann_file.read_text())
    assert len(source) == 209 and len(data["annotations"]) == 1899
    crowd = sum(a["iscrowd"] for a in data["annotations"])
    assert crowd == 18
    assert sum(len(source.annotation(i)[0]) for i in range(len(source))) == 1899 - crowd
    assert len(source.class_names) == 80 and source.class_names[0] == "person" and source.category_ids[-1] == 90
    # images without annotations are kept, with empty targets
    annotated = {a["image_id"] for a in data["annotations"]}
    empty = [i for i in range(len(source)) if source.image_info(i).image_id not in annotated]
    assert len(empty) == 1
    sample = source.load(empty[0])
    assert sample.boxes.shape == (0, 4) and sample.labels.shape == (0,) and sample.image.shape[2] == 3
    assert source.coco_gt() == data


def test_coco_boxes_and_labels_match_json(coco_val):
    ann_file, image_dir = coco_val
    source = CocoSource(ann_file, image_dir)
    assert len(source) == 206
    index = 5
    info = source.image_info(index)
    anns = [a for a in json.loads(ann_file.read_text())["annotations"]
            if a["image_id"] == info.image_id and not a["iscrowd"]]
    boxes, labels = source.annotation(index)
    np.testing.assert_allclose(boxes, expected_xyxy(anns), atol=1e-3)
    assert [source.category_ids[label] for label in labels] == [a["category_id"] for a in anns]
    sample = source.load(index)
    assert sample.image.shape == (info.height, info.width, 3) and sample.image.dtype == np.uint8
    assert boxes.dtype == np.float32 and labels.dtype == np.int64


def test_coco_class_names_fix_the_label_order(coco_val):
    ann_file, image_dir = coco_val
    default = CocoSource(ann_file, image_dir)
    reordered = CocoSource(ann_file, image_dir, class_names=default.class_names[::-1])
    assert reordered.category_ids == default.category_ids[::-1]
    boxes_a, labels_a = default.annotation(3)
    boxes_b, labels_b = reordered.annotation(3)
    np.testing.assert_array_equal(boxes_a, boxes_b)
    np.testing.assert_array_equal(labels_b, 79 - labels_a)
    with pytest.raises(UserError, match="instances_val2017_subset.json.*not in the file"):
        CocoSource(ann_file, image_dir, class_names=default.class_names[:-1] + ["zebra crossing"])


def test_voc_float_coordinates_round_trip(coco_val, tmp_path):
    ann_file, image_dir = coco_val
    objects = coco_objects(ann_file, 4)
    write_voc(tmp_path / "Annotations", objects)
    source = build_source("voc", tmp_path / "Annotations", image_dir)
    assert source.class_names == sorted({a["name"] for _, anns in objects for a in anns})
    assert source.category_ids == list(range(1, len(source.class_names) + 1))
    for index, (image, anns) in enumerate(sorted(objects, key=lambda o: o[0]["file_name"])):
        boxes, labels = source.annotation(index)
        np.testing.assert_allclose(boxes, expected_xyxy(anns), atol=1e-3)
        assert [source.class_names[label] for label in labels] == [a["name"] for a in anns]
        assert source.image_info(index).file_name == image["file_name"]
        assert source.load(index).image.shape == (image["height"], image["width"], 3)


def test_voc_id_list_and_difficult_objects(coco_val, tmp_path):
    pycocotools = pytest.importorskip("pycocotools.cocoeval")
    from pycocotools.coco import COCO

    ann_file, image_dir = coco_val
    objects = coco_objects(ann_file, 3)
    root = tmp_path / "VOC2007"
    write_voc(root / "Annotations", objects, difficult_first=True)
    (root / "ImageSets" / "Main").mkdir(parents=True)
    ids = [Path(im["file_name"]).stem for im, _ in objects]
    (root / "ImageSets" / "Main" / "train.txt").write_text("\n".join(ids[:2]) + "\n")
    source = VocSource(root / "ImageSets" / "Main" / "train.txt", image_dir)
    assert len(source) == 2
    boxes, _ = source.annotation(0)
    assert len(boxes) == len(objects[0][1]) - 1  # the difficult object is not a training target
    gt = source.coco_gt()
    crowd = [a for a in gt["annotations"] if a["iscrowd"]]
    assert len(crowd) == 2 and min(a["id"] for a in gt["annotations"]) == 1
    # perfect detections of the non-difficult objects score AP 1: difficult ones are ignored
    detections = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
                  for a in gt["annotations"] if not a["iscrowd"]]
    coco = COCO()
    coco.dataset = gt
    coco.createIndex()
    evaluator = pycocotools.COCOeval(coco, coco.loadRes(detections), "bbox")
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    assert evaluator.stats[0] == pytest.approx(1.0)


def test_yolo_round_trip_and_class_files(coco_val, tmp_path):
    ann_file, image_dir = coco_val
    objects = coco_objects(ann_file, 4)
    class_names = sorted({a["name"] for _, anns in objects for a in anns})
    labels_dir, images_dir = write_yolo(tmp_path, objects, image_dir, class_names)
    (tmp_path / "images" / "no_label.jpg").write_bytes((image_dir / objects[0][0]["file_name"]).read_bytes())
    with pytest.raises(UserError, match="class names"):
        YoloSource(labels_dir, images_dir)
    (labels_dir / "classes.txt").write_text("\n".join(class_names) + "\n")
    source = build_source("yolo", labels_dir, images_dir)
    assert source.class_names == class_names and len(source) == 5
    by_name = {im["file_name"]: (im, anns) for im, anns in objects}
    for index in range(len(source)):
        info = source.image_info(index)
        boxes, labels = source.annotation(index)
        if info.file_name == "no_label.jpg":
            assert boxes.shape == (0, 4)
            continue
        image, anns = by_name[info.file_name]
        assert (info.height, info.width) == (image["height"], image["width"])
        np.testing.assert_allclose(boxes, expected_xyxy(anns), atol=1e-3)
        assert [class_names[label] for label in labels] == [a["name"] for a in anns]
    (labels_dir / "classes.txt").unlink()
    (tmp_path / "data.yaml").write_text("names:\n" + "".join(f"  {k}: {n}\n" for k, n in enumerate(class_names)))
    assert YoloSource(labels_dir, images_dir).class_names == class_names


def test_build_source_needs_paths():
    with pytest.raises(UserError, match="'ann' and 'images'"):
        build_source("coco", "", "")


@pytest.mark.parametrize("names_file", ["classes.txt", "obj.names", "custom.names", "data.yaml", "my_set.yml"])
def test_yolo_class_names_come_from_any_common_names_file(tmp_path, names_file):
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "a.txt").write_text("1 0.5 0.5 0.2 0.2\n")
    if names_file.endswith((".yaml", ".yml")):
        (labels / "other.yaml").write_text("nc: 2\n")  # a yaml without names is not taken
        (labels / names_file).write_text("names: {0: cat, 1: dog}\n")
    else:
        (labels / names_file).write_text("cat\ndog\n")
    assert find_class_names(labels) == ["cat", "dog"]
