"""Small helpers the peer decoders share."""
from __future__ import annotations

import numpy as np

from ..backends import sigmoid_inplace


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """A float32 copy of ``logits`` through the logistic function."""
    return sigmoid_inplace(np.array(logits, np.float32, copy=True))
