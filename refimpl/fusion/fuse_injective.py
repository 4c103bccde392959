"""Injective chains: neighbouring injective nodes left after the anchor fusions, one kernel each.

Among the one-node injective steps, a node whose output has one reading node — another such
step — and is no graph output merges into its reader; the groups are trees, each computing
its root's output. A group's definition is the root's with every load of a value inside the
group replaced by that value's definition at the load's index (composition of compute
definitions), scheduled by the generic injective schedule (schedules.generic.injective_plan)
as one kernel; only the root's output is materialized.
"""
from __future__ import annotations

from taskmap.spec import ir
from taskmap.spec.graph import Graph
from taskmap.spec.ops.compute import Compute, Task, TensorInput

from ..schedules.generic import injective_plan
from ..schedules.injective import DEFAULT
from .node_compute import NodeCompute, external_values, node_compute, rebind
from .step import Step, merged_nodes, rename


def fuse_injective(graph: Graph, steps: tuple[Step, ...]) -> tuple[Step, ...]:
    types, users = graph.types(), graph.users()
    computes = {s.nodes[0].name: node_compute(s.nodes[0], types) for s in steps if s.anchor is None and len(s.nodes) == 1}
    computes = {n: c for n, c in computes.items() if c is not None}
    reader: dict[str, str] = {}                 # node -> the node of the same group that reads its output
    for name, c in computes.items():
        v = c.node.outputs[0].name
        readers = {u.name for u in users.get(v, ())}
        if v not in graph.outputs and len(readers) == 1 and next(iter(readers)) in computes:
            reader[name] = readers.pop()
    members: dict[str, list[str]] = {}           # root -> its group's nodes
    for name in computes:
        root = name
        while root in reader:
            root = reader[root]
        members.setdefault(root, []).append(name)
    out = []
    for s in steps:
        name = s.nodes[0].name
        if name in reader:
            continue                              # inlined into its group, which runs at its root
        group = members.get(name, [])
        out.append(_group_step(graph, [computes[n] for n in group], computes[name]) if len(group) > 1 else s)
    return tuple(out)


def _group_step(graph: Graph, group: list[NodeCompute], root: NodeCompute) -> Step:
    inner = {c.node.outputs[0].name: c for c in group if c is not root}

    def expand(e: ir.Expr) -> ir.Expr:
        return ir.rewrite(e, lambda n: expand(inner[n.buffer.name].at(n.indices))
                          if isinstance(n, ir.Load) and n.buffer.name in inner else n)
    body = expand(root.body)
    externals = external_values(body)
    inputs = tuple(TensorInput(f"in{k}", tuple(int(s.value) for s in b.shape), b.dtype) for k, b in enumerate(externals))
    body = rebind(body, {b.name: t.buffer for b, t in zip(externals, inputs)})
    nodes = merged_nodes(graph, [c.node for c in group])
    out = root.node.outputs[0]
    task = Task("_".join(n.op for n in nodes), inputs, (Compute("y", tuple(out.type.shape), root.axes, body),), ("y",))
    plan = injective_plan(task, DEFAULT)
    names = {t.name: b.name for t, b in zip(inputs, externals)} | {"y": out.name}
    return Step(root.node.name, nodes, None, rename(plan, names))
