"""Fold BatchNorm into the preceding convolution (for deployment and for counting deploy parameters)."""
from __future__ import annotations

import copy

import torch
from torch import nn


def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode)
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    fused.weight.data = conv.weight.detach() * scale.reshape(-1, 1, 1, 1)
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused.bias.data = (bias - bn.running_mean) * scale + bn.bias.detach()
    return fused.to(conv.weight.device)


def conv_batchnorm_pairs(model: nn.Module) -> dict[str, tuple[nn.Conv2d, nn.BatchNorm2d]]:
    """Conv module name -> (conv, the BatchNorm right after it in the same nn.Sequential, or the BatchNorm a
    module pairs with it by name in its ``CONV_BN_PAIRS``, e.g. ResNet's ``conv1``/``bn1``)."""
    pairs = {}
    for prefix, module in model.named_modules():
        for conv_key, bn_key in getattr(module, "CONV_BN_PAIRS", ()):
            conv, bn = module._modules[conv_key], module._modules[bn_key]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                pairs[f"{prefix}.{conv_key}" if prefix else conv_key] = (conv, bn)
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules)
        for first, second in zip(names, names[1:]):
            conv, bn = module._modules[first], module._modules[second]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                pairs[f"{prefix}.{first}" if prefix else first] = (conv, bn)
    return pairs


def fuse_batchnorm(model: nn.Module, inplace: bool = False) -> nn.Module:
    """Every Conv2d directly followed by a BatchNorm2d inside an nn.Sequential becomes one biased Conv2d."""
    if not inplace:
        model = copy.deepcopy(model)
    for name, (conv, bn) in conv_batchnorm_pairs(model).items():
        parent_name, _, conv_key = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        bn_key = next(k for k, m in parent._modules.items() if m is bn)
        parent._modules[conv_key] = fuse_conv_bn(conv, bn)
        parent._modules[bn_key] = nn.Identity()
    return model.eval()
