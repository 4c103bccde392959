"""Hopper matmul: C = A · Bᵀ on warpgroup MMA fed by TMA (sm_90a), f16/bf16 in, f32 accumulation.

`make_kernel(dtype, bn, warpgroups, stages, out, batch, batch_a, batch_b, alpha)`: A [M, K] and
B [N, K], both K-major (cuBLAS's "TN" layout); a block of `warpgroups` warpgroups (128 threads
each) computes a (64·warpgroups) × bn tile of C, each warpgroup 64 rows of it with
m64n{bn}k16 wgmmas; K is walked in chunks of 64 (one 128-byte swizzle row of 16-bit elements).

- **TMA (SPEC.md §5.11).** Thread 0 loads each chunk of the block's A and B tiles with two TMA
  box copies into `stages` shared stages swizzled in the 128-byte mode, completing on the
  stage's mbarrier; the copy engine fills zeros outside the matrices, so M, N and K are
  arbitrary (K a multiple of 8: the tensor maps need 16-byte rows).
- **wgmma (§5.12).** Per chunk each warpgroup issues four wgmmas reading its 64 rows of A and
  all bn rows of B through matrix descriptors (`sbo=1024`: 8 rows of 128 bytes; the k step is
  32 bytes inside the swizzled rows), commits them as one group and waits until only that group
  is in flight: the previous chunk's stage is then no wgmma's operand any more, and after a
  `syncthreads()` thread 0 refills it with the chunk `stages − 1` ahead. So TMA copies of the
  next chunks and this chunk's wgmmas overlap.
- **Epilogue.** Each thread stores its bn/2 accumulators (times `alpha`, rounded to `out`) at
  the rows and columns of the accumulator fragment (§5.12), guarded by the matrix edges.
- **Batches.** As in matmul_tc: `batch_a` (1 or `batch`) matrices of A stacked along the rows,
  likewise B and C, `blockIdx.z` the batch index. A box that runs past a matrix's last row
  reads the next matrix's first rows; they only reach rows or columns of C past M or N, which
  are not stored.

No producer warp specialization: the interpreter runs a block's threads in lockstep (§5.9), so
every thread executes the same pipeline.
"""
from __future__ import annotations

from taskmap.lang import (bf16, blockIdx, f16, f32, i32, i64, kernel, mbarrier_arrive_expect_tx, mbarrier_init,
                          mbarrier_wait, register_tensor, shared_tensor, swizzle, syncthreads, threadIdx, tma_load,
                          wgmma, wgmma_commit_group, wgmma_desc, wgmma_fence, wgmma_wait_group)

BK = 64                          # one 128-byte swizzle row of 16-bit elements
SW128 = swizzle(3, 3, 3)         # the 128-byte swizzle of a [rows, 64] 16-bit tile (TMA and wgmma alike)


def check_shape(dtype, bn: int, stages: int) -> None:
    if dtype not in (f16, bf16):
        raise ValueError(f"matmul_wgmma(dtype={dtype}): wgmma multiplies f16 or bf16")
    if not (bn % 8 == 0 and 8 <= bn <= 256):
        raise ValueError(f"matmul_wgmma(bn={bn}): wgmma's n is a multiple of 8 from 8 to 256")
    if stages < 2:
        raise ValueError(f"matmul_wgmma(stages={stages}): the pipeline needs at least 2 stages")


def shared_bytes(dtype, bn: int, warpgroups: int, stages: int) -> int:
    return stages * ((64 * warpgroups + bn) * BK * dtype.nbytes + 8)


def make_kernel(dtype=f16, bn: int = 128, warpgroups: int = 2, stages: int = 4, *, out=f32, batch: int = 1,
                batch_a: int = 1, batch_b: int = 1, alpha: float = 1.0):
    check_shape(dtype, bn, stages)
    if batch_a not in (1, batch) or batch_b not in (1, batch):
        raise ValueError(f"matmul_wgmma: batch_a={batch_a}, batch_b={batch_b} must be 1 or batch={batch}")
    bm = 64 * warpgroups
    tile_bytes = (bm + bn) * BK * dtype.nbytes          # both boxes of a chunk, zero-filled parts included
    variant = (f"_b{batch}" if batch > 1 else "") + ("" if out == f32 else f"_{out.short}")

    @kernel(grid=lambda m, n: ((n + bn - 1) // bn, (m + bm - 1) // bm, batch), block=128 * warpgroups,
            name=f"matmul_wgmma_{dtype.short}_{bm}x{bn}x{stages}{variant}")
    def matmul_wgmma(m: i32, n: i32, k: i32, a: dtype[batch_a * m, k], b: dtype[batch_b * n, k],
                     c: out[batch * m, n]):
        full = shared_tensor(i64, [stages])
        sa = shared_tensor(dtype, [stages, bm, BK], layout=SW128)
        sb = shared_tensor(dtype, [stages, bn, BK], layout=SW128)
        acc = register_tensor(f32, [bn // 2])
        t = threadIdx.x
        wg = t // 128
        lane = t % 128
        m0 = blockIdx.y * bm
        n0 = blockIdx.x * bn
        a0 = (blockIdx.z * m + m0) if batch_a > 1 else m0          # the tile's first row in the stacks
        b0 = (blockIdx.z * n + n0) if batch_b > 1 else n0
        chunks = (k + BK - 1) // BK
        if t == 0:
            for s in range(stages):
                mbarrier_init(full[s], 1)
        for i in range(bn // 2, unroll=True):
            acc[i] = 0.0
        syncthreads()
        if t == 0:
            for s in range(stages - 1):
                if s < chunks:
                    mbarrier_arrive_expect_tx(full[s], tile_bytes)
                    tma_load(sa[s], a[a0, BK * s], full[s])
                    tma_load(sb[s], b[b0, BK * s], full[s])
        for j in range(chunks):
            s = j % stages
            mbarrier_wait(full[s], (j // stages) % 2)
            wgmma_fence()
            for kk in range(BK // 16, unroll=True):
                wgmma(acc, wgmma_desc(sa[s, 64 * wg, 16 * kk], sbo=1024, swizzle=128),
                      wgmma_desc(sb[s, 0, 16 * kk], sbo=1024, swizzle=128), n=bn)
            wgmma_commit_group()
            wgmma_wait_group(1)                  # chunk j - 1's wgmmas retired: its stage is free
            syncthreads()                        # ... in every warpgroup
            r = j + stages - 1                   # the chunk that goes into that stage
            if t == 0 and r < chunks:
                mbarrier_arrive_expect_tx(full[r % stages], tile_bytes)
                tma_load(sa[r % stages], a[a0, BK * r], full[r % stages])
                tma_load(sb[r % stages], b[b0, BK * r], full[r % stages])
        wgmma_wait_group(0)
        c0 = blockIdx.z * m if batch > 1 else 0
        for i in range(bn // 2, unroll=True):
            row = m0 + 64 * wg + 16 * (lane // 32) + lane % 32 // 4 + 8 * (i % 4 // 2)
            col = n0 + 8 * (i // 4) + 2 * (lane % 4) + i % 2
            if row < m and col < n:
                c[c0 + row, col] = acc[i] * alpha if alpha != 1.0 else acc[i]
    return matmul_wgmma
