"""Implicit-GEMM conv2d on tensor cores: f16/bf16 inputs, f32 accumulation (`mma_sync` m16n8k16).

Per group g the convolution is the GEMM C[m, o] = Σ_k A[m, k] · B[o, k] with
m = (n, i, j) an output position (M = N·OH·OW), o an output channel of the group, and
k = (p, q, c) a window element (K = KH·KW·C/group, channel fastest). A is never built:
each k tile of it is gathered from the input while staging into shared memory.

- **Operands are channels-last.** The plan hands over x as NHWC and w as [O, KH, KW, C/group]
  (two shared-tile transposes, `conv_layout`, which also pad C/group with zero channels to a
  multiple of 8; a 1x1 layer's weights are that layout already),
  so 8 consecutive k of one A row are 8 consecutive channels of one input pixel — one
  aligned 16-byte `cp_async` — and a B row is contiguous along k like matmul_tc's
  transposed B.
- **Padding and edges zero-fill.** A copy whose pixel (i·sh + p·dh - top, j·sw + q·dw - left)
  lies in the padding, or whose m or k is past the end, is issued with `valid=False` and its
  source index clamped to 0 (SPEC.md §5.4), so no address leaves the tensor.
- **The rest is matmul_tc's machinery**: the same multi-stage pipeline (wait, barrier,
  refill the stage computed last iteration, compute the oldest), swizzled shared tiles
  (`row_swizzle`), `ldmatrix` fragments of an m-major A and an n-major B, and the
  accumulator layout `ACC_FRAGMENT` for the epilogue.
- **Epilogue.** The accumulators go through a shared f32 tile [bn, bm] (o-major) so that
  the stores run along m: consecutive threads write consecutive output pixels of one
  channel (NCHW). Each element adds the bias in f32, rounds once and is stored with a plain
  guarded store straight into the NCHW output (so epilogue fusion can rewrite it). With
  `splits` > 1 (split-K) split s sums its own contiguous range of k tiles and stores them
  unrounded into an f32 partial output, NCHW images s·N … s·N + N-1, which the plan's
  epilogue sums. `blockIdx.x` walks the m tiles (no 65535 limit), `blockIdx.y` the
  o tiles, `blockIdx.z` split · groups + group.
"""
from __future__ import annotations

from taskmap.lang import (auto_map, bf16, blockIdx, cp_async, cp_async_commit_group, cp_async_wait_group, f16,
                          f32, kernel, ldmatrix, mma_sync, register_tensor, repeat, shared_tensor, spatial,
                          syncthreads, threadIdx)

from .conv_shape import ConvShape, check_index_space
from .matmul_tc import ACC_FRAGMENT, row_swizzle

VEC = 8          # elements per cp_async (16 bytes): the channels per group must be a multiple
OUT_PAD = 4      # f32 words padding each o row of the staged C tile: the fragment's 4 column pairs in other banks


def out_tile_bytes(bm: int, bn: int) -> int:
    """Shared memory of the staged f32 C tile."""
    return 4 * bn * (bm + OUT_PAD)


def make_kernel(s: ConvShape, dtype=f16, bm: int = 128, bn: int = 128, bk: int = 32, warps=(2, 2),
                stages: int = 3, bias: bool = False, splits: int = 1):
    threads = warps[0] * warps[1] * 32
    wtm, wtn = bm // warps[0], bn // warps[1]            # warp tile
    mt_n, nt_n = wtm // 16, wtn // 8                     # mma tiles per warp
    if dtype not in (f16, bf16) or wtm % 16 or wtn % 16 or bk % 16 or stages < 2 or s.group_channels % VEC:
        raise ValueError(f"conv2d_tc({dtype}, {bm}x{bn}x{bk}, warps={warps}, stages={stages}, {s.group_channels} "
                         "channels per group): need f16/bf16, warp tiles of multiples of 16, bk a multiple of 16, "
                         f"stages ≥ 2 and channels per group a multiple of {VEC}")
    M, N, K = s.gemm
    check_index_space(s, splits)
    B, C, H, W, O = s.batch, s.channels, s.height, s.width, s.out_channels
    (KH, KW), (OH, OW), (sh, sw), (pt, pl), (dh, dw) = s.kernel, s.out_size, s.strides, s.pads, s.dilations
    cg, G = s.group_channels, s.groups
    a_copy = auto_map(bm, bk // VEC, workers=threads)    # (row, chunk) of the A tile per thread
    b_copy = auto_map(bn, bk // VEC, workers=threads)
    c_map = spatial(*warps) * repeat(mt_n, nt_n) * ACC_FRAGMENT
    out_map = auto_map(bn, bm, workers=threads)          # (o, m) of the C tile per thread, along m
    name = (f"conv2d_tc_{dtype.short}_{bm}x{bn}x{bk}_s{stages}_n{B}c{C}h{H}w{W}_o{O}k{KH}x{KW}"
            f"_s{sh}x{sw}p{pt}x{pl}d{dh}x{dw}g{G}{'_bias' if bias else ''}{f'_k{splits}' if splits > 1 else ''}")
    out = dtype if splits == 1 else f32                # y, or split-K's f32 partial sums: NCHW stacked by split

    @kernel(grid=((M + bm - 1) // bm, (N + bn - 1) // bn, splits * G), block=threads, name=name)
    def conv2d_tc(x: dtype[B, H, W, C], w: dtype[O, K], b: dtype[O if bias else 1], y: out[splits * B, O, OH, OW]):
        # b: the bias, or (bias=False, or split-K: the plan's epilogue adds it) a one-element view never read
        sa = shared_tensor(dtype, [stages, bm, bk], layout=row_swizzle(bk))
        sb = shared_tensor(dtype, [stages, bn, bk], layout=row_swizzle(bk))
        fa = register_tensor(dtype, [mt_n, 8])          # one 16x16 A fragment per m tile
        fb = register_tensor(dtype, [nt_n // 2, 2, 4])  # one k16xn8 B fragment per n tile, loaded in pairs
        acc = register_tensor(f32, [mt_n, nt_n, 4])
        so = shared_tensor(f32, [bn, bm + OUT_PAD])
        tid = threadIdx.x
        lane = tid % 32
        warp_m = tid // 32 // warps[1] * wtm
        warp_n = tid // 32 % warps[1] * wtn
        m0 = blockIdx.x * bm
        n0 = blockIdx.y * bn
        c0 = blockIdx.z % G * cg                        # the group's first input channel
        o0 = blockIdx.z % G * N                         # and output channel
        for i, j, e in repeat(mt_n, nt_n, 4).on(0):
            acc[i, j, e] = 0.0
        k_tiles = (K + bk - 1) // bk
        t0 = 0
        if splits > 1:                                  # split blockIdx.z // G: its range of k tiles
            per_split = (k_tiles + splits - 1) // splits
            t0 = blockIdx.z // G * per_split
            k_tiles = max(0, min(per_split, k_tiles - t0))
        for t in range(k_tiles + stages - 1):
            cp_async_wait_group(stages - 2)
            syncthreads()
            if t < k_tiles:
                k0 = (t0 + t) * bk
                for r, q in a_copy.on(tid):
                    m = m0 + r
                    k = k0 + q * VEC
                    n = m // (OH * OW)
                    h = m // OW % OH * sh + k // (KW * cg) * dh - pt
                    v = m % OW * sw + k // cg % KW * dw - pl
                    ok = m < M and k < K and 0 <= h and h < H and 0 <= v and v < W
                    cp_async(sa[t % stages, r, q * VEC], x[n if ok else 0, h if ok else 0, v if ok else 0,
                                                           c0 + k % cg if ok else 0], elems=VEC, valid=ok)
                for r, q in b_copy.on(tid):
                    k = k0 + q * VEC
                    ok = n0 + r < N and k < K
                    cp_async(sb[t % stages, r, q * VEC], w[o0 + n0 + r if ok else 0, k if ok else 0], elems=VEC,
                             valid=ok)
            cp_async_commit_group()
            if t >= stages - 1:
                st = (t - (stages - 1)) % stages
                for ks in range(bk // 16, unroll=True):
                    for mt in range(mt_n, unroll=True):
                        ldmatrix(fa[mt], sa[st, warp_m + mt * 16 + lane % 16, ks * 16 + lane // 16 * 8], num=4)
                    for p in range(nt_n // 2, unroll=True):
                        ldmatrix(fb[p], sb[st, warp_n + p * 16 + lane // 16 * 8 + lane % 8,
                                           ks * 16 + lane // 8 % 2 * 8], num=4)
                    for mt in range(mt_n, unroll=True):
                        for nt in range(nt_n, unroll=True):
                            mma_sync(fa[mt], fb[nt // 2, nt % 2], acc[mt, nt])
        for i, j in c_map.on(tid):                      # the C tile, o-major, into shared memory
            so[j, i] = acc[i % wtm // 16, j % wtn // 8, i % 16 // 8 * 2 + j % 2]
        syncthreads()
        for j, i in out_map.on(tid):                    # and out along m: runs of output pixels
            m = m0 + i
            if m < M and n0 + j < N:
                image = (blockIdx.z // G * B if splits > 1 else 0) + m // (OH * OW)
                y[image, o0 + n0 + j, m // OW % OH, m % OW] = so[j, i] + f32(b[o0 + n0 + j]) if bias else so[j, i]
    return conv2d_tc
