"""fold_batch_norm: batch_norm(conv2d(x, w, b)) with constant parameters becomes one conv2d.

y = (conv(x, w) + b - mean) * s + bias with s = scale / sqrt(var + epsilon) per output
channel, so conv(x, w * s) + ((b - mean) * s + bias) is the same function: the weights and
bias are rescaled once at compile time (in float64, rounded once to the weights' dtype). Only
a conv2d whose output nothing else reads is folded (it disappears).
"""
from __future__ import annotations

import numpy as np

from ...ops.registry import to_storage, values_of
from ..ir import Constant, Graph, Node


def _fold(conv: Node, bn: Node, arrays: dict, types: dict):
    w_type = types[conv.inputs[1]]
    w = values_of(arrays[conv.inputs[1]], w_type.dtype)
    scale, bias, mean, var = (values_of(arrays[i], types[i].dtype) for i in bn.inputs[1:])
    b = values_of(arrays[conv.inputs[2]], types[conv.inputs[2]].dtype) if len(conv.inputs) > 2 else 0.0
    s = scale / np.sqrt(var + bn.attributes["epsilon"])
    new_w = to_storage(w * s.reshape(-1, 1, 1, 1), w_type.dtype)
    new_b = to_storage((b - mean) * s + bias, w_type.dtype)
    return new_w, new_b


def fold_batch_norm(g: Graph) -> Graph:
    """batch_norm of a conv2d's output (constant parameters) folded into the conv's weights."""
    arrays, types, users, producers = g.constant_arrays(), g.types(), g.users(), g.producers()
    constants, nodes, folded = list(g.constants), [], set()
    for n in g.nodes:
        conv = producers.get(n.inputs[0]) if n.op == "batch_norm" else None
        if conv is None or conv.op != "conv2d" or len(users[n.inputs[0]]) != 1 or n.inputs[0] in g.outputs \
                or not all(i in arrays for i in conv.inputs[1:] + n.inputs[1:]):
            nodes.append(n)
            continue
        new_w, new_b = _fold(conv, n, arrays, types)
        w_name, b_name = f"{conv.inputs[1]}*{n.name}", f"{conv.name}.bias*{n.name}"
        constants += [Constant.of(w_name, new_w), Constant.of(b_name, new_b)]
        folded.add(id(conv))
        nodes.append(Node(conv.name, "conv2d", (conv.inputs[0], w_name, b_name), n.outputs, conv.attrs))
    # each new conv2d takes its batch_norm's place, which comes after the conv's input
    return g.replace(constants=constants, nodes=[n for n in nodes if id(n) not in folded])
