"""Kernels with one planted bug each, and what the interpreter must report (SPEC.md §10).

Each kernel marks the statement that must trap with `# BUG`; the expectation gives the trap
kind, phrase, block and thread (a race: [first accessor, second accessor], derived by hand
from the lockstep order: lanes in thread order, the lowest offending lane reported). Built
with `verify=False`: the interpreter must catch them dynamically whatever the verifier says.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from taskmap import refimpl
from taskmap.spec import ir
from taskmap.lang import (blockIdx, cp_async, cp_async_commit_group, cp_async_wait_group, f16, f32, i32, kernel,
                       ldmatrix, mma_sync, register_tensor, repeat, shared_tensor, shfl_xor, spatial, syncthreads,
                       threadIdx)


@dataclass(frozen=True)
class Bug:
    name: str
    kernel: ir.Kernel
    args: Callable[[], tuple]
    kind: str
    phrase: str
    block: tuple
    thread: object          # (x, y, z), or [first, second] for a race
    buffer: str | None = None

    @property
    def line(self) -> int:
        """The line marked `# BUG` in the kernel's source."""
        with open(self.kernel.loc.file) as f:
            lines = f.read().splitlines()
        return next(i + 1 for i in range(self.kernel.loc.line - 1, len(lines)) if "# BUG" in lines[i])


def _f32(*shape):
    return np.arange(np.prod(shape), dtype=np.float32).reshape(shape)


# ---------------------------------------------------------------- races

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
            b[r, c] = tile[j, i]  # BUG: no syncthreads() between the tile's writes and these reads


def make_matmul_double_buffer(wrong_stage: bool):
    """C (8×8) = A (8×K) @ B (K×8), K in tiles of 4, shared tiles double-buffered: iteration t
    loads tile t+1 into stage (t+1) % 2 while computing on stage t % 2."""

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
                acc += sa[t % 2, i, k] * sb[t % 2, k, j]  # BUG (with wrong_stage): reads the stage being refilled
            syncthreads()
        c[i, j] = acc
    return matmul_double_buffer


matmul_double_buffer = make_matmul_double_buffer(False)
matmul_double_buffer_bug = make_matmul_double_buffer(True)


@kernel(grid=2, block=32, verify=False)
def cross_block_write(out: i32[1]):
    if threadIdx.x == 0:
        out[0] = blockIdx.x  # BUG: every block writes the same element


@kernel(grid=2, block=32, verify=False)
def cross_block_read_after_write(a: f32[64], b: f32[64]):
    i = blockIdx.x * 32 + threadIdx.x
    a[i] = 1.0
    if blockIdx.x == 1:
        b[i] = a[i - 32]  # BUG: reads block 0's writes; blocks are not ordered


# ---------------------------------------------------------------- bounds, arithmetic, asserts

@kernel(grid=1, block=64, verify=False)
def off_by_one(n: i32, a: f32[n], b: f32[n]):
    i = threadIdx.x
    if i <= n:
        b[i] = a[i]  # BUG: i == n is one past the end


@kernel(grid=1, block=32, verify=False)
def negative_index(a: f32[32], b: f32[32]):
    i = threadIdx.x
    b[i] = a[i - 1]  # BUG: thread 0 reads a[-1]


@kernel(grid=1, block=32, verify=False)
def divide_by_zero(a: i32[32], b: i32[32]):
    i = threadIdx.x
    b[i] = a[i] // (i - 3)  # BUG: thread 3 divides by zero


@kernel(grid=1, block=32, verify=False)
def shift_too_far(s: i32, b: i32[32]):
    b[threadIdx.x] = threadIdx.x << s  # BUG: s = 32 is not below the 32 bits of i32


@kernel(grid=1, block=32, verify=False)
def assertion(n: i32, a: f32[32]):
    assert threadIdx.x < n, "thread index below n"  # BUG: threads n.. fail it
    a[threadIdx.x] = 0.0


# ---------------------------------------------------------------- barriers and collectives

@kernel(grid=1, block=64, verify=False)
def divergent_barrier(a: f32[64]):
    if threadIdx.x < 16:
        syncthreads()  # BUG: threads 16..63 never arrive
    a[threadIdx.x] = 1.0


@kernel(grid=1, block=32, verify=False)
def divergent_shuffle(a: f32[32]):
    x = a[threadIdx.x]
    if threadIdx.x < 8:
        x = shfl_xor(x, 1)  # BUG: lanes 8..31 do not take part
    a[threadIdx.x] = x


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
        mma_sync(fa, fb, acc)  # BUG: half of the warp
    for e in range(4):
        c[threadIdx.x, e] = acc[e]


@kernel(grid=1, block=32, verify=False)
def misaligned_ldmatrix(out: f16[32, 8]):
    s = shared_tensor(f16, [32, 9])
    for e in range(9):
        s[threadIdx.x, e] = 0.0
    syncthreads()
    frag = register_tensor(f16, [8])
    ldmatrix(frag, s[threadIdx.x, 0], num=4)  # BUG: rows 9 elements apart: lane 1's row is not 16-byte aligned
    for e in range(8):
        out[threadIdx.x, e] = frag[e]


# ---------------------------------------------------------------- uninitialized reads

@kernel(grid=1, block=64, verify=False)
def uninit_shared(b: f32[64]):
    s = shared_tensor(f32, [64])
    if threadIdx.x < 32:
        s[threadIdx.x] = 1.0
    syncthreads()
    b[threadIdx.x] = s[threadIdx.x]  # BUG: elements 32..63 were never written


@kernel(grid=1, block=32, verify=False)
def uninit_register(b: f32[32]):
    r = register_tensor(f32, [4])
    r[0] = 1.0
    b[threadIdx.x] = r[0] + r[1]  # BUG: r[1] was never written


@kernel(grid=1, block=32, verify=False)
def unwritten_output_read(a: f32[32], out: f32[32]):
    i = threadIdx.x
    out[i] = out[i] + a[i]  # BUG: out comes from refimpl.empty and is read before any write


# ---------------------------------------------------------------- async copies

@kernel(grid=1, block=32, verify=False)
def pending_read(a: f32[128], b: f32[128]):
    s = shared_tensor(f32, [128])
    cp_async(s[threadIdx.x * 4], a[threadIdx.x * 4], elems=4)
    cp_async_commit_group()
    b[threadIdx.x * 4] = s[threadIdx.x * 4]  # BUG: the copy has not been waited for
    cp_async_wait_group(0)


@kernel(grid=1, block=32, verify=False)
def pending_write(a: f32[128]):
    s = shared_tensor(f32, [128])
    cp_async(s[threadIdx.x * 4], a[threadIdx.x * 4], elems=4)
    cp_async_commit_group()
    s[threadIdx.x * 4 + 2] = 0.0  # BUG: overwrites a pending destination
    cp_async_wait_group(0)


@kernel(grid=1, block=32, verify=False)
def wait_without_commit(a: f32[128], b: f32[128]):
    s = shared_tensor(f32, [128])
    cp_async(s[threadIdx.x * 4], a[threadIdx.x * 4], elems=4)
    cp_async_wait_group(0)  # BUG: the copy's group was never committed
    b[threadIdx.x * 4] = s[threadIdx.x * 4]


@kernel(grid=1, block=32, verify=False)
def pending_at_exit(a: f32[128]):
    s = shared_tensor(f32, [128])
    cp_async(s[threadIdx.x * 4], a[threadIdx.x * 4], elems=4)  # BUG: never waited for
    cp_async_commit_group()


@kernel(grid=1, block=32, verify=False)
def misaligned_cp_async(a: f32[160]):
    s = shared_tensor(f32, [160])
    cp_async(s[threadIdx.x * 4 + 1], a[threadIdx.x * 4 + 1], elems=4)  # BUG: 16-byte copies at 4-byte offsets
    cp_async_commit_group()
    cp_async_wait_group(0)


def _race_pair(first, second):
    return [first, second]


BUGS = [
    Bug("missing barrier in transpose", transpose_no_barrier, lambda: (32, 32, _f32(32, 32), np.zeros((32, 32), np.float32)),
        "race", "data race on shared memory", (0, 0, 0), _race_pair((32, 0, 0), (1, 0, 0)), "tile"),
    Bug("wrong double-buffer stage in matmul", matmul_double_buffer_bug,
        lambda: (8, _f32(8, 8), _f32(8, 8), np.zeros((8, 8), np.float32)),
        "race", "data race on shared memory", (0, 0, 0), _race_pair((0, 0, 0), (1, 0, 0)), "sa"),
    Bug("cross-block global write", cross_block_write, lambda: (np.zeros(1, np.int32),),
        "race", "data race on global memory", (0, 0, 0), _race_pair((0, 0, 0), (0, 0, 0)), "out"),
    Bug("cross-block read after write", cross_block_read_after_write,
        lambda: (np.zeros(64, np.float32), np.zeros(64, np.float32)),
        "race", "data race on global memory", (1, 0, 0), _race_pair((0, 0, 0), (0, 0, 0)), "a"),
    Bug("off by one", off_by_one, lambda: (40, _f32(40), np.zeros(40, np.float32)),
        "oob", "out of bounds global access", (0, 0, 0), (40, 0, 0), "a"),
    Bug("negative index", negative_index, lambda: (_f32(32), np.zeros(32, np.float32)),
        "oob", "out of bounds global access", (0, 0, 0), (0, 0, 0), "a"),
    Bug("integer divide by zero", divide_by_zero, lambda: (np.arange(32, dtype=np.int32), np.zeros(32, np.int32)),
        "arith", "integer divide by zero", (0, 0, 0), (3, 0, 0)),
    Bug("shift out of range", shift_too_far, lambda: (32, np.zeros(32, np.int32)),
        "arith", "shift out of range", (0, 0, 0), (0, 0, 0)),
    Bug("failed assertion", assertion, lambda: (10, np.zeros(32, np.float32)),
        "assert", "assertion failed", (0, 0, 0), (10, 0, 0)),
    Bug("divergent barrier", divergent_barrier, lambda: (np.zeros(64, np.float32),),
        "barrier", "divergent barrier", (0, 0, 0), (16, 0, 0)),
    Bug("shuffle in a divergent branch", divergent_shuffle, lambda: (_f32(32),),
        "collective", "divergent warp collective", (0, 0, 0), (8, 0, 0)),
    Bug("partial-warp mma_sync", partial_warp_mma, lambda: (np.zeros((32, 4), np.float32),),
        "collective", "divergent warp collective", (0, 0, 0), (16, 0, 0)),
    Bug("misaligned ldmatrix row", misaligned_ldmatrix, lambda: (np.zeros((32, 8), np.float16),),
        "align", "misaligned ldmatrix row", (0, 0, 0), (1, 0, 0)),
    Bug("uninitialized shared read", uninit_shared, lambda: (np.zeros(64, np.float32),),
        "uninit", "uninitialized shared read", (0, 0, 0), (32, 0, 0), "s"),
    Bug("uninitialized register read", uninit_register, lambda: (np.zeros(32, np.float32),),
        "uninit", "uninitialized register read", (0, 0, 0), (0, 0, 0), "r"),
    Bug("unwritten output read", unwritten_output_read, lambda: (_f32(32), refimpl.empty(32, np.float32)),
        "uninit", "uninitialized global read", (0, 0, 0), (0, 0, 0), "out"),
    Bug("read of a pending cp_async destination", pending_read, lambda: (_f32(128), np.zeros(128, np.float32)),
        "async", "read of pending async copy destination", (0, 0, 0), (0, 0, 0), "s"),
    Bug("write to a pending cp_async destination", pending_write, lambda: (_f32(128),),
        "async", "write to pending async copy destination", (0, 0, 0), (0, 0, 0), "s"),
    Bug("wait without commit", wait_without_commit, lambda: (_f32(128), np.zeros(128, np.float32)),
        "async", "wait on uncommitted async copies", (0, 0, 0), (0, 0, 0)),
    Bug("copies pending at exit", pending_at_exit, lambda: (_f32(128),),
        "async", "async copies pending at kernel exit", (0, 0, 0), (0, 0, 0)),
    Bug("misaligned cp_async", misaligned_cp_async, lambda: (_f32(160),),
        "async", "misaligned async copy", (0, 0, 0), (0, 0, 0)),
]
