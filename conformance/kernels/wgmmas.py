"""Warpgroup MMA (SPEC.md §5.12): correct kernels (conformance/cases/wgmma.yaml runs them on
every backend) — a 64×n×k GEMM per warpgroup with both operands in shared memory in each
swizzle mode, with A from registers, and two warpgroups side by side — and one planted bug per
trap of §10's wgmma row and the warpgroup collective (the bug is marked on its line)."""
from __future__ import annotations

from taskmap.lang import (bf16, f16, f32, i32, i64, kernel, mbarrier_arrive_expect_tx, mbarrier_init, mbarrier_wait,
                          register_tensor, shared_tensor, swizzle, syncthreads, threadIdx, tma_load, wgmma,
                          wgmma_commit_group, wgmma_desc, wgmma_fence, wgmma_wait_group)

# swizzle mode (bytes) -> the layout of a [rows, mode / 2] f16 tile whose addresses that mode
# swizzles: 16-byte chunk c of row r stored at chunk c ^ (r % 8) (Swizzle<b, 4, 3> on bytes)
TILE_LAYOUT = {128: swizzle(3, 3, 3), 64: swizzle(2, 3, 3), 32: swizzle(1, 3, 3)}
SW128, SW32 = TILE_LAYOUT[128], TILE_LAYOUT[32]


def gemm_swizzled(mode: int, n: int, warpgroups: int = 1, dtype=f16, name: str | None = None):
    """c = a @ b for a (64·warpgroups) × k times k × n: k in chunks of mode/2 elements (one
    swizzled row of `mode` bytes), both operands staged in shared memory (b transposed, K-major),
    each warpgroup multiplying its 64 rows with mode/32 wgmmas per chunk."""
    kc, m, tile = mode // 2, 64 * warpgroups, TILE_LAYOUT[mode]

    @kernel(grid=1, block=128 * warpgroups, name=name or f"wgmma_gemm_sw{mode}_n{n}_{dtype.short}")
    def gemm(k: i32, a: dtype[m, k], b: dtype[k, n], c: f32[m, n]):
        sa = shared_tensor(dtype, [m, kc], layout=tile)
        sb = shared_tensor(dtype, [n, kc], layout=tile)
        acc = register_tensor(f32, [n // 2])
        t = threadIdx.x
        wg = t // 128
        for i in range(n // 2, unroll=True):
            acc[i] = 0.0
        for k0 in range(0, k, kc):
            for i in range(t, m * kc, 128 * warpgroups):
                sa[i // kc, i % kc] = a[i // kc, k0 + i % kc]
            for i in range(t, n * kc, 128 * warpgroups):
                sb[i // kc, i % kc] = b[k0 + i % kc, i // kc]
            syncthreads()
            wgmma_fence()
            for kk in range(kc // 16, unroll=True):
                wgmma(acc, wgmma_desc(sa[64 * wg, 16 * kk], sbo=8 * mode, swizzle=mode),
                      wgmma_desc(sb[0, 16 * kk], sbo=8 * mode, swizzle=mode), n=n)
            wgmma_commit_group()
            wgmma_wait_group(0)
            syncthreads()
        lane = t % 128
        for i in range(n // 2, unroll=True):
            c[64 * wg + 16 * (lane // 32) + lane % 32 // 4 + 8 * (i % 4 // 2), 8 * (i // 4) + 2 * (lane % 4) + i % 2] = acc[i]
    return gemm


wgmma_gemm_sw128_n64 = gemm_swizzled(128, 64)
wgmma_gemm_sw64_n32_two_warpgroups = gemm_swizzled(64, 32, warpgroups=2, name="wgmma_gemm_sw64_n32_two_warpgroups")
wgmma_gemm_sw128_n256_bf16 = gemm_swizzled(128, 256, dtype=bf16)
wgmma_gemm_sw32_n16 = gemm_swizzled(32, 16)


@kernel(grid=1, block=128)
def wgmma_gemm_interleaved(k: i32, a: f16[64, k], b: f16[k, 24], c: f32[64, 24]):
    """Swizzle mode none: the tiles are grids of 8 × 8 core matrices [rows/8, 2, 8, 8] (16 bytes
    per core-matrix row); lbo steps over k (one core matrix, 128 bytes), sbo over 8 rows (two)."""
    sa = shared_tensor(f16, [8, 2, 8, 8])
    sb = shared_tensor(f16, [3, 2, 8, 8])
    acc = register_tensor(f32, [12])
    t = threadIdx.x
    for i in range(12, unroll=True):
        acc[i] = 0.0
    for k0 in range(0, k, 16):
        for i in range(t, 64 * 16, 128):
            r = i // 16
            q = i % 16
            sa[r // 8, q // 8, r % 8, q % 8] = a[r, k0 + q]
        for i in range(t, 24 * 16, 128):
            r = i // 16
            q = i % 16
            sb[r // 8, q // 8, r % 8, q % 8] = b[k0 + q, r]
        syncthreads()
        wgmma_fence()
        wgmma(acc, wgmma_desc(sa[0, 0, 0, 0], lbo=128, sbo=256, swizzle=0),
              wgmma_desc(sb[0, 0, 0, 0], lbo=128, sbo=256, swizzle=0), n=24)
        wgmma_commit_group()
        wgmma_wait_group(0)
        syncthreads()
    for i in range(12, unroll=True):
        c[16 * (t // 32) + t % 32 // 4 + 8 * (i % 4 // 2), 8 * (i // 4) + 2 * (t % 4) + i % 2] = acc[i]


@kernel(grid=1, block=128)
def wgmma_gemm_a_registers(k: i32, a: f16[64, k], b: f16[k, 64], c: f32[64, 64]):
    """A from registers (the fragment of §5.12, loaded element by element), B through a 128-byte
    swizzled descriptor; each k-step commits its own group, and one wait retires all four
    before the fragments are reloaded."""
    sb = shared_tensor(f16, [64, 64], layout=SW128)
    acc = register_tensor(f32, [32])
    fa = register_tensor(f16, [4, 8])
    t = threadIdx.x
    for i in range(32, unroll=True):
        acc[i] = 0.0
    for k0 in range(0, k, 64):
        for i in range(t, 64 * 64, 128):
            sb[i // 64, i % 64] = b[k0 + i % 64, i // 64]
        for kk in range(4, unroll=True):
            for i in range(8, unroll=True):
                fa[kk, i] = a[16 * (t // 32) + t % 32 // 4 + 8 * (i // 2 % 2), k0 + 16 * kk + 2 * (t % 4) + i % 2 + 8 * (i // 4)]
        syncthreads()
        wgmma_fence()
        for kk in range(4, unroll=True):
            wgmma(acc, fa[kk], wgmma_desc(sb[0, 16 * kk], sbo=1024, swizzle=128), n=64)
            wgmma_commit_group()
        wgmma_wait_group(0)
        syncthreads()
    for i in range(32, unroll=True):
        c[16 * (t // 32) + t % 32 // 4 + 8 * (i % 4 // 2), 8 * (i // 4) + 2 * (t % 4) + i % 2] = acc[i]


def _tma_gemm(refill_early: bool):
    """c = a @ bᵀ (b holds B transposed, n × k, as TMA copies it K-major): for each 64-wide k chunk thread 0 loads both 64×64
    tiles with TMA into 128-byte swizzled stages (the copy engine swizzles as the tiles' layout
    says, §5.11) completing on the stage's mbarrier, prefetching the next chunk into the other
    stage while the warpgroup multiplies this one. With refill_early (a planted bug) one stage
    is refilled while the wgmmas reading it are in flight."""
    stages = 1 if refill_early else 2

    @kernel(grid=1, block=128, name="wgmma_tma_refill_before_wait" if refill_early else "wgmma_gemm_tma")
    def gemm(k: i32, a: f16[64, k], b: f16[64, k], c: f32[64, 64]):
        bar = shared_tensor(i64, [stages])
        sa = shared_tensor(f16, [stages, 64, 64], layout=SW128)
        sb = shared_tensor(f16, [stages, 64, 64], layout=SW128)
        acc = register_tensor(f32, [32])
        t = threadIdx.x
        chunks = k // 64
        if t == 0:
            for s in range(stages):
                mbarrier_init(bar[s], 1)
        for i in range(32, unroll=True):
            acc[i] = 0.0
        syncthreads()
        if t == 0:
            mbarrier_arrive_expect_tx(bar[0], 2 * 64 * 64 * 2)
            tma_load(sa[0], a[0, 0], bar[0])
            tma_load(sb[0], b[0, 0], bar[0])
        for j in range(chunks):
            s = j % stages
            if not refill_early:                                     # compile time
                if t == 0 and j + 1 < chunks:                        # the other stage, free since the last syncthreads
                    mbarrier_arrive_expect_tx(bar[1 - s], 2 * 64 * 64 * 2)
                    tma_load(sa[1 - s], a[0, 64 * (j + 1)], bar[1 - s])
                    tma_load(sb[1 - s], b[0, 64 * (j + 1)], bar[1 - s])
            mbarrier_wait(bar[s], (j // stages) % 2)
            wgmma_fence()
            for kk in range(4, unroll=True):
                wgmma(acc, wgmma_desc(sa[s, 0, 16 * kk], sbo=1024, swizzle=128),
                      wgmma_desc(sb[s, 0, 16 * kk], sbo=1024, swizzle=128), n=64)
            wgmma_commit_group()
            if refill_early:
                if t == 0 and j + 1 < chunks:                        # planted: before the wgmmas retired
                    mbarrier_arrive_expect_tx(bar[s], 2 * 64 * 64 * 2)
                    tma_load(sa[s], a[0, 64 * (j + 1)], bar[s])
                    tma_load(sb[s], b[0, 64 * (j + 1)], bar[s])
            wgmma_wait_group(0)
            syncthreads()
        for i in range(32, unroll=True):
            c[16 * (t // 32) + t % 32 // 4 + 8 * (i % 4 // 2), 8 * (i // 4) + 2 * (t % 4) + i % 2] = acc[i]
    return gemm


wgmma_gemm_tma = _tma_gemm(False)


# ---------------------------------------------------------------- planted bugs (interpreter traps)

def _one_tile(bug: str):
    """A 64×16×16 product through 32-byte swizzled tiles, with one planted bug."""
    block = 96 if bug == "block-of-96" else 128
    tile_a = None if bug == "row-major-tile" else SW32

    @kernel(grid=1, block=block, name=f"wgmma_bug_{bug.replace('-', '_')}")
    def one_tile(a: f16[64, 16], b: f16[16, 16], c: f32[64, 16]):
        sa = shared_tensor(f16, [64, 16], layout=tile_a)
        sb = shared_tensor(f16, [16, 16], layout=SW32)
        acc = register_tensor(f32, [8])
        t = threadIdx.x
        for i in range(t, 64 * 16, block):
            sa[i // 16, i % 16] = a[i // 16, i % 16]
        for i in range(t, 16 * 16, block):
            sb[i // 16, i % 16] = b[i % 16, i // 16]
        for i in range(8, unroll=True):
            acc[i] = 0.0
        syncthreads()
        if bug != "no-fence":
            wgmma_fence()
        if bug == "half-warpgroup":
            if t < 64:                                                   # planted: warps 2 and 3 skip it
                wgmma(acc, wgmma_desc(sa[0, 0], sbo=256, swizzle=32), wgmma_desc(sb[0, 0], sbo=256, swizzle=32), n=16)
        elif bug == "desc-swizzle-64":
            wgmma(acc, wgmma_desc(sa[0, 0], sbo=256, swizzle=64),        # planted: the tile swizzles 32 bytes
                  wgmma_desc(sb[0, 0], sbo=256, swizzle=32), n=16)
        elif bug == "desc-sbo-too-small":
            wgmma(acc, wgmma_desc(sa[0, 0], sbo=128, swizzle=32),        # planted: 8 rows of 32 bytes are 256
                  wgmma_desc(sb[0, 0], sbo=256, swizzle=32), n=16)
        else:
            wgmma(acc, wgmma_desc(sa[0, 0], sbo=256, swizzle=32), wgmma_desc(sb[0, 0], sbo=256, swizzle=32), n=16)
        wgmma_commit_group()
        if bug == "read-acc-before-wait" and t == 0:
            c[0, 0] = acc[0]                                             # planted: before the wait
        if bug == "overwrite-tile-before-wait":
            sa[t // 16, t % 16] = 0.0                                    # planted: the wgmma still reads sa
        if bug != "no-wait":                                             # planted: never waits, drops the result
            wgmma_wait_group(0)
            for i in range(8, unroll=True):
                c[16 * (t // 32) + t % 32 // 4 + 8 * (i % 4 // 2), 8 * (i // 4) + 2 * (t % 4) + i % 2] = acc[i]
    return one_tile


wgmma_one_tile = _one_tile("none")
wgmma_read_acc_before_wait = _one_tile("read-acc-before-wait")
wgmma_overwrite_tile_before_wait = _one_tile("overwrite-tile-before-wait")
wgmma_desc_swizzle_mismatch = _one_tile("desc-swizzle-64")
wgmma_desc_on_row_major_tile = _one_tile("row-major-tile")
wgmma_desc_sbo_too_small = _one_tile("desc-sbo-too-small")
wgmma_half_warpgroup = _one_tile("half-warpgroup")
wgmma_block_of_96 = _one_tile("block-of-96")
wgmma_without_fence = _one_tile("no-fence")
wgmma_never_waited = _one_tile("no-wait")
wgmma_tma_refill_before_wait = _tma_gemm(True)
