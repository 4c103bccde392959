"""Implicit-GEMM conv2d on CUDA cores (f32): matmul_simt's task mappings over the GEMM of
one group, C[m, o] = Σ_k A[m, k] · B[o, k], with m = (n, i, j) an output position,
o an output channel of the group and k = (c, p, q) a window element (channel slowest).

- **NCHW needs no transposes here.** With k ordered like the weights' own [O, C/group, KH, KW]
  layout, B is w viewed [O, K] (matmul_simt's transposed B, read along k), and for a fixed k
  consecutive m are consecutive output columns j, so the A gather runs along the input's
  rows: consecutive threads read neighbouring (strided by sw) input elements. A is staged
  k-major like a transposed A.
- **Gathered, never built.** Each tile of A is read straight from x: the element of output
  position m and window element k is x[n, g·C/group + c, i·sh + p·dh - top,
  j·sw + q·dw - left], 0 where that lies in the padding or past M or K (a select, so nothing
  outside x is read).
- **The rest is matmul_simt's**: shared and register double buffering, explicit `fma`, the
  thread/fragment mappings; the epilogue adds the bias and stores with plain guarded stores
  into the NCHW output (rewritable by epilogue fusion). `blockIdx.x` walks the m tiles,
  `blockIdx.y` the o tiles, `blockIdx.z` split · groups + group.
- **Split-K** (`splits` > 1, as conv_tc): split s sums its own contiguous range of k tiles and
  stores it, without the bias, into images s·N … s·N + N-1 of an f32 partial output that
  the plan's epilogue sums in split order (conv.py): deep layers at batch 1 have too few
  output tiles to occupy the GPU.
"""
from __future__ import annotations

from taskmap.lang import blockIdx, f32, fma, kernel, register_tensor, repeat, shared_tensor, spatial, syncthreads, \
    threadIdx

from .conv_shape import ConvShape, check_index_space
from .matmul_simt import load_map, tile_shape


def make_kernel(s: ConvShape, warps=(8, 1), lanes=(2, 16), micro=(4, 4), repeats=(2, 2), bk: int = 8,
                bias: bool = False, splits: int = 1):
    if lanes[0] * lanes[1] != 32:
        raise ValueError(f"lanes={lanes}: a warp has 32 lanes")
    threads = warps[0] * warps[1] * 32
    bm, bn = tile_shape(warps, lanes, micro, repeats)
    tm, tn = micro
    fm, fn = repeats[0] * tm, repeats[1] * tn            # accumulator rows and columns per thread
    hm, hn = bm // repeats[0], bn // repeats[1]         # distance between a thread's micro tiles
    cells = spatial(*warps) * spatial(*lanes)
    thread_map = repeat(*repeats) * cells * repeat(tm, tn)
    a_frag_map = repeat(repeats[0], 1) * cells * repeat(tm, 1)
    b_frag_map = repeat(1, repeats[1]) * cells * repeat(1, tn)
    a_load, a_sr, a_sc, a_rc = load_map(bk, bm, threads)       # k-major: consecutive threads along m
    b_load, b_sr, b_sc, b_rc = load_map(bn, bk, threads)       # o-major: along k
    M, N, K = s.gemm
    check_index_space(s, splits)
    B, C, H, W, O = s.batch, s.channels, s.height, s.width, s.out_channels
    (KH, KW), (OH, OW), (sh, sw), (pt, pl), (dh, dw) = s.kernel, s.out_size, s.strides, s.pads, s.dilations
    cg, G = s.group_channels, s.groups
    name = (f"conv2d_simt_{bm}x{bn}x{bk}_w{warps[0]}x{warps[1]}_n{B}c{C}h{H}w{W}_o{O}k{KH}x{KW}"
            f"_s{sh}x{sw}p{pt}x{pl}d{dh}x{dw}g{G}{'_bias' if bias else ''}{f'_k{splits}' if splits > 1 else ''}")

    @kernel(grid=((M + bm - 1) // bm, (N + bn - 1) // bn, splits * G), block=threads, name=name)
    def conv2d_simt(x: f32[B, C, H, W], w: f32[O, K], b: f32[O if bias else 1], y: f32[splits * B, O, OH, OW]):
        # b: the bias, or (bias=False, or split-K) a one-element view it never reads
        sa = shared_tensor(f32, [2, bk, bm])
        sb = shared_tensor(f32, [2, bk, bn + 4])          # k-major store of an o-major read: padded rows
        ra = register_tensor(f32, [bm * bk // threads])   # tile t in flight: global -> shared
        rb = register_tensor(f32, [bk * bn // threads])
        fa = register_tensor(f32, [2, fm])                # fragments of k-slices kk and kk+1
        fb = register_tensor(f32, [2, fn])
        acc = register_tensor(f32, [fm, fn])
        tid = threadIdx.x
        m0 = blockIdx.x * bm
        n0 = blockIdx.y * bn
        c0 = blockIdx.z % G * cg                          # the group's first input channel
        o0 = blockIdx.z % G * N                           # and output channel
        for i, j in repeat(fm, fn).on(0):
            acc[i, j] = 0.0
        k_tiles = (K + bk - 1) // bk
        t0 = 0
        if splits > 1:                                    # split blockIdx.z // G: its range of k tiles
            per_split = (k_tiles + splits - 1) // splits
            t0 = blockIdx.z // G * per_split
            k_tiles = max(0, min(per_split, k_tiles - t0))
        for t in range(k_tiles + 1):
            k0 = (t0 + t) * bk
            if t < k_tiles:                               # gather tile t into registers
                for k, i in a_load.on(tid):
                    m = m0 + i
                    h = m // OW % OH * sh + (k0 + k) // KW % KH * dh - pt
                    v = m % OW * sw + (k0 + k) % KW * dw - pl
                    ok = m < M and k0 + k < K and 0 <= h and h < H and 0 <= v and v < W
                    ra[k // a_sr * a_rc + i // a_sc] = x[m // (OH * OW), c0 + (k0 + k) // (KH * KW), h, v] \
                        if ok else 0.0
                for j, k in b_load.on(tid):
                    ok = n0 + j < N and k0 + k < K
                    rb[j // b_sr * b_rc + k // b_sc] = w[o0 + n0 + j, k0 + k] if ok else 0.0
            if t > 0:                                     # multiply tile t-1
                stage = (t - 1) % 2
                for kk in range(bk + 1, unroll=True):
                    if kk < bk:
                        for i, j in a_frag_map.on(tid):
                            fa[kk % 2, i // hm * tm + i % tm] = sa[stage, kk, i]
                        for i, j in b_frag_map.on(tid):
                            fb[kk % 2, j // hn * tn + j % tn] = sb[stage, kk, j]
                    if kk > 0:
                        for i, j in repeat(fm, fn).on(0):
                            acc[i, j] = fma(fa[(kk - 1) % 2, i], fb[(kk - 1) % 2, j], acc[i, j])
            if t < k_tiles:                               # stage t % 2 was last read before the previous barrier
                for k, i in a_load.on(tid):
                    sa[t % 2, k, i] = ra[k // a_sr * a_rc + i // a_sc]
                for j, k in b_load.on(tid):
                    sb[t % 2, k, j] = rb[j // b_sr * b_rc + k // b_sc]
            syncthreads()
        for i, j in thread_map.on(tid):
            m = m0 + i
            if m < M and n0 + j < N:
                value = acc[i // hm * tm + i % tm, j // hn * tn + j % tn]
                image = (blockIdx.z // G * B if splits > 1 else 0) + m // (OH * OW)
                y[image, o0 + n0 + j, m // OW % OH, m % OW] = value + b[o0 + n0 + j] if bias else value
    return conv2d_simt
