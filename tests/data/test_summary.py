"""The dataset summary: counted on the real COCO subset against the json itself, and on tiny YOLO / VOC folders
with a label file without an image, an image without boxes, a missing image and an empty label folder."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from nanogfl.config import Config
from nanogfl.data import CocoSource, VocSource, YoloSource
from nanogfl.data.summary import format_summaries, require_boxes, summarize, summarize_datasets
from nanogfl.errors import UserError


def test_coco_subset_counts_match_the_json(coco_train):
    ann_file, images = coco_train
    data = json.loads(ann_file.read_text())
    summary = summarize(CocoSource(ann_file, images), "train", (320, 320), 8)
    objects = [a for a in data["annotations"] if not a.get("iscrowd", 0)]
    size = {im["id"]: (im["height"], im["width"]) for im in data["images"]}
    assert summary.images == len(data["images"]) == 209
    assert summary.boxes == len(objects)
    assert summary.images_without_boxes == len(size.keys() - {a["image_id"] for a in objects})
    by_name = {c["id"]: c["name"] for c in data["categories"]}
    counts = dict(zip(summary.class_names, summary.boxes_per_class))
    assert counts["person"] == sum(by_name[a["category_id"]] == "person" for a in objects)
    small = sum(max(a["bbox"][2] * 320 / size[a["image_id"]][1], a["bbox"][3] * 320 / size[a["image_id"]][0]) < 8
                for a in objects)
    assert summary.small_boxes == small > 0
    assert summary.missing_images == 0 and summary.labels_without_image == []


def write_image(path: Path, height: int = 48, width: int = 64) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((height, width, 3), 127, np.uint8))


@pytest.fixture()
def yolo(tmp_path):
    """a.jpg: one large and one tiny box; b.jpg: an empty label file; c.txt: a label file without an image."""
    images, labels = tmp_path / "images", tmp_path / "labels"
    write_image(images / "a.jpg")
    write_image(images / "b.jpg")
    labels.mkdir()
    (labels / "classes.txt").write_text("cat\ndog\n")
    (labels / "a.txt").write_text("0 0.5 0.5 0.5 0.5\n1 0.2 0.2 0.05 0.05\n")
    (labels / "b.txt").write_text("")
    (labels / "c.txt").write_text("1 0.5 0.5 0.2 0.2\n")
    return labels, images


def test_yolo_folder(yolo):
    labels, images = yolo
    summary = summarize(YoloSource(labels, images), "train", (64, 64), 8)
    assert (summary.images, summary.boxes, summary.boxes_per_class) == (2, 2, [1, 1])
    assert summary.images_without_boxes == 1 and summary.missing_images == 0
    assert summary.labels_without_image == [str(labels / "c.txt")]  # classes.txt is not a label file
    assert summary.small_boxes == 1  # 0.05 of 64 px is 3.2 px, under the stride 8
    assert summarize(YoloSource(labels, images), "train", (64, 64), 2).small_boxes == 0
    text = format_summaries([summary])
    assert "labels without image" in text and "cat 1" in text and "c.txt" in text


def test_empty_yolo_label_folder_has_no_boxes(yolo, tmp_path):
    _, images = yolo
    (tmp_path / "empty").mkdir()
    summary = summarize(YoloSource(tmp_path / "empty", images, ["cat", "dog"]), "train", (64, 64), 8)
    assert summary.images == 2 and summary.boxes == 0 and summary.images_without_boxes == 2
    with pytest.raises(UserError, match="no boxes in the train set") as error:
        require_boxes(summary)
    assert "\n" not in str(error.value)


def test_voc_folder_with_a_missing_image(tmp_path):
    images, xml = tmp_path / "images", tmp_path / "xml"
    write_image(images / "a.jpg", 100, 200)
    xml.mkdir()
    for name, box in (("a", (10, 10, 150, 90)), ("z", (0, 0, 5, 5))):  # z.jpg does not exist
        (xml / f"{name}.xml").write_text(
            f"<annotation><filename>{name}.jpg</filename><size><width>200</width><height>100</height></size>"
            f"<object><name>cat</name><bndbox><xmin>{box[0]}</xmin><ymin>{box[1]}</ymin><xmax>{box[2]}</xmax>"
            f"<ymax>{box[3]}</ymax></bndbox></object></annotation>")
    with pytest.warns(UserWarning, match="1 of 2 images are missing"):
        source = VocSource(xml, images)
    cfg = Config()
    cfg.model.input_size = [64, 64]
    (summary,) = summarize_datasets(cfg, source)
    assert (summary.images, summary.boxes, summary.missing_images) == (2, 2, 1)
    assert summary.small_boxes == 1  # 5x5 px of 200x100 -> 1.6x3.2 at 64x64


def test_keep_ratio_uses_one_scale(tmp_path):
    images, labels = tmp_path / "images", tmp_path / "labels"
    write_image(images / "a.jpg", 100, 400)
    labels.mkdir()
    (labels / "a.txt").write_text("0 0.5 0.5 0.1 0.2\n")  # 40 x 20 px
    source = YoloSource(labels, images, ["cat"])
    assert summarize(source, "train", (64, 64), 8).small_boxes == 0  # stretched: 6.4 x 12.8 px
    assert summarize(source, "train", (64, 64), 8, keep_ratio=True).small_boxes == 1  # fitted: 6.4 x 3.2 px
