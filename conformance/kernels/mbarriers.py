"""mbarriers and TMA bulk copies (SPEC.md §5.9, §5.10): correct kernels (conformance/cases/
mbarrier.yaml runs them on every backend) and one planted bug per trap of §10's mbarrier and
tma rows (the bug is marked on its line)."""
from __future__ import annotations

from taskmap.lang import (blockIdx, bulk_copy, f32, i32, i64, kernel, mbarrier_arrive, mbarrier_arrive_expect_tx,
                          mbarrier_init, mbarrier_wait, shared_tensor, swizzle, syncthreads, threadIdx, tma_load,
                          tma_store)

TILE = 256                       # f32 elements of one bulk copy: 1 KiB


# ---------------------------------------------------------------- correct kernels

@kernel(grid=lambda n: n // TILE, block=128)
def bulk_scale(n: i32, a: f32[n], b: f32[n]):
    """b = 2a: thread 0 copies the block's tile with one bulk copy; every thread waits for phase 0."""
    bar = shared_tensor(i64, [1])
    tile = shared_tensor(f32, [TILE])
    if threadIdx.x == 0:
        mbarrier_init(bar[0], 1)
    syncthreads()
    if threadIdx.x == 0:
        mbarrier_arrive_expect_tx(bar[0], TILE * 4)
        bulk_copy(tile[0], a[blockIdx.x * TILE], bar[0], elems=TILE)
    mbarrier_wait(bar[0], 0)
    for j in range(2):
        i = threadIdx.x * 2 + j
        b[blockIdx.x * TILE + i] = tile[i] * 2.0


@kernel(grid=1, block=TILE)
def bulk_pipeline_sum(k: i32, a: f32[k, TILE], out: f32[TILE]):
    """out[t] = sum of a[:, t], the rows streamed through two shared stages: row r lands in stage
    r % 2 on barrier full[r % 2], whose phase r // 2 has parity (r // 2) % 2."""
    full = shared_tensor(i64, [2])
    stage = shared_tensor(f32, [2, TILE])
    t = threadIdx.x
    if t == 0:
        mbarrier_init(full[0], 1)
        mbarrier_init(full[1], 1)
    syncthreads()
    if t == 0:
        for r in range(min(k, 2)):
            mbarrier_arrive_expect_tx(full[r], TILE * 4)
            bulk_copy(stage[r, 0], a[r, 0], full[r], elems=TILE)
    acc = 0.0
    for r in range(k):
        s = r % 2
        mbarrier_wait(full[s], (r // 2) % 2)
        acc += stage[s, t]
        syncthreads()                               # every thread has read the stage before it is refilled
        if t == 0 and r + 2 < k:
            mbarrier_arrive_expect_tx(full[s], TILE * 4)
            bulk_copy(stage[s, 0], a[r + 2, 0], full[s], elems=TILE)
    out[t] = acc


def _two_barrier_pipeline(wait_empty: bool, name: str):
    @kernel(grid=1, block=TILE, verify=wait_empty, name=name)
    def pipeline(k: i32, a: f32[k, TILE], out: f32[TILE]):
        """As bulk_pipeline_sum, with no syncthreads() in the loop: every thread arrives on
        empty[s] once it has read stage s, and thread 0 waits for that phase before refilling it."""
        full = shared_tensor(i64, [2])
        empty = shared_tensor(i64, [2])
        stage = shared_tensor(f32, [2, TILE])
        t = threadIdx.x
        if t == 0:
            for s in range(2):
                mbarrier_init(full[s], 1)
                mbarrier_init(empty[s], TILE)
        syncthreads()
        if t == 0:
            for r in range(min(k, 2)):
                mbarrier_arrive_expect_tx(full[r], TILE * 4)
                bulk_copy(stage[r, 0], a[r, 0], full[r], elems=TILE)
        acc = 0.0
        for r in range(k):
            s = r % 2
            mbarrier_wait(full[s], (r // 2) % 2)
            acc += stage[s, t]
            mbarrier_arrive(empty[s])
            if t == 0 and r + 2 < k:
                if wait_empty:
                    mbarrier_wait(empty[s], (r // 2) % 2)
                mbarrier_arrive_expect_tx(full[s], TILE * 4)
                bulk_copy(stage[s, 0], a[r + 2, 0], full[s], elems=TILE)
        out[t] = acc
    return pipeline


full_empty_pipeline_sum = _two_barrier_pipeline(True, "full_empty_pipeline_sum")


@kernel(grid=1, block=64)
def arrive_count_barrier(n: i32, out: i32[n]):
    """A barrier of 64 arrivals and no copies: every thread arrives, then waits for phase 0 and 1."""
    bar = shared_tensor(i64, [1])
    if threadIdx.x == 0:
        mbarrier_init(bar[0], 64)
    syncthreads()
    for p in range(2):
        mbarrier_arrive(bar[0])
        mbarrier_wait(bar[0], p)
    out[threadIdx.x] = threadIdx.x


# ---------------------------------------------------------------- planted bugs (§10 mbarrier / tma)

def _one_tile(parity: int, expect: int, copy_elems: int, arrivals: int, name: str):
    @kernel(grid=1, block=32, verify=False, name=name)
    def one_tile(n: i32, a: f32[n], b: f32[n]):
        bar = shared_tensor(i64, [1])
        tile = shared_tensor(f32, [TILE])
        if threadIdx.x == 0:
            mbarrier_init(bar[0], arrivals)
        syncthreads()
        if threadIdx.x == 0:
            mbarrier_arrive_expect_tx(bar[0], expect)
            bulk_copy(tile[0], a[0], bar[0], elems=copy_elems)
        mbarrier_wait(bar[0], parity)
        b[threadIdx.x] = tile[threadIdx.x]
    return one_tile


wait_parity_one_first = _one_tile(1, TILE * 4, TILE, 1, "wait_parity_one_first")   # bug: phase 0 has parity 0
expect_too_few_bytes = _one_tile(0, TILE * 2, TILE, 1, "expect_too_few_bytes")      # bug: announces 512 of 1024 bytes
count_two_arrives_one = _one_tile(0, TILE * 4, TILE, 2, "count_two_arrives_one")    # bug: init(2), one arrival


@kernel(grid=1, block=TILE, verify=False)
def pipeline_parity_never_flips(k: i32, a: f32[k, TILE], out: f32[TILE]):
    full = shared_tensor(i64, [2])
    stage = shared_tensor(f32, [2, TILE])
    t = threadIdx.x
    if t == 0:
        mbarrier_init(full[0], 1)
        mbarrier_init(full[1], 1)
    syncthreads()
    if t == 0:
        for r in range(2):
            mbarrier_arrive_expect_tx(full[r], TILE * 4)
            bulk_copy(stage[r, 0], a[r, 0], full[r], elems=TILE)
    acc = 0.0
    for r in range(k):
        s = r % 2
        mbarrier_wait(full[s], 0)                   # bug: the parity must flip every pass over the stages
        acc += stage[s, t]
        syncthreads()
        if t == 0 and r + 2 < k:
            mbarrier_arrive_expect_tx(full[s], TILE * 4)
            bulk_copy(stage[s, 0], a[r + 2, 0], full[s], elems=TILE)
    out[t] = acc


# bug: thread 0 refills a stage without waiting for the empty barrier's phase of the reads
refill_without_empty_wait = _two_barrier_pipeline(False, "refill_without_empty_wait")


@kernel(grid=1, block=32, verify=False)
def tma_read_before_wait(n: i32, a: f32[n], b: f32[n]):
    bar = shared_tensor(i64, [1])
    tile = shared_tensor(f32, [TILE])
    if threadIdx.x == 0:
        mbarrier_init(bar[0], 2)
    syncthreads()
    if threadIdx.x == 0:
        mbarrier_arrive_expect_tx(bar[0], TILE * 4)
        bulk_copy(tile[0], a[0], bar[0], elems=TILE)
    b[threadIdx.x] = tile[threadIdx.x]              # bug: read before the phase completed
    if threadIdx.x == 1:
        mbarrier_arrive(bar[0])
    mbarrier_wait(bar[0], 0)


@kernel(grid=1, block=32, verify=False)
def tma_write_before_wait(n: i32, a: f32[n], b: f32[n]):
    bar = shared_tensor(i64, [1])
    tile = shared_tensor(f32, [TILE])
    if threadIdx.x == 0:
        mbarrier_init(bar[0], 1)
    syncthreads()
    if threadIdx.x == 0:
        mbarrier_arrive_expect_tx(bar[0], TILE * 4)
        bulk_copy(tile[0], a[0], bar[0], elems=TILE)
    tile[threadIdx.x] = 0.0                         # bug: overwrites a copy before its phase was waited for
    mbarrier_wait(bar[0], 0)
    b[threadIdx.x] = tile[threadIdx.x]


@kernel(grid=1, block=32, verify=False)
def tma_read_without_own_wait(n: i32, a: f32[n], b: f32[n]):
    bar = shared_tensor(i64, [1])
    tile = shared_tensor(f32, [TILE])
    if threadIdx.x == 0:
        mbarrier_init(bar[0], 1)
    syncthreads()
    if threadIdx.x == 0:
        mbarrier_arrive_expect_tx(bar[0], TILE * 4)
        bulk_copy(tile[0], a[0], bar[0], elems=TILE)
        mbarrier_wait(bar[0], 0)
    b[threadIdx.x] = tile[threadIdx.x]              # bug: only thread 0 waited, and no syncthreads() follows


@kernel(grid=1, block=32, verify=False)
def arrivals_beyond_count(n: i32, a: f32[n], b: f32[n]):
    bar = shared_tensor(i64, [1])
    tile = shared_tensor(f32, [TILE])
    if threadIdx.x == 0:
        mbarrier_init(bar[0], 1)
    syncthreads()
    if threadIdx.x < 2:
        mbarrier_arrive_expect_tx(bar[0], TILE * 2)   # bug: two threads arrive on a barrier of one arrival
    if threadIdx.x == 0:
        bulk_copy(tile[0], a[0], bar[0], elems=TILE)
    mbarrier_wait(bar[0], 0)
    b[threadIdx.x] = tile[threadIdx.x]


@kernel(grid=1, block=32, verify=False)
def arrival_count_from_size(n: i32, a: f32[n], b: f32[n]):
    bar = shared_tensor(i64, [1])
    if threadIdx.x == 0:
        mbarrier_init(bar[0], n - 32)               # bug: 0 arrivals when n = 32
    syncthreads()
    b[threadIdx.x] = a[threadIdx.x]


@kernel(grid=1, block=32, verify=False)
def tma_misaligned_source(n: i32, a: f32[n], b: f32[n]):
    bar = shared_tensor(i64, [1])
    tile = shared_tensor(f32, [TILE])
    if threadIdx.x == 0:
        mbarrier_init(bar[0], 1)
    syncthreads()
    if threadIdx.x == 0:
        mbarrier_arrive_expect_tx(bar[0], 64)
        bulk_copy(tile[0], a[1], bar[0], elems=16)  # bug: a[1] is 4 bytes past a 16-byte boundary
    mbarrier_wait(bar[0], 0)
    b[threadIdx.x] = tile[threadIdx.x % 16]


@kernel(grid=1, block=32, verify=False)
def tma_never_waited(n: i32, a: f32[n], b: f32[n]):
    bar = shared_tensor(i64, [1])
    tile = shared_tensor(f32, [TILE])
    if threadIdx.x == 0:
        mbarrier_init(bar[0], 1)
    syncthreads()
    if threadIdx.x == 0:
        bulk_copy(tile[0], a[0], bar[0], elems=TILE)  # bug: no arrival ever completes the copy's phase
    b[threadIdx.x] = a[threadIdx.x]


@kernel(grid=1, block=32, verify=False)
def mbarrier_init_without_syncthreads(n: i32, a: f32[n], b: f32[n]):
    bar = shared_tensor(i64, [1])
    if threadIdx.x == 0:
        mbarrier_init(bar[0], 32)
    mbarrier_arrive(bar[0])                         # bug: other threads use the barrier before a syncthreads()
    mbarrier_wait(bar[0], 0)
    b[threadIdx.x] = a[threadIdx.x]


# ---------------------------------------------------------------- TMA tensor copies (§5.11)

BM, BN = 32, 16                  # the box: 32 rows of 16 f32 (64 bytes)


def tma_swizzled_copy(mode: int):
    """b = a + 1 read element by element from f32 tiles that TMA loads with the `mode`-byte
    swizzle (16 rows of one swizzle row each: mode / 4 columns), zero past a's edges; c = a
    written back from the same tiles by tma_store, which unswizzles them."""
    cols, layout = mode // 4, swizzle({32: 1, 64: 2, 128: 3}[mode], 2, 3)

    @kernel(grid=lambda m, n: ((n + cols - 1) // cols, (m + 15) // 16), block=128, name=f"tma_swizzled_copy_{mode}")
    def copy(m: i32, n: i32, a: f32[m, n], b: f32[m, n], c: f32[m, n]):
        bar = shared_tensor(i64, [1])
        tile = shared_tensor(f32, [16, cols], layout=layout)
        r0 = blockIdx.y * 16
        c0 = blockIdx.x * cols
        if threadIdx.x == 0:
            mbarrier_init(bar[0], 1)
        syncthreads()
        if threadIdx.x == 0:
            mbarrier_arrive_expect_tx(bar[0], 16 * cols * 4)
            tma_load(tile, a[r0, c0], bar[0])
        mbarrier_wait(bar[0], 0)
        for q in range(16 * cols // 128):
            e = q * 128 + threadIdx.x
            i = r0 + e // cols
            j = c0 + e % cols
            if i < m and j < n:
                b[i, j] = tile[e // cols, e % cols] + 1.0
        if threadIdx.x == 0:
            tma_store(c[r0, c0], tile)
    return copy


@kernel(grid=lambda m, n: ((n + BN - 1) // BN, (m + BM - 1) // BM), block=128)
def tma_tile_copy(m: i32, n: i32, a: f32[m, n], b: f32[m, n], c: f32[m, n]):
    """b = a + 1 through shared tiles moved by TMA; c[i, j] = the tile element, zero outside a
    (the store clips the ragged edge, so c and b keep only in-range elements)."""
    bar = shared_tensor(i64, [1])
    tile = shared_tensor(f32, [BM, BN])
    out = shared_tensor(f32, [BM, BN])
    r0 = blockIdx.y * BM
    c0 = blockIdx.x * BN
    if threadIdx.x == 0:
        mbarrier_init(bar[0], 1)
    syncthreads()
    if threadIdx.x == 0:
        mbarrier_arrive_expect_tx(bar[0], BM * BN * 4)
        tma_load(tile, a[r0, c0], bar[0])
    mbarrier_wait(bar[0], 0)
    for q in range(BM * BN // 128):
        e = q * 128 + threadIdx.x
        out[e // BN, e % BN] = tile[e // BN, e % BN] + 1.0
    syncthreads()
    if threadIdx.x == 0:
        tma_store(b[r0, c0], out)
    for q in range(BM * BN // 128):
        e = q * 128 + threadIdx.x
        i = r0 + e // BN
        j = c0 + e % BN
        if i < m and j < n:
            c[i, j] = tile[e // BN, e % BN]


@kernel(grid=1, block=32)
def tma_zero_fill(n: i32, a: f32[n, n], z: f32[BM, BN]):
    """z = the box at (-8, n - 8): rows above and columns past a's edge read as zero."""
    bar = shared_tensor(i64, [1])
    tile = shared_tensor(f32, [BM, BN])
    if threadIdx.x == 0:
        mbarrier_init(bar[0], 1)
    syncthreads()
    if threadIdx.x == 0:
        mbarrier_arrive_expect_tx(bar[0], BM * BN * 4)
        tma_load(tile, a[-8, n - 8], bar[0])
    mbarrier_wait(bar[0], 0)
    for i in range(BM):
        if threadIdx.x < BN:
            z[i, threadIdx.x] = tile[i, threadIdx.x]


@kernel(grid=1, block=32, verify=False)
def tma_box_read_before_wait(n: i32, a: f32[n, n], z: f32[BM, BN]):
    bar = shared_tensor(i64, [1])
    tile = shared_tensor(f32, [BM, BN])
    if threadIdx.x == 0:
        mbarrier_init(bar[0], 1)
    syncthreads()
    if threadIdx.x == 0:
        mbarrier_arrive_expect_tx(bar[0], BM * BN * 2)   # bug: half the box's bytes
        tma_load(tile, a[0, 0], bar[0])
    if threadIdx.x < BN:
        z[0, threadIdx.x] = tile[0, threadIdx.x]          # bug: and read before any wait
    mbarrier_wait(bar[0], 0)
