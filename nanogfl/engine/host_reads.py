"""Count the host reads of tensor values (each one a device synchronisation on CUDA) while a block runs.

Used by ``benchmarks/train_speed.py`` and the test that keeps the training step free of needless reads. It
patches ``torch.Tensor`` methods for the duration of the block: not for use inside the library itself.
"""
from __future__ import annotations

import contextlib
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import torch

# Reads of a value (item, tolist, cpu, float/int/bool conversion) and nonzero, whose output size the host needs.
COUNTED_METHODS = ("item", "tolist", "cpu", "__float__", "__int__", "__bool__", "nonzero")
LIBRARY_ROOT = str(Path(__file__).resolve().parents[1])  # the nanogfl package folder


@dataclass
class HostReads:
    """Calls by method name: ``library`` made by nanogfl code, ``other`` by torch itself (e.g. the for-loop
    optimisers read their CPU step counters with ``item``: host scalars, no device synchronisation)."""
    library: Counter = field(default_factory=Counter)
    other: Counter = field(default_factory=Counter)

    def value_reads(self) -> int:
        """nanogfl's reads of values: what the training step must keep to what logging needs (nonzero apart)."""
        return sum(n for name, n in self.library.items() if name != "nonzero")


def _counting(name: str, original: Callable, reads: HostReads) -> Callable:
    def wrapper(self, *args, **kwargs):
        caller = sys._getframe(1).f_code.co_filename
        (reads.library if caller.startswith(LIBRARY_ROOT) else reads.other)[name] += 1
        return original(self, *args, **kwargs)
    return wrapper


@contextlib.contextmanager
def count_host_reads() -> Iterator[HostReads]:
    """``with count_host_reads() as reads: ...`` -> reads.library["__bool__"], reads.value_reads(), ...

    Python-level method calls only (``torch.nonzero(t)`` as a function is not seen; ``t.nonzero()`` is)."""
    reads = HostReads()
    originals = {name: getattr(torch.Tensor, name) for name in COUNTED_METHODS}
    try:
        for name, original in originals.items():
            setattr(torch.Tensor, name, _counting(name, original, reads))
        yield reads
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)
