"""Datasets (COCO / VOC / YOLO -> one sample format), transforms and batching.

Everything here is torch-free except ``nanogfl.data.loader`` (import it explicitly).
"""
from .base import DetectionSource, ImageInfo, Sample
from .coco import CocoSource
from .image_io import DataWarning, load_image, read_image_header
from .sources import build_source
from .transforms import TrainTransform, ValTransform
from .voc import VocSource
from .yolo import YoloSource

__all__ = ["DetectionSource", "ImageInfo", "Sample", "CocoSource", "VocSource", "YoloSource", "DataWarning",
           "load_image", "read_image_header", "build_source", "TrainTransform", "ValTransform"]
