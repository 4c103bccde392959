"""Kernels with one planted bug each: the interpreter must trap on it (SPEC.md §10).

Each kernel is small (one block of 32-64 threads unless the bug needs more) and otherwise
correct, so the only trap it can raise is the one its name says. Cases: conformance/cases/traps.yaml.
`verify=False` where a static rule might (rightly) reject the kernel before it runs: these
cases test the dynamic checks.
"""
from __future__ import annotations

from taskmap.spec import ir
from taskmap.lang import (blockIdx, cp_async, cp_async_commit_group, cp_async_wait_group, f16, f32, i32,
                          kernel, ldmatrix, mma_sync, register_tensor, repeat, shared_tensor, shfl_xor, spatial,
                          syncthreads, syncwarp, threadIdx)


# ---------------------------------------------------------------- §3.3 out of bounds

@kernel(grid=1, block=32, verify=False)
def oob_global_read(n: i32, a: f32[n], b: f32[n]):
    i = threadIdx.x
    if i < n:
        b[i] = a[i + 1]                        # bug: the last thread reads a[n]


@kernel(grid=1, block=32, verify=False)
def oob_global_write(n: i32, a: f32[n], b: f32[n]):
    i = threadIdx.x
    if i <= n - 1:
        b[n - i] = a[i]                        # bug: off by one, thread 0 writes b[n]


@kernel(grid=1, block=64, verify=False)
def oob_shared(n: i32, a: f32[n], b: f32[n]):
    tile = shared_tensor(f32, [32])
    i = threadIdx.x
    if i < n:
        tile[i] = a[i]                         # bug: tile holds 32, the block has 64 threads
    syncthreads()
    if i < n:
        b[i] = tile[i]


@kernel(grid=1, block=32, verify=False)
def oob_register(n: i32, a: f32[n], b: f32[n]):
    r = register_tensor(f32, [4])
    for k in range(5):
        r[k] = a[k]                            # bug: k reaches 4
    b[threadIdx.x] = r[0]


@kernel(grid=1, block=64, verify=False)
def off_by_one(n: i32, a: f32[n], b: f32[n]):
    i = threadIdx.x
    if i <= n:
        b[i] = a[i]                            # bug: i == n is one past the end


@kernel(grid=1, block=32, verify=False)
def negative_index(n: i32, a: f32[n], b: f32[n]):
    i = threadIdx.x
    b[i] = a[i - 1]                            # bug: thread 0 reads a[-1]


# ---------------------------------------------------------------- §3.2 uninitialized reads

@kernel(grid=1, block=32)
def copy32(n: i32, a: f32[n], b: f32[n]):
    """Correct; traps only when the case passes `a` as `empty` (uninitialized global read)."""
    i = threadIdx.x
    if i < n:
        b[i] = a[i]


@kernel(grid=1, block=32, verify=False)
def uninit_shared(n: i32, a: f32[n], b: f32[n]):
    tile = shared_tensor(f32, [32])
    i = threadIdx.x
    if i < 16:
        tile[i] = a[i]                         # bug: only half the tile is written
    syncthreads()
    b[i] = tile[i]


@kernel(grid=1, block=32, verify=False)
def uninit_register(n: i32, a: f32[n], b: f32[n]):
    r = register_tensor(f32, [2])
    r[0] = a[threadIdx.x]
    b[threadIdx.x] = r[0] + r[1]               # bug: r[1] never written


@kernel(grid=1, block=32, verify=False)
def _read_before_assign(n: i32, a: f32[n], b: f32[n]):
    x = a[threadIdx.x]
    b[threadIdx.x] = x                         # reads x, declared without a value below


def _drop_initializer(node):
    return ir.DeclareVar(node.var, None, loc=node.loc) if isinstance(node, ir.DeclareVar) else node


# The DSL always gives a local a value; IR (another front end, a pass) need not. This is
# _read_before_assign with `x` declared uninitialized, then read.
uninit_variable = ir.rewrite(_read_before_assign, _drop_initializer)


@kernel(grid=1, block=32, verify=False)
def unwritten_output_read(n: i32, a: f32[n], out: f32[n]):
    i = threadIdx.x
    out[i] = out[i] + a[i]                     # bug: read before any write (the case passes `out` empty)


# ---------------------------------------------------------------- §1.4 races

@kernel(grid=1, block=32, verify=False)
def race_shared_missing_barrier(n: i32, a: f32[n], b: f32[n]):
    tile = shared_tensor(f32, [32])
    i = threadIdx.x
    tile[i] = a[i]
    b[i] = tile[31 - i]                        # bug: no syncthreads() between write and read


@kernel(grid=1, block=32, verify=False)
def race_shared_write_write(n: i32, a: f32[n], b: f32[n]):
    total = shared_tensor(f32, [1])
    total[0] = a[threadIdx.x]                  # bug: every thread writes the same element
    syncthreads()
    b[threadIdx.x] = total[0]


@kernel(grid=1, block=32, verify=False)
def race_shared_reuse(n: i32, a: f32[n], b: f32[n]):
    tile = shared_tensor(f32, [32])
    i = threadIdx.x
    tile[i] = a[i]
    syncthreads()
    b[i] = tile[31 - i]
    tile[i] = 0.0                              # bug: overwrites what thread 31-i may still read


@kernel(grid=1, block=64, verify=False)
def race_syncwarp_across_warps(n: i32, a: f32[n], b: f32[n]):
    tile = shared_tensor(f32, [64])
    i = threadIdx.x
    tile[i] = a[i]
    syncwarp()                                 # bug: orders one warp only; 63-i is in the other warp
    b[i] = tile[63 - i]


@kernel(grid=1, block=32, verify=False)
def race_global_write_write(n: i32, a: f32[n], out: f32[1]):
    out[0] = a[threadIdx.x]                    # bug: plain store where atomic_add was meant


@kernel(grid=lambda n: n // 32, block=32, verify=False)
def race_global_across_blocks(n: i32, a: f32[n], b: f32[n]):
    i = blockIdx.x * 32 + threadIdx.x
    b[i] = a[i]
    syncthreads()                              # bug: a barrier orders one block only
    j = (i + 32) % n
    a[i] = b[j]                                # reads what another block wrote


@kernel(grid=lambda m, n: ((n + 31) // 32, (m + 31) // 32), block=256, verify=False)
def transpose_no_barrier(m: i32, n: i32, a: f32[m, n], b: f32[n, m]):
    tile = shared_tensor(f32, [32, 33])
    for i, j in (repeat(4, 1) * spatial(8, 32)).on(threadIdx.x):
        r = blockIdx.y * 32 + i
        c = blockIdx.x * 32 + j
        if r < m and c < n:
            tile[i, j] = a[r, c]
    for i, j in (repeat(4, 1) * spatial(8, 32)).on(threadIdx.x):
        r = blockIdx.x * 32 + i
        c = blockIdx.y * 32 + j
        if r < n and c < m:
            b[r, c] = tile[j, i]               # bug: no syncthreads() between the tile's writes and these reads


def make_matmul_double_buffer(wrong_stage: bool):
    """C (8x8) = A (8xK) @ B (Kx8), K in tiles of 4, shared tiles double-buffered: iteration t
    loads tile t+1 into stage (t+1) % 2 while computing on stage t % 2. With `wrong_stage`
    it refills the stage being read (a race); without, it is correct."""

    @kernel(grid=1, block=64, name="matmul_double_buffer_bug" if wrong_stage else "matmul_double_buffer",
            verify=False)
    def matmul_double_buffer(K: i32, a: f32[8, K], b: f32[K, 8], c: f32[8, 8]):
        sa = shared_tensor(f32, [2, 8, 4])
        sb = shared_tensor(f32, [2, 4, 8])
        tid = threadIdx.x
        i = tid // 8
        j = tid % 8
        if tid < 32:
            sa[0, tid // 4, tid % 4] = a[tid // 4, tid % 4]
        else:
            sb[0, (tid - 32) // 8, tid % 8] = b[(tid - 32) // 8, tid % 8]
        syncthreads()
        acc = 0.0
        tiles = K // 4
        for t in range(tiles):
            nxt = t % 2 if wrong_stage else (t + 1) % 2
            if t + 1 < tiles:
                if tid < 32:
                    sa[nxt, tid // 4, tid % 4] = a[tid // 4, (t + 1) * 4 + tid % 4]
                else:
                    sb[nxt, (tid - 32) // 8, tid % 8] = b[(t + 1) * 4 + (tid - 32) // 8, tid % 8]
            for k in range(4):
                acc += sa[t % 2, i, k] * sb[t % 2, k, j]   # bug (wrong_stage): reads the stage being refilled
            syncthreads()
        c[i, j] = acc
    return matmul_double_buffer


@kernel(grid=2, block=32, verify=False)
def cross_block_write(out: i32[1]):
    if threadIdx.x == 0:
        out[0] = blockIdx.x                    # bug: every block writes the same element


@kernel(grid=2, block=32, verify=False)
def cross_block_read_after_write(a: f32[64], b: f32[64]):
    i = blockIdx.x * 32 + threadIdx.x
    a[i] = 1.0
    if blockIdx.x == 1:
        b[i] = a[i - 32]                       # bug: reads block 0's writes; blocks are not ordered


# ---------------------------------------------------------------- §5.3 barriers

@kernel(grid=1, block=32, verify=False)
def divergent_syncthreads(n: i32, a: f32[n], b: f32[n]):
    tile = shared_tensor(f32, [32])
    i = threadIdx.x
    tile[i] = a[i]
    if i < 16:
        syncthreads()                          # bug: half the block never gets here
    b[i] = tile[i]


@kernel(grid=1, block=32, verify=False)
def divergent_syncwarp(n: i32, a: f32[n], b: f32[n]):
    i = threadIdx.x
    if a[i] > 0.0:
        syncwarp()                             # bug: data-dependent barrier
    b[i] = a[i]


@kernel(grid=1, block=32, verify=False)
def barrier_count_mismatch(n: i32, a: f32[n], b: f32[n]):
    i = threadIdx.x
    for k in range(i % 2 + 1):
        syncthreads()                          # bug: odd threads meet it twice, even ones once
    b[i] = a[i]


# ---------------------------------------------------------------- §5.6/§5.7 warp collectives

@kernel(grid=1, block=32, verify=False)
def divergent_shuffle(n: i32, a: f32[n], b: f32[n]):
    i = threadIdx.x
    v = a[i]
    if i < 16:
        v = shfl_xor(v, 1)                     # bug: half the warp shuffles
    b[i] = v


@kernel(grid=1, block=32, verify=False)
def partial_warp_mma(c: f32[32, 4]):
    fa = register_tensor(f16, [8])
    fb = register_tensor(f16, [4])
    acc = register_tensor(f32, [4])
    for e in range(8):
        fa[e] = 1.0
    for e in range(4):
        fb[e] = 1.0
        acc[e] = 0.0
    if threadIdx.x < 16:
        mma_sync(fa, fb, acc)                  # bug: half of the warp
    for e in range(4):
        c[threadIdx.x, e] = acc[e]


@kernel(grid=1, block=32, verify=False)
def misaligned_ldmatrix_x4(out: f16[32, 8]):
    s = shared_tensor(f16, [32, 9])
    for e in range(9):
        s[threadIdx.x, e] = 0.0
    syncthreads()
    frag = register_tensor(f16, [8])
    ldmatrix(frag, s[threadIdx.x, 0], num=4)   # bug: rows 9 elements apart: lane 1's row is not 16-byte aligned
    for e in range(8):
        out[threadIdx.x, e] = frag[e]


def _ldmatrix_8x8(column: int, lanes: int):
    """One 8x8 f16 matrix through ldmatrix: rows start at `column` of a [8, 16] tile, and
    only lanes below `lanes` execute the load."""
    @kernel(grid=1, block=32, verify=False, name=f"ldmatrix_col{column}_lanes{lanes}")
    def ldmatrix_8x8(n: i32, a: f16[n], b: f16[n]):
        tile = shared_tensor(f16, [8, 16])
        lane = threadIdx.x
        for k in range(4):
            tile[lane // 4, (lane % 4) * 4 + k] = a[lane * 4 + k]
        syncthreads()
        frag = register_tensor(f16, [2])
        if lane < lanes:
            ldmatrix(frag, tile[lane % 8, column], num=1)
        b[lane * 2] = frag[0]
        b[lane * 2 + 1] = frag[1]
    return ldmatrix_8x8


divergent_ldmatrix = _ldmatrix_8x8(column=0, lanes=16)    # bug: a warp collective under a lane test
ldmatrix_misaligned = _ldmatrix_8x8(column=1, lanes=32)   # bug: rows start 2 bytes past a 16-byte boundary


# ---------------------------------------------------------------- §5.4 async copies

@kernel(grid=1, block=32, verify=False)
def async_read_pending(n: i32, a: f32[n], b: f32[n]):
    tile = shared_tensor(f32, [32])
    i = threadIdx.x
    cp_async(tile[i], a[i])
    cp_async_commit_group()
    b[i] = tile[i]                             # bug: read before cp_async_wait_group
    cp_async_wait_group(0)


@kernel(grid=1, block=32, verify=False)
def async_write_pending(n: i32, a: f32[n], b: f32[n]):
    tile = shared_tensor(f32, [32])
    i = threadIdx.x
    cp_async(tile[i], a[i])
    cp_async_commit_group()
    tile[i] = 0.0                              # bug: overwrites a copy still in flight
    cp_async_wait_group(0)
    b[i] = tile[i]


@kernel(grid=1, block=32, verify=False)
def async_wait_uncommitted(n: i32, a: f32[n], b: f32[n]):
    tile = shared_tensor(f32, [32])
    i = threadIdx.x
    cp_async(tile[i], a[i])
    cp_async_wait_group(0)                     # bug: the copy's group was never committed
    b[i] = tile[i]


@kernel(grid=1, block=32, verify=False)
def async_pending_at_exit(n: i32, a: f32[n], b: f32[n]):
    tile = shared_tensor(f32, [32])
    i = threadIdx.x
    b[i] = a[i]
    cp_async(tile[i], a[i])                    # bug: never waited for
    cp_async_commit_group()


@kernel(grid=1, block=8, verify=False)
def async_misaligned(n: i32, a: f32[n], b: f32[n]):
    tile = shared_tensor(f32, [40])
    i = threadIdx.x
    cp_async(tile[i * 4 + 1], a[i * 4], elems=4)   # bug: 16-byte copy to a 4-byte-aligned address
    cp_async_commit_group()
    cp_async_wait_group(0)
    syncthreads()
    b[i] = tile[i * 4 + 1]


@kernel(grid=1, block=32, verify=False)
def async_landing_race(n: i32, a: f32[n], b: f32[n]):
    tile = shared_tensor(f32, [32])
    i = threadIdx.x
    cp_async(tile[i], a[i])
    cp_async_commit_group()
    cp_async_wait_group(0)
    b[i] = tile[31 - i]                        # bug: another thread's copy, no barrier after the wait


# ---------------------------------------------------------------- §2.3 arithmetic

@kernel(grid=1, block=32, verify=False)
def int_divide(n: i32, a: i32[n], d: i32[n], q: i32[n]):
    i = threadIdx.x
    if i < n:
        q[i] = a[i] // d[i]                    # traps where d[i] == 0


@kernel(grid=1, block=32, verify=False)
def int_remainder(n: i32, a: i32[n], d: i32[n], q: i32[n]):
    i = threadIdx.x
    if i < n:
        q[i] = a[i] % d[i]                     # traps where d[i] == 0


@kernel(grid=1, block=32, verify=False)
def shift_by(n: i32, s: i32, a: i32[n], b: i32[n]):
    i = threadIdx.x
    if i < n:
        b[i] = a[i] << s                       # traps for s outside [0, 32)


# ---------------------------------------------------------------- §5.5 assertions, §5.2 loops

@kernel(grid=1, block=32, verify=False)
def checked_sqrt_input(n: i32, a: f32[n], b: f32[n]):
    i = threadIdx.x
    if i < n:
        assert a[i] >= 0.0, "sqrt of a negative input"
        b[i] = a[i] * 0.5


@kernel(grid=1, block=32, verify=False)
def thread_index_assertion(n: i32, a: f32[32]):
    assert threadIdx.x < n, "thread index below n"     # bug: threads n.. fail it
    a[threadIdx.x] = 0.0


@kernel(grid=1, block=32, verify=False)
def strided_copy(n: i32, step: i32, a: f32[n], b: f32[n]):
    for i in range(threadIdx.x, n, step):      # traps for step == 0
        b[i] = a[i]


# ---------------------------------------------------------------- §1.1/§3.4 launches

@kernel(grid=lambda n: n // 32, block=32, verify=False)
def whole_blocks_only(n: i32, a: f32[n], b: f32[n]):
    i = blockIdx.x * 32 + threadIdx.x
    b[i] = a[i]                                # grid is 0 blocks for n < 32


@kernel(grid=1, block=lambda n: n, verify=False)
def block_per_element(n: i32, a: f32[n], b: f32[n]):
    b[threadIdx.x] = a[threadIdx.x]            # more than 1024 threads for n > 1024
