"""Tensor-core matmul: f16/bf16 inputs, f32 accumulation (`mma_sync` m16n8k16).

`make_kernel(dtype, bm, bn, bk, warps, stages, vec, ...)`: a block of `warps` warps computes a
bm×bn tile of C; each warp a (bm/warps[0])×(bn/warps[1]) tile of 16×8 mma tiles.

- **Async pipeline (SPEC.md §5.4).** `stages` shared-memory stages of A and B, filled with
  `cp_async` copies of `vec` elements (`vec * 2` bytes); copies outside the matrices zero-fill
  (`valid=`) and their source index is clamped to 0 so no address leaves the tensor.
  Iteration t of the main loop:
    1. `cp_async_wait_group(stages - 2)`: this thread's copies of tile t-(stages-1) landed;
    2. `syncthreads()`: so did every other thread's, and every warp is done with the stage
       computed in iteration t-1 — the one step 3 refills;
    3. issue tile t into stage t % stages, commit (an empty group once t ≥ k_tiles, so the
       group count stays uniform);
    4. compute tile t-(stages-1) from its stage.
  With `vec=1` (rows that are not 4-byte aligned: odd K or N) step 3 stores the elements
  synchronously instead; the same barrier orders them.
- **Shared tiles follow the global layout** (A [bm, bk], or [bk, bm] when A is given
  transposed; B [bk, bn] or [bn, bk]), so every copy is a straight row segment, and the
  `ldmatrix` `trans` flag absorbs the orientation: non-transposed for an m-major A or n-major
  B tile, transposed otherwise (SPEC.md §5.7's fragment layouts). The addressing: for an
  m-major 16×16 A tile lane l points at row l % 16, column 8·(l // 16) (matrices rows 0-7/8-15
  × cols 0-7/8-15); for a k-major one at k row l % 8 + 8·(l // 16), m column 8·(l // 8 % 2)
  (the same four matrices, transposed). B's pair of k16×n8 fragments likewise.
- **Swizzled shared tiles.** The 8 rows one ldmatrix matrix reads sit at the same column,
  one tile row apart; `row_swizzle` XORs row bits into the 16-byte-chunk bits of the
  row-major offset so they fall in 8 different bank groups (chunks stay 16-byte aligned).
- **Epilogue.** The accumulator fragment layout (row g + 8·(i//2), col 2q + i%2 with
  g = lane/4, q = lane%4) *is* a task mapping: `repeat(2, 1) * spatial(8, 4) * repeat(1, 2)`
  on the lane. Composed with the warp grid and the warp's mma tiles it covers C's tile;
  stores are guarded, so M and N are arbitrary, and `alpha` scales on the way out.
- **Batches and split-K.** Operands are 2-d: `batch_a` (1 or `batch`) matrices of A stacked
  along the rows, likewise B and C; `blockIdx.z` = split · batch + batch index. With
  `splits` > 1 the k tiles are dealt in `splits` contiguous ranges and each writes its own
  partial C (summed by the plan's epilogue kernel).
"""
from __future__ import annotations

from taskmap.lang import (auto_map, bf16, blockIdx, cp_async, cp_async_commit_group, cp_async_wait_group, f16,
                          f32, i32, kernel, ldmatrix, mma_sync, register_tensor, repeat, shared_tensor, spatial,
                          swizzle, syncthreads, threadIdx)


# The m16n8 accumulator's layout on the lane (row g + 8·(i // 2), column 2q + i % 2, SPEC.md
# §5.7) as a task mapping over a 16×8 tile.
ACC_FRAGMENT = repeat(2, 1) * spatial(8, 4) * repeat(1, 2)


def row_swizzle(row_elems: int):
    """Conflict-free swizzle for a shared tile of 16-bit rows `row_elems` long (2^c 16-byte
    chunks): XOR min(c, 3) offset bits, taken from the 128-byte line number or, for rows
    longer than a line, the row number, into the chunk bits. Any 8 consecutive rows then
    place a given column chunk in 8 different 16-byte bank groups."""
    chunks = row_elems // 8
    if chunks < 2 or chunks & (chunks - 1) or row_elems % 8:
        raise ValueError(f"rows of {row_elems} elements: need a power of two ≥ 16")
    log = chunks.bit_length() - 1
    return swizzle(min(log, 3), 3, max(log, 3))


def make_kernel(dtype=f16, bm: int = 64, bn: int = 64, bk: int = 32, warps=(2, 2), stages: int = 3, vec: int = 8,
                *, out=f32, trans_a: bool = False, trans_b: bool = False, batch: int = 1, batch_a: int = 1,
                batch_b: int = 1, splits: int = 1, alpha: float = 1.0):
    threads = warps[0] * warps[1] * 32
    wtm, wtn = bm // warps[0], bn // warps[1]            # warp tile
    mt_n, nt_n = wtm // 16, wtn // 8                     # mma tiles per warp
    if dtype not in (f16, bf16) or wtm % 16 or wtn % 16 or bk % 16 or stages < 2 or vec not in (1, 2, 4, 8):
        raise ValueError(f"matmul_tc({dtype}, {bm}x{bn}x{bk}, warps={warps}, stages={stages}, vec={vec}): "
                         "need f16/bf16, warp tiles of multiples of 16, bk a multiple of 16, "
                         "stages ≥ 2 and 1, 2, 4 or 8-element copies")
    if batch_a not in (1, batch) or batch_b not in (1, batch) or splits < 1:
        raise ValueError(f"matmul_tc: batch_a={batch_a}, batch_b={batch_b} must be 1 or batch={batch}; splits ≥ 1")
    a_tile = (bk, bm) if trans_a else (bm, bk)
    b_tile = (bn, bk) if trans_b else (bk, bn)
    a_copy = auto_map(a_tile[0], a_tile[1] // vec, workers=threads)    # (row, chunk) of the A tile per thread
    b_copy = auto_map(b_tile[0], b_tile[1] // vec, workers=threads)
    c_map = spatial(*warps) * repeat(mt_n, nt_n) * ACC_FRAGMENT
    variant = "".join((("_ta" if trans_a else ""), ("_tb" if trans_b else ""), (f"_b{batch}" if batch > 1 else ""),
                       (f"_k{splits}" if splits > 1 else ""), ("" if out == f32 else f"_{out.short}"),
                       (f"_v{vec}" if vec != 8 else "")))

    @kernel(grid=lambda M, N: ((N + bn - 1) // bn, (M + bm - 1) // bm, batch * splits), block=threads,
            name=f"matmul_tc_{dtype.short}_{bm}x{bn}x{bk}_s{stages}{variant}")
    def matmul_tc(M: i32, N: i32, K: i32, a: dtype[batch_a * K if trans_a else batch_a * M, M if trans_a else K],
                  b: dtype[batch_b * N if trans_b else batch_b * K, K if trans_b else N],
                  c: out[splits * batch * M, N]):
        if vec > 1:
            assert (M if trans_a else K) % vec == 0 and (K if trans_b else N) % vec == 0, \
                "matmul_tc needs the rows of A and B to be multiples of vec"
        sa = shared_tensor(dtype, [stages, a_tile[0], a_tile[1]], layout=row_swizzle(a_tile[1]))
        sb = shared_tensor(dtype, [stages, b_tile[0], b_tile[1]], layout=row_swizzle(b_tile[1]))
        fa = register_tensor(dtype, [mt_n, 8])          # one 16x16 A fragment per m tile
        fb = register_tensor(dtype, [nt_n // 2, 2, 4])  # one k16xn8 B fragment per n tile, loaded in pairs
        acc = register_tensor(f32, [mt_n, nt_n, 4])
        tid = threadIdx.x
        lane = tid % 32
        warp_m = tid // 32 // warps[1] * wtm
        warp_n = tid // 32 % warps[1] * wtn
        m0 = blockIdx.y * bm
        n0 = blockIdx.x * bn
        a_base = (blockIdx.z % batch * (K if trans_a else M)) if batch_a > 1 else 0
        b_base = (blockIdx.z % batch * (N if trans_b else K)) if batch_b > 1 else 0
        for i, j, e in repeat(mt_n, nt_n, 4).on(0):
            acc[i, j, e] = 0.0
        k_tiles = (K + bk - 1) // bk
        t0 = 0
        if splits > 1:
            per_split = (k_tiles + splits - 1) // splits
            t0 = blockIdx.z // batch * per_split
            k_tiles = max(0, min(per_split, k_tiles - t0))
        for t in range(k_tiles + stages - 1):
            cp_async_wait_group(stages - 2)
            syncthreads()
            if t < k_tiles:
                k0 = (t0 + t) * bk
                for r, q in a_copy.on(tid):
                    row = a_base + (k0 + r if trans_a else m0 + r)
                    col = (m0 if trans_a else k0) + q * vec
                    ok = (k0 + r < K and col < M) if trans_a else (m0 + r < M and col < K)
                    if vec == 1:
                        sa[t % stages, r, q] = a[row, col] if ok else 0.0
                    else:
                        cp_async(sa[t % stages, r, q * vec], a[row if ok else 0, col if ok else 0], elems=vec,
                                 valid=ok)
                for r, q in b_copy.on(tid):
                    row = b_base + (n0 + r if trans_b else k0 + r)
                    col = (k0 if trans_b else n0) + q * vec
                    ok = (n0 + r < N and col < K) if trans_b else (k0 + r < K and col < N)
                    if vec == 1:
                        sb[t % stages, r, q] = b[row, col] if ok else 0.0
                    else:
                        cp_async(sb[t % stages, r, q * vec], b[row if ok else 0, col if ok else 0], elems=vec,
                                 valid=ok)
            cp_async_commit_group()
            if t >= stages - 1:
                s = (t - (stages - 1)) % stages
                for ks in range(bk // 16, unroll=True):
                    for mt in range(mt_n, unroll=True):
                        if trans_a:
                            ldmatrix(fa[mt], sa[s, ks * 16 + lane % 8 + lane // 16 * 8,
                                                warp_m + mt * 16 + lane // 8 % 2 * 8], num=4, trans=True)
                        else:
                            ldmatrix(fa[mt], sa[s, warp_m + mt * 16 + lane % 16, ks * 16 + lane // 16 * 8], num=4)
                    for p in range(nt_n // 2, unroll=True):
                        if trans_b:
                            ldmatrix(fb[p], sb[s, warp_n + p * 16 + lane // 16 * 8 + lane % 8,
                                               ks * 16 + lane // 8 % 2 * 8], num=4)
                        else:
                            ldmatrix(fb[p], sb[s, ks * 16 + lane % 16, warp_n + p * 16 + lane // 16 * 8], num=4,
                                     trans=True)
                    for mt in range(mt_n, unroll=True):
                        for nt in range(nt_n, unroll=True):
                            mma_sync(fa[mt], fb[nt // 2, nt % 2], acc[mt, nt])
        c_base = blockIdx.z * M if batch * splits > 1 else 0
        for i, j in c_map.on(tid):
            if m0 + i < M and n0 + j < N:
                value = acc[i % wtm // 16, j % wtn // 8, i % 16 // 8 * 2 + j % 2]
                c[c_base + m0 + i, n0 + j] = value * alpha if alpha != 1.0 else value
    return matmul_tc
