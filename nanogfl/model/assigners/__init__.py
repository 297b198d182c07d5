"""Label assigners: which prior learns which ground-truth box."""
from .dsla import Assignment, DynamicSoftLabelAssigner, pad_targets

__all__ = ["Assignment", "DynamicSoftLabelAssigner", "pad_targets"]
