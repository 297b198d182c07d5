"""Datasets (COCO / VOC / YOLO -> one sample format), the training transform and batching.

Everything here is torch-free except ``nanogfl.data.loader`` (import it explicitly). Image reading itself is
``nanogfl.image_io``, shared with the apps.
"""
from .base import DetectionSource, ImageInfo, Sample
from .coco import CocoSource
from .sources import build_source
from .transforms import TrainTransform
from .voc import VocSource
from .yolo import YoloSource

__all__ = ["DetectionSource", "ImageInfo", "Sample", "CocoSource", "VocSource", "YoloSource", "build_source",
           "TrainTransform"]
