"""`run_reference(graph, *inputs)`: a graph evaluated node by node through the operators'
NumPy references (float64 inside each operator, rounded once per node) — the independent
reference a compiled program is checked against, and what constant folding uses per node."""
from __future__ import annotations

import numpy as np

from ..ops import get
from .ir import Graph
from .verify import GraphError


def run_reference(g: Graph, *inputs) -> list[np.ndarray]:
    if len(inputs) != len(g.inputs):
        raise GraphError(f"graph {g.name} takes {len(g.inputs)} inputs "
                         f"({', '.join(v.name for v in g.inputs)}), got {len(inputs)}")
    env = dict(g.constant_arrays())
    env.update((v.name, np.asarray(a)) for v, a in zip(g.inputs, inputs))
    for n in g.nodes:
        outs = get(n.op).reference(*(env[i] for i in n.inputs), **n.attributes)
        env.update((v.name, a) for v, a in zip(n.outputs, outs))
    return [env[o] for o in g.outputs]
