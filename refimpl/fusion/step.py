"""`Step`: one fusion group of a compiled graph — the graph nodes one plan computes.

    step.name       the group's name (its anchor node's, else its last node's)
    step.nodes      the graph nodes it holds, in graph order
    step.anchor     the node whose template the plan is built on (None: an injective group)
    step.inputs     the values it reads (graph inputs, constants, other steps' outputs), in the
                    order of step.plan.inputs
    step.outputs    the values it materializes, in the order of step.plan.outputs
    step.plan       the kernel launches (refimpl.schedules.Plan) over buffers named by values

A plan's buffers are named by the graph values they hold, so a launch argument `"x"` is value
x; its temporaries are named `STEP#TEMP`, unique across the program. Values inside a group
(a fused producer's output, an anchor's output rewritten by its epilogue) are in no plan and
take no memory.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from taskmap.spec.graph import Graph, Node

from ..schedules import Launch, Plan, View

TEMP_SEPARATOR = "#"


@dataclass(frozen=True)
class Step:
    name: str
    nodes: tuple[Node, ...]
    anchor: str | None
    plan: Plan

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.plan.inputs)

    @property
    def outputs(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.plan.outputs)

    @property
    def ops(self) -> tuple[str, ...]:
        return tuple(n.op for n in self.nodes)


def node_step(node: Node, plan: Plan, anchor: bool) -> Step:
    """The step of one node whose plan `schedule` made over the operator's own buffer names:
    inputs and outputs renamed to the node's values (an input given twice, as in add(x, x),
    becomes one buffer), temporaries to `NODE#TEMP`."""
    names = {t.name: v for t, v in zip(plan.inputs, node.inputs)}
    names.update((t.name, v.name) for t, v in zip(plan.outputs, node.outputs))
    names.update((t.name, f"{node.name}{TEMP_SEPARATOR}{t.name}") for t in plan.temps)
    return Step(node.name, (node,), node.name if anchor else None, rename(plan, names))


def merged_nodes(graph: Graph, nodes) -> tuple[Node, ...]:
    """`nodes` in graph order: a fused step's nodes."""
    order = {n.name: k for k, n in enumerate(graph.nodes)}
    return tuple(sorted(nodes, key=lambda n: order[n.name]))


def rename(plan: Plan, names: dict[str, str]) -> Plan:
    """`plan` with buffer `b` called `names.get(b, b)`; inputs that become the same name merge."""
    def tensors(ts):
        out = {}
        for t in ts:
            out.setdefault(names.get(t.name, t.name), dataclasses.replace(t, name=names.get(t.name, t.name)))
        return tuple(out.values())

    def arg(a):
        if isinstance(a, str):
            return names.get(a, a)
        if isinstance(a, View):
            return View(names.get(a.name, a.name), a.shape)
        return a
    launches = tuple(Launch(launch.kernel, tuple(arg(a) for a in launch.args)) for launch in plan.launches)
    return Plan(tensors(plan.inputs), tensors(plan.outputs), tensors(plan.temps), launches)

