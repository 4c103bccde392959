"""Warpgroup MMA in the interpreter (SPEC.md §5.12) beyond the conformance cases: groups
retire oldest first (wait_group(1) frees the older accumulator only), many blocks batched in
one lockstep run each read their own tiles, checks off give the same results, the printer
shows descriptors as the DSL writes them, and a lane-divergent wgmma is a verifier error."""
from __future__ import annotations

import numpy as np
import pytest

import taskmap
from taskmap.conformance.kernels.wgmmas import SW32
from taskmap.lang import (f16, f32, i32, kernel, register_tensor, shared_tensor, syncthreads, threadIdx, blockIdx,
                          wgmma, wgmma_commit_group, wgmma_desc, wgmma_fence, wgmma_wait_group)
from taskmap.refimpl import KernelTrap
from taskmap.spec.errors import VerifyError

RNG = np.random.default_rng(7)


def _two_groups(read_second_early: bool):
    @kernel(grid=1, block=128, name=f"two_groups_{read_second_early}")
    def two_groups(a: f16[64, 16], b: f16[16, 16], c: f32[2, 64, 16]):
        """acc0 = a @ b in group 0, acc1 = a @ b in group 1; wait_group(1) retires group 0 only."""
        sa = shared_tensor(f16, [64, 16], layout=SW32)
        sb = shared_tensor(f16, [16, 16], layout=SW32)
        acc0 = register_tensor(f32, [8])
        acc1 = register_tensor(f32, [8])
        t = threadIdx.x
        for i in range(t, 64 * 16, 128):
            sa[i // 16, i % 16] = a[i // 16, i % 16]
        for i in range(t, 16 * 16, 128):
            sb[i // 16, i % 16] = b[i % 16, i // 16]
        for i in range(8):
            acc0[i] = 0.0
            acc1[i] = 1.0
        syncthreads()
        wgmma_fence()
        wgmma(acc0, wgmma_desc(sa[0, 0], sbo=256, swizzle=32), wgmma_desc(sb[0, 0], sbo=256, swizzle=32), n=16)
        wgmma_commit_group()
        wgmma(acc1, wgmma_desc(sa[0, 0], sbo=256, swizzle=32), wgmma_desc(sb[0, 0], sbo=256, swizzle=32), n=16)
        wgmma_commit_group()
        wgmma_wait_group(1)
        for i in range(8):
            c[0, 16 * (t // 32) + t % 32 // 4 + 8 * (i % 4 // 2), 8 * (i // 4) + 2 * (t % 4) + i % 2] = acc0[i]
        if read_second_early:
            c[1, 0, 0] = acc1[0]
        wgmma_wait_group(0)
        for i in range(8):
            c[1, 16 * (t // 32) + t % 32 // 4 + 8 * (i % 4 // 2), 8 * (i // 4) + 2 * (t % 4) + i % 2] = acc1[i]
    return two_groups


def _operands():
    a = RNG.integers(-4, 5, (64, 16)).astype(np.float16)
    b = RNG.integers(-4, 5, (16, 16)).astype(np.float16)
    return a, b, a.astype(np.float64) @ b.astype(np.float64)


def test_wait_group_one_retires_the_older_group_only():
    a, b, want = _operands()
    c = np.zeros((2, 64, 16), np.float32)
    taskmap.interpret(_two_groups(False), a, b, c)
    np.testing.assert_array_equal(c[0], want)
    np.testing.assert_array_equal(c[1], want + 1)
    with pytest.raises(KernelTrap) as e:
        taskmap.interpret(_two_groups(True), a, b, np.zeros((2, 64, 16), np.float32))
    assert e.value.phrase == "access to wgmma registers before wgmma_wait_group" and e.value.buffer == "acc1"


@kernel(grid=lambda nb: nb, block=128)
def batched_tiles(nb: i32, a: f16[nb, 64, 16], b: f16[nb, 16, 8], c: f32[nb, 64, 8]):
    """c[z] = a[z] @ b[z], one block per z: the blocks' shared tiles are separate instances."""
    sa = shared_tensor(f16, [64, 16], layout=SW32)
    sb = shared_tensor(f16, [8, 16], layout=SW32)
    acc = register_tensor(f32, [4])
    t = threadIdx.x
    z = blockIdx.x
    for i in range(t, 64 * 16, 128):
        sa[i // 16, i % 16] = a[z, i // 16, i % 16]
    if t < 8 * 16:
        sb[t // 16, t % 16] = b[z, t % 16, t // 16]
    for i in range(4):
        acc[i] = 0.0
    syncthreads()
    wgmma_fence()
    wgmma(acc, wgmma_desc(sa[0, 0], sbo=256, swizzle=32), wgmma_desc(sb[0, 0], sbo=256, swizzle=32), n=8)
    wgmma_commit_group()
    wgmma_wait_group(0)
    for i in range(4):
        c[z, 16 * (t // 32) + t % 32 // 4 + 8 * (i // 2), 2 * (t % 4) + i % 2] = acc[i]


@pytest.mark.parametrize("checks", [True, False])
def test_many_blocks_each_multiply_their_own_tiles(checks):
    nb = 5
    a = RNG.integers(-4, 5, (nb, 64, 16)).astype(np.float16)
    b = RNG.integers(-4, 5, (nb, 16, 8)).astype(np.float16)
    c = np.zeros((nb, 64, 8), np.float32)
    taskmap.interpret(batched_tiles, nb, a, b, c, checks=checks)
    np.testing.assert_array_equal(c, np.einsum("zmk,zkn->zmn", a.astype(np.float64), b.astype(np.float64)))


def test_printer_writes_descriptors_as_the_dsl_does():
    text = str(batched_tiles)
    assert "wgmma.m64n8k16(acc, wgmma_desc(sa[0, 0], sbo=256, swizzle=32, lbo=16), " \
           "wgmma_desc(sb[0, 0], sbo=256, swizzle=32, lbo=16))" in text
    assert "wgmma_fence()" in text and "wgmma_commit_group()" in text and "wgmma_wait_group(0)" in text


def test_a_lane_divergent_wgmma_is_a_verifier_error():
    with pytest.raises(VerifyError) as e:
        @kernel(grid=1, block=128)
        def lane_divergent(a: f16[64, 16]):
            sa = shared_tensor(f16, [64, 16], layout=SW32)
            acc = register_tensor(f32, [4])
            if threadIdx.x % 32 < 16:
                wgmma(acc, wgmma_desc(sa[0, 0], sbo=256, swizzle=32), wgmma_desc(sa[0, 0], sbo=256, swizzle=32), n=8)
    assert e.value.phrase == "warp collective in thread-dependent branch"
