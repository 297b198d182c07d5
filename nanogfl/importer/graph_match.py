"""Match the convolutions of two graphs by structure alone (no layer names, no offsets).

Each graph is reduced to a DAG of convolutions whose edges pass through the parameter-free operators
(split, concat, shuffle, resize, add, ...). Every convolution gets a Merkle-style key: a hash of its own shape
(kind, kernel, stride, in/out channels) and the sorted keys of its nearest convolution ancestors, refined by
the keys of its children. Two layers get the same key exactly when they sit at the same place in graphs built
the same way, so matching keys one to one pairs the layers of the same architecture whatever each exporter
called or ordered them.
"""
from __future__ import annotations

import hashlib
from collections import Counter

from ..errors import UserError
from .graph import ConvLayer, NetGraph

# operators whose output depends on the shape of their input, not on its values
SHAPE_ONLY_OPS = frozenset(("Shape", "Size"))


class GraphMismatch(UserError):
    pass


def _digest(payload: object) -> str:
    return hashlib.sha1(repr(payload).encode()).hexdigest()


def conv_ancestors(graph: NetGraph) -> dict[str, list[str]]:
    """For each convolution (topological order), the convolutions that feed it through weight-free ops."""
    reach: dict[str, frozenset[str]] = {blob: frozenset() for blob in graph.inputs}
    ancestors: dict[str, list[str]] = {}
    for node in graph.nodes:
        upstream = frozenset().union(*(reach.get(blob, frozenset()) for blob in node.inputs))
        if node.conv is not None:
            ancestors[node.conv.name] = sorted(upstream)
            produced = frozenset((node.conv.name,))
        elif node.op_type in SHAPE_ONLY_OPS:
            produced = frozenset()
        else:
            produced = upstream
        for blob in node.outputs:
            reach[blob] = produced
    return ancestors


def upstream_keys(graph: NetGraph, with_strides: bool = True) -> dict[str, str]:
    """Convolution name -> hash of its shape (and output stride when ``with_strides`` and known) and the sorted
    upstream keys of its parents (topological order)."""
    convs = {conv.name: conv for conv in graph.convs}
    strides = graph.conv_output_strides() if with_strides else None
    keys: dict[str, str] = {}
    for name, parents in conv_ancestors(graph).items():
        conv = convs[name]
        shape = (conv.kind, conv.kernel, conv.stride, conv.in_channels, conv.out_channels,
                 round(strides[name], 3) if strides else None)
        keys[name] = _digest((shape, sorted(keys[p] for p in parents)))
    return keys


def structural_keys(graph: NetGraph, with_strides: bool = True) -> dict[str, str]:
    """Convolution name -> key: its upstream key and the keys of its children, computed from the outputs back.

    Upstream keys alone can tie: two layers reading the same tensor with the same shape (ShuffleNetV2-0.5x:
    the neck's 1x1 96->96 on C4 and the next stage's first 1x1 96->96) differ only in what they feed.
    """
    upstream = upstream_keys(graph, with_strides)
    children: dict[str, list[str]] = {name: [] for name in upstream}
    for name, parents in conv_ancestors(graph).items():
        for parent in parents:
            children[parent].append(name)
    keys: dict[str, str] = {}
    for name in reversed(list(upstream)):
        keys[name] = _digest((upstream[name], sorted(keys[c] for c in children[name])))
    return {name: keys[name] for name in upstream}


def output_convs(graph: NetGraph) -> list[ConvLayer]:
    """Convolutions no other convolution reads from (the prediction layers of a detector)."""
    feeding = {parent for parents in conv_ancestors(graph).values() for parent in parents}
    return [conv for conv in graph.convs if conv.name not in feeding]


def _census(convs: list[ConvLayer]) -> str:
    kinds = Counter(conv.kind for conv in convs)
    return f"{len(convs)} convolutions ({', '.join(f'{n} {kind}' for kind, n in sorted(kinds.items()))})"


def _first_difference(source: NetGraph, reference: NetGraph, label: str, with_strides: bool) -> str:
    # By upstream key, the first unmatched source layer in topological order has only matched ancestors, so
    # the reference layers with the same ancestors are the ones it was meant to be.
    source_keys = upstream_keys(source, with_strides)
    reference_keys = upstream_keys(reference, with_strides)
    source_convs = {c.name: c for c in source.convs}
    reference_convs = {c.name: c for c in reference.convs}
    source_parents, reference_parents = conv_ancestors(source), conv_ancestors(reference)
    matched_reference = set(source_keys.values())
    for name, key in source_keys.items():
        if key in reference_keys.values():
            continue
        parent_keys = sorted(source_keys[p] for p in source_parents[name])
        siblings = [r for r, r_key in reference_keys.items() if r_key not in matched_reference
                    and sorted(reference_keys[p] for p in reference_parents[r]) == parent_keys]
        found = f"file layer {name!r} is {source_convs[name].describe()}"
        if siblings:
            wanted = " or ".join(f"{reference_convs[r].describe()} ({r})" for r in siblings[:2])
            return f"{found} where {label} has {wanted}"
        return f"{found}, which has no counterpart at that place in {label}"
    for name, key in reference_keys.items():
        if key not in matched_reference:
            return f"{label} layer {name!r} ({reference_convs[name].describe()}) is missing from the file"
    return "the same layers appear a different number of times"


def match_layers(source: NetGraph, reference: NetGraph, label: str) -> dict[str, ConvLayer]:
    """Reference convolution name -> the source convolution in the same place. ``label`` names the reference
    architecture in error messages. Raises :class:`GraphMismatch` (one line: what differs)."""
    # Output strides join the keys when both graphs state every resize and pooling factor.
    with_strides = source.conv_output_strides() is not None and reference.conv_output_strides() is not None
    source_keys = structural_keys(source, with_strides)
    reference_keys = structural_keys(reference, with_strides)
    duplicated = [k for k, n in Counter(reference_keys.values()).items() if n > 1]
    if duplicated:  # a property of our own architecture, not of the user's file
        raise RuntimeError(f"{label}: {len(duplicated)} convolutions cannot be told apart by structure")
    if sorted(source_keys.values()) != sorted(reference_keys.values()):
        detail = _first_difference(source, reference, label, with_strides)
        raise GraphMismatch(f"{source.source} does not match {label}: the file has {_census(source.convs)}, "
                            f"the architecture {_census(reference.convs)}; first difference: {detail}")
    by_key = {key: name for name, key in source_keys.items()}
    source_convs = {c.name: c for c in source.convs}
    return {name: source_convs[by_key[key]] for name, key in reference_keys.items()}
