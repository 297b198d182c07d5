"""Training and evaluation. Submodules import torch themselves; ``coco_eval`` works without it."""
