"""Backbones: image -> multi-scale feature maps (strides 8, 16, 32)."""
from .resnet import ResNet
from .shufflenetv2 import ShuffleNetV2

__all__ = ["ResNet", "ShuffleNetV2"]
