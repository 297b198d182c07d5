"""The NanoDet-Plus model in PyTorch: backbone, neck, heads, assignment, losses, BN folding."""
from .detector import (ARCHITECTURES, STRIDES, Architecture, DeployModel, NanoDetPlus, build_nanodet_plus,
                       get_architecture, nanodet_plus_m, nanodet_plus_m_0_5x, nanodet_plus_m_1_5x)

__all__ = ["ARCHITECTURES", "STRIDES", "Architecture", "DeployModel", "NanoDetPlus", "build_nanodet_plus",
           "get_architecture", "nanodet_plus_m", "nanodet_plus_m_0_5x", "nanodet_plus_m_1_5x"]
