"""`taskmap tune OP --dtypes f32,f16 --shapes 4096x4096,4096x4096 [--level quick|default|full]`:
tune an operator's schedule on the GPU (refimpl.schedules.tune does the search and the cache)
and report the tuned point against the default point and torch in the same run.

Every candidate's kernels (the full problem's and the small check problem's) are compiled
ahead by a process pool (nvcc is the slow part; progress "compiling N/M"), into the cubin
disk cache the runtime then reads. Each candidate is first run on the small problem with
NumPy inputs and compared with the operator's NumPy reference (SPEC §11.3's tolerances), then
timed with CUDA events on device buffers through prepared launches (gpu.tuning, which
taskmap.compile(tune=...) and torch.compile's max-autotune use too); torch's time is taken
on torch CUDA tensors of the same shapes.
"""
from __future__ import annotations

import sys
import time

from taskmap.spec import dtypes as dt

from . import bench_ops


def tune_one(op_name: str, types, attrs: dict, level: str, torch, progress=print) -> dict:
    """Tune on the GPU (gpu.tuning's measure and check); the tuned, default and torch times
    (microseconds) and the point."""
    from taskmap import gpu
    from taskmap.gpu import tuning
    from taskmap.gpu.build import compile_ahead
    from taskmap.refimpl.schedules import schedule, tune_report
    arch = gpu.runtime.device_limits()["arch"]
    start = time.perf_counter()
    if compile_ahead(tuning.candidate_sources(op_name, types, attrs, level, arch), arch,
                     lambda line: progress(f"\r{line}", end="")):
        progress("")
    report = tune_report(op_name, types, attrs, level, measure=tuning.measure, check=tuning.checker(op_name, attrs),
                         arch=arch, progress=lambda line: progress(f"  {line}"))
    result = {"point": report.point, "cached": report.cached, "tried": report.tried,
              "rejected": len(report.rejected), "tune_s": time.perf_counter() - start,
              "tuned_us": tuning.measure(schedule(op_name, types, attrs, report.point)) * 1e6,
              "default_us": tuning.measure(schedule(op_name, types, attrs)) * 1e6}
    baseline = next((i for i in bench_ops.bench_items() if i.op == op_name and i.attrs == attrs), None)
    if baseline is not None:
        gen = torch.Generator(device="cuda").manual_seed(0)
        inputs = [torch.randn(t.shape, device="cuda", generator=gen).to(bench_ops.torch_dtype(torch, t.dtype))
                  for t in types]
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
