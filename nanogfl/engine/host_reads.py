"""Count the host reads of tensor values (each one a device synchronisation on CUDA) while a block runs.

Used by ``benchmarks/train_speed.py`` and the test that keeps the training step free of needless reads. It
patches ``torch.Tensor`` methods for the duration of the block: not for use inside the library itself.
"""
from __future__ import annotations

import contextlib
from collections import Counter
from typing import Callable, Iterator

import torch

# Reads of a value (item, tolist, cpu, float/int/bool conversion) and nonzero, whose output size the host needs.
COUNTED_METHODS = ("item", "tolist", "cpu", "__float__", "__int__", "__bool__", "nonzero")


def _counting(name: str, original: Callable, counts: Counter) -> Callable:
    def wrapper(self, *args, **kwargs):
        counts[name] += 1
        return original(self, *args, **kwargs)
    return wrapper


@contextlib.contextmanager
def count_host_reads() -> Iterator[Counter]:
    """``with count_host_reads() as counts: ...`` -> counts["item"], counts["__bool__"], ... for the block.

    Python-level calls only (``torch.nonzero(t)`` as a function is not seen; ``t.nonzero()`` is)."""
    counts: Counter = Counter()
    originals = {name: getattr(torch.Tensor, name) for name in COUNTED_METHODS}
    try:
        for name, original in originals.items():
            setattr(torch.Tensor, name, _counting(name, original, counts))
        yield counts
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


def value_reads(counts: Counter) -> int:
    """The reads the training step must keep to what logging needs: everything counted but nonzero."""
    return sum(n for name, n in counts.items() if name != "nonzero")
