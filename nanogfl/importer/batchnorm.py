"""Put BN-folded weights into a model that has BatchNorm, and rebuild real BatchNorm statistics from images.

A published deploy model has each BatchNorm folded into its convolution (w_f, b_f). To fine-tune it we need
the BatchNorm back. ``load_folded_weights`` sets an identity BatchNorm (conv weight = w_f, BN computes
``x + b_f`` in eval mode). ``rebuild_batchnorm`` then measures, on real images, the per-channel mean ``mu``
and variance ``var`` of each ``w_f * x`` and sets running_mean = mu, running_var = var,
gamma = sqrt(var + eps), beta = b_f + mu. Eval mode computes exactly the folded function again, and in train
mode the batch statistics of similar images are close to the running ones, so the output barely moves.
We keep the conv weight at w_f (no rescaling): it is the published tensor and BN makes its scale irrelevant.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from ..model.fuse import conv_batchnorm_pairs, fuse_conv_bn


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


class _ChannelMoments:
    """Per-channel mean and variance over (batch, height, width), merged batch by batch (Chan et al.)."""

    def __init__(self) -> None:
        self.count = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None

    def update(self, x: torch.Tensor) -> None:
        x = x.detach().double().transpose(0, 1).flatten(1)
        n = x.shape[1]
        mean = x.mean(dim=1)
        m2 = ((x - mean[:, None]) ** 2).sum(dim=1)
        if self.mean is None:
            self.count, self.mean, self.m2 = n, mean, m2
            return
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * n / total
        self.m2 = self.m2 + m2 + delta ** 2 * self.count * n / total
        self.count = total

    @property
    def variance(self) -> torch.Tensor:
        return self.m2 / self.count


@torch.no_grad()
def rebuild_batchnorm(model: nn.Module, images: Iterable[torch.Tensor]) -> int:
    """Re-derive every conv+BatchNorm pair that ``model(batch)`` runs so that its eval-mode function is unchanged
    and its running statistics are those measured on ``images`` (normalised batches [B, 3, H, W]).
    Returns the number of images seen. Pairs the forward does not reach (the aux neck) are left alone."""
    pairs = conv_batchnorm_pairs(model)
    moments = {name: _ChannelMoments() for name in pairs}
    hooks = [conv.register_forward_hook(lambda _m, _i, out, name=name: moments[name].update(out))
             for name, (conv, _bn) in pairs.items()]
    was_training = model.training
    model.eval()
    seen = 0
    try:
        for batch in images:
            model(batch)
            seen += batch.shape[0]
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    if seen == 0:
        raise ValueError("rebuild_batchnorm needs at least one image")
    for name, (conv, bn) in pairs.items():
        stats = moments[name]
        if stats.mean is None:
            continue
        # the measured output is w * x + c; the folded conv without its bias gives w_f * x = scale * (w * x)
        scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
        conv_bias = conv.bias.double() if conv.bias is not None else 0.0
        folded = fuse_conv_bn(conv, bn)
        mean = (stats.mean - conv_bias) * scale
        var = stats.variance * scale ** 2
        conv.weight.copy_(folded.weight)
        if conv.bias is not None:
            conv.bias.zero_()
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(var)
        bn.weight.copy_(torch.sqrt(var + bn.eps))
        bn.bias.copy_(folded.bias.double() + mean)
    return seen
