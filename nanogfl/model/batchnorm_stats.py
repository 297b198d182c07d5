"""Measuring BatchNorm statistics on real images without changing what a model computes in eval mode.

``rebuild_batchnorm`` measures, on real images, the per-channel mean ``mu`` and variance ``var`` of each
convolution's output ``w_f * x`` (with the BatchNorm folded into it) and sets running_mean = mu, running_var = var,
gamma = sqrt(var + eps), beta = b_f + mu: eval mode computes exactly the folded function again, and in train mode
the batch statistics of similar images are close to the running ones, so the output barely moves. The importer
uses it for ``--bn-images``; fine-tuning uses it when a checkpoint only has placeholder statistics.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..runtime.preprocess import preprocess
from .fuse import conv_batchnorm_pairs, fuse_conv_bn


def normalised_batches(images: Iterable[np.ndarray], input_hw: tuple[int, int], mean: Sequence[float],
                       std: Sequence[float], batch_size: int) -> Iterator[torch.Tensor]:
    """BGR images, preprocessed as evaluation does, in normalised [B, 3, H, W] batches."""
    batch = []
    for image in images:
        batch.append(preprocess(image, input_hw, mean, std)[0])
        if len(batch) == batch_size:
            yield torch.from_numpy(np.concatenate(batch))
            batch = []
    if batch:
        yield torch.from_numpy(np.concatenate(batch))


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
