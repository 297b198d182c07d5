"""The official NanoDet-Plus ncnn file opens without a hand-written json; other files still need one."""
import shutil

import pytest
from helpers import official_meta

from nanogfl.errors import UserError
from nanogfl.runtime.backends import load_meta, open_model
from nanogfl.runtime.detector import Detector


def test_official_param_needs_no_json(official_ncnn, tmp_path, coco_images):
    import cv2

    for source in (official_ncnn, official_ncnn.with_suffix(".bin")):
        (tmp_path / source.name).symlink_to(source)
    model = tmp_path / official_ncnn.name
    with pytest.warns(UserWarning, match="inferred the metadata of an official NanoDet-Plus"):
        assert load_meta(model) == official_meta()
    with pytest.warns(UserWarning):
        detections = Detector(open_model(model))(cv2.imread(str(coco_images[0])))
    assert len(detections) > 0


def test_other_param_without_json_is_refused(shared_data, tmp_path):
    model = tmp_path / "yolo-fastestv2_352.param"
    shutil.copy(shared_data / "yolo_fastestv2_ncnn" / "yolo-fastestv2.param", model)
    with pytest.raises(UserError, match="no metadata file"):
        load_meta(model)


def test_official_structure_with_unknown_size_is_refused(official_ncnn, tmp_path):
    model = tmp_path / "nanodet-plus-m.param"
    shutil.copy(official_ncnn, model)
    with pytest.raises(UserError, match="file name does not end with the input size"):
        load_meta(model)
