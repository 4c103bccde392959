"""CUDA-event timing: the median of many individually timed runs, warm-up excluded."""
from __future__ import annotations

import statistics

from .runtime import driver


def time_kernel(run, repeat: int = 50, warmup: int = 5, stream=None) -> dict:
    """Time `run(stream)` (any launch sequence on `stream`) with CUDA events.

    Returns median/min/max in microseconds over `repeat` runs; each run is bracketed by its
    own pair of events, so the numbers are device time, not Python time.
    """
    drv = driver()
    for _ in range(warmup):
        run(stream)
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
