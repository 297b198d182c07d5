"""Parameter and multiply-accumulate counts of the deploy model (BN folded, aux dropped)."""
from __future__ import annotations

import torch
from torch import nn

from .deploy import deploy_model
from .detector import GFLDetector


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_macs(model: nn.Module, input_hw: tuple[int, int]) -> int:
    """Multiply-accumulates of convolutions and linear layers for one image (what MAC tables report)."""
    total = 0

    def conv_hook(module: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        total += output.numel() // output.shape[0] * kh * kw * module.in_channels // module.groups

    def linear_hook(module: nn.Linear, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel() // output.shape[0] * module.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    try:
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        model(torch.zeros(1, 3, *input_hw, device=device))
        model.train(was_training)
    finally:
        for h in handles:
            h.remove()
    return total


def model_info(model: GFLDetector, input_hw: tuple[int, int]) -> dict:
    """Parameters and MACs of the deploy graph of ``model`` at ``input_hw`` (the numbers ``nanogfl info`` prints),
    and ``trained_params``: every parameter of the model as trained, BatchNorm unfolded, frozen ones included, aux
    branch excluded (the count mmdetection reports)."""
    deploy = deploy_model(model)
    params = count_parameters(deploy)
    macs = count_macs(deploy, input_hw)
    trained = count_parameters(model) - sum(count_parameters(m) for m in (model.aux_neck, model.aux_head) if m)
    return {"params": params, "params_m": round(params / 1e6, 4), "trained_params": trained,
            "macs": macs, "gmacs": round(macs / 1e9, 4), "gflops": round(2 * macs / 1e9, 4),
            "input_size": list(input_hw)}
