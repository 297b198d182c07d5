"""Heads: pyramid levels -> per-prior predictions [B, N, num_classes + 4 * (reg_max + 1)]."""
from .depthwise_gfl import DepthwiseGFLHead
from .quality import DistributionQuality, joint_score_logits, top_k_values
from .simple_conv import SimpleConvHead

__all__ = ["DepthwiseGFLHead", "DistributionQuality", "SimpleConvHead", "joint_score_logits", "top_k_values"]
