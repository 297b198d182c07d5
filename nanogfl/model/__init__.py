"""The GFL family in PyTorch: backbones, necks, heads, assigners, losses, the detector and its deploy graph.

Build a published variant by name (``nanodet_plus_m``) or any config with ``build_detector(cfg.model, C)``.
"""
from .build import build_criterion, build_detector
from .deploy import DeployModel, deploy_model
from .detector import GFLDetector
from .variants import build_variant, nanodet_plus_m, nanodet_plus_m_0_5x, nanodet_plus_m_1_5x

__all__ = ["GFLDetector", "DeployModel", "deploy_model", "build_detector", "build_criterion", "build_variant",
           "nanodet_plus_m", "nanodet_plus_m_0_5x", "nanodet_plus_m_1_5x"]
