"""Necks: backbone feature maps -> fused pyramid levels for the head."""
from .ghost_pan import GhostPAN

__all__ = ["GhostPAN"]
