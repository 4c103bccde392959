"""SIMT matmul on CUDA cores (f32, or integers in their own type): the Hidet paper's task
mappings (ASPLOS'23, §4), generalized.

`make_kernel(warps, lanes, micro, repeats, bk, ...)`: a block of `warps` warps computes a
bm×bn tile of C, bm = repeats[0]·warps[0]·lanes[0]·micro[0] (bn likewise):

- **Task mappings.** `thread_map = repeat(*repeats) * spatial(*warps) * spatial(*lanes) *
  repeat(*micro)`: warps on a grid of warp tiles, lanes on a grid inside a warp, a micro
  tile per thread; `repeats` (2, 2) makes each thread own 2×2 micro tiles a block-half
  apart (the 8×8-per-thread layout of gpu/bench.py's matmul_fma: fragment reads of
  neighbouring lanes are contiguous and conflict-free). Task (i, j) of the mapping is
  accumulator element (i // (bm / repeats[0]) · micro[0] + i % micro[0], …); dropping the
  column (row) factors gives the mapping of a thread's A rows (B columns): fragment loads.
- **Shared-memory double buffering.** Two stages of A stored k-major ([bk, bm], padded by 4
  when the store transposes, so its columns fall in different banks) and B ([bk, bn]).
  Iteration t fetches tile t from global memory into registers, computes tile t-1 from
  stage (t-1) % 2, stores tile t into stage t % 2 and meets one barrier; the stage being
  written was last read in iteration t-1, before that iteration's barrier.
- **Register double buffering.** Step kk of the inner loop loads the fragments of k-slice
  kk into buffer kk % 2 and multiplies those of slice kk-1, with explicit `fma` (SPEC.md §2.3
  forbids contracting `a*b+c`; a mul and an add would be two instructions per term);
  integers (`dtype` i32/i64) multiply and add, wrapping.
- **Bounds, transposes, batches, split-K.** Out-of-range elements load as 0 (`select` reads
  only in range) and stores are guarded, so M, N, K are arbitrary. A given transposed
  ([K, M]) is read along m, B transposed ([N, K]) along k: the global reads stay coalesced
  and the shared tiles keep their k-major layout. Operands are 2-d stacks of `batch_a` /
  `batch_b` / `splits·batch` matrices as in matmul_tc.
"""
from __future__ import annotations

import math

from taskmap.lang import (blockIdx, f32, fma, i32, kernel, register_tensor, repeat, shared_tensor, spatial,
                          syncthreads, threadIdx)


def tile_shape(warps, lanes, micro, repeats) -> tuple[int, int]:
    return tuple(repeats[d] * warps[d] * lanes[d] * micro[d] for d in (0, 1))


def load_map(rows: int, cols: int, threads: int):
    """(mapping, s_rows, s_cols, r_cols) for loading a rows×cols tile with `threads` threads,
    consecutive threads along a row: `repeat(rows/s_rows, r_cols) * spatial(s_rows, s_cols)`.
    Task (i, k) of a thread is its register slot i // s_rows · r_cols + k // s_cols."""
    s_cols = math.gcd(threads, cols)
    s_rows = math.gcd(threads // s_cols, rows)
    if s_rows * s_cols != threads:
        raise ValueError(f"a {rows}x{cols} tile does not split over {threads} threads evenly")
    return repeat(rows // s_rows, cols // s_cols) * spatial(s_rows, s_cols), s_rows, s_cols, cols // s_cols


def make_kernel(warps=(4, 2), lanes=(4, 8), micro=(4, 4), repeats=(1, 1), bk: int = 8, *, dtype=f32,
                trans_a: bool = False,
                trans_b: bool = False, batch: int = 1, batch_a: int = 1, batch_b: int = 1, splits: int = 1,
                alpha: float = 1.0):
    if lanes[0] * lanes[1] != 32:
        raise ValueError(f"lanes={lanes}: a warp has 32 lanes")
    if dtype.is_float and dtype != f32:
        raise ValueError(f"matmul_simt computes f32 or integers, not {dtype.short} (tensor cores take f16/bf16)")
    if batch_a not in (1, batch) or batch_b not in (1, batch) or splits < 1:
        raise ValueError(f"matmul_simt: batch_a={batch_a}, batch_b={batch_b} must be 1 or batch={batch}; splits ≥ 1")
    threads = warps[0] * warps[1] * 32
    bm, bn = tile_shape(warps, lanes, micro, repeats)
    tm, tn = micro
    fm, fn = repeats[0] * tm, repeats[1] * tn            # accumulator rows and columns per thread
    hm, hn = bm // repeats[0], bn // repeats[1]         # distance between a thread's micro tiles
    cells = spatial(*warps) * spatial(*lanes)
    thread_map = repeat(*repeats) * cells * repeat(tm, tn)
    a_frag_map = repeat(repeats[0], 1) * cells * repeat(tm, 1)
    b_frag_map = repeat(1, repeats[1]) * cells * repeat(1, tn)
    a_load, a_sr, a_sc, a_rc = load_map(*((bk, bm) if trans_a else (bm, bk)), threads)
    b_load, b_sr, b_sc, b_rc = load_map(*((bn, bk) if trans_b else (bk, bn)), threads)
    a_pad = 0 if trans_a else 4                          # k-major store of an m-major read: pad the rows
    b_pad = 4 if trans_b else 0
    variant = "".join((("_ta" if trans_a else ""), ("_tb" if trans_b else ""), (f"_b{batch}" if batch > 1 else ""),
                       (f"_k{splits}" if splits > 1 else "")))

    kind = "" if dtype == f32 else dtype.short + "_"

    @kernel(grid=lambda M, N: ((N + bn - 1) // bn, (M + bm - 1) // bm, batch * splits), block=threads,
            name=f"matmul_simt_{kind}{bm}x{bn}x{bk}_w{warps[0]}x{warps[1]}{variant}")
    def matmul_simt(M: i32, N: i32, K: i32, a: dtype[batch_a * K if trans_a else batch_a * M, M if trans_a else K],
                    b: dtype[batch_b * N if trans_b else batch_b * K, K if trans_b else N],
                    c: dtype[splits * batch * M, N]):
        sa = shared_tensor(dtype, [2, bk, bm + a_pad])
        sb = shared_tensor(dtype, [2, bk, bn + b_pad])
        ra = register_tensor(dtype, [bm * bk // threads])  # tile t in flight: global -> shared
        rb = register_tensor(dtype, [bk * bn // threads])
        fa = register_tensor(dtype, [2, fm])            # fragments of k-slices kk and kk+1
        fb = register_tensor(dtype, [2, fn])
        acc = register_tensor(dtype, [fm, fn])
        tid = threadIdx.x
        m0 = blockIdx.y * bm
        n0 = blockIdx.x * bn
        a_base = (blockIdx.z % batch * (K if trans_a else M)) if batch_a > 1 else 0
        b_base = (blockIdx.z % batch * (N if trans_b else K)) if batch_b > 1 else 0
        for i, j in repeat(fm, fn).on(0):
            acc[i, j] = 0
        k_tiles = (K + bk - 1) // bk
        t0 = 0
        if splits > 1:
            per_split = (k_tiles + splits - 1) // splits
            t0 = blockIdx.z // batch * per_split
            k_tiles = max(0, min(per_split, k_tiles - t0))
        for t in range(k_tiles + 1):
            k0 = (t0 + t) * bk
            if t < k_tiles:                             # fetch tile t into registers
                if trans_a:
                    for k, i in a_load.on(tid):
                        ok = k0 + k < K and m0 + i < M
                        ra[k // a_sr * a_rc + i // a_sc] = a[a_base + k0 + k, m0 + i] if ok else 0
                else:
                    for i, k in a_load.on(tid):
                        ok = m0 + i < M and k0 + k < K
                        ra[i // a_sr * a_rc + k // a_sc] = a[a_base + m0 + i, k0 + k] if ok else 0
                if trans_b:
                    for j, k in b_load.on(tid):
                        ok = n0 + j < N and k0 + k < K
                        rb[j // b_sr * b_rc + k // b_sc] = b[b_base + n0 + j, k0 + k] if ok else 0
                else:
                    for k, j in b_load.on(tid):
                        ok = k0 + k < K and n0 + j < N
                        rb[k // b_sr * b_rc + j // b_sc] = b[b_base + k0 + k, n0 + j] if ok else 0
            if t > 0:                                   # multiply tile t-1
                stage = (t - 1) % 2
                for kk in range(bk + 1, unroll=True):
                    if kk < bk:
                        for i, j in a_frag_map.on(tid):
                            fa[kk % 2, i // hm * tm + i % tm] = sa[stage, kk, i]
                        for i, j in b_frag_map.on(tid):
                            fb[kk % 2, j // hn * tn + j % tn] = sb[stage, kk, j]
                    if kk > 0:
                        for i, j in repeat(fm, fn).on(0):
                            if dtype == f32:
                                acc[i, j] = fma(fa[(kk - 1) % 2, i], fb[(kk - 1) % 2, j], acc[i, j])
                            else:
                                acc[i, j] += fa[(kk - 1) % 2, i] * fb[(kk - 1) % 2, j]
            if t < k_tiles:                             # stage t % 2 was last read before the previous barrier
                if trans_a:
                    for k, i in a_load.on(tid):
                        sa[t % 2, k, i] = ra[k // a_sr * a_rc + i // a_sc]
                else:
                    for i, k in a_load.on(tid):
                        sa[t % 2, k, i] = ra[i // a_sr * a_rc + k // a_sc]
                if trans_b:
                    for j, k in b_load.on(tid):
                        sb[t % 2, k, j] = rb[j // b_sr * b_rc + k // b_sc]
                else:
                    for k, j in b_load.on(tid):
                        sb[t % 2, k, j] = rb[k // b_sr * b_rc + j // b_sc]
            syncthreads()
        c_base = blockIdx.z * M if batch * splits > 1 else 0
        for i, j in thread_map.on(tid):
            if m0 + i < M and n0 + j < N:
                value = acc[i // hm * tm + i % tm, j // hn * tn + j % tn]
                c[c_base + m0 + i, n0 + j] = value * alpha if alpha != 1.0 else value
    return matmul_simt
