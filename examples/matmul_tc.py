"""C = A @ B on tensor cores: f16 or bf16 inputs, f32 accumulation and output.

`make_matmul_tc(dtype=f16, bm=64, bn=64, bk=32, warps=(2, 2), stages=3, vec=8)`: a block of
`warps` warps (2×2: 128 threads) computes a bm×bn tile of C; each warp a
(bm/warps[0])×(bn/warps[1]) tile made of 16×8 `mma_sync` (m16n8k16) tiles.

- **Async pipeline (SPEC.md §5.4).** `stages` shared-memory stages of A ([bm, bk]) and B
  ([bk, bn]), filled with 16-byte `cp_async` copies (`vec` = 8 elements); copies outside
  the matrices zero-fill (`valid=`) and their source index is clamped to 0 so no address
  leaves the tensor. Iteration t of the main loop:
    1. `cp_async_wait_group(stages - 2)`: this thread's copies of tile t-(stages-1) landed;
    2. `syncthreads()`: so did every other thread's, and every warp is done with the stage
       computed in iteration t-1 — the one step 3 refills;
    3. issue tile t into stage t % stages, commit (an empty group once t ≥ k_tiles, so the
       group count stays uniform);
    4. compute tile t-(stages-1) from its stage.
  The first stages-1 iterations only fill the pipeline and the last stages-1 only drain it;
  the tile read by step 4 landed in step 1, so no copy is pending at kernel exit.
- **Fragments (SPEC.md §5.7).** `ldmatrix(x4)` loads a 16×16 A fragment: lane l points at
  row l % 16, column 8·(l // 16) of the tile (matrices: rows 0-7/8-15 × cols 0-7/8-15).
  B is row-major k×n, so `ldmatrix(x4, trans=True)` with the same addressing over
  (k, n) loads two k16×n8 B fragments at once.
- **Swizzled shared tiles.** The 8 rows one ldmatrix matrix reads sit at the same column,
  one tile row apart, which without a swizzle puts several of them in the same banks;
  `swizzle(b, 3, s)` XORs row bits into the 16-byte-chunk bits of the row-major offset, so
  the 8 chunks fall in 8 different 16-byte bank groups. Chunks stay 16-byte
  aligned and contiguous (the low 3 bits of the offset are untouched).
- **Epilogue.** The accumulator fragment layout (row g + 8·(i//2), col 2q + i%2 with
  g = lane/4, q = lane%4) *is* a task mapping: `repeat(2, 1) * spatial(8, 4) * repeat(1, 2)`
  on the lane. Composed with the warp grid and the warp's mma tiles it covers C's tile.
- **Bounds.** M is arbitrary; K and N must be multiples of `vec` (16-byte aligned rows for
  cp_async), which the kernel asserts.
"""
from __future__ import annotations

import numpy as np

from taskmap.spec import dtypes
from taskmap.lang import (auto_map, bf16, blockIdx, cp_async, cp_async_commit_group, cp_async_wait_group, f16,
                       f32, i32, kernel, ldmatrix, mma_sync, register_tensor, repeat, shared_tensor, spatial,
                       swizzle, syncthreads, threadIdx)


def row_swizzle(row_elems: int):
    """Conflict-free swizzle for a shared tile of 16-bit rows `row_elems` long (2^c 16-byte
    chunks): XOR min(c, 3) offset bits, taken from the 128-byte line number or, for rows
    longer than a line, the row number, into the chunk bits. Any 8 consecutive rows then
    place a given column chunk in 8 different 16-byte bank groups."""
    chunks = row_elems // 8
    if chunks < 2 or chunks & (chunks - 1):
        raise ValueError(f"rows of {row_elems} elements: need a power of two ≥ 16")
    log = chunks.bit_length() - 1
    return swizzle(min(log, 3), 3, max(log, 3))


def make_matmul_tc(dtype=f16, bm: int = 64, bn: int = 64, bk: int = 32, warps=(2, 2), stages: int = 3,
                   vec: int = 8):
    threads = warps[0] * warps[1] * 32
    wtm, wtn = bm // warps[0], bn // warps[1]            # warp tile
    mt_n, nt_n = wtm // 16, wtn // 8                     # mma tiles per warp
    if dtype not in (f16, bf16) or wtm % 16 or wtn % 16 or bk % 16 or stages < 2 or vec not in (2, 4, 8):
        raise ValueError(f"make_matmul_tc({dtype}, {bm}x{bn}x{bk}, warps={warps}, stages={stages}, vec={vec}): "
                         "need f16/bf16, warp tiles of multiples of 16, bk a multiple of 16, "
                         "stages ≥ 2 and 4/8/16-byte copies")
    a_copy = auto_map(bm, bk // vec, workers=threads)    # (row, chunk) of the A tile per thread
    b_copy = auto_map(bk, bn // vec, workers=threads)
    c_frag = repeat(2, 1) * spatial(8, 4) * repeat(1, 2)  # m16n8 accumulator layout, on the lane
    c_map = spatial(*warps) * repeat(mt_n, nt_n) * c_frag

    @kernel(grid=lambda M, N: ((N + bn - 1) // bn, (M + bm - 1) // bm), block=threads,
            name=f"matmul_tc_{dtype.short}_{bm}x{bn}x{bk}_s{stages}")
    def matmul_tc(M: i32, N: i32, K: i32, a: dtype[M, K], b: dtype[K, N], c: f32[M, N]):
        assert K % vec == 0 and N % vec == 0, "matmul_tc needs K and N to be multiples of vec"
        sa = shared_tensor(dtype, [stages, bm, bk], layout=row_swizzle(bk))
        sb = shared_tensor(dtype, [stages, bk, bn], layout=row_swizzle(bn))
        fa = register_tensor(dtype, [mt_n, 8])          # one 16x16 A fragment per m tile
        fb = register_tensor(dtype, [nt_n // 2, 2, 4])  # one k16xn8 B fragment per n tile, loaded in pairs
        acc = register_tensor(f32, [mt_n, nt_n, 4])
        tid = threadIdx.x
        lane = tid % 32
        warp_m = tid // 32 // warps[1] * wtm
        warp_n = tid // 32 % warps[1] * wtn
        m0 = blockIdx.y * bm
        n0 = blockIdx.x * bn
        for i, j, e in repeat(mt_n, nt_n, 4).on(0):
            acc[i, j, e] = 0.0
        k_tiles = (K + bk - 1) // bk
        for t in range(k_tiles + stages - 1):
            cp_async_wait_group(stages - 2)
            syncthreads()
            if t < k_tiles:
                for r, q in a_copy.on(tid):
                    row = m0 + r
                    col = t * bk + q * vec
                    ok = row < M and col < K
                    cp_async(sa[t % stages, r, q * vec], a[row if ok else 0, col if ok else 0], elems=vec, valid=ok)
                for r, q in b_copy.on(tid):
                    row = t * bk + r
                    col = n0 + q * vec
                    ok = row < K and col < N
                    cp_async(sb[t % stages, r, q * vec], b[row if ok else 0, col if ok else 0], elems=vec, valid=ok)
            cp_async_commit_group()
            if t >= stages - 1:
                s = (t - (stages - 1)) % stages
                for ks in range(bk // 16, unroll=True):
                    for mt in range(mt_n, unroll=True):
                        ldmatrix(fa[mt], sa[s, warp_m + mt * 16 + lane % 16, ks * 16 + lane // 16 * 8], num=4)
                    for p in range(nt_n // 2, unroll=True):
                        ldmatrix(fb[p], sb[s, ks * 16 + lane % 16, warp_n + p * 16 + lane // 16 * 8], num=4,
                                 trans=True)
                    for mt in range(mt_n, unroll=True):
                        for nt in range(nt_n, unroll=True):
                            mma_sync(fa[mt], fb[nt // 2, nt % 2], acc[mt, nt])
        for i, j in c_map.on(tid):
            if m0 + i < M and n0 + j < N:
                c[m0 + i, n0 + j] = acc[i % wtm // 16, j % wtn // 8, i % 16 // 8 * 2 + j % 2]
    return matmul_tc


matmul_tc = make_matmul_tc(f16)
matmul_tc_bf16 = make_matmul_tc(bf16)
kernel_for = {"f16": matmul_tc, "bf16": matmul_tc_bf16}
SIZES = ({"M": 16, "N": 8, "K": 16}, {"M": 64, "N": 64, "K": 64}, {"M": 37, "N": 24, "K": 40})


def make_args(rng: np.random.Generator, M: int, N: int, K: int, dtype=f16):
    """Multiples of 1/8 in [-2, 2], exact in f16 and bf16; products and sums are exact in f32,
    so C must equal the float64 reference exactly whatever order the tensor cores add in."""
    a, b = (rng.integers(-16, 17, shape) / 8 for shape in ((M, K), (K, N)))
    if dtype is bf16:
        a, b = (dtypes.to_bf16_bits(x.astype(np.float32)) for x in (a, b))
    else:
        a, b = (x.astype(np.float16) for x in (a, b))
    return M, N, K, a, b, np.zeros((M, N), np.float32)


def reference(M, N, K, a, b, c):
    if a.dtype == np.uint16:                            # bf16 bit patterns
        a, b = dtypes.from_bf16_bits(a), dtypes.from_bf16_bits(b)
    return {"c": (a.astype(np.float64) @ b.astype(np.float64)).astype(np.float32)}


if __name__ == "__main__":
    print(matmul_tc)
