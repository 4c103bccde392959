"""A graph as an executable on the interpreter: steps (fusion groups, refimpl.fusion.Step),
a memory plan, a run.

    exe = build(graph)            # graph with static shapes (passes.infer_shapes(g, dims))
    outputs = exe(*inputs)        # NumPy in, NumPy out; every kernel interpreted, checks on
    exe.kernels, exe.memory.describe()

`build` schedules each node with `schedules.schedule` (its template's default point, or the
generic injective schedule from its compute definition), one step per node; the memory plan
covers what the steps materialize (their outputs and temporaries). A node whose operator has no schedule
(a reduction with no template) is reported at build time, all of them in one error, never
computed some other way. Running allocates every node output and temporary with `empty`, so a
kernel that reads an element nobody wrote traps; the memory plan (`spec.graph.memory`) places
the same buffers in one arena by liveness, for the GPU runtime, and is checked to have no
overlap of buffers live together.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from taskmap.spec import ir
from taskmap.spec.graph import Graph, GraphError, format_type, is_static
from taskmap.spec.graph.memory import Buffer, MemoryPlan, conflicts, plan_memory
from taskmap.spec.ops import get
from taskmap.spec.ops.registry import array_dtype

from .fusion import Step, fuse, node_step
from .launch import empty
from .schedules import run, schedule, template_for
from .schedules.generic import INJECTIVE_TEMPLATE


@dataclass(frozen=True, eq=False)
class Executable:
    """`steps`: the fusion groups in launch order (refimpl.fusion.Step: name, nodes, inputs,
    outputs, plan); `memory`: the arena placement of every value a step materializes and of
    every plan temporary."""
    graph: Graph
    steps: tuple[Step, ...]
    memory: MemoryPlan

    @property
    def kernels(self) -> tuple[ir.Kernel, ...]:
        return tuple(k for s in self.steps for k in s.plan.kernels)

    def __call__(self, *inputs) -> list[np.ndarray]:
        g = self.graph
        env = dict(g.constant_arrays())
        env.update(zip((v.name for v in g.inputs), checked_inputs(g, inputs)))
        for step in self.steps:
            outs = [empty(t.shape, t.dtype) for t in step.plan.outputs]
            run(step.plan, *(env[i] for i in step.inputs), *outs)
            env.update(zip(step.outputs, outs))
        return [_written(env[o], o, self.steps) for o in g.outputs]

    def describe(self) -> str:
        fused = sum(len(s.nodes) > 1 for s in self.steps)
        lines = [f"{len(self.kernels)} kernels in {len(self.steps)} steps for {len(self.graph.nodes)} nodes"
                 + (f" ({fused} fused groups)" if fused else "")]
        for s in self.steps:
            names = ", ".join(k.name for k in s.plan.kernels)
            ops = " + ".join(s.ops)
            lines.append(f"  {s.name:<24} {ops:<30} {names}")
        lines.append(self.memory.describe())
        return "\n".join(lines)


def checked_inputs(g: Graph, inputs) -> list[np.ndarray]:
    """`inputs` as C-contiguous arrays of the graph inputs' types (GraphError naming the first
    that is not), shared by every backend's NumPy entry."""
    if len(inputs) != len(g.inputs):
        raise GraphError(f"{g.name} takes {len(g.inputs)} inputs ({', '.join(v.name for v in g.inputs)}), "
                         f"got {len(inputs)}")
    out = []
    for v, a in zip(g.inputs, inputs):
        a = np.asarray(a)
        if a.shape != v.type.shape or array_dtype(a) != v.type.dtype:
            raise GraphError(f"{g.name}: input {v.name} must be {format_type(v.type)}, got "
                             f"{a.dtype}{list(a.shape)}; convert it (e.g. .astype(np.float32))")
        out.append(a if a.flags.c_contiguous else a.copy())   # ascontiguousarray makes a 0-d array 1-d
    return out


def _written(a: np.ndarray, name: str, steps) -> np.ndarray:
    """Output `a` as a plain array; an element no kernel wrote (a schedule or a fusion that
    misses one) is an error, never returned as garbage."""
    init = getattr(a, "initialized", None)
    if init is not None and not init.all():
        step = next(s for s in steps if name in s.outputs)
        missing = np.argwhere(~init)
        raise GraphError(f"output {name}: {len(missing)} of {init.size} elements were never written by step "
                         f"{step.name} ({' + '.join(step.ops)}), the first at index {tuple(int(i) for i in missing[0])}")
    return np.array(a)


def has_schedule(op: str, types, attrs: dict) -> bool:
    """False when the operator has no template and a reduction in its definition."""
    return template_for(op, types, attrs) is not INJECTIVE_TEMPLATE or get(op).task(types, **attrs).is_injective


def unscheduled(graph: Graph) -> list[str]:
    """Nodes whose operator has no schedule (has_schedule)."""
    types, out = graph.types(), []
    for n in graph.nodes:
        ins = [types[i] for i in n.inputs]
        if not has_schedule(n.op, ins, n.attributes):
            out.append(f"  {n.name} ({n.op} on {', '.join(format_type(t) for t in ins)})")
    return out


def _memory(graph: Graph, steps: list[Step]) -> MemoryPlan:
    types, end = graph.types(), len(steps)
    last = {o: end for o in graph.outputs}
    for k, s in enumerate(steps):
        for i in s.inputs:
            last[i] = max(last.get(i, k), k)
    buffers = []
    for k, s in enumerate(steps):
        for v in s.outputs:
            t = types[v]
            buffers.append(Buffer(v, math.prod(t.shape) * t.dtype.bits // 8, k, last.get(v, k)))
        for t in s.plan.temps:
            buffers.append(Buffer(t.name, math.prod(t.shape) * t.dtype.bits // 8, k, k))
    plan = plan_memory(buffers)
    assert not conflicts(plan), conflicts(plan)
    return plan


def build(graph: Graph, fusion: bool = False, tuned: bool = False) -> Executable:
    """The executable of a verified graph with static shapes (GraphError naming what is missing);
    `tuned`: each node at the tuner's cached point for its shapes (schedule's point="tuned")."""
    dynamic = [f"{v.name}: {format_type(v.type)}" for v in graph.inputs if not is_static(v.type)]
    if dynamic:
        raise GraphError(f"{graph.name}: symbolic input dimensions ({'; '.join(dynamic)}); bind them first "
                         "with passes.infer_shapes(graph, dims)")
    missing = unscheduled(graph)
    if missing:
        raise GraphError(f"{graph.name}: no schedule yet for {len(missing)} nodes (their operators reduce and "
                         "have no template in refimpl.schedules):\n" + "\n".join(missing))
    types = graph.types()
    point = "tuned" if tuned else None
    steps = [node_step(n, schedule(n.op, [types[i] for i in n.inputs], n.attributes, point),
                       anchor=not get(n.op).task([types[i] for i in n.inputs], **n.attributes).is_injective)
             for n in graph.nodes]
    if fusion:
        steps = list(fuse(graph, tuple(steps)))
    return Executable(graph, tuple(steps), _memory(graph, steps))
