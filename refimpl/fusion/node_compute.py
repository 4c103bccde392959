"""A graph node's compute definition over the graph's values: what the fusion passes inline.

`node_compute(node, types)` is the node's single output as `Compute`-like data — output axes
and one expression over them (the operator's Task with its intermediate computes inlined,
`schedules.generic.inline`) — whose loads read global buffers named by the node's input
values, so that definitions of neighbouring nodes compose by substitution. `bind` turns those
value buffers into fresh kernel parameters when the expression lands in a kernel.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from taskmap.spec import ir
from taskmap.spec.graph import Node
from taskmap.spec.ops import get
from taskmap.spec.ops.compute import InverseMap, substitute

from ..schedules.generic import inline
from .access import fresh_buffer


@dataclass(frozen=True)
class NodeCompute:
    node: Node
    axes: tuple[ir.Var, ...]
    body: ir.Expr                         # loads of buffers named by values
    inverse: tuple[tuple[str, InverseMap], ...]    # value -> its inverse map, where the operator gives one

    def at(self, indices) -> ir.Expr:
        return substitute(self.body, dict(zip(self.axes, indices)))

    def loads_of(self, value: str) -> set[ir.Load]:
        return {n for n in ir.walk(self.body) if isinstance(n, ir.Load) and n.buffer.name == value}


def value_buffer(name: str, t) -> ir.Buffer:
    return ir.Buffer(name, t.dtype, tuple(ir.const(s) for s in t.shape), "global")


def node_compute(node: Node, types: dict) -> NodeCompute | None:
    """The definition of a one-output injective node (None for any other node: those are
    scheduled, not inlined)."""
    op = get(node.op)
    task = op.task([types[i] for i in node.inputs], **node.attributes)
    if len(node.outputs) != 1 or len(task.outputs) != 1 or not task.is_injective:
        return None
    (c,) = task.output_computes
    renamed = {t.name: value_buffer(v, types[v]) for t, v in zip(task.inputs, node.inputs)}

    def rename(n):
        if isinstance(n, ir.Load) and n.buffer.name in renamed:
            return ir.Load(renamed[n.buffer.name], n.indices, loc=n.loc)
        return n
    body = ir.rewrite(inline(task, c.body), rename)
    inverse = tuple((v, task.inverse_map(t.name)) for t, v in zip(task.inputs, node.inputs)
                    if task.inverse_map(t.name) is not None)
    return NodeCompute(node, c.axes, body, inverse)


def external_values(e: ir.Expr) -> list[ir.Buffer]:
    """The value buffers `e` loads, in order of first use."""
    seen: dict[str, ir.Buffer] = {}
    for n in ir.walk(e):
        if isinstance(n, ir.Load) and n.buffer.scope == "global":
            seen.setdefault(n.buffer.name, n.buffer)
    return list(seen.values())


def bind(values: list[ir.Buffer], taken: set) -> dict[str, ir.Buffer]:
    """A fresh kernel parameter per value buffer (names avoid `taken`, which grows)."""
    return {b.name: fresh_buffer("in", b.dtype, tuple(int(s.value) for s in b.shape), taken) for b in values}


def rebind(e: ir.Expr, params: dict[str, ir.Buffer]) -> ir.Expr:
    """e with its loads of value buffers reading the kernel parameters `params` instead."""
    return ir.rewrite(e, lambda n: ir.Load(params[n.buffer.name], n.indices, loc=n.loc)
                      if isinstance(n, ir.Load) and n.buffer.name in params else n)


def rebound(c: NodeCompute, params: dict[str, ir.Buffer]) -> NodeCompute:
    return dataclasses.replace(c, body=rebind(c.body, params))
