"""constant_fold: nodes whose inputs are all constants become constants, computed by the
operators' NumPy references (`Operator.reference`, the independent definition).

A fold that would materialize a large tensor from small ones (an expand of a scalar to an
activation's size) is left to run as a kernel: a result is folded only if it has at most
FOLD_LIMIT elements or no more than its inputs together, so folding never inflates a model.
"""
from __future__ import annotations

import math

import numpy as np

from ...ops import get
from ..ir import Constant, Graph, Node

FOLD_LIMIT = 1 << 16


def fold_node(n: Node, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """The node's outputs computed by its operator's reference on constant inputs."""
    return list(get(n.op).reference(*arrays, **n.attributes))


def _worth_folding(n: Node, arrays: list[np.ndarray]) -> bool:
    out = sum(math.prod(v.type.shape) for v in n.outputs)
    return out <= max(FOLD_LIMIT, sum(a.size for a in arrays))


def constant_fold(g: Graph) -> Graph:
    """Nodes on constant inputs evaluated at compile time (through the NumPy references)."""
    known = g.constant_arrays()
    constants, nodes = list(g.constants), []
    for n in g.nodes:
        arrays = [known.get(i) for i in n.inputs]
        if all(a is not None for a in arrays) and _worth_folding(n, arrays):
            for v, a in zip(n.outputs, fold_node(n, arrays)):
                c = Constant.of(v.name, a)
                known[v.name] = c.array
                constants.append(c)
        else:
            nodes.append(n)
    return g.replace(constants=constants, nodes=nodes)
