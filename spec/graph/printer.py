"""`print(graph)`: one line per value, in the order the graph computes them.

    graph mlp(x: f32[N, 16]) -> (y)
      const w1: f32[16, 32]  [-0.41 .. 0.39]
      h: f32[N, 32] = matmul(x, w1)                                  # mm1
      y: f32[N, 32] = relu(h)                                        # relu1
      return y
"""
from __future__ import annotations

import numpy as np

from .ir import Constant, Graph, Node, format_type


def _attr(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, tuple):
        return "[" + ", ".join(_attr(x) for x in v) + "]"
    return str(v)


def format_constant(c: Constant) -> str:
    a = c.array
    if a.size <= 6:
        summary = np.array2string(a.reshape(-1), separator=", ", precision=4)
    elif a.dtype.kind in "fiu" and a.dtype != np.uint16:
        summary = f"[{a.min():.4g} .. {a.max():.4g}]"
    else:
        summary = f"{a.size} elements"
    return f"const {c.name}: {format_type(c.type)}  {summary}"


def format_node(n: Node) -> str:
    outs = ", ".join(f"{v.name}: {format_type(v.type)}" for v in n.outputs)
    args = list(n.inputs) + [f"{k}={_attr(v)}" for k, v in n.attrs]
    return f"{outs} = {n.op}({', '.join(args)})".ljust(64) + f"  # {n.name}"


def format_graph(g: Graph) -> str:
    params = ", ".join(f"{v.name}: {format_type(v.type)}" for v in g.inputs)
    lines = [f"graph {g.name}({params}) -> ({', '.join(g.outputs)})"]
    lines += ["  " + format_constant(c) for c in g.constants]
    lines += ["  " + format_node(n) for n in g.nodes]
    lines.append(f"  return {', '.join(g.outputs)}")
    return "\n".join(lines)
