"""Heads: pyramid levels -> per-prior predictions [B, N, num_classes + 4 * (reg_max + 1)]."""
from .depthwise_gfl import DepthwiseGFLHead
from .quality import DistributionQuality, joint_score_logits, top_k_values
from .shared_gfl import SharedGFLHead

__all__ = ["DepthwiseGFLHead", "DistributionQuality", "SharedGFLHead", "joint_score_logits", "top_k_values"]
