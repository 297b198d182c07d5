"""Every bad-input case with a real file: unreadable images are skipped with a warning naming the file,
bad annotations fail fast with a UserError naming the file, bad boxes are repaired with one summary warning."""
from __future__ import annotations

import io
import json
import math
import shutil
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from nanogfl import image_io
from nanogfl.data import CocoSource, VocSource, YoloSource
from nanogfl.errors import UserError
from nanogfl.image_io import DataWarning, load_image, read_image_header


@pytest.fixture()
def real_jpeg(coco_val) -> Path:
    return coco_val[1] / "000000000139.jpg"


def one_image_json(coco_val, tmp_path: Path, annotations: list, image_override: dict | None = None) -> Path:
    data = json.loads(coco_val[0].read_text())
    image = dict(next(im for im in data["images"] if im["file_name"] == "000000000139.jpg"), **(image_override or {}))
    path = tmp_path / "one.json"
    path.write_text(json.dumps({"images": [image], "annotations": annotations, "categories": data["categories"]}))
    return path


def ann(bbox, category_id=1, ann_id=1):
    return {"id": ann_id, "image_id": 139, "category_id": category_id, "bbox": bbox, "iscrowd": 0}


def messages(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, DataWarning)]


def test_corrupt_and_missing_images_warn_and_return_none(tmp_path):
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    for path in (corrupt, tmp_path / "missing.png"):
        with pytest.warns(DataWarning, match=path.name):
            assert load_image(path) is None


def test_truncated_jpeg_is_skipped(real_jpeg, tmp_path):
    data = real_jpeg.read_bytes()
    for fraction in (0.3, 0.97):
        path = tmp_path / f"truncated_{fraction}.jpg"
        path.write_bytes(data[: int(len(data) * fraction)])
        with pytest.warns(DataWarning, match=f"{path.name}.*truncated"):
            assert load_image(path) is None
        assert read_image_header(path).stored_hw == (426, 640)  # the header itself is intact


def test_grayscale_16bit_and_alpha_png(real_jpeg, tmp_path):
    bgr = cv2.imread(str(real_jpeg))
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    loaded = load_image(tmp_path / "gray.png")
    assert loaded.shape == bgr.shape and loaded.dtype == np.uint8
    assert all(np.array_equal(loaded[:, :, c], gray) for c in range(3))

    deep = (bgr.astype(np.uint16) * 257 + 100).clip(0, 65535).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    loaded = load_image(tmp_path / "deep.png")
    assert loaded.dtype == np.uint8
    assert np.abs(loaded.astype(int) - bgr.astype(int)).max() <= 1

    cv2.imwrite(str(tmp_path / "alpha.png"), np.dstack([bgr, np.full(gray.shape, 7, np.uint8)]))
    assert np.array_equal(load_image(tmp_path / "alpha.png"), bgr)
    assert read_image_header(tmp_path / "alpha.png").stored_hw == bgr.shape[:2]


def write_exif_jpeg(source: Path, path: Path, orientation: int) -> None:
    from PIL import Image
    image = Image.open(source)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes(), quality=95)
    path.write_bytes(buffer.getvalue())


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_opencv_viewer_decode(real_jpeg, tmp_path, monkeypatch, orientation):
    pytest.importorskip("PIL")
    monkeypatch.setattr(image_io, "_exif_notes_shown", set())
    path = tmp_path / f"exif{orientation}.jpg"
    write_exif_jpeg(real_jpeg, path, orientation)
    header = read_image_header(path)
    assert header.orientation == orientation and header.stored_hw == (426, 640)
    viewer = cv2.imread(str(path))  # OpenCV's default decode applies EXIF orientation
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert np.array_equal(load_image(path), viewer)
    expected = [] if orientation == 1 else [f"orientation {orientation} applied"]
    assert [m.split("EXIF ")[1][:21] for m in messages(record)] == expected
    assert header.displayed_hw == viewer.shape[:2]


def test_exif_rotation_follows_the_annotation_size(coco_val, real_jpeg, tmp_path, monkeypatch):
    pytest.importorskip("PIL")
    monkeypatch.setattr(image_io, "_exif_notes_shown", set())
    images = tmp_path / "images"
    images.mkdir()
    write_exif_jpeg(real_jpeg, images / "000000000139.jpg", 6)
    stored = cv2.imread(str(images / "000000000139.jpg"), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    json_stored = one_image_json(coco_val, tmp_path, [ann([10, 10, 50, 50])])
    with pytest.warns(DataWarning, match="000000000139.jpg: EXIF orientation 6 ignored"):
        sample = CocoSource(json_stored, images).load(0)
    assert np.array_equal(sample.image, stored)

    json_rotated = one_image_json(coco_val, tmp_path, [ann([10, 10, 50, 50])], {"width": 426, "height": 640})
    with pytest.warns(DataWarning, match="000000000139.jpg: EXIF orientation 6 applied"):
        sample = CocoSource(json_rotated, images).load(0)
    assert sample.image.shape == (640, 426, 3)
    assert np.array_equal(sample.image, np.rot90(stored, -1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the note is shown once only
        CocoSource(json_rotated, images).load(0)


def test_yolo_labels_refer_to_the_rotated_image(real_jpeg, tmp_path, monkeypatch):
    pytest.importorskip("PIL")
    monkeypatch.setattr(image_io, "_exif_notes_shown", set())
    labels, images = tmp_path / "labels", tmp_path / "images"
    labels.mkdir()
    images.mkdir()
    write_exif_jpeg(real_jpeg, images / "a.jpg", 6)
    (labels / "a.txt").write_text("0 0.5 0.25 0.5 0.5\n")
    source = YoloSource(labels, images, ["cat"])
    assert (source.image_info(0).height, source.image_info(0).width) == (640, 426)
    np.testing.assert_allclose(source.annotation(0)[0], [[106.5, 0, 319.5, 320]])
    with pytest.warns(DataWarning, match="a.jpg: EXIF orientation 6 applied because the labels refer"):
        assert source.load(0).image.shape == (640, 426, 3)


def test_bad_boxes_are_repaired_with_one_summary_warning(coco_val, tmp_path):
    boxes = [[math.nan, 10, 20, 20], [10, 10, 0, 30], [10, 10, 30, -5], [600, 400, 100, 100],
             [700, 10, 50, 50], [100, 100, 50, 60]]
    path = one_image_json(coco_val, tmp_path, [ann(b, ann_id=k + 1) for k, b in enumerate(boxes)])
    with pytest.warns(DataWarning) as record:
        source = CocoSource(path, coco_val[1])
    assert messages(record) == [f"{path}: 1 box(es) clipped to the image, 4 dropped "
                                f"(NaN, zero/negative size or fully outside)"]
    result, labels = source.annotation(0)
    np.testing.assert_allclose(result, [[600, 400, 640, 426], [100, 100, 150, 160]])
    assert labels.tolist() == [0, 0]


@pytest.mark.parametrize("case, match", [
    ("unknown_category", "one.json: annotations\\[0\\] \\(id 1\\) has unknown category_id 999"),
    ("unknown_image", "one.json: annotations\\[0\\] \\(id 1\\) refers to unknown image_id 5"),
    ("missing_bbox", "one.json: annotations\\[0\\] \\(id 1\\) lacks the key 'bbox'"),
    ("missing_images", "one.json: the top level lacks the key 'images'"),
    ("empty", "one.json: the dataset has no images"),
    ("malformed", "one.json: not valid JSON"),
])
def test_bad_coco_json_fails_fast_naming_the_file(coco_val, tmp_path, case, match):
    path = one_image_json(coco_val, tmp_path, [ann([1, 1, 5, 5])])
    data = json.loads(path.read_text())
    if case == "unknown_category":
        data["annotations"][0]["category_id"] = 999
    elif case == "unknown_image":
        data["annotations"][0]["image_id"] = 5
    elif case == "missing_bbox":
        del data["annotations"][0]["bbox"]
    elif case == "missing_images":
        del data["images"]
    elif case == "empty":
        data["images"], data["annotations"] = [], []
    path.write_text(json.dumps(data))
    if case == "malformed":
        path.write_text(json.dumps(data)[:-40])
    with pytest.raises(UserError, match=match):
        CocoSource(path, coco_val[1])


def test_missing_folders_and_files(coco_val, tmp_path):
    with pytest.raises(UserError, match="image folder .* not found: .*no_such_folder"):
        CocoSource(coco_val[0], tmp_path / "no_such_folder")
    with pytest.raises(UserError, match="annotation file not found: .*absent.json"):
        CocoSource(tmp_path / "absent.json", coco_val[1])
    with pytest.raises(UserError, match="none of the 206 images exist"):
        CocoSource(coco_val[0], tmp_path)


def test_unreadable_or_mismatched_image_in_a_dataset(coco_val, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    (images / "000000000139.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    source = CocoSource(one_image_json(coco_val, tmp_path, [ann([1, 1, 5, 5])]), images)
    with pytest.warns(DataWarning, match="000000000139.jpg"):
        assert source.load(0) is None
    shutil.copy(coco_val[1] / "000000000139.jpg", images / "000000000139.jpg")
    source = CocoSource(one_image_json(coco_val, tmp_path, [ann([1, 1, 5, 5])], {"width": 500}), images)
    with pytest.warns(DataWarning, match="000000000139.jpg: image is 640x426 but .*one.json says 500x426"):
        assert source.load(0) is None


def test_bad_voc_files(coco_val, tmp_path):
    folder = tmp_path / "xml"
    folder.mkdir()
    good = ("<annotation><filename>000000000139.jpg</filename><size><width>640</width><height>426</height></size>"
            "<object><name>cat</name><bndbox><xmin>-5.5</xmin><ymin>1.25</ymin><xmax>50.5</xmax><ymax>9e9</ymax>"
            "</bndbox></object><object><name>dog</name><bndbox><xmin>5</xmin><ymin>5</ymin><xmax>5</xmax>"
            "<ymax>9</ymax></bndbox></object></annotation>")
    (folder / "a.xml").write_text(good)
    with pytest.warns(DataWarning, match="a.xml: 1 box\\(es\\) clipped to the image, 1 dropped"):
        source = VocSource(folder, coco_val[1])
    np.testing.assert_allclose(source.annotation(0)[0], [[0, 1.25, 50.5, 426]])
    with pytest.raises(UserError, match="a.xml: unknown class name 'dog'"):
        VocSource(folder, coco_val[1], class_names=["cat"])
    (folder / "b.xml").write_text(good[:-20])
    with pytest.raises(UserError, match="b.xml: not valid XML"):
        VocSource(folder, coco_val[1])
    (folder / "b.xml").write_text(good.replace("<xmin>5</xmin>", "<xmin>five</xmin>"))
    with pytest.raises(UserError, match="b.xml: <xmin> is not a number"):
        VocSource(folder, coco_val[1])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="empty: the dataset has no images"):
        VocSource(tmp_path / "empty", coco_val[1])


def test_bad_yolo_files(coco_val, tmp_path):
    labels, images = tmp_path / "labels", tmp_path / "images"
    labels.mkdir()
    images.mkdir()
    with pytest.raises(UserError, match="images: the dataset has no images"):
        YoloSource(labels, images, ["cat"])
    shutil.copy(coco_val[1] / "000000000139.jpg", images / "a.jpg")
    (labels / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n0 nan 0.5 0.1 0.1\n0 0.99 0.5 0.1 0.1\n0 0.5 0.5 0 0.1\n")
    with pytest.warns(DataWarning, match="a.txt: 1 box\\(es\\) clipped to the image, 2 dropped"):
        source = YoloSource(labels, images, ["cat"])
    np.testing.assert_allclose(source.annotation(0)[0], [[256, 170.4, 384, 255.6], [601.6, 191.7, 640, 234.3]],
                               atol=1e-3)
    (labels / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n3 0.5 0.5 0.2 0.2\n")
    with pytest.raises(UserError, match="a.txt:2: unknown class id 3"):
        YoloSource(labels, images, ["cat"])
    (labels / "a.txt").write_text("0 0.5 0.5 0.2\n")
    with pytest.raises(UserError, match="a.txt:1: expected 'class cx cy w h'"):
        YoloSource(labels, images, ["cat"])
