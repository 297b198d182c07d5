"""nanogfl: a NanoDet-Plus-family detector with training, export and a torch-free edge runtime.

Importing the top-level package is cheap and does not import torch; the torch parts live in
``nanogfl.model``, ``nanogfl.engine`` and ``nanogfl.exporter``; ``nanogfl.runtime`` runs without torch.
"""

__version__ = "0.1.0"
