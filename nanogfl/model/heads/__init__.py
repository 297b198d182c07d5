"""Heads: pyramid levels -> per-prior predictions [B, N, num_classes + 4 * (reg_max + 1)]."""
from .depthwise_gfl import DepthwiseGFLHead
from .simple_conv import SimpleConvHead

__all__ = ["DepthwiseGFLHead", "SimpleConvHead"]
