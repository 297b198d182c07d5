"""What every export step shares: converter imports with install hints, and the export error."""
from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import UserError

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
