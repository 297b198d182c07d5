"""Issue 12.2: ``data.classes`` keeps some of a dataset's classes by name and re-indexes them in the given order,
the same way for COCO, VOC and YOLO; evaluation picks a model's classes from a dataset the same way."""
import numpy as np
import pytest
from helpers import coco_objects, write_voc, write_yolo

from nanogfl.data import build_source
from nanogfl.data.sources import source_for_model
from nanogfl.errors import UserError
from nanogfl.evaluation import evaluate_detections


def check_subset(full, subset, classes):
    """Every image kept; each keeps exactly its objects of ``classes``, in order, labelled by position in it."""
    assert subset.class_names == classes and len(subset) == len(full)
    for index in range(len(full)):
        boxes, labels = full.annotation(index)
        names = [full.class_names[label] for label in labels]
        keep = np.array([n in classes for n in names], bool).reshape(-1)
        sub_boxes, sub_labels = subset.annotation(index)
        np.testing.assert_array_equal(sub_boxes, boxes[keep])
        assert [classes[label] for label in sub_labels] == [n for n in names if n in classes]
        assert subset.image_info(index) == full.image_info(index)
    gt = subset.coco_gt()
    assert [c["name"] for c in gt["categories"]] == classes
    assert {a["category_id"] for a in gt["annotations"]} <= set(subset.category_ids)


def test_coco_classes_filter_and_reindex(coco_val, capsys):
    ann, images = coco_val
    full = build_source("coco", ann, images)
    subset = build_source("coco", ann, images, classes=["dog", "person"])
    assert subset.category_ids == [18, 1]
    check_subset(full, subset, ["dog", "person"])
    counts = [len(subset.annotation(i)[1]) for i in range(len(subset))]
    assert sum(counts) == 450 and counts.count(0) == 206 - 113  # 444 person + 6 dog boxes (non-crowd)
    assert "450 boxes in 113 images; 93 images have none and are kept as background images" in capsys.readouterr().out
    assert subset.load(counts.index(0)).boxes.shape == (0, 4)  # a background image still loads
    with pytest.raises(UserError, match=r"data.classes 'unicorn' is not a class of this dataset; its classes: "
                                        r"person, bicycle, car, "):
        build_source("coco", ann, images, classes=["person", "unicorn"])


def test_voc_and_yolo_classes_filter_and_reindex(coco_val, tmp_path):
    ann, images = coco_val
    objects = coco_objects(ann, 6)
    names = sorted({a["name"] for _, anns in objects for a in anns})
    classes = [names[-1], names[0]]  # not the dataset's order
    write_voc(tmp_path / "voc", objects)
    check_subset(build_source("voc", tmp_path / "voc", images),
                 build_source("voc", tmp_path / "voc", images, classes=classes), classes)
    labels, yolo_images = write_yolo(tmp_path / "yolo", objects, images, names)
    check_subset(build_source("yolo", labels, yolo_images, names),
                 build_source("yolo", labels, yolo_images, names, classes=classes), classes)
    with pytest.raises(UserError, match="data.classes 'zebra crossing' is not a class"):
        build_source("yolo", labels, yolo_images, names, classes=["zebra crossing"])


def test_evaluation_picks_the_model_classes_from_the_dataset(coco_val):
    """A model of some classes (one the dataset lacks) is scored on those classes of the full json."""
    ann, images = coco_val
    source = source_for_model("coco", ann, images, ["dog", "unicorn", "person"])
    assert source.category_ids == [18, 91, 1]  # unicorn: an id of its own, with no objects
    gt = source.coco_gt()
    perfect = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
               for a in gt["annotations"] if not a["iscrowd"]]
    metrics = evaluate_detections(gt, perfect, verbose=False)
    assert metrics["AP"] == pytest.approx(1.0) and np.isnan(metrics["per_class"]["unicorn"])
    assert set(metrics["per_class"]) == {"dog", "unicorn", "person"}
    full = source_for_model("coco", ann, images, build_source("coco", ann, images).class_names)
    assert type(full).__name__ == "CocoSource"  # the dataset's own classes: no subset
