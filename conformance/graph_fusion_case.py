"""The graph form of the `fusion` case kind: a small graph through post-scheduling fusion.

    inputs: {x: f32[5, 7], w: f32[7, 3], b: f32[3]}
    nodes:
      - {op: matmul, inputs: [x, w], output: y}
      - {op: add, inputs: [y, b], output: z}
      - {op: relu, inputs: [z], output: out}
    groups: [[matmul, add, relu]]           # the fusion groups expected, each one's operators

The graph (outputs: `outputs:`, else the last node's) is built twice, with fusion and
without (refimpl.graph_exec.build); the fused program's groups must be `groups:`, and both
programs' outputs must match the graph's NumPy reference (spec.graph.reference, each
operator's reference in float64). On the interpreter every kernel runs with all checks on
and every buffer starts uninitialized, so a fused kernel that misses an element, reads out of
bounds or races fails the case. On `cuda` the fused program's plans run through gpu.launch.
Schema: conformance/README.md.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from taskmap.spec import dtypes as dt
from taskmap.spec.errors import TaskmapError
from taskmap.spec.graph import Graph, Node, Value, verify
from taskmap.spec.graph.passes import infer_shapes
from taskmap.spec.graph.reference import run_reference
from taskmap.spec.lang import TensorType
from taskmap.spec.ops import OpError, get
from taskmap.spec.ops.registry import random_array

from . import arrays
from .backends import BACKENDS
from .cases import Case, CaseInfo, Outcome
from .kernel_args import check_seed
from .op_case import DEFAULT_TOLERANCE
from .schema import YMap, check_keys, get as get_key

GRAPH_KEYS = frozenset({"inputs", "nodes", "outputs", "groups", "seed", "tolerance"})
NODE_KEYS = {"op", "inputs", "output", "outputs", "attrs"}


@dataclass
class GraphFusionCase(Case):
    graph: Graph | None = None
    groups: tuple[tuple[str, ...], ...] = ()
    seed: int = 0
    tolerance: float | None = None

    def run(self, backend: str) -> Outcome:
        from taskmap.refimpl.graph_exec import build
        reason = BACKENDS[backend].unavailable()
        if reason:
            return Outcome("skipped", reason)
        start = time.perf_counter()
        try:
            fused, unfused = build(self.graph, fusion=True), build(self.graph, fusion=False)
        except TaskmapError as e:
            return Outcome("failed", f"build: {e}")
        got_groups = tuple(s.ops for s in fused.steps)
        if got_groups != self.groups:
            return Outcome("failed", f"fusion groups {_show(got_groups)}, expected {_show(self.groups)}")
        rng = np.random.default_rng(self.seed)
        inputs = [random_array(rng, v.type) for v in self.graph.inputs]
        want = run_reference(self.graph, *inputs)
        results = {}
        try:
            if backend == "interp":
                results["unfused"] = unfused(*inputs)
            results["fused"] = fused(*inputs) if backend == "interp" else _on(fused, inputs, BACKENDS[backend].launch)
        except Exception as e:  # noqa: BLE001 — a trap in a (fused) kernel is the case's answer
            return Outcome("failed", f"{type(e).__name__}: {e}", seconds=time.perf_counter() - start)
        return self._compare(results, want, time.perf_counter() - start)

    def _compare(self, results: dict, want: list, seconds: float) -> Outcome:
        problems, max_abs, max_rel = [], 0.0, 0.0
        types = self.graph.types()
        for which, outs in results.items():
            for name, got, expected in zip(self.graph.outputs, outs, want):
                t = types[name].dtype
                tol = self.tolerance if self.tolerance is not None else DEFAULT_TOLERANCE.get(t, 0.0)
                r = arrays.compare(f"{which} {name}", np.asarray(got), arrays.as_values(np.asarray(expected).astype(
                    t.storage), t), t, not t.is_float, tol, tol)
                max_abs, max_rel = max(max_abs, r.max_abs), max(max_rel, r.max_rel)
                if not r.ok:
                    problems.append(r.message)
        return Outcome("failed" if problems else "passed", "; ".join(problems), max_abs, max_rel, seconds)


def _on(exe, inputs, launch) -> list[np.ndarray]:
    """The executable's steps through `launch` (the GPU), outputs starting as garbage."""
    from taskmap.refimpl.schedules import run
    env = dict(exe.graph.constant_arrays())
    env.update((v.name, a) for v, a in zip(exe.graph.inputs, inputs))
    for step in exe.steps:
        outs = [arrays.garbage(t.shape, t.dtype) for t in step.plan.outputs]
        run(step.plan, *(env[i] for i in step.inputs), *outs, launch=launch)
        env.update(zip(step.outputs, outs))
    return [env[o] for o in exe.graph.outputs]


def _show(groups) -> str:
    return "[" + ", ".join("[" + ", ".join(g) + "]" for g in groups) + "]"


# ---------------------------------------------------------------- building from YAML

def build(m: YMap, info: CaseInfo) -> GraphFusionCase:
    table = get_key(m, "inputs", "map")
    inputs = tuple(Value(str(name), _type(spec, table.at(name))) for name, spec in table.items())
    nodes, defined = [], {v.name for v in inputs}
    for k, spec in enumerate(get_key(m, "nodes", "list")):
        nodes.append(_node(spec, m["nodes"].at(k), k, defined))
    outputs = tuple(get_key(m, "outputs", "str-list", None) or nodes[-1].output_names if nodes else ())
    if not nodes:
        raise m.at("nodes").error("a graph fusion case needs at least one node")
    for o in outputs:
        if o not in defined:
            raise m.at("outputs").error(f"output {o!r} is not a value of the graph ({', '.join(sorted(defined))})")
    try:
        graph = infer_shapes(Graph(info.id.replace("/", "_"), inputs, outputs, tuple(nodes)))
        verify(graph)
    except (TaskmapError, OpError) as e:
        raise m.at("nodes").error(f"the graph does not verify: {e}") from None
    groups = get_key(m, "groups", "list")
    for k, g in enumerate(groups):
        if not isinstance(g, list) or not g or not all(isinstance(op, str) for op in g):
            raise groups.at(k).error(f"each group is a non-empty list of operator names, got {g!r}")
    tolerance = get_key(m, "tolerance", "number", None)
    return GraphFusionCase(info, backends=info.allowed_backends(("interp", "cuda"), ""), graph=graph,
                           groups=tuple(tuple(g) for g in groups), seed=check_seed(m, "case"),
                           tolerance=None if tolerance is None else float(tolerance))


def _type(spec, where) -> TensorType:
    """`f32[5, 7]` as a TensorType."""
    text = str(spec).replace(" ", "")
    name, _, rest = text.partition("[")
    try:
        dtype = dt.by_name(name)
        shape = tuple(int(d) for d in rest.rstrip("]").split(",")) if rest.rstrip("]") else ()
    except (ValueError, KeyError, TaskmapError):
        raise where.error(f"expected a tensor type such as f32[5, 7], got {spec!r}") from None
    if not rest.endswith("]") or any(d < 1 for d in shape):
        raise where.error(f"expected a tensor type such as f32[5, 7] (positive sizes), got {spec!r}")
    return TensorType(dtype, shape)


def _node(spec, where, k: int, defined: set) -> Node:
    if not isinstance(spec, YMap):
        raise where.error("a node is a mapping {op: ..., inputs: [...], output: NAME (or outputs: [...])}")
    what = f"node {k}"
    check_keys(spec, NODE_KEYS, what)
    try:
        op = get(get_key(spec, "op", "str", what=what))
    except OpError as e:
        raise spec.at("op").error(str(e)) from None
    ins = get_key(spec, "inputs", "str-list", what=what)
    for i in ins:
        if i not in defined:
            raise spec.at("inputs").error(f"{op.name} reads {i!r}, which no input or earlier node defines")
    if ("output" in spec) == ("outputs" in spec):
        raise where.error(f"{what} ({op.name}) needs one of `output: NAME` or `outputs: [NAMES]`")
    outs = [get_key(spec, "output", "str", what=what)] if "output" in spec else \
        get_key(spec, "outputs", "str-list", what=what)
    for o in outs:
        if o in defined:
            raise spec.at("output" if "output" in spec else "outputs").error(f"value {o!r} is defined twice")
        defined.add(o)
    attrs = dict(get_key(spec, "attrs", "map", None, what=what) or {})
    return Node.make(f"{op.name}_{k}", op.name, ins, [Value(o, None) for o in outs], attrs)


def check_no_kernel_keys(m: YMap) -> None:
    """A graph case has no kernel-case keys (they would be ignored)."""
    for key in m:
        if key in {"kernel", "sizes", "args", "prologue", "epilogue", "refused", "memory_limit_mib"}:
            raise m.at(key).error(f"`{key}:` belongs to a kernel fusion case; a graph case (it has `nodes:`) "
                                  "takes inputs, nodes, outputs, groups, seed, tolerance")

