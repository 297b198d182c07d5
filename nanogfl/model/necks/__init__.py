"""Necks: backbone feature maps -> fused pyramid levels for the head."""
from .fpn import FPN
from .ghost_pan import GhostPAN
from .pan import PAN

__all__ = ["FPN", "GhostPAN", "PAN"]
