"""Prologue fusion: an injective producer inlined into the loads of the anchor that reads it.

A one-node injective step whose output value v has one reading node, inside an anchor step,
and is no graph output, merges into that step: every kernel of the anchor's plan that takes v
has each load `v[i]` replaced by the producer's definition at i (spec.passes.replace_tensor),
reading the producer's inputs through new parameters, and v leaves the plan. Refused (v stays
materialized) when a kernel reaches v other than by plain loads (`access.refusal`: cp_async,
ldmatrix ...). Repeats until nothing merges, so chains of producers inline one after another.
"""
from __future__ import annotations

from taskmap.spec.graph import Graph
from taskmap.spec.passes import replace_tensor

from ..schedules import Launch, Plan, Tensor
from .access import bindings, names_in, refusal, reindex
from .node_compute import NodeCompute, bind, external_values, node_compute, rebound
from .step import Step, merged_nodes


def fuse_prologues(graph: Graph, steps: tuple[Step, ...]) -> tuple[Step, ...]:
    steps = list(steps)
    while (merge := _candidate(graph, steps)) is not None:
        producer, anchor, fused = merge
        steps[anchor] = fused
        del steps[producer]
    return tuple(steps)


def _candidate(graph: Graph, steps: list[Step]):
    types, users = graph.types(), graph.users()
    owner = {n.name: k for k, s in enumerate(steps) for n in s.nodes}
    for k, s in enumerate(steps):
        if s.anchor is not None or len(s.nodes) != 1:
            continue
        compute = node_compute(s.nodes[0], types)
        if compute is None:
            continue
        v = s.nodes[0].outputs[0].name
        readers = {u.name for u in users.get(v, ())}
        if v in graph.outputs or len(readers) != 1:
            continue
        target = owner[readers.pop()]
        if steps[target].anchor is None or refusal(steps[target].plan, v, "load") is not None:
            continue
        return k, target, _inlined(graph, steps[target], compute, v)
    return None


def _inlined(graph: Graph, step: Step, compute: NodeCompute, v: str) -> Step:
    """`step` with the loads of v in its kernels replaced by `compute` (v's definition)."""
    types, plan = graph.types(), step.plan
    externals = external_values(compute.body)
    launches, renamed = list(plan.launches), set()
    while bound := bindings(plan, v, launches):
        b = bound[0]
        launch = launches[b.launch]
        name = launch.kernel.name if b.launch in renamed else f"{compute.node.op}_{launch.kernel.name}"
        renamed.add(b.launch)
        params = bind(externals, names_in(launch.kernel))
        inner = rebound(compute, params)
        kernel = replace_tensor(launch.kernel, b.param.name, tuple(params.values()),
                                load=lambda idx, b=b, inner=inner: inner.at(reindex(idx, b.shape, types[v].shape)),
                                kernel_name=name).verify()
        args = launch.args[:b.position] + tuple(e.name for e in externals) + launch.args[b.position + 1:]
        launches[b.launch] = Launch(kernel, args)
    inputs: dict[str, Tensor] = {}
    for t in plan.inputs:
        for n in ([Tensor(e.name, types[e.name].shape, types[e.name].dtype) for e in externals] if t.name == v else [t]):
            inputs.setdefault(n.name, n)
    return Step(step.name, merged_nodes(graph, step.nodes + (compute.node,)), step.anchor,
                Plan(tuple(inputs.values()), plan.outputs, plan.temps, tuple(launches)))
