"""Put BN-folded weights into a model that has BatchNorm.

A published deploy model has each BatchNorm folded into its convolution (w_f, b_f). To fine-tune it we need
the BatchNorm back. ``load_folded_weights`` sets an identity BatchNorm (conv weight = w_f, BN computes
``x + b_f`` in eval mode); ``nanogfl.model.batchnorm_stats.rebuild_batchnorm`` then measures real statistics on
images (``--bn-images``). We keep the conv weight at w_f (no rescaling): it is the published tensor and BN makes
its scale irrelevant.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..model.fuse import conv_batchnorm_pairs


def _set_identity(bn: nn.BatchNorm2d, bias: torch.Tensor) -> None:
    bn.running_mean.zero_()
    bn.running_var.fill_(1.0 - bn.eps)  # so that sqrt(var + eps) == 1 and eval mode adds the bias only
    bn.weight.fill_(1.0)
    bn.bias.copy_(bias)


@torch.no_grad()
def load_folded_weights(model: nn.Module, folded: dict[str, tuple[np.ndarray, np.ndarray | None]]) -> None:
    """``folded``: conv module name -> (weight, bias) of the BN-folded conv. A conv followed by BatchNorm gets an
    identity BatchNorm carrying the bias; a conv with its own bias (the predictors) takes the bias directly."""
    modules = dict(model.named_modules())
    pairs = conv_batchnorm_pairs(model)
    for name, (weight, bias) in folded.items():
        conv = modules.get(name)
        if not isinstance(conv, nn.Conv2d) or tuple(conv.weight.shape) != weight.shape:
            raise ValueError(f"{name}: no conv of shape {weight.shape} in the model")
        conv.weight.copy_(torch.from_numpy(weight))
        bias_t = torch.from_numpy(bias) if bias is not None else torch.zeros(weight.shape[0])
        if name in pairs:
            if conv.bias is not None:
                conv.bias.zero_()
            _set_identity(pairs[name][1], bias_t)
        elif conv.bias is not None:
            conv.bias.copy_(bias_t)
        elif bias is not None and np.any(bias):
            raise ValueError(f"{name}: the source has a bias but the model's conv has neither bias nor BatchNorm")
