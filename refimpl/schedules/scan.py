"""cumsum: a warp per line scans it 32 elements at a time.

The input is viewed as [outer, n, inner] (rows.py's view); every (outer, inner) pair is a line
of n elements along the axis, and each warp of the block takes one. Chunk c holds positions
32c .. 32c + 31 along the scan direction (from the end with reverse): each lane loads its
element into the compute type, five `shfl_up` steps make the chunk's inclusive prefix sums
(Hillis-Steele), a lane writes the running total of the chunks before plus its prefix (the
exclusive one is its neighbour's prefix, `shfl_up` by one), and the chunk's total (lane 31's
prefix, `shfl_idx`) joins the running total. O(n / 32) steps per line, f16/bf16 summed in f32
and rounded once per output, integers wrapping in their own type.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from taskmap.lang import blockIdx, f32, i32, kernel, shfl_idx, shfl_up, threadIdx
from taskmap.spec.ops.reduce import normalize_axes

from .plan import Launch, Plan, Tensor, View
from .space import Resources, product, register_estimate
from .template import Template


@dataclass(frozen=True)
class ScanPoint:
    """`threads // 32` lines per block."""
    threads: int = 128


def make_cumsum_kernel(dtype, exclusive: bool, reverse: bool, threads: int, inner: int):
    """kernel(outer, n, x[outer, n·inner], y[outer, n·inner]): a line per warp."""
    acc_t = f32 if dtype.is_float else dtype
    lines = threads // 32
    name = f"cumsum_{dtype.short}{'_exclusive' if exclusive else ''}{'_reverse' if reverse else ''}_w{lines}" \
        + (f"_in{inner}" if inner > 1 else "")

    @kernel(grid=lambda outer: (outer * inner + lines - 1) // lines, block=threads, name=name)
    def cumsum_kernel(outer: i32, n: i32, x: dtype[outer, n * inner], y: dtype[outer, n * inner]):
        lane = threadIdx.x % 32
        line = blockIdx.x * lines + threadIdx.x // 32
        total: acc_t = 0                                 # the sum of the chunks before
        if line < outer * inner:
            for c in range((n + 31) // 32):
                p = c * 32 + lane
                m = n - 1 - p if reverse else p
                v: acc_t = 0
                if p < n:
                    v = acc_t(x[line // inner, m * inner + line % inner])
                s = v
                for k in range(5, unroll=True):
                    other = shfl_up(s, 1 << k)
                    if lane >= 1 << k:
                        s = s + other
                before = shfl_up(s, 1)
                if p < n:
                    if exclusive:
                        y[line // inner, m * inner + line % inner] = dtype(total + before if lane > 0 else total)
                    else:
                        y[line // inner, m * inner + line % inner] = dtype(total + s)
                total = total + shfl_idx(s, 31)
    return cumsum_kernel


def cumsum_plan(op, types, attrs, point: ScanPoint) -> Plan:
    x = Tensor("x", types[0].shape, types[0].dtype)
    (a,) = normalize_axes(op, (attrs["axis"],), max(1, len(x.shape)))     # a 0-d x scans as one element
    outer, n, inner = math.prod(x.shape[:a]), x.shape[a] if x.shape else 1, math.prod(x.shape[a + 1:])
    kernel_ = make_cumsum_kernel(x.dtype, bool(attrs["exclusive"]), bool(attrs["reverse"]), point.threads, inner)
    y = Tensor("y", x.shape, x.dtype)
    return Plan((x,), (y,), (), (Launch(kernel_, (outer, n, View("x", (outer, n * inner)),
                                                  View("y", (outer, n * inner)))),))


def scan_resources(p: ScanPoint) -> Resources | None:
    return Resources(p.threads, 0, register_estimate(4)) if p.threads % 32 == 0 else None


SCAN_TEMPLATE = Template("cumsum_warp_scan", ("cumsum",), lambda types, attrs: True,
                         tuple(product(ScanPoint, threads=(32, 128, 256, 512))), ScanPoint(), scan_resources,
                         cumsum_plan)
