"""C = A @ B in f32 on CUDA cores: the SIMT matmul of the Hidet paper (ASPLOS'23, §4).

`make_matmul_simt(bm=64, bn=64, bk=8, warps=(4, 2), lanes=(4, 8))` builds a kernel whose
block computes a bm×bn tile of C with `warps` warps (256 threads by default):

- **Task mappings.** `spatial(4, 2)` places the 8 warps on a 4×2 grid of 16×32 warp tiles,
  `spatial(4, 8)` the 32 lanes of a warp on a 4×8 grid inside it, and `repeat(4, 4)` gives
  each thread a 4×4 micro tile:  `thread_map = spatial(4, 2) * spatial(4, 8) * repeat(4, 4)`
  covers the 64×64 tile once with 256 workers. Because `repeat(tm, tn)` is the innermost
  atom, task (i, j) is element (i % tm, j % tn) of the thread's accumulator. Replacing it
  by `repeat(tm, 1)` / `repeat(1, tn)` gives the same threads the rows / columns of their
  micro tile: that is how the A and B fragments are loaded.
- **Shared-memory double buffering.** Two stages of A (stored k-major, [bk, bm], so a
  thread's tm rows are contiguous) and B ([bk, bn]). The k-loop is skewed by one tile: in
  iteration t the block fetches tile t from global memory into registers, computes on tile
  t-1 (stage (t-1) % 2), then stores tile t into stage t % 2, and meets one barrier. The
  stage being written was last read in iteration t-1, before that iteration's barrier.
- **Register double buffering.** The inner loop is skewed the same way: step kk loads the
  fragments of k-slice kk into buffer kk % 2 and multiplies those of slice kk-1.
- **Bounds.** Elements of A and B outside the matrices are loaded as 0 (`select` reads the
  operand only when in range), so M, N, K need not be multiples of the tile; C stores are
  guarded.
"""
from __future__ import annotations

import numpy as np

from taskmap.lang import (blockIdx, f32, i32, kernel, register_tensor, repeat, shared_tensor, spatial,
                       syncthreads, threadIdx)


def make_matmul_simt(bm: int = 64, bn: int = 64, bk: int = 8, warps=(4, 2), lanes=(4, 8)):
    threads = warps[0] * warps[1] * 32
    if lanes[0] * lanes[1] != 32:
        raise ValueError(f"lanes={lanes}: a warp has 32 lanes")
    tm, tn = bm // (warps[0] * lanes[0]), bn // (warps[1] * lanes[1])
    if tm * warps[0] * lanes[0] != bm or tn * warps[1] * lanes[1] != bn:
        raise ValueError(f"tile {bm}x{bn} does not split into {warps} warps of {lanes} lanes evenly")
    if threads % bk or bm % (threads // bk) or threads % bn or bk % (threads // bn):
        raise ValueError(f"tile {bm}x{bn}x{bk}: the {threads} threads cannot load the A and B tiles evenly")
    block_map = spatial(*warps) * spatial(*lanes)
    thread_map = block_map * repeat(tm, tn)             # C micro tiles
    a_frag_map = block_map * repeat(tm, 1)              # the rows of a thread's micro tile
    b_frag_map = block_map * repeat(1, tn)              # its columns
    a_rows = threads // bk                              # A tile rows loaded per pass
    b_rows = threads // bn
    a_load = repeat(bm // a_rows, 1) * spatial(a_rows, bk)     # coalesced along k
    b_load = repeat(bk // b_rows, 1) * spatial(b_rows, bn)     # coalesced along n

    @kernel(grid=lambda M, N: ((N + bn - 1) // bn, (M + bm - 1) // bm), block=threads,
            name=f"matmul_simt_{bm}x{bn}x{bk}")
    def matmul_simt(M: i32, N: i32, K: i32, a: f32[M, K], b: f32[K, N], c: f32[M, N]):
        sa = shared_tensor(f32, [2, bk, bm])
        sb = shared_tensor(f32, [2, bk, bn])
        ra = register_tensor(f32, [bm // a_rows])       # tile t in flight: global -> shared
        rb = register_tensor(f32, [bk // b_rows])
        fa = register_tensor(f32, [2, tm])              # fragments of k-slices kk and kk+1
        fb = register_tensor(f32, [2, tn])
        acc = register_tensor(f32, [tm, tn])
        tid = threadIdx.x
        m0 = blockIdx.y * bm
        n0 = blockIdx.x * bn
        for i, j in repeat(tm, tn).on(0):
            acc[i, j] = 0.0
        k_tiles = (K + bk - 1) // bk
        for t in range(k_tiles + 1):
            k0 = t * bk
            if t < k_tiles:                             # fetch tile t into registers
                for i, k in a_load.on(tid):
                    ra[i // a_rows] = a[m0 + i, k0 + k] if m0 + i < M and k0 + k < K else 0.0
                for k, j in b_load.on(tid):
                    rb[k // b_rows] = b[k0 + k, n0 + j] if k0 + k < K and n0 + j < N else 0.0
            if t > 0:                                   # multiply tile t-1
                stage = (t - 1) % 2
                for kk in range(bk + 1, unroll=True):
                    if kk < bk:
                        for i, j in a_frag_map.on(tid):
                            fa[kk % 2, i % tm] = sa[stage, kk, i]
                        for i, j in b_frag_map.on(tid):
                            fb[kk % 2, j % tn] = sb[stage, kk, j]
                    if kk > 0:
                        for i, j in thread_map.on(tid):
                            acc[i % tm, j % tn] += fa[(kk - 1) % 2, i % tm] * fb[(kk - 1) % 2, j % tn]
            if t < k_tiles:                             # stage t % 2 was last read before the previous barrier
                for i, k in a_load.on(tid):
                    sa[t % 2, k, i] = ra[i // a_rows]
                for k, j in b_load.on(tid):
                    sb[t % 2, k, j] = rb[k // b_rows]
            syncthreads()
        for i, j in thread_map.on(tid):
            if m0 + i < M and n0 + j < N:
                c[m0 + i, n0 + j] = acc[i % tm, j % tn]
    return matmul_simt


matmul_simt = make_matmul_simt()
SIZES = ({"M": 1, "N": 1, "K": 1}, {"M": 64, "N": 64, "K": 16}, {"M": 70, "N": 37, "K": 13})


def make_args(rng: np.random.Generator, M: int, N: int, K: int):
    """Multiples of 1/8 in [-2, 2]: products and their sums are exact in f32 (for K < 2^14),
    so C must equal the float64 reference exactly, whatever the summation order."""
    a = (rng.integers(-16, 17, (M, K)) / 8).astype(np.float32)
    b = (rng.integers(-16, 17, (K, N)) / 8).astype(np.float32)
    return M, N, K, a, b, np.zeros((M, N), np.float32)


def reference(M, N, K, a, b, c):
    return {"c": (a.astype(np.float64) @ b.astype(np.float64)).astype(np.float32)}


if __name__ == "__main__":
    print(matmul_simt)
