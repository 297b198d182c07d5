"""The GFL detector: backbone -> neck -> head, plus NanoDet-Plus's training-only assign-guidance branch."""
from __future__ import annotations

import torch
from torch import nn


class GFLDetector(nn.Module):
    """A Generalized-Focal-Loss detector assembled from its parts.

    ``forward`` gives the raw main-head predictions [B, N, num_classes + 4 * (reg_max + 1)] (class logits, then
    side-major box-bin logits) over the priors of ``strides``. The optional aux neck + aux head (NanoDet-Plus's
    assign-guidance module) only run in ``forward_train``; ``drop_aux`` removes them for deployment.

    >>> model = nanodet_plus_m(num_classes=80)            # nanogfl.model.variants
    >>> preds = model.eval()(torch.zeros(1, 3, 320, 320))  # [1, 2125, 112]
    >>> main, aux = model.train().forward_train(images, epoch=0)
    """

    def __init__(self, backbone: nn.Module, neck: nn.Module, head: nn.Module, strides: tuple[int, ...],
                 aux_neck: nn.Module | None = None, aux_head: nn.Module | None = None,
                 detach_epoch: int = 10) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.head = head
        self.aux_neck = aux_neck
        self.aux_head = aux_head
        self.strides = tuple(strides)
        self.detach_epoch = detach_epoch

    @property
    def num_classes(self) -> int:
        return self.head.num_classes

    @property
    def reg_max(self) -> int:
        return self.head.reg_max

    @property
    def has_aux(self) -> bool:
        return self.aux_neck is not None and self.aux_head is not None

    def forward(self, images: torch.Tensor, probabilities: bool = False) -> torch.Tensor:
        """Main-head predictions [B, N, num_classes + 4 * (reg_max + 1)]: class logits (the class scores
        themselves when ``probabilities``: the deploy output), then box-bin logits."""
        return self.head(self.neck(self.backbone(images)), probabilities)

    def forward_train(self, images: torch.Tensor, epoch: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Main and aux predictions (aux None without the branch). From ``detach_epoch`` on, the aux branch no
        longer trains the shared backbone and neck."""
        features = self.backbone(images)
        neck_out = self.neck(features)
        if not self.has_aux:
            return self.head(neck_out), None
        detach = epoch >= self.detach_epoch
        aux_out = self.aux_neck([f.detach() for f in features] if detach else features)
        dual = [torch.cat((f.detach() if detach else f, a), dim=1) for f, a in zip(neck_out, aux_out)]
        return self.head(neck_out), self.aux_head(dual)

    def drop_aux(self) -> "GFLDetector":
        self.aux_neck = None
        self.aux_head = None
        return self
