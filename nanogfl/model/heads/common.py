"""What every GFL head shares: the initial class bias and the level flattening of the output."""
from __future__ import annotations

import torch

PRIOR_PROB_BIAS = -4.595  # log(0.01 / 0.99): initial class probability 0.01


def flatten_levels(outputs: list[torch.Tensor]) -> torch.Tensor:
    """[B, C, H_l, W_l] per level -> [B, N, C], levels in order, row-major inside a level."""
    return torch.cat([o.flatten(start_dim=2) for o in outputs], dim=2).permute(0, 2, 1)
