"""How far an int8 model's outputs are from fp32, and the per-layer sensitivity scan that decides which layers
stay in float: quantise everything, then for each candidate group of nodes re-quantise with that group kept in
float and measure the output error on a few images; the worst groups are kept in float until the error target
is met. The quantiser and the measurement are passed in, so the selection logic runs without ONNX Runtime."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..runtime.decode import distribution_to_distance

SCORE_FLOOR = 0.05  # the evaluation's score threshold: class probabilities below it on both sides do not matter


@dataclass(frozen=True)
class OutputError:
    """Mean |int8 - fp32| on the class probabilities that matter (either side >= SCORE_FLOOR) and on the expected
    box distances in bins (priors whose fp32 best score >= SCORE_FLOOR)."""
    probs: float
    box_bins: float

    def relative_to(self, base: OutputError) -> float:
        """Mean of the two errors, each as a fraction of ``base`` (the fully quantised model's): dimensionless."""
        return 0.5 * (self.probs / max(base.probs, 1e-12) + self.box_bins / max(base.box_bins, 1e-12))


def output_error(references: Sequence[np.ndarray], outputs: Sequence[np.ndarray], num_classes: int,
                 reg_max: int) -> OutputError:
    """The OutputError of ``outputs`` against ``references`` ([N, C + 4 * (reg_max + 1)] each), over all pairs."""
    prob_sum = prob_count = box_sum = box_count = 0.0
    for reference, output in zip(references, outputs):
        ref_probs, probs = reference[:, :num_classes], output[:, :num_classes]
        relevant = (ref_probs >= SCORE_FLOOR) | (probs >= SCORE_FLOOR)
        prob_sum += float(np.abs(ref_probs - probs)[relevant].sum())
        prob_count += int(relevant.sum())
        scored = ref_probs.max(axis=1) >= SCORE_FLOOR
        if scored.any():
            ref_dist = distribution_to_distance(reference[scored, num_classes:], reg_max)
            dist = distribution_to_distance(output[scored, num_classes:], reg_max)
            box_sum += float(np.abs(ref_dist - dist).sum())
            box_count += ref_dist.size
    return OutputError(prob_sum / max(prob_count, 1), box_sum / max(box_count, 1))


@dataclass(frozen=True)
class NodeGroup:
    """Nodes kept in float together: a convolution with the activation it feeds, or the output tail."""
    label: str
    nodes: tuple[str, ...]


def candidate_groups(model) -> list[NodeGroup]:
    """Every Conv of an ONNX ``model`` with its sole-consumer activation, in graph order, plus one group for the
    output tail (the nodes after the last convolutions: reshape / concat / sigmoid)."""
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    groups = []
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        nodes = [node.name]
        following = consumers.get(node.output[0], [])
        if len(following) == 1 and following[0].op_type in ("Relu", "LeakyRelu", "Clip", "Sigmoid", "HardSwish"):
            nodes.append(following[0].name)
        groups.append(NodeGroup(node.name, tuple(nodes)))
    tail = tuple(name for name in output_tail(model) if name not in {g.label for g in groups})
    if tail:
        groups.append(NodeGroup("output tail (" + ", ".join(sorted({_op(model, n) for n in tail})) + ")", tail))
    return groups


def _op(model, name: str) -> str:
    return next(node.op_type for node in model.graph.node if node.name == name)


def output_tail(model) -> list[str]:
    """Names of the nodes from the last convolutions (included) to the graph output."""
    producers = {out: node for node in model.graph.node for out in node.output}
    tail, pending = [], [output.name for output in model.graph.output]
    seen: set[str] = set()
    while pending:
        node = producers.get(pending.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        tail.append(node.name)
        if node.op_type != "Conv":
            pending += list(node.input)
    return [name for name in tail if name]


@dataclass(frozen=True)
class ScanRow:
    """One line of the scan: the error with ``group`` kept in float (everything else int8)."""
    group: NodeGroup
    error: OutputError
    relative: float  # error relative to the fully quantised model (1.0: no help; lower: this group matters)


@dataclass
class FloatSelection:
    """What the scan chose: the groups kept in float, and the error after each addition (in order)."""
    base: OutputError
    rows: list[ScanRow]
    kept: list[NodeGroup]
    steps: list[tuple[NodeGroup, OutputError, float]]

    @property
    def nodes_to_exclude(self) -> list[str]:
        return [name for group in self.kept for name in group.nodes]


# measure(float_nodes) quantises with those node names kept in float and returns the output error
Measure = Callable[[list[str]], OutputError]


def sensitivity_scan(groups: Sequence[NodeGroup], measure: Measure, base: OutputError,
                     log: Callable[[str], None] = print) -> list[ScanRow]:
    """One measurement per group (that group alone in float), most helpful first."""
    rows = []
    for i, group in enumerate(groups):
        error = measure(list(group.nodes))
        rows.append(ScanRow(group, error, error.relative_to(base)))
        log(f"  scan {i + 1:>3}/{len(groups)}  {rows[-1].relative:6.3f}  {group.label}")
    return sorted(rows, key=lambda row: row.relative)


def select_float_groups(rows: Sequence[ScanRow], measure: Measure, base: OutputError, target: float,
                        max_groups: int, log: Callable[[str], None] = print) -> FloatSelection:
    """Keep the most helpful groups in float, one at a time, re-measuring the whole model after each, until its
    error relative to ``base`` is at most ``target`` or ``max_groups`` are kept; a group whose addition does not
    lower the error is dropped again."""
    kept: list[NodeGroup] = []
    steps: list[tuple[NodeGroup, OutputError, float]] = []
    current = 1.0
    for row in rows:
        if current <= target or len(kept) >= max_groups:
            break
        if row.relative >= 1.0:
            break  # the rest do not help on their own
        error = measure([name for group in (*kept, row.group) for name in group.nodes])
        relative = error.relative_to(base)
        if relative < current:
            kept.append(row.group)
            steps.append((row.group, error, relative))
            current = relative
            log(f"  float +{row.group.label}: relative error {relative:.3f} (probs {error.probs:.4f}, "
                f"box {error.box_bins:.4f} bins)")
    return FloatSelection(base, list(rows), kept, steps)
