"""Post-scheduling fusion (Hidet): fusion groups of a compiled graph and the passes forming them.

    steps = [node_step(...) for each node]      # every node scheduled alone (graph_exec.build)
    steps = fuse(graph, steps)                  # PIPELINE: anchors absorb their neighbours

Each pass is a pure function (graph, steps) -> steps, in its own file; `fuse` checks after
each that the steps still compute the graph (`check`) and names a pass that breaks it.
Anchors — steps whose operator reduces (matmul, conv, reductions, softmax, norms, attention)
— keep their scheduled kernels; injective consumers are applied at their stores
(fuse_epilogues), injective producers inlined at their loads (fuse_prologues), and what is
left of the injective nodes becomes one kernel per chain (fuse_injective). Whether a tensor's
accesses can be rewritten is read off the kernel IR (access.py).
"""
from __future__ import annotations

from taskmap.spec.graph import Graph, GraphError

from .fuse_epilogues import fuse_epilogues
from .fuse_injective import fuse_injective
from .fuse_prologues import fuse_prologues
from .step import Step, node_step, rename

# Epilogues first: a consumer applied once per stored element is cheaper than a producer
# recomputed at every load of the next anchor, when one injective node could go either way.
PIPELINE = (("fuse_epilogues", fuse_epilogues), ("fuse_prologues", fuse_prologues),
            ("fuse_injective", fuse_injective))


def fuse(graph: Graph, steps: tuple[Step, ...], pipeline=PIPELINE) -> tuple[Step, ...]:
    for name, fusion_pass in pipeline:
        steps = fusion_pass(graph, steps)
        problems = check(graph, steps)
        if problems:
            raise GraphError(f"{graph.name}: fusion pass {name} broke the program: {'; '.join(problems)}")
    return steps


def check(graph: Graph, steps) -> list[str]:
    """What is wrong with `steps` as a program for `graph`: a node in no step or in two, a step
    reading a value no earlier step materializes, a graph output never materialized."""
    problems, held = [], {}
    for s in steps:
        for n in s.nodes:
            if n.name in held:
                problems.append(f"node {n.name} is in steps {held[n.name]} and {s.name}")
            held[n.name] = s.name
    problems += [f"node {n.name} is in no step" for n in graph.nodes if n.name not in held]
    ready = {v.name for v in graph.inputs} | {c.name for c in graph.constants}
    for s in steps:
        problems += [f"step {s.name} reads {v} before any step writes it" for v in s.inputs if v not in ready]
        ready |= set(s.outputs)
    problems += [f"graph output {o} is never written" for o in graph.outputs if o not in ready]
    return problems


__all__ = ["Step", "node_step", "rename", "PIPELINE", "fuse", "check"]
