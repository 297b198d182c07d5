"""The int8 sensitivity scan without a quantiser: the output error measure, the candidate groups read from an ONNX
graph, and which groups the greedy selection keeps in float (with a fake measurement)."""
from __future__ import annotations

import numpy as np
import pytest

from nanogfl.exporter.int8_scan import (
    NodeGroup,
    OutputError,
    candidate_groups,
    output_error,
    select_float_groups,
    sensitivity_scan,
)

NUM_CLASSES, REG_MAX = 3, 7
WIDTH = NUM_CLASSES + 4 * (REG_MAX + 1)


def test_output_error_counts_only_scores_that_matter_and_box_distances_in_bins():
    reference = np.zeros((4, WIDTH), np.float32)
    reference[0, 0] = 0.9  # a scored prior
    reference[1, 1] = 0.01  # below the floor on both sides: ignored
    reference[:, NUM_CLASSES:] = -10.0
    reference[:, NUM_CLASSES::REG_MAX + 1] = 10.0  # every side at bin 0
    output = reference.copy()
    output[0, 0] = 0.8
    output[1, 1] = 0.02
    output[0, NUM_CLASSES + 2] = 30.0  # prior 0, left side: bin 0 -> bin 2
    output[3, NUM_CLASSES + 5] = 30.0  # prior 3 has no score: its box does not count
    error = output_error([reference], [output], NUM_CLASSES, REG_MAX)
    assert error.probs == pytest.approx(0.1, abs=1e-6)
    assert error.box_bins == pytest.approx(2.0 / 4, abs=1e-3)  # one of the scored prior's four sides moved 2 bins
    assert output_error([reference], [reference], NUM_CLASSES, REG_MAX) == OutputError(0.0, 0.0)


def test_relative_error_is_the_mean_of_both_fractions():
    assert OutputError(0.01, 0.2).relative_to(OutputError(0.02, 0.2)) == pytest.approx(0.75)


def tiny_graph():
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    weights = [helper.make_tensor(f"w{i}", TensorProto.FLOAT, [4, 4, 1, 1], np.zeros(16).tolist()) for i in range(3)]
    nodes = [helper.make_node("Conv", ["x", "w0"], ["c0"], name="conv0"),
             helper.make_node("LeakyRelu", ["c0"], ["a0"], name="act0"),
             helper.make_node("Conv", ["a0", "w1"], ["c1"], name="conv1"),  # feeds two nodes: no activation group
             helper.make_node("Relu", ["c1"], ["a1"], name="act1"),
             helper.make_node("Add", ["a1", "c1"], ["s"], name="add"),
             helper.make_node("Conv", ["s", "w2"], ["c2"], name="predictor"),
             helper.make_node("Sigmoid", ["c2"], ["p"], name="sigmoid"),
             helper.make_node("Concat", ["p", "c2"], ["y"], name="concat", axis=1)]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 2, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 2, 2])], weights)
    return helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 13)])


def test_candidate_groups_pair_convolutions_with_their_activation_and_end_with_the_tail():
    groups = candidate_groups(tiny_graph())
    assert [g.nodes for g in groups] == [("conv0", "act0"), ("conv1",), ("predictor",), ("concat", "sigmoid")]
    assert groups[-1].label == "output tail (Concat, Sigmoid)"


GROUPS = [NodeGroup(name, (name,)) for name in ("a", "b", "c", "d", "e")]
# Fake model: keeping a group in float removes its share of the error; "d" interacts badly with "a".
SHARE = {"a": 0.5, "b": 0.3, "c": 0.1, "d": 0.35, "e": -0.1}
BASE = OutputError(1.0, 1.0)


def fake_measure(calls: list[list[str]]):
    def measure(nodes: list[str]) -> OutputError:
        calls.append(nodes)
        left = 1.0 - sum(SHARE[n] for n in nodes) + (0.4 if {"a", "d"} <= set(nodes) else 0.0)
        return OutputError(left, left)
    return measure


def test_scan_measures_each_group_alone_and_sorts_the_most_helpful_first():
    calls: list[list[str]] = []
    rows = sensitivity_scan(GROUPS, fake_measure(calls), BASE, log=lambda line: None)
    assert calls == [["a"], ["b"], ["c"], ["d"], ["e"]]
    assert [row.group.label for row in rows] == ["a", "d", "b", "c", "e"]
    assert rows[0].relative == pytest.approx(0.5)


def test_selection_keeps_groups_until_the_target_and_skips_one_that_does_not_help():
    rows = sensitivity_scan(GROUPS, fake_measure([]), BASE, log=lambda line: None)
    calls: list[list[str]] = []
    selection = select_float_groups(rows, fake_measure(calls), BASE, target=0.15, max_groups=4,
                                    log=lambda line: None)
    assert [g.label for g in selection.kept] == ["a", "b", "c"]  # d made it worse together with a; e never helps
    assert selection.nodes_to_exclude == ["a", "b", "c"]
    assert selection.steps[-1][2] == pytest.approx(0.1)
    assert ["a", "b", "c", "e"] not in calls  # e alone is worse than nothing: never tried


def test_selection_stops_at_max_groups_and_at_a_met_target():
    rows = sensitivity_scan(GROUPS, fake_measure([]), BASE, log=lambda line: None)
    assert len(select_float_groups(rows, fake_measure([]), BASE, 0.0, 1, log=lambda line: None).kept) == 1
    assert select_float_groups(rows, fake_measure([]), BASE, 2.0, 5, log=lambda line: None).kept == []


def test_calibration_chunks_divide_the_image_count():
    from nanogfl.exporter.int8_quant import chunk_size

    assert [chunk_size(n) for n in (1, 7, 100, 200, 209)] == [1, 7, 20, 20, 19]
