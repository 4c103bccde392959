"""`taskmap tune OP --dtypes f32,f16 --shapes 4096x4096,4096x4096 [--level quick|default|full]`:
tune an operator's schedule on the GPU (refimpl.schedules.tune does the search and the cache)
and report the tuned point against the default point and torch in the same run.

Every candidate's kernels (the full problem's and the small check problem's) are compiled
ahead by a process pool (nvcc is the slow part; progress "compiling N/M"), into the cubin
disk cache the runtime then reads. Each candidate is first run on the small problem with
NumPy inputs and compared with the operator's NumPy reference (the op cases' tolerances),
then timed with CUDA events on torch CUDA tensors through prepared calls (bench_ops).
"""
from __future__ import annotations

import math
import sys
import time

import numpy as np

from taskmap.spec import dtypes as dt

from . import arrays, bench_ops
from .op_case import DEFAULT_TOLERANCE


def compile_ahead(plans, arch: str, progress) -> None:
    """Compile every kernel of `plans` into the cubin cache, in parallel processes."""
    from taskmap.gpu.build import compile_ahead as compile_sources
    from taskmap.gpu.emit import emit_kernel
    if compile_sources({emit_kernel(k).source for plan in plans for k in plan.kernels}, arch,
                       lambda line: progress(f"\r{line}", end="")):
        progress("")


def checker(op, attrs: dict):
    """check(plan) -> problem | None: the plan on the GPU vs the NumPy reference."""
    from taskmap import gpu
    from taskmap.refimpl.schedules import run

    def check(plan):
        types = [t.dtype[t.shape] for t in plan.inputs]
        inputs = op.sample(np.random.default_rng(0), types, **attrs)
        outputs = [arrays.garbage(t.shape, t.dtype) for t in plan.outputs]
        run(plan, *inputs, *outputs, launch=gpu.launch)
        depth = max(1, math.prod(types[0].shape) // max(1, math.prod(plan.outputs[0].shape)))
        for t, got, want in zip(plan.outputs, outputs, op.reference(*inputs, **attrs)):
            tol = DEFAULT_TOLERANCE.get(t.dtype, 0.0)
            expected = arrays.as_values(np.asarray(want).astype(t.dtype.storage), t.dtype)
            result = arrays.compare(t.name, np.asarray(got), expected, t.dtype, not t.dtype.is_float, tol,
                                    tol * math.sqrt(depth))
            if not result.ok:
                return result.message
        return None
    return check


def tune_one(op_name: str, types, attrs: dict, level: str, torch, progress=print) -> dict:
    """Tune on the GPU; the tuned, default and torch times (microseconds) and the point."""
    from taskmap import gpu
    from taskmap.refimpl.schedules import points, schedule, template_for, tune_report
    from taskmap.refimpl.schedules.tune import small_types
    from taskmap.spec.ops import get
    op = get(op_name)
    arch = gpu.runtime.device_limits()["arch"]
    gen = torch.Generator(device="cuda").manual_seed(0)
    inputs = [torch.randn(t.shape, device="cuda", generator=gen).to(bench_ops.torch_dtype(torch, t.dtype))
              for t in types]
    outs = [torch.empty(t.shape, dtype=bench_ops.torch_dtype(torch, t.dtype), device="cuda")
            for t in op.infer(types, **attrs)]

    def measure(plan):
        go = bench_ops.prepare_plan(plan, {p.name: a for p, a in zip(plan.inputs + plan.outputs, [*inputs, *outs])},
                                torch, gpu)
        return gpu.time_kernel(lambda s: go(), repeat=10, warmup=2)["median_us"] * 1e-6

    start = time.perf_counter()
    candidates = points(template_for(op_name, types, attrs), level)
    small = small_types(op_name, types, attrs)
    compile_ahead([schedule(op_name, ts, attrs, p) for p in candidates for ts in (types, small)], arch, progress)
    report = tune_report(op_name, types, attrs, level, measure=measure, check=checker(op, attrs), arch=arch)
    result = {"point": report.point, "cached": report.cached, "tried": report.tried,
              "rejected": len(report.rejected), "tune_s": time.perf_counter() - start,
              "tuned_us": measure(schedule(op_name, types, attrs, report.point)) * 1e6,
              "default_us": measure(schedule(op_name, types, attrs)) * 1e6}
    baseline = next((i for i in bench_ops.bench_items() if i.op == op_name), None)
    if baseline is not None:
        result["baseline"] = baseline.baseline
        result["baseline_us"] = gpu.time_kernel(lambda s: baseline.torch_fn(torch, *inputs), repeat=10)["median_us"]
    return result


def main(op_name: str, dtypes: list[str], shapes: list[tuple], attrs: dict, level: str) -> int:
    from taskmap import gpu
    reason = gpu.unavailable_reason()
    if reason:
        print(f"taskmap tune: no GPU to tune on ({reason})", file=sys.stderr)
        return 2
    import torch
    gpu.runtime.driver()                        # the primary context, shared with torch
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    for name in dtypes:
        t = dt.by_name(name)
        types = [t[s] for s in shapes]
        r = tune_one(op_name, types, attrs, level, torch, progress=lambda m, end="\n": print(m, end=end, flush=True))
        line = (f"{op_name} {name} {' x '.join('x'.join(map(str, s)) for s in shapes)} [{level}]: "
                f"tuned {r['tuned_us']:.1f} us, default {r['default_us']:.1f} us "
                f"({r['default_us'] / r['tuned_us']:.2f}x)")
        if "baseline" in r:
            line += f", {r['baseline']} {r['baseline_us']:.1f} us (tuned/baseline {r['baseline_us'] / r['tuned_us']:.3f}x)"
        print(line + f"; {r['point']}; " + ("cached" if r["cached"] else
              f"tuned in {r['tune_s']:.1f} s over {r['tried']} points, {r['rejected']} rejected"))
    return 0
