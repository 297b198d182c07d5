"""The metadata of published peer models (what ``nanogfl peer-meta`` writes beside a model file).

Sources: YOLOX-Nano ONNX (Megvii YOLOX export, 416), YOLO-FastestV2 ncnn (dog-qiuqiu/Yolo-FastestV2
sample/ncnn/model, 352), PicoDet ncnn (PaddleDetection deploy/third_engine/demo_ncnn blob names, 320).
"""
from __future__ import annotations

from ..coco_names import COCO_CLASSES
from ..metadata import ModelMeta

IMAGENET_RGB_MEAN = (123.675, 116.28, 103.53)
IMAGENET_RGB_STD = (58.395, 57.12, 57.375)
YOLO_FASTESTV2_ANCHORS = [[[12.64, 19.39], [37.88, 51.48], [55.71, 138.31]],
                          [[126.91, 78.23], [131.57, 214.55], [279.92, 258.87]]]


def yolox_meta() -> ModelMeta:
    """YOLOX (new-style export): raw BGR 0-255, letterbox at the top-left padded with 114, one [N, 85] output."""
    return ModelMeta(class_names=list(COCO_CLASSES), input_hw=(416, 416), strides=(8, 16, 32), mean=(0.0, 0.0, 0.0),
                     std=(1.0, 1.0, 1.0), input_name="images", output_name="output", layout="yolox",
                     resize_mode="letterbox", pad_value=114.0, arch="yolox-nano")


def yolo_fastestv2_meta() -> ModelMeta:
    """YOLO-FastestV2: BGR / 255, plain resize to 352, anchor grids at strides 16 and 32."""
    return ModelMeta(class_names=list(COCO_CLASSES), input_hw=(352, 352), strides=(16, 32), mean=(0.0, 0.0, 0.0),
                     std=(255.0, 255.0, 255.0), input_name="input.1", split_outputs=["794", "796"],
                     layout="yolo_fastestv2", anchors=YOLO_FASTESTV2_ANCHORS, best_class_only=True,
                     arch="yolo-fastestv2")


def picodet_meta() -> ModelMeta:
    """PicoDet-S 320 (ncnn): RGB with ImageNet mean / std, class + box blobs per stride 8-64, cell-centre points."""
    outputs = [f"save_infer_model/scale_{i + k}.tmp_1" for i in range(4) for k in (0, 4)]
    return ModelMeta(class_names=list(COCO_CLASSES), input_hw=(320, 320), strides=(8, 16, 32, 64), reg_max=7,
                     mean=IMAGENET_RGB_MEAN, std=IMAGENET_RGB_STD, input_name="image", split_outputs=outputs,
                     layout="picodet", color_order="rgb", prior_offset=0.5, arch="picodet-s")


FAMILY_METAS = {"yolox": yolox_meta, "yolo_fastestv2": yolo_fastestv2_meta, "picodet": picodet_meta}
