"""The ``nanogfl`` command. Each subcommand is one module here with its parser beside its adapter; the modules
import only argparse at load time and their library code when they run, so the deployment commands (predict,
demo, benchmark, val of an exported model) work on a device without torch."""
from __future__ import annotations

import argparse
import sys
import warnings

from ..errors import UserError
from . import benchmark, data_check, demo, export, import_model, info, peer_meta, predict, train, val
from .common import require_torch_for

SUBCOMMANDS = (train, data_check, val, predict, demo, benchmark, export, import_model, info, peer_meta)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nanogfl", description="Train, evaluate, export and run GFL-family "
                                     "detectors (NanoDet-Plus, NanoDet-m, GFLV2 quality head).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in SUBCOMMANDS:
        command.add_parser(sub)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> str:
    return f"warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    warnings.formatwarning = _one_line_warning
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "torch_extra", None):
            require_torch_for(args.command, args.torch_extra)
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except UserError as e:
        print(f"nanogfl {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
