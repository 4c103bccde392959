"""CUDA-event timing: the median of many individually timed runs, warm-up excluded."""
from __future__ import annotations

import statistics
import time

from .runtime import driver


def time_kernel(run, repeat: int = 50, warmup: int = 5, stream=None, warmup_s: float = 0.0) -> dict:
    """Time `run(stream)` (any launch sequence on `stream`) with CUDA events.

    Returns median/min/max in microseconds over `repeat` runs; each run is bracketed by its
    own pair of events, so the numbers are device time, not Python time. `warmup_s`: keep
    warming up until that many seconds have passed too (synchronizing after each run past
    `warmup`): a GPU that sat idle while a CPU reference ran may still be at low clocks after
    five runs of a short program.
    """
    drv = driver()
    began, done = time.perf_counter(), 0
    while done < warmup or time.perf_counter() - began < warmup_s:
        run(stream)
        done += 1
        if done >= warmup:
            drv.Context.synchronize()
    drv.Context.synchronize()
    times = []
    for _ in range(repeat):
        start, end = drv.Event(), drv.Event()
        start.record(stream)
        run(stream)
        end.record(stream)
        end.synchronize()
        times.append(start.time_till(end) * 1e3)
    return {"median_us": statistics.median(times), "min_us": min(times), "max_us": max(times), "repeat": repeat}


def time_batch(run, count: int, repeat: int = 10, stream=None) -> float:
    """Median microseconds per item of `run(stream)` that issues `count` items back to back."""
    return time_kernel(run, repeat=repeat, warmup=2, stream=stream)["median_us"] / count
