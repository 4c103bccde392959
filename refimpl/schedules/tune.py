"""The tuner (issue 10): search an operator's schedule space, keep the winner in a disk cache.

    point = tune("matmul", [f16[4096, 4096]] * 2, {}, level="quick", measure=m, check=c)
    plan = schedule("matmul", types, {}, point="tuned")     # the cached winner, else the default

This module is backend-free: `measure(plan) -> seconds` times a plan (taskmap.gpu.tuning
does it on the GPU with CUDA events) and `check(plan) -> problem | None` runs the plan of a
*small* problem of the same operator (every dimension capped, `small_types`) against the
operator's NumPy reference. A candidate whose check reports a problem, or whose measure or
check raises, never wins; the default point is always a candidate.

Levels: "quick" tries the default and a handful of points, "default" a fixed pseudo-random
sample of the pruned space, "full" the whole pruned space (`template.space`). The samples are
a function of the template only (two tuners of one key try the same points) and nested.

Cache (tune_cache.py): one JSON file per key under $TASKMAP_CACHE/tuned (~/.cache/taskmap),
key = (operator, input shapes, dtypes, attributes, template, arch, taskmap version). Files
are written to a temporary name then renamed, so a reader sees a whole entry or none and two
concurrent tuners each leave a valid one. An entry that does not parse, holds another key or
names a point no longer in the space is ignored (and re-tuned by `tune`).

On the GPU: `taskmap tune matmul --dtypes f32,f16 --shapes 4096x4096,4096x4096` (docs/PERF.md).
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from taskmap.spec.ops import get

from .dispatch import schedule, template_for
from .plan import Plan
from .template import Template
from .tune_cache import ARCH, cache_key, lookup_key, store

LEVELS = ("quick", "default", "full")
QUICK_POINTS = 6
DEFAULT_POINTS = 24
SMALL_DIM = 72            # `small_types` caps each dimension near this (a multiple of 8: remainders kept)


@dataclass(frozen=True)
class Tuned:
    """What one `tune_report` found: the winning point, its time and the default's (seconds,
    None for a cache hit or a default that failed), the points tried and rejected (point ->
    reason), the wall time spent and whether the answer came from the cache."""
    point: object
    seconds: float | None
    default_seconds: float | None
    tried: int
    rejected: dict
    elapsed: float
    cached: bool


def points(template: Template, level: str = "default", arch: str = ARCH) -> tuple:
    """The points a search at `level` on `arch` tries: the default first, then the first point
    of each other kind of kernel the space holds (mma_sync and wgmma matmuls: every level weighs
    them against each other), then a sample of the rest. A point whose kind names the one arch
    it runs on (`WgmmaPoint.arch`: wgmma is sm_90a's alone) is left out elsewhere."""
    if level not in LEVELS:
        raise ValueError(f"unknown tuning level {level!r}; expected one of {', '.join(LEVELS)}")
    space = [p for p in template.space if getattr(p, "arch", arch) == arch]
    kinds = {type(template.default): template.default}
    for p in space:
        kinds.setdefault(type(p), p)
    first = tuple(kinds.values())
    others = [p for p in space if p not in first]
    order = list(range(len(others)))
    random.Random(template.name).shuffle(order)          # quick within default within full
    count = {"quick": QUICK_POINTS, "default": DEFAULT_POINTS, "full": len(space)}[level] - len(first)
    return (*first, *(others[i] for i in sorted(order[:max(0, count)])))


def small_types(op_name: str, types, attrs: dict | None = None) -> list:
    """`types` with every dimension above SMALL_DIM replaced by SMALL_DIM + (d % 8), the same
    d always mapping to the same value so that matching dimensions keep matching, and to one
    with the same remainders by 2, 4 and 8 (what vector copies and TMA rows depend on);
    `types` itself when the operator rejects the smaller shapes (an attribute fixes a size)."""
    op = get(op_name)
    small = [t.dtype[tuple(d if d <= SMALL_DIM else SMALL_DIM + d % 8 for d in t.shape)] for t in types]
    try:
        op.infer_fn(op.check_types(small), op.attributes(attrs or {}))
    except (ValueError, TypeError, LookupError):
        return list(types)
    return small


def tune_report(op_name: str, types, attrs: dict | None = None, level: str = "default", *,
                measure: Callable[[Plan], float] | None = None, check: Callable[[Plan], str | None] | None = None,
                arch: str = ARCH, progress: Callable[[str], None] | None = None, use_cache: bool = True) -> Tuned:
    """Tune operator `op_name` at these input types: the cached winner when there is one,
    else the fastest point of the search at `level` that passes `check`, then cached.
    `measure` is needed only on a miss."""
    start = time.perf_counter()
    op = get(op_name)
    types, attrs = op.check_types(types), op.attributes(attrs or {})
    template = template_for(op_name, types, attrs)
    key = cache_key(op_name, types, attrs, template, arch)
    if use_cache:
        hit = lookup_key(key, template)
        if hit is not None:
            return Tuned(hit, None, None, 0, {}, time.perf_counter() - start, True)
    if measure is None:
        raise ValueError(f"tune {op_name}: no cached point for this key and no measure to tune with; "
                         "pass measure= (taskmap.gpu.tuning measures on the GPU)")
    small = small_types(op_name, types, attrs)
    times, rejected = {}, {}
    candidates = points(template, level, arch)
    for n, point in enumerate(candidates, 1):
        problem = None
        try:
            if check is not None:
                problem = check(schedule(op_name, small, attrs, point))
            if problem is None:
                times[point] = float(measure(schedule(op_name, types, attrs, point)))
        except Exception as e:  # noqa: BLE001 — a candidate that fails to build or run is out, not fatal
            problem = f"{type(e).__name__}: {e}"
        if problem is not None:
            rejected[point] = problem
        if progress:
            progress(f"timing {n}/{len(candidates)}: {point} "
                     + (f"rejected: {problem}" if problem else f"{times[point] * 1e6:.1f} us"))
    if not times:
        raise ValueError(f"tune {op_name}: every candidate failed; first: {next(iter(rejected.values()))}")
    best = min(times, key=times.get)
    if use_cache:
        store(key, best, times[best])
    return Tuned(best, times[best], times.get(template.default), len(candidates), rejected,
                 time.perf_counter() - start, False)


def tune(op_name: str, types, attrs: dict | None = None, level: str = "default", **options):
    """The tuned point of `op_name` at these types (see `tune_report` for the options)."""
    return tune_report(op_name, types, attrs, level, **options).point


def tuned_plan(op_name: str, types, attrs: dict | None = None, level: str = "default", **options) -> Plan:
    """The plan at the tuned point (tuning first on a cache miss)."""
    return schedule(op_name, types, attrs, tune(op_name, types, attrs, level, **options))
