"""Placeholder until the ATSS assigner lands."""
from __future__ import annotations


class ATSSAssigner:
    def __init__(self, topk: int = 9, box_scale: float = 5.0) -> None:
        self.topk = topk
        self.box_scale = box_scale
