"""Row kernels: reductions, softmax, log-softmax, layer norm and RMS norm along one axis.

The input is viewed as [outer, n, inner] and reduced along n; every (outer, inner) pair is a
**row**. `make_row_kernel(kind, dtype, out, per, threads, vec, inner, ...)` builds the kernel
of one kind:

- reductions (`sum prod max min argmax argmin`, `sum` with `divide` for mean) write one value
  per row; norms (`softmax log_softmax layer_norm rms_norm`) write the whole row.
- **Row per warp or per block** (`per`; `RowPoint.layout` picks by row length): a warp's 32
  lanes, or all of a block's threads, stride through the row (neighbouring lanes on
  neighbouring elements: coalesced) with a thread-private accumulator in f32 (integers:
  their own type).
- **Combining** is a butterfly of `shfl_xor` steps, after which every lane holds the same
  bits (each step adds the same two operands, in either order). A block then puts each warp's
  value in shared memory, every warp reads them all back into its lanes and runs the same
  butterfly again. argmax/argmin carry the index (ties: the smaller), softmax carries
  (max, sum of exp(x - max)) and rescales when the max grows (online softmax: one pass over
  a streamed row; a held row takes the max, then the sum of exp(x - max): two passes over
  registers, one exp per element instead of two).
- Layer and group norm run the reduction twice in one loop (mean, then the mean square
  deviation: the two-pass formula, exact for large means); the norms then stream the row
  once more. A group norm row is a (sample, group): its channels' elements, contiguous.
- **Rows held in registers** (`held`: the row length, for norms whose row fits in
  `RowPoint.cache` elements per thread): each thread loads its chunks once into a register
  tensor and every pass and the output read them there, so the row crosses global memory
  once each way (the norms are memory-bound: streaming it per pass costs up to 3 reads).
  Thread t holds chunks t, t + workers, … in the order the streaming loop visits them, so
  both forms of the norms compute the same bits (softmax's differ: two passes, above). Such a kernel is built for one row length: `x` and `y`
  are declared with it, so a launch with another is refused (LaunchError), never computed
  with a partial row.
- **Vectorized rows** (inner = 1): a thread loads `vec` consecutive elements with one
  unrolled copy loop (one 8/16-byte access after the CUDA emitter) and stores its outputs
  the same way; the plan picks `vec` dividing n, so rows stay aligned and need no tail.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from taskmap.spec import dtypes as dt
from taskmap.lang import (blockIdx, exp, f32, i32, i64, kernel, log, register_tensor, rsqrt, shared_tensor,
                          shfl_xor, syncthreads, threadIdx)

from .space import Resources, product, register_estimate

REDUCTIONS = ("sum", "prod", "max", "min", "argmax", "argmin")
NORMS = ("softmax", "log_softmax", "layer_norm", "rms_norm", "group_norm")


@dataclass(frozen=True)
class RowPoint:
    """Rows shorter than `block_from` elements take a warp each (`warp_threads // 32` rows per
    block), longer ones a block of `block_threads` (a norm's block: as few as give each thread
    NORM_SHARE elements); `vec` is the widest per-thread vector; a norm's row is held in
    registers when a thread's share is at most `cache` elements."""
    warp_threads: int = 128
    block_threads: int = 512
    block_from: int = 1024
    vec: int = 8
    cache: int = 32

    def layout(self, n: int) -> tuple[str, int]:
        return ("warp", self.warp_threads) if n < self.block_from else ("block", self.block_threads)

    def norm_layout(self, n: int, vec: int) -> tuple[str, int, int]:
        """(per, threads, held) of a norm over rows of n in vec-element chunks: a block row takes
        the fewest threads, a power of two from 128 up to block_threads, giving each at most
        NORM_SHARE elements; `held` (the make_row_kernel argument) is n when a thread's chunks
        fit in `cache` elements, else 0 (the row is streamed)."""
        per, threads = self.layout(n)
        while per == "block" and threads > 128 and n <= threads // 2 * NORM_SHARE:
            threads //= 2
        workers = 32 if per == "warp" else threads
        return per, threads, n if -(-n // (workers * vec)) * vec <= self.cache else 0


# Elements per thread a norm's block aims at: measured on the H200 (docs/PERF.md, "Row norms"),
# 16 per thread (256 threads for rows of 4096) beat 32 and 8 for f32 and f16 alike: more blocks
# resident per SM hide the reductions' barriers, and the row still fits in registers.
NORM_SHARE = 16


def row_resources(p: RowPoint) -> Resources | None:
    if p.warp_threads % 32 or p.block_threads % 32 or p.vec not in (1, 2, 4, 8):
        return None
    return Resources(max(p.warp_threads, p.block_threads), 16 * (p.block_threads // 32),
                     register_estimate(2 * p.vec, p.cache))


ROW_CANDIDATES = tuple(product(RowPoint, warp_threads=(64, 128, 256), block_threads=(256, 512, 1024),
                               block_from=(256, 1024, 4096), vec=(1, 2, 4, 8), cache=(0, 32)))


def row_vec(n: int, inner: int, dtypes, widest: int) -> int:
    if inner != 1:
        return 1
    v = widest
    while v > 1 and (n % v or v * max(t.nbytes for t in dtypes) > 16):
        v //= 2
    return v


def make_row_kernel(kind: str, dtype, out, per: str = "warp", threads: int = 128, vec: int = 1, inner: int = 1,
                    divide: float = 1.0, eps: float = 1e-5, has_bias: bool = True, last: bool = False,
                    groups: tuple[int, int] = (1, 1), held: int = 0):
    """kernel(outer, n, x[outer, n·inner], gamma, beta, y): y[outer, inner] for reductions,
    y[outer, n·inner] for norms (2-d, so that with inner = 1 the row index is the last one and
    the unrolled vector loops become single 8/16-byte accesses). `divide` divides a sum (mean); `eps` is the norms' epsilon;
    gamma and beta are [n] where the norm uses them, else [1] and unread; `last`: argmax/argmin
    return the last extreme position. group_norm: rows are (sample, group) and `groups` =
    (groups, channels per group); gamma and beta are per channel, element e of a row being
    channel group · per + e // (n / per). `held`: rows of this length are held in registers
    (norms only; see the module doc), 0: streamed."""
    if kind not in REDUCTIONS + NORMS or per not in ("warp", "block") or threads % 32 or vec not in (1, 2, 4, 8) \
            or (held and (kind not in NORMS or held % vec)):
        raise ValueError(f"row kernel {kind!r} per {per} with {threads} threads, vec {vec}, held {held}: need a "
                         "known kind, per warp or block, whole warps, vec 1/2/4/8 and rows held only by norms, "
                         "in whole vectors")
    per_warp = per == "warp"
    warps = threads // 32
    rows_per_block = warps if per_warp else 1
    workers = 32 if per_warp else threads
    acc_t = f32 if dtype.is_float else dtype
    arg = kind in ("argmax", "argmin")
    online = kind in ("softmax", "log_softmax") and not held
    max_then_sum = kind in ("softmax", "log_softmax") and held     # pass 0: the max; pass 1: sum of exp(x - max)
    combine = "max_then_sum" if max_then_sum else \
        {"argmax": "max", "argmin": "min", "softmax": "online", "log_softmax": "online", "layer_norm": "sum",
         "rms_norm": "sum", "group_norm": "sum"}.get(kind, kind)
    identity = {"sum": 0.0, "prod": 1.0, "max": -math.inf, "min": math.inf, "online": -math.inf,
                "max_then_sum": -math.inf}[combine]
    if not dtype.is_float:
        lowest, highest = -2**(dtype.bits - 1), 2**(dtype.bits - 1) - 1
        identity = {"sum": 0, "prod": 1, "max": lowest, "min": highest}[combine]
    centred = kind in ("layer_norm", "group_norm")             # mean, then the mean square deviation
    passes = 2 if centred or max_then_sum else 1
    y_mid = 1 if kind in REDUCTIONS else 0
    affine = kind in ("layer_norm", "rms_norm", "group_norm")
    biased = centred and has_bias
    grouped = kind == "group_norm"
    channels = groups[0] * groups[1]
    slots = -(-held // (workers * vec)) if held else 1          # chunks a thread holds (1: streamed)
    step = workers * slots                                     # held: each chunk loop runs at most once

    @kernel(grid=lambda outer: (outer * inner + rows_per_block - 1) // rows_per_block, block=threads,
            name=f"{kind}_{dtype.short}_{per}{threads}_v{vec}" + (f"_in{inner}" if inner > 1 else "")
            + (f"_held{held}" if held else ""))
    def row_kernel(outer: i32, n: i32, x: dtype[outer, (held if held else n) * inner],
                   gamma: dtype[(channels if grouped else n) if affine else 1],
                   beta: dtype[(channels if grouped else n) if biased else 1],
                   y: out[outer, (1 if y_mid == 1 else (held if held else n)) * inner]):
        tid = threadIdx.x
        lane = tid % 32 if per_warp else tid
        row = blockIdx.x * rows_per_block + tid // 32 if per_warp else blockIdx.x
        shared = shared_tensor(acc_t, [warps])
        shared_aux = shared_tensor(i64 if arg else f32, [warps])
        r = register_tensor(dtype, [slots * vec])
        o = register_tensor(out, [vec])
        chunks = n // vec
        mean: f32 = 0.0                                  # layer / group norm: the mean; softmax: the max
        acc: acc_t = identity
        start: acc_t = identity                          # the identity of this pass's combine
        aux = i64(0) if arg else f32(0.0)                # argmax index / online softmax sum
        if row < outer * inner:
            if held:
                for j in range(slots, unroll=True):
                    for c in range(lane + j * workers, chunks, step):
                        for v in range(vec, unroll=True):
                            r[j * vec + v] = x[row // inner, (c * vec + v) * inner + row % inner]
            for p in range(passes):
                if max_then_sum:
                    start = identity if p == 0 else 0.0
                acc = start
                aux = 0
                for j in range(slots, unroll=True):
                    for c in range(lane + j * workers, chunks, step):
                        if not held:
                            for v in range(vec, unroll=True):
                                r[v] = x[row // inner, (c * vec + v) * inner + row % inner]
                        for v in range(vec, unroll=True):
                            e = acc_t(r[j * vec + v])
                            if combine == "sum":
                                if kind == "rms_norm":
                                    acc += e * e
                                elif centred:
                                    acc += e if p == 0 else (e - mean) * (e - mean)
                                else:
                                    acc += e
                            elif combine == "prod":
                                acc *= e
                            elif arg:
                                better = (e >= acc if combine == "max" else e <= acc) if last else \
                                    (e > acc if combine == "max" else e < acc)
                                if better:
                                    acc = e
                                    aux = c * vec + v
                            elif combine == "online":
                                m = max(acc, e)
                                aux = aux * exp(acc - m) + exp(e - m)
                                acc = m
                            elif combine == "max_then_sum":
                                if p == 0:
                                    acc = max(acc, e)
                                else:
                                    acc += exp(e - mean)
                            elif combine == "max":
                                acc = max(acc, e)
                            else:
                                acc = min(acc, e)
                for level in range(1 if per_warp else 2):
                    for k in range(5, unroll=True):
                        other = shfl_xor(acc, 16 >> k)
                        other_aux = shfl_xor(aux, 16 >> k) if arg or online else aux
                        if combine == "sum":
                            acc += other
                        elif combine == "prod":
                            acc *= other
                        elif arg:
                            better = (other > acc if combine == "max" else other < acc) or \
                                (other == acc and (other_aux > aux if last else other_aux < aux))
                            if better:
                                acc = other
                                aux = other_aux
                        elif combine == "online":
                            m = max(acc, other)
                            aux = aux * exp(acc - m) + other_aux * exp(other - m) if m > -math.inf else 0.0
                            acc = m
                        elif combine == "max_then_sum":
                            if p == 0:
                                acc = max(acc, other)
                            else:
                                acc += other
                        elif combine == "max":
                            acc = max(acc, other)
                        else:
                            acc = min(acc, other)
                    if not per_warp:
                        if level == 0:                       # one value per warp -> every warp's lanes
                            if lane % 32 == 0:
                                shared[tid // 32] = acc
                                if arg or online:
                                    shared_aux[tid // 32] = aux
                            syncthreads()
                            acc = shared[lane % 32] if lane % 32 < warps else start
                            if arg or online:
                                aux = shared_aux[lane % 32] if lane % 32 < warps else 0
                            syncthreads()
                if centred:
                    if p == 0:
                        mean = acc / f32(n)
                elif max_then_sum:
                    if p == 0:
                        mean = acc
                    else:                                # as the online form leaves them: max, sum
                        aux = acc
                        acc = mean
            if y_mid == 1:
                if lane == 0:
                    if arg:
                        y[row // inner, row % inner] = aux
                    elif divide != 1.0:
                        y[row // inner, row % inner] = acc / divide
                    else:
                        y[row // inner, row % inner] = acc
            else:
                scale: f32 = 0.0
                if affine:
                    scale = rsqrt(acc / f32(n) + eps)
                elif kind == "log_softmax":
                    scale = log(aux)
                else:
                    scale = 1.0 / aux                    # softmax: a multiply per element, not a divide
                for j in range(slots, unroll=True):
                    for c in range(lane + j * workers, chunks, step):
                        if not held:
                            for v in range(vec, unroll=True):
                                r[v] = x[row // inner, (c * vec + v) * inner + row % inner]
                        for v in range(vec, unroll=True):
                            e = f32(r[j * vec + v])
                            ch = row % groups[0] * groups[1] + (c * vec + v) // (n // groups[1]) if grouped else c * vec + v
                            if kind == "softmax":
                                o[v] = exp(e - acc) * scale
                            elif kind == "log_softmax":
                                o[v] = e - acc - scale
                            elif centred:
                                if biased:
                                    o[v] = (e - mean) * scale * f32(gamma[ch]) + f32(beta[ch])
                                else:
                                    o[v] = (e - mean) * scale * f32(gamma[ch])
                            else:
                                o[v] = e * scale * f32(gamma[ch])
                        for v in range(vec, unroll=True):
                            y[row // inner, (c * vec + v) * inner + row % inner] = o[v]
    return row_kernel
