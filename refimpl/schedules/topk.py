"""top_k: a warp (short rows) or a block (long rows) per row selects the k first elements one
after another.

The input is viewed as [outer, n, inner] like the row kernels (rows.py); every (outer, inner)
pair is a row of n elements. Round r finds the first element, in top_k's order, of those that
come after round r - 1's pick: each thread scans its strided share of the row (coalesced),
then a butterfly of `shfl_xor` steps leaves the warp's winner in every lane; a block puts each
warp's winner in shared memory and every warp reads them all back for a second butterfly (as
rows.py combines). Thread 0 writes the value and position. The order is total (value, then
position), so the rounds pick each element at most once and need no memory of the picks but
the last one: O(k · n / threads) steps per row. Elements are compared as a key (class, value): for
largest-first NaN is class 1 above the numbers' class 0, for smallest-first NaN is class 0
below the numbers' 1; a NaN's value reads as 0 so that NaNs tie and fall back to position.
The value written is the input element at the picked position, read again (bits as they are).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from taskmap.lang import blockIdx, f32, i32, i64, kernel, shared_tensor, shfl_xor, syncthreads, threadIdx
from taskmap.spec.ops.selection import topk_shape

from .plan import Launch, Plan, Tensor, View
from .space import Resources, product, register_estimate
from .template import Template


@dataclass(frozen=True)
class TopkPoint:
    """Rows shorter than `block_from` take a warp each (`warp_threads // 32` rows per block),
    longer ones a block of `block_threads` (as the row kernels, rows.RowPoint)."""
    warp_threads: int = 128
    block_threads: int = 512
    block_from: int = 1024

    def layout(self, n: int) -> tuple[str, int]:
        return ("warp", self.warp_threads) if n < self.block_from else ("block", self.block_threads)


def make_topk_kernel(dtype, k: int, largest: bool, per: str, threads: int, inner: int):
    """kernel(outer, n, x[outer, n·inner], values[outer, k·inner], indices[outer, k·inner]), a
    row per warp or per block (`per`)."""
    acc_t = f32 if dtype.is_float else dtype
    is_float = dtype.is_float
    per_warp = per == "warp"
    warps = threads // 32
    rows_per_block = warps if per_warp else 1
    workers = 32 if per_warp else threads
    number, nan_class = (0, 1) if largest else (1, 0)

    @kernel(grid=lambda outer: (outer * inner + rows_per_block - 1) // rows_per_block, block=threads,
            name=f"top_k_{dtype.short}_{'largest' if largest else 'smallest'}_k{k}_{per}{threads}"
            + (f"_in{inner}" if inner > 1 else ""))
    def topk_kernel(outer: i32, n: i32, x: dtype[outer, n * inner], values: dtype[outer, k * inner],
                    indices: i64[outer, k * inner]):
        tid = threadIdx.x
        lane = tid % 32 if per_warp else tid
        row = blockIdx.x * rows_per_block + tid // 32 if per_warp else blockIdx.x
        shared_v = shared_tensor(acc_t, [warps])            # a block's per-warp winners
        shared_c = shared_tensor(i32, [warps])
        shared_i = shared_tensor(i32, [warps])
        last: acc_t = 0                              # the previous round's pick: value, class, position
        last_c: i32 = 0
        last_i: i32 = -1
        if row < outer * inner:
            for r in range(k):
                best: acc_t = 0
                best_c: i32 = 0
                best_i: i32 = -1                     # -1: no candidate yet
                for m in range(lane, n, workers):
                    e = acc_t(x[row // inner, m * inner + row % inner])
                    c: i32 = number
                    if is_float:
                        if e != e:
                            c = nan_class
                            e = 0.0
                    after = last_i < 0 or last_c > c or (last_c == c and (
                        (last > e if largest else last < e) or (last == e and last_i < m)))
                    if after:
                        if best_i < 0 or c > best_c or (c == best_c and (
                                (e > best if largest else e < best) or (e == best and m < best_i))):
                            best = e
                            best_c = c
                            best_i = m
                for level in range(1 if per_warp else 2):
                    for s in range(5, unroll=True):
                        other = shfl_xor(best, 16 >> s)
                        other_c = shfl_xor(best_c, 16 >> s)
                        other_i = shfl_xor(best_i, 16 >> s)
                        if other_i >= 0 and (best_i < 0 or other_c > best_c or (other_c == best_c and (
                                (other > best if largest else other < best) or (other == best and other_i < best_i)))):
                            best = other
                            best_c = other_c
                            best_i = other_i
                    if not per_warp:
                        if level == 0:                   # each warp's winner -> every warp's lanes
                            if lane % 32 == 0:
                                shared_v[tid // 32] = best
                                shared_c[tid // 32] = best_c
                                shared_i[tid // 32] = best_i
                            syncthreads()
                            if lane % 32 < warps:
                                best = shared_v[lane % 32]
                                best_c = shared_c[lane % 32]
                                best_i = shared_i[lane % 32]
                            else:
                                best_i = -1
                            syncthreads()
                if lane == 0:
                    values[row // inner, r * inner + row % inner] = x[row // inner, best_i * inner + row % inner]
                    indices[row // inner, r * inner + row % inner] = best_i
                last = best
                last_c = best_c
                last_i = best_i
    return topk_kernel


def topk_plan(op, types, attrs, point: TopkPoint) -> Plan:
    x = Tensor("x", types[0].shape, types[0].dtype)
    a, shape = topk_shape(types, attrs)
    outer, n, inner = math.prod(x.shape[:a]), x.shape[a], math.prod(x.shape[a + 1:])
    values, indices = (Tensor(name, t.shape, t.dtype) for name, t in zip(("values", "indices"),
                                                                         op.infer(types, **attrs)))
    k = shape[a]
    per, threads = point.layout(n)
    kernel_ = make_topk_kernel(x.dtype, k, bool(attrs["largest"]), per, threads, inner)
    return Plan((x,), (values, indices), (), (Launch(kernel_, (outer, n, View("x", (outer, n * inner)),
                                                               View("values", (outer, k * inner)),
                                                               View("indices", (outer, k * inner)))),))


def topk_resources(p: TopkPoint) -> Resources | None:
    if p.warp_threads % 32 or p.block_threads % 32:
        return None
    return Resources(max(p.warp_threads, p.block_threads), 12 * (p.block_threads // 32), register_estimate(6))


TOPK_TEMPLATE = Template("top_k_select", ("top_k",), lambda types, attrs: True,
                         tuple(product(TopkPoint, warp_threads=(32, 128, 256), block_threads=(256, 512, 1024),
                                       block_from=(256, 1024, 4096))), TopkPoint(), topk_resources, topk_plan)
