"""One import: an mmdetection 3.x GFL checkpoint (.pth) -> a nanogfl checkpoint of the same detector."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from ..checkpoint import Checkpoint, save_checkpoint
from ..contract import check_input_size
from ..errors import UserError
from ..model.build import build_detector
from ..model.server_weights import from_mmdet, load_into, mmdet_class_names, read_weights_file
from ..model.variants import default_config
from ..runtime.coco_names import COCO_CLASSES

SERVER_ARCH_HINT = "gfl-r50, gfl-r101 or gfl-x101-32x4d"


def import_mmdet(src: str | Path, out: str | Path, arch: str, input_hw: tuple[int, int] = (800, 1344),
                 class_names: list[str] | None = None, log: Callable[[str], None] = print) -> Path:
    """Map every tensor of the mmdetection GFL checkpoint ``src`` onto ``arch`` (nothing left over on either
    side), check the result runs, and write the checkpoint ``out``. Class names: ``class_names``, else the
    checkpoint's ``dataset_meta``, else COCO's 80."""
    cfg = default_config(arch)
    if cfg.model.backbone.name != "resnet":
        raise UserError(f"{src}: a .pth is imported as a server-size GFL detector; --arch {SERVER_ARCH_HINT}")
    cfg.model.input_size = list(check_input_size(input_hw, "--size"))
    state, meta = read_weights_file(src)
    mapped = from_mmdet(state, str(src))
    cls_weight = mapped.get("head.cls_out.weight")
    if cls_weight is None:
        raise UserError(f"{src}: no bbox_head.gfl_cls weights: not a GFL detector checkpoint")
    num_classes = cls_weight.shape[0]
    if "head.quality.conv1.weight" in mapped:
        cfg.model.head.quality = "dgqp"
    names = list(class_names or mmdet_class_names(meta) or COCO_CLASSES)
    if len(names) != num_classes:
        raise UserError(f"{src} predicts {num_classes} classes but the class list has {len(names)} names; "
                        "pass --class-names with one name a line")
    model = build_detector(cfg.model, num_classes, with_aux=False)
    load_into(model, mapped, str(src))
    with torch.no_grad():
        out_check = model.eval()(torch.zeros(1, 3, 64, 64), probabilities=True)
    if not torch.isfinite(out_check).all():
        raise UserError(f"{src}: the imported model computes non-finite outputs; no checkpoint written")
    log(f"mapped {len(state)} tensors of {src} to {arch}{' (GFLV2, DGQP)' if cfg.model.head.quality == 'dgqp' else ''}"
        f" with {num_classes} classes; the first convolution's input channels reversed (RGB -> BGR)")
    save_checkpoint(out, Checkpoint(model=model.state_dict(), config=cfg.to_dict(), class_names=names,
                                    aux_trained=False, source=str(src)))
    log(f"wrote {out}")
    return Path(out)
