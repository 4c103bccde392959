"""Schedule tuning on the GPU: the `measure` and `check` that refimpl.schedules.tune searches with,
and the tuning of every anchor of a graph (taskmap.compile(..., tune=LEVEL), torch.compile's
max-autotune).

    tune_graph(graph, "default")                       # winners cached; build(graph, tuned=True) uses them
    tune_report(op, types, attrs, level, measure=measure, check=checker(op, attrs), arch=arch)

`measure(plan)` times the plan's launches (prepared ahead) on zeroed device buffers of its own
with CUDA events; `checker(op, attrs)` runs a plan of the small problem (every dimension capped,
tune.small_types) with NumPy inputs through gpu.launch and compares it with the operator's NumPy
reference at SPEC §11.3's tolerances (registry.reduction_atol), so
a point that computes something else never wins. `tune_graph` tunes each distinct (operator,
input types, attributes) of the graph's anchors (injective nodes keep the default point: fusion
rewrites their kernels anyway) whose template has a choice to make, compiling every candidate
of every miss ahead in a process pool first; a second compile of the same model finds every
winner in the cache and tunes nothing.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from taskmap.refimpl import empty
from taskmap.refimpl.schedules import Plan, View, points, run, schedule, template_for, tune_report
from taskmap.refimpl.schedules.tune import Tuned, small_types
from taskmap.refimpl.schedules.tune_cache import ARCH, cached_point
from taskmap.spec.binding import bind
from taskmap.spec.graph import Graph
from taskmap.spec.ops import get
from taskmap.spec.ops.registry import TOLERANCE, reduction_atol, to_storage, values_of

from .build import compile_ahead
from .emit import emit_kernel
from .runtime import compile as compile_kernel
from .runtime import device_limits, driver, launch
from .timing import time_kernel


def measure(plan: Plan, repeat: int = 10) -> float:
    """Median seconds of one run of `plan` (CUDA events) on device buffers of its own: float
    inputs uniform in [-1, 1) (timing on zeros flatters a kernel), the rest zeroed."""
    drv = driver()
    rng, buffers = np.random.default_rng(0), {}
    for t in plan.inputs + plan.outputs + plan.temps:
        size = max(1, math.prod(t.shape) * t.dtype.bits // 8)
        buffers[t.name] = drv.mem_alloc(size)
        drv.memset_d8(buffers[t.name], 0, size)
        if t in plan.inputs and t.dtype.is_float:
            drv.memcpy_htod(buffers[t.name], to_storage(rng.uniform(-1, 1, t.shape), t.dtype))
    launchers = []
    for step in plan.launches:
        names = [a if isinstance(a, str) else a.name if isinstance(a, View) else None for a in step.args]
        bound = bind(step.kernel, tuple(0 if n else a for n, a in zip(names, step.args)), "tune")
        launchers.append(compile_kernel(step.kernel).launcher(
            bound, [int(buffers[n]) if n else a for n, a in zip(names, step.args)]))

    def go(stream):
        for launcher in launchers:
            launcher(stream)
    return time_kernel(go, repeat=repeat, warmup=2)["median_us"] * 1e-6


def checker(op_name: str, attrs: dict) -> Callable[[Plan], str | None]:
    """check(plan) -> the first problem, or None: the plan on the GPU vs the NumPy reference."""
    op = get(op_name)

    def check(plan: Plan) -> str | None:
        types = [t.dtype[t.shape] for t in plan.inputs]
        inputs = op.sample(np.random.default_rng(0), types, **attrs)
        outputs = [np.array(empty(t.shape, t.dtype)) for t in plan.outputs]      # garbage: unwritten shows
        run(plan, *inputs, *outputs, launch=launch)
        depth = op.task(types, **attrs).reduction_depth
        for t, got, want in zip(plan.outputs, outputs, op.reference(*inputs, **attrs)):
            problem = _mismatch(t.name, got, want, t.dtype, depth)
            if problem:
                return problem
        return None
    return check


def _mismatch(name: str, got: np.ndarray, want: np.ndarray, t, depth: int) -> str | None:
    if not t.is_float:
        bad = np.argwhere(got != want)
        return f"{name}{tuple(int(i) for i in bad[0])}: {got[tuple(bad[0])]} vs {want[tuple(bad[0])]}" \
            if bad.size else None
    g, w = values_of(got, t), values_of(want, t)
    tol = TOLERANCE[t]
    with np.errstate(invalid="ignore"):
        ok = (np.isnan(g) & np.isnan(w)) | (g == w) | (np.abs(g - w) <= reduction_atol(t, depth) + tol * np.abs(w))
    if ok.all():
        return None
    at = tuple(int(i) for i in np.argwhere(~ok)[0])
    return f"{name}{at}: {g[at]} vs the reference {w[at]} (tolerance {tol:g})"


def candidate_sources(op_name: str, types, attrs: dict, level: str, arch: str = ARCH) -> set[str]:
    """The CUDA sources of every kernel a search at `level` on `arch` runs: each candidate point's
    plan of the problem and of its small check problem (what to compile ahead). A point that
    cannot schedule this problem (a wgmma point on a K that is no multiple of 8) has none:
    tune_report rejects it with its reason."""
    template = template_for(op_name, types, attrs)
    sources = set()
    for p in points(template, level, arch):
        for ts in (types, small_types(op_name, types, attrs)):
            try:
                kernels = schedule(op_name, ts, attrs, p).kernels
            except ValueError:
                continue
            sources.update(emit_kernel(k).source for k in kernels)
    return sources


def tune_graph(graph: Graph, level: str = "default", progress: Callable[[str], None] | None = None) -> list[Tuned]:
    """Tune every distinct anchor of a static graph at `level` (see the module doc)."""
    arch = device_limits()["arch"]
    types = graph.types()
    problems = {}
    for n in graph.nodes:
        ins = [types[i] for i in n.inputs]
        if get(n.op).task(ins, **n.attributes).is_injective or len(template_for(n.op, ins, n.attributes).space) < 2:
            continue
        problems.setdefault((n.op, tuple(ins), repr(sorted(n.attributes.items()))), (n.op, ins, n.attributes))
    misses = [(op, ins, attrs) for op, ins, attrs in problems.values()
              if cached_point(op, ins, attrs, template_for(op, ins, attrs), arch) is None]
    compile_ahead(set().union(*(candidate_sources(op, ins, attrs, level, arch) for op, ins, attrs in misses)),
                  arch, progress)
    return [tune_report(op, ins, attrs, level, measure=measure, check=checker(op, attrs), arch=arch,
                        progress=progress) for op, ins, attrs in problems.values()]
