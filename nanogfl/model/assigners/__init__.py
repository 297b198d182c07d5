"""Label assigners: which prior learns which ground-truth box."""
from .atss import ATSSAssigner
from .dsla import Assignment, DynamicSoftLabelAssigner, pad_targets

__all__ = ["ATSSAssigner", "Assignment", "DynamicSoftLabelAssigner", "pad_targets"]
