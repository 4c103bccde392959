"""Epilogue fusion: an injective consumer applied where the anchor stores the value it reads.

An anchor step's output y that is no graph output and has one reading node c — a one-node
injective step whose operator maps y's elements one-to-one onto its output z (the Task's
`inverse_map` for that input) and reads y at one index per element — merges into the anchor:
every store `y[i] = v` of its kernels becomes `t = v; z[inv(i)] = c's definition at inv(i)
with y's element t` (spec.passes.replace_tensor), and z replaces y among the plan's outputs.
Refused (y stays materialized) when a kernel reaches y other than by plain stores
(`access.refusal`: it also loads it, or an atomic accumulates into it), or when c reads
another output of the same step, or when a step between the two reads another output of it
(top_k's indices: moved to c's place, the step would write them after that reader). The
merged step runs where c ran (c's other inputs are ready there). Repeats until nothing
merges, so chains of consumers apply one after another.
"""
from __future__ import annotations

from taskmap.spec import ir
from taskmap.spec.graph import Graph
from taskmap.spec.ops.compute import substitute
from taskmap.spec.passes import replace_tensor

from ..schedules import Launch, Plan, Tensor
from ..schedules.injective import fresh_var
from .access import bindings, names_in, refusal, reindex
from .node_compute import NodeCompute, bind, external_values, node_compute, rebound, value_buffer
from .step import Step, merged_nodes


def fuse_epilogues(graph: Graph, steps: tuple[Step, ...]) -> tuple[Step, ...]:
    steps = list(steps)
    while (merge := _candidate(graph, steps)) is not None:
        anchor, consumer, fused = merge
        steps[consumer] = fused
        del steps[anchor]
    return tuple(steps)


def _candidate(graph: Graph, steps: list[Step]):
    types, users = graph.types(), graph.users()
    owner = {n.name: k for k, s in enumerate(steps) for n in s.nodes}
    for a, s in enumerate(steps):
        if s.anchor is None:
            continue
        for y in s.outputs:
            readers = {u.name for u in users.get(y, ())}
            if y in graph.outputs or len(readers) != 1:
                continue
            k = owner[readers.pop()]
            c = steps[k]
            compute = node_compute(c.nodes[0], types) if c.anchor is None and len(c.nodes) == 1 else None
            others = set(s.outputs) - {y}
            if compute is None or y not in dict(compute.inverse) or len(compute.loads_of(y)) != 1 or \
                    set(c.nodes[0].inputs) & others or refusal(s.plan, y, "store") is not None or \
                    any(others & set(steps[j].inputs) for j in range(a + 1, k)):
                continue
            return a, k, _applied(graph, s, compute, y)
    return None


def _applied(graph: Graph, step: Step, compute: NodeCompute, y: str) -> Step:
    """`step` with its stores of y finished by `compute` (the definition of the value z it feeds)."""
    types, plan = graph.types(), step.plan
    z = compute.node.outputs[0].name
    inverse = dict(compute.inverse)[y]
    externals = [e for e in external_values(compute.body) if e.name != y]
    launches, renamed = list(plan.launches), set()
    while bound := bindings(plan, y, launches):
        b = bound[0]
        launch = launches[b.launch]
        taken = names_in(launch.kernel)
        params = bind([value_buffer(z, types[z])] + externals, taken)
        inner = rebound(compute, params)

        def store(idx, value, b=b, inner=inner, out=params[z], taken=taken):
            j = tuple(substitute(e, dict(zip(inverse.axes, reindex(idx, b.shape, types[y].shape))))
                      for e in inverse.indices)
            t = ir.Var(fresh_var("fused", taken).name, value.dtype)
            body = ir.rewrite(inner.at(j), lambda n: t if isinstance(n, ir.Load) and n.buffer.name == y else n)
            return ir.DeclareVar(t, value), ir.Store(out, j, body)
        name = launch.kernel.name if b.launch in renamed else f"{launch.kernel.name}_{compute.node.op}"
        renamed.add(b.launch)
        kernel = replace_tensor(launch.kernel, b.param.name, tuple(params.values()), store=store,
                                kernel_name=name).verify()
        args = launch.args[:b.position] + (z,) + tuple(e.name for e in externals) + launch.args[b.position + 1:]
        launches[b.launch] = Launch(kernel, args)
    inputs = {t.name: t for t in plan.inputs}
    for e in externals:
        inputs.setdefault(e.name, Tensor(e.name, types[e.name].shape, types[e.name].dtype))
    outputs = tuple(Tensor(z, types[z].shape, types[z].dtype) if t.name == y else t for t in plan.outputs)
    return Step(step.name, merged_nodes(graph, step.nodes + (compute.node,)), step.anchor,
                Plan(tuple(inputs.values()), outputs, plan.temps, tuple(launches)))
