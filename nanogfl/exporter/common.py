"""Pieces every export step shares: converter imports with install hints, the input-size rule and the deploy graph."""
from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import UserError
from ..model import DeployModel, NanoDetPlus
from ..model.fuse import fuse_batchnorm

SIZE_MULTIPLE = 32  # the coarsest head level is stride 64, but every published model uses multiples of 32
INSTALL_HINT = "pip install 'nanogfl[export]'"


class ExportError(UserError):
    """A converter failed or the exported model does not match PyTorch: nothing was written."""


def require_module(name: str, purpose: str) -> ModuleType:
    """Import an optional converter/runtime package, or fail with one line naming the pip extra."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise UserError(f"{purpose} needs the '{name}' package, which is not installed: {INSTALL_HINT} "
                        f"(or pip install {name})") from None


def check_input_size(input_hw: tuple[int, int]) -> tuple[int, int]:
    """(height, width) as ints; both must be positive multiples of 32."""
    if len(input_hw) != 2:
        raise UserError(f"input size must be (height, width), got {tuple(input_hw)}")
    height, width = int(input_hw[0]), int(input_hw[1])
    if min(height, width) <= 0 or height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
        def nearest(v: int) -> int:
            return max(SIZE_MULTIPLE, round(v / SIZE_MULTIPLE) * SIZE_MULTIPLE)
        raise UserError(f"input size {height}x{width} (height x width) is not a multiple of {SIZE_MULTIPLE} on "
                        f"both sides; use e.g. --size {nearest(height)} {nearest(width)}")
    return height, width


def build_deploy_model(model: NanoDetPlus) -> DeployModel:
    """The exported graph: BN folded into the convs, aux branch dropped, sigmoid on the class columns."""
    folded = fuse_batchnorm(model)  # a copy: the caller keeps the unfolded model as the PyTorch reference
    folded.drop_aux()
    return DeployModel(folded).eval()
