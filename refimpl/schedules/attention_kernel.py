"""The fused attention kernel: flash-attention-2 style, one kernel, online softmax.

`make_kernel(dtype, head_dim, value_dim, warps, block_n, causal, mask)`:
kernel(B, H, G, S, T, scale_log2, q[B·H·S, D], k[B·G·T, D], v[B·G·T, E], mask, y[B·H·S, E])
computes y = softmax(q kᵀ · scale + mask) v per (batch, head), q/k/v/y viewed as stacks of
matrices, query head h reading key/value head h // (H / G) (G = H unless grouped-query);
scale_log2 = scale · log2 e, as the scores are kept in base-2 units (below).

- **Blocks and warps.** Block (x, y) computes query rows x·bm … x·bm + bm − 1 of matrix
  y = batch·H + head (bm = 16·warps; causal grids run the longest query tiles first); warp w
  owns 16 of those rows. Keys are visited in tiles of `block_n`.
- **One fragment layout for both paths.** Lane l = 4g + c holds rows g and g + 8 of its
  warp's 16; score s[nt, e] is row g + 8·(e // 2), key 8·nt + 2c + e % 2 of the tile, the
  output o[et, e] row g + 8·(e // 2), column 8·et + 2c + e % 2: the m16n8 accumulator
  layout of `mma_sync` (SPEC.md §5.7). So the four lanes of a row group (c = 0…3) hold a
  row between them, and its max and sum are two `shfl_xor` steps (masks 1 and 2).
  - f16/bf16 (**tensor cores**, the building blocks of `matmul_tc`): S = Q Kᵀ with Q's
    fragments loaded once by `ldmatrix` from the shared Q tile and K's by `ldmatrix` from the
    [key, d] K tile (matmul_tc's transposed-B addressing); then O += P V with P taken
    straight from the score registers (the accumulator layout of two n8 tiles *is* the A
    fragment of one k16 slice) and V's fragments by `ldmatrix(trans=True)` of the [key, e]
    V tile. Shared tiles use matmul_tc's `row_swizzle` when their rows are a power of two of
    16-byte chunks. SPEC.md §11.2 forbids rounding P to 16 bits (FlashAttention does), so P
    is split into p_hi = P rounded to the input type and p_lo = P − p_hi rounded (exact
    to 2^-22 of P in f16, 2^-16 in bf16) and both multiply V: the PV product costs two mmas.
  - f32 (**SIMT**): the same products as explicit `fma`s over the shared tiles (rows padded
    by 4 so that the 4 keys or 8 rows one instruction reads fall in different banks), P's
    elements of a row brought to every lane of its group by `shfl_idx`.
- **Online softmax, base 2.** Scores are scaled by scale · log2 e (an additive mask by log2 e)
  so that every exponential is one `exp2`. Per row a running max m and a per-lane partial
  sum l: a tile's scores raise m to m', p = 2^(s − m') (0 where masked), l and o are
  rescaled by 2^(m − m') and l += Σp, o += P V. The four partial sums are added once at the
  end and y = o / l, rounded once. A row whose every key is masked keeps m = −inf (the
  exponent base is then 0, not −inf − −inf), ends with l = 0 and is 0, as the definition says.
- **Masking.** Keys ≥ T (the last tile's edge), keys after the query (`causal`, upper-left
  aligned: j ≤ i) and the mask (bool: keep where true; float: added to the scores) give
  −inf. Causal blocks stop at the last tile holding a key ≤ their last row (tiles wholly
  above the diagonal are never loaded) and tiles wholly below it skip the comparisons.
- **Pipeline (SPEC.md §5.4).** Two shared stages of K and V. The Q tile and the first K/V
  tile are one `cp_async` group; iteration t waits for its tile, meets a barrier (so every
  warp is also done with tile t − 1, whose stage is refilled next), issues tile t + 1 into
  the other stage and computes tile t while it lands. Copies are 16 bytes (`vec` elements)
  when D and E allow it, else synchronous element stores ordered by the same barrier;
  outside the tensors they zero-fill, with the source index clamped to 0.
- **Odd sizes.** D and E are compile-time: shared rows are padded (tensor cores: to 16
  elements, the mma's k and the ldmatrix pairs; SIMT: E to 8) and zero-filled, S and T are
  arbitrary (masks and guarded stores at the edges).
"""
from __future__ import annotations

import math

from taskmap.lang import (bf16, blockIdx, cp_async, cp_async_commit_group, cp_async_wait_group, exp2, f16, f32,
                          fma, gridDim, i32, kernel, ldmatrix, mma_sync, register_tensor, repeat, shared_tensor, shfl_idx,
                          shfl_xor, spatial, syncthreads, threadIdx)

from .matmul_tc import ACC_FRAGMENT, row_swizzle

LOG2E = math.log2(math.e)
SIMT_PAD = 4                     # f32 row padding: 16 bytes, so padded rows stay cp_async-aligned


def round_up(n: int, m: int) -> int:
    return (n + m - 1) // m * m


def tile_widths(dtype, head_dim: int, value_dim: int) -> tuple[int, int, int]:
    """(Q/K columns copied, Q/K shared row length, V shared row length) of a kernel."""
    if dtype in (f16, bf16):
        return round_up(head_dim, 16), round_up(head_dim, 16), round_up(value_dim, 16)
    return head_dim, head_dim + SIMT_PAD, round_up(value_dim, 8)


def shared_bytes(dtype, head_dim: int, value_dim: int, warps: int, block_n: int) -> int:
    _, qk_row, v_row = tile_widths(dtype, head_dim, value_dim)
    return dtype.nbytes * (16 * warps * qk_row + 2 * block_n * (qk_row + v_row))


def copy_width(dtype, head_dim: int, value_dim: int) -> int:
    """Elements per cp_async (16 bytes) when the rows of q, k and v are multiples of it, else 1."""
    vec = 16 // dtype.nbytes
    return vec if head_dim % vec == 0 and value_dim % vec == 0 else 1


def _swizzled(row_elems: int):
    chunks = row_elems // 8
    return row_swizzle(row_elems) if chunks >= 2 and chunks & (chunks - 1) == 0 else None


def _copy_map(rows: int, chunks: int, threads: int):
    """Flat chunk index f = row · chunks + chunk over the block, consecutive threads on
    consecutive chunks (coalesced); f ≥ rows · chunks is past the tile."""
    return repeat((rows * chunks + threads - 1) // threads) * spatial(threads)


def make_kernel(dtype=f16, head_dim: int = 64, value_dim: int = 64, warps: int = 4, block_n: int = 64,
                causal: bool = False, mask=None):
    """`mask`: None, or (its dtype, bool, or q's for an additive mask; which of its four
    dimensions (batch, head, query, key) are full rather than broadcast)."""
    tc = dtype in (f16, bf16)
    if dtype not in (f16, bf16, f32) or block_n % 16 or warps < 1:
        raise ValueError(f"attention({dtype}, warps={warps}, block_n={block_n}): need f32/f16/bf16, "
                         "block_n a multiple of 16 and at least one warp")
    D, E = head_dim, value_dim
    bm, bn, threads = 16 * warps, block_n, 32 * warps
    qk_cols, qk_row, v_row = tile_widths(dtype, D, E)
    vec = copy_width(dtype, D, E)
    nt_n, et_n = bn // 8, v_row // 8                 # score and output n8 tiles per lane
    q_chunks, v_chunks = qk_cols // vec, v_row // vec
    q_copy, k_copy, v_copy = (_copy_map(bm, q_chunks, threads), _copy_map(bn, q_chunks, threads),
                              _copy_map(bn, v_chunks, threads))
    masked = mask is not None
    m_dtype, full = mask if masked else (dtype, (False,) * 4)
    bool_mask = m_dtype != dtype
    store_map = spatial(warps, 1) * repeat(1, et_n) * ACC_FRAGMENT
    variant = "".join(("_causal" if causal else "", ("_bmask" if bool_mask else "_amask") if masked else "",
                       "".join("f" if f else "b" for f in full) if masked else "", f"_v{vec}" if vec > 1 else ""))

    @kernel(grid=lambda B, H, S: ((S + bm - 1) // bm, B * H), block=threads,
            name=f"attention_{dtype.short}_d{D}e{E}_w{warps}n{bn}{variant}")
    def attention(B: i32, H: i32, G: i32, S: i32, T: i32, scale_log2: f32, q: dtype[B * H * S, D],
                  k: dtype[B * G * T, D], v: dtype[B * G * T, E],
                  m: m_dtype[B if full[0] else 1, H if full[1] else 1, S if full[2] else 1, T if full[3] else 1],
                  y: dtype[B * H * S, E]):
        sq = shared_tensor(dtype, [bm, qk_row], layout=_swizzled(qk_row) if tc else None)
        sk = shared_tensor(dtype, [2, bn, qk_row], layout=_swizzled(qk_row) if tc else None)
        sv = shared_tensor(dtype, [2, bn, v_row], layout=_swizzled(v_row) if tc else None)
        s = register_tensor(f32, [nt_n, 4])         # scores, then probabilities, of this tile
        o = register_tensor(f32, [et_n, 4])         # the output accumulator
        row_max = register_tensor(f32, [2])
        row_sum = register_tensor(f32, [2])         # this lane's partial sum of its row
        # fragments of the tensor-core path, then the SIMT path's operands (a size of 1 on the other path)
        fq = register_tensor(dtype, [qk_row // 16 if tc else 1, 8])
        fk = register_tensor(dtype, [2, 4])
        p_hi = register_tensor(dtype, [bn // 16 if tc else 1, 8])
        p_lo = register_tensor(dtype, [bn // 16 if tc else 1, 8])
        qv = register_tensor(f32, [2])
        kv = register_tensor(f32, [1 if tc else nt_n, 2])
        tid = threadIdx.x
        lane = tid % 32
        warp_m = tid // 32 * 16
        g = lane // 4
        quad = lane % 4
        tile = gridDim.x - 1 - blockIdx.x if causal else blockIdx.x     # longest causal tiles first
        m0 = tile * bm
        bh = blockIdx.y
        q_base = bh * S
        kv_base = (bh // H * G + bh % H // (H // G)) * T
        mb = bh // H if full[0] else 0
        mh = bh % H if full[1] else 0
        last_key = min(T, min(S, m0 + bm)) if causal else T
        n_tiles = (last_key + bn - 1) // bn
        for r in range(2, unroll=True):
            row_max[r] = -math.inf
            row_sum[r] = 0.0
        for et, e in repeat(et_n, 4).on(0):
            o[et, e] = 0.0
        for f in q_copy.on(tid):
            if f < bm * q_chunks:
                row = f // q_chunks
                col = f % q_chunks * vec
                ok = m0 + row < S and col < D
                if vec == 1:
                    sq[row, col] = q[q_base + m0 + row, col] if ok else 0.0
                else:
                    cp_async(sq[row, col], q[q_base + m0 + row if ok else 0, col if ok else 0], elems=vec, valid=ok)
        for t in range(n_tiles + 1):
            if t > 0:
                cp_async_wait_group(0)
                syncthreads()
            if tc:
                if t == 1:                             # the Q tile landed with the first K/V tile
                    for ks in range(qk_row // 16, unroll=True):
                        ldmatrix(fq[ks], sq[warp_m + lane % 16, ks * 16 + lane // 16 * 8], num=4)
            if t < n_tiles:                            # issue tile t into stage t % 2
                n0 = t * bn
                for f in k_copy.on(tid):
                    if f < bn * q_chunks:
                        row = f // q_chunks
                        col = f % q_chunks * vec
                        ok = n0 + row < T and col < D
                        if vec == 1:
                            sk[t % 2, row, col] = k[kv_base + n0 + row, col] if ok else 0.0
                        else:
                            cp_async(sk[t % 2, row, col], k[kv_base + n0 + row if ok else 0, col if ok else 0],
                                     elems=vec, valid=ok)
                for f in v_copy.on(tid):
                    if f < bn * v_chunks:
                        row = f // v_chunks
                        col = f % v_chunks * vec
                        ok = n0 + row < T and col < E
                        if vec == 1:
                            sv[t % 2, row, col] = v[kv_base + n0 + row, col] if ok else 0.0
                        else:
                            cp_async(sv[t % 2, row, col], v[kv_base + n0 + row if ok else 0, col if ok else 0],
                                     elems=vec, valid=ok)
            cp_async_commit_group()
            if t > 0:                                  # compute tile t - 1 from stage (t - 1) % 2
                st = (t - 1) % 2
                n0 = (t - 1) * bn
                for nt, e in repeat(nt_n, 4).on(0):
                    s[nt, e] = 0.0
                if tc:
                    for ks in range(qk_row // 16, unroll=True):
                        for p in range(bn // 16, unroll=True):
                            ldmatrix(fk, sk[st, p * 16 + lane // 16 * 8 + lane % 8, ks * 16 + lane // 8 % 2 * 8],
                                     num=4)
                            mma_sync(fq[ks], fk[0], s[2 * p])
                            mma_sync(fq[ks], fk[1], s[2 * p + 1])
                else:
                    for d in range(D):
                        for r in range(2, unroll=True):
                            qv[r] = sq[warp_m + g + 8 * r, d]
                        for nt, c in repeat(nt_n, 2).on(0):
                            kv[nt, c] = sk[st, nt * 8 + 2 * quad + c, d]
                        for nt, e in repeat(nt_n, 4).on(0):
                            s[nt, e] = fma(qv[e // 2], kv[nt, e % 2], s[nt, e])
                edge = n0 + bn > T or masked or causal and n0 + bn - 1 > m0
                for r in range(2, unroll=True):
                    i = m0 + warp_m + g + 8 * r
                    tile_max = -math.inf
                    for nt, c in repeat(nt_n, 2).on(0):
                        x = s[nt, 2 * r + c] * scale_log2
                        if edge:
                            j = n0 + nt * 8 + 2 * quad + c
                            keep = j < T and (not causal or j <= i)
                            if masked:
                                inside = keep and i < S
                                mv = m[mb, mh, i if full[2] else 0, j if full[3] else 0] if inside else \
                                    (False if bool_mask else 0.0)
                                if bool_mask:
                                    keep = keep and mv
                                else:
                                    x = fma(f32(mv), LOG2E, x)
                            x = x if keep else -math.inf
                        s[nt, 2 * r + c] = x
                        tile_max = max(tile_max, x)
                    tile_max = max(tile_max, shfl_xor(tile_max, 1))
                    tile_max = max(tile_max, shfl_xor(tile_max, 2))
                    new_max = max(row_max[r], tile_max)
                    base = new_max if new_max > -math.inf else 0.0
                    rescale = exp2(row_max[r] - base)
                    row_max[r] = new_max
                    total = 0.0
                    for nt, c in repeat(nt_n, 2).on(0):
                        p_ = exp2(s[nt, 2 * r + c] - base)
                        s[nt, 2 * r + c] = p_
                        total += p_
                    row_sum[r] = row_sum[r] * rescale + total
                    for et, c in repeat(et_n, 2).on(0):
                        o[et, 2 * r + c] *= rescale
                if tc:
                    for kk, e in repeat(bn // 16, 8).on(0):
                        p_hi[kk, e] = s[2 * kk + e // 4, e % 4]
                        p_lo[kk, e] = s[2 * kk + e // 4, e % 4] - f32(p_hi[kk, e])
                    for kk in range(bn // 16, unroll=True):
                        for p in range(v_row // 16, unroll=True):
                            ldmatrix(fk, sv[st, kk * 16 + lane % 16, p * 16 + lane // 16 * 8], num=4, trans=True)
                            mma_sync(p_hi[kk], fk[0], o[2 * p])
                            mma_sync(p_hi[kk], fk[1], o[2 * p + 1])
                            mma_sync(p_lo[kk], fk[0], o[2 * p])
                            mma_sync(p_lo[kk], fk[1], o[2 * p + 1])
                else:
                    for jt, c in repeat(nt_n, 8).on(0):    # key 8·jt + c of the tile
                        for r in range(2, unroll=True):
                            qv[r] = shfl_idx(s[jt, 2 * r + c % 2], c // 2, width=4)
                        for et, e in repeat(et_n, 4).on(0):
                            o[et, e] = fma(qv[e // 2], sv[st, jt * 8 + c, et * 8 + 2 * quad + e % 2], o[et, e])
        for r in range(2, unroll=True):
            row_sum[r] += shfl_xor(row_sum[r], 1)
            row_sum[r] += shfl_xor(row_sum[r], 2)
        for i, j in store_map.on(tid):
            if m0 + i < S and j < E:
                total = row_sum[i % 16 // 8]
                y[q_base + m0 + i, j] = o[j // 8, i % 16 // 8 * 2 + j % 2] / total if total > 0.0 else 0.0
    return attention
