"""Sum of a vector: per-thread sums, warp shuffles, then one value per block.

`make_reduce_sum(block, items, atomic)` builds a kernel in which each block sums a
contiguous chunk of `block * items` elements:

1. `repeat(items) * spatial(block)` hands thread t the elements t, t + block, ... of the
   chunk (consecutive threads read consecutive elements: coalesced), summed in registers;
2. five `shfl_down` steps (offsets 16, 8, 4, 2, 1) leave each warp's sum in its lane 0, which
   writes it to `warp_sums` in shared memory;
3. after `syncthreads()`, warp 0 reads the per-warp sums and combines them with `shfl_xor`
   butterfly steps, which leave the block total in every lane.

Output, chosen by `atomic`:
- `reduce_sum` (atomic=False) writes **one partial sum per block**, `partial[blockIdx.x]`;
  the caller adds the (few) partials. The summation order is fixed, so the result is
  reproducible bit for bit.
- `reduce_sum_atomic` (atomic=True) lane 0 of warp 0 does `atomic_add(out[0], total)`: `out`
  must be zero on entry and holds the whole sum afterwards; blocks add in an unspecified order.
"""
from __future__ import annotations

import numpy as np

from taskmap.lang import (atomic_add, blockIdx, f32, i32, kernel, repeat, shared_tensor, shfl_down,
                       shfl_xor, spatial, syncthreads, threadIdx)


def make_reduce_sum(block: int = 256, items: int = 4, atomic: bool = False):
    if block % 32 or not 32 <= block <= 1024:
        raise ValueError(f"block={block}: need a multiple of 32 between 32 and 1024 (whole warps)")
    chunk = block * items
    warps = block // 32

    @kernel(grid=lambda n: (n + chunk - 1) // chunk, block=block,
            name="reduce_sum_atomic" if atomic else "reduce_sum")
    def reduce_sum(n: i32, a: f32[n], out: f32[1 if atomic else (n + chunk - 1) // chunk]):
        acc = 0.0
        for i in (repeat(items) * spatial(block)).on(threadIdx.x):
            idx = blockIdx.x * chunk + i
            if idx < n:
                acc += a[idx]
        for k in range(5, unroll=True):             # offsets 16, 8, 4, 2, 1
            acc += shfl_down(acc, 16 >> k)
        warp_sums = shared_tensor(f32, [warps])
        lane = threadIdx.x % 32
        warp = threadIdx.x // 32
        if lane == 0:
            warp_sums[warp] = acc
        syncthreads()
        if warp == 0:
            total = 0.0
            if lane < warps:
                total = warp_sums[lane]
            for k in range(5, unroll=True):         # masks 1, 2, 4, 8, 16
                total += shfl_xor(total, 1 << k)
            if lane == 0:
                if atomic:
                    atomic_add(out[0], total)
                else:
                    out[blockIdx.x] = total
    return reduce_sum


reduce_sum = make_reduce_sum()
reduce_sum_atomic = make_reduce_sum(atomic=True)
CHUNK = 256 * 4                     # elements per block of the two kernels above
SIZES = ({"n": 1}, {"n": 1024}, {"n": 2500})


def make_args(rng: np.random.Generator, n: int, atomic: bool = False):
    """Multiples of 1/8 in [-4, 4]: every partial sum is exact in f32, so any summation order
    gives the same bits and the reference can be compared exactly."""
    a = (rng.integers(-32, 33, n) / 8).astype(np.float32)
    return n, a, np.zeros(1 if atomic else (n + CHUNK - 1) // CHUNK, np.float32)


def reference(n, a, out):
    """`out` of length 1: the atomic kernel's total; otherwise one sum per CHUNK elements."""
    x = a.astype(np.float64)
    if out.shape == (1,):
        return {"out": np.array([x.sum()], np.float32)}
    chunks = np.array_split(x, np.arange(CHUNK, n, CHUNK))
    return {"out": np.array([c.sum() for c in chunks], np.float32)}


if __name__ == "__main__":
    print(reduce_sum)
