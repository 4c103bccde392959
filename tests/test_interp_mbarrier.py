"""mbarrier and TMA bulk-copy semantics in the interpreter (SPEC.md §5.9, §5.10) beyond the
conformance cases: no false positive where a syncthreads() passes one thread's wait on, the
same results with checks off, batches of many blocks, re-initialization, traces."""
from __future__ import annotations

import numpy as np
import pytest

import taskmap
from taskmap.conformance.kernels import mbarriers as m
from taskmap.lang import (bulk_copy, f32, i32, i64, kernel, mbarrier_arrive, mbarrier_arrive_expect_tx,
                          mbarrier_init, mbarrier_wait, shared_tensor, syncthreads, threadIdx)
from taskmap.refimpl import KernelTrap

TILE = m.TILE


@kernel(grid=1, block=64)
def one_waiter_then_barrier(n: i32, a: f32[n], b: f32[n]):
    bar = shared_tensor(i64, [1])
    tile = shared_tensor(f32, [TILE])
    if threadIdx.x == 0:
        mbarrier_init(bar[0], 1)
    syncthreads()
    if threadIdx.x == 0:
        mbarrier_arrive_expect_tx(bar[0], TILE * 4)
        bulk_copy(tile[0], a[0], bar[0], elems=TILE)
        mbarrier_wait(bar[0], 0)
    syncthreads()                                  # thread 0's wait now orders every thread's reads
    b[threadIdx.x] = tile[TILE - 1 - threadIdx.x]


@kernel(grid=1, block=32)
def reinitialized(n: i32, out: i32[n]):
    bar = shared_tensor(i64, [1])
    for round in range(2):
        if threadIdx.x == 0:
            mbarrier_init(bar[0], 32)              # phase 0 again: the parity restarts at 0
        syncthreads()
        mbarrier_arrive(bar[0])
        mbarrier_wait(bar[0], 0)
        syncthreads()
    out[threadIdx.x] = 1


@kernel(grid=1, block=32)
def half_tile_twice(n: i32, a: f32[n], b: f32[n]):
    """Two copies and one announcement of both: the phase completes with the second copy."""
    bar = shared_tensor(i64, [1])
    tile = shared_tensor(f32, [TILE])
    if threadIdx.x == 0:
        mbarrier_init(bar[0], 1)
    syncthreads()
    if threadIdx.x == 0:
        mbarrier_arrive_expect_tx(bar[0], TILE * 4)
        bulk_copy(tile[0], a[0], bar[0], elems=TILE // 2)
        bulk_copy(tile[TILE // 2], a[TILE // 2], bar[0], elems=TILE // 2)
    mbarrier_wait(bar[0], 0)
    for j in range(8):
        b[threadIdx.x * 8 + j] = tile[threadIdx.x * 8 + j]


def test_a_syncthreads_passes_one_threads_wait_to_the_block():
    a = np.random.default_rng(0).random(TILE, np.float32)
    b = np.zeros(TILE, np.float32)
    taskmap.interpret(one_waiter_then_barrier, TILE, a, b)
    np.testing.assert_array_equal(b[:64], a[::-1][:64])


def test_reinit_restarts_phase_zero():
    out = np.zeros(32, np.int32)
    taskmap.interpret(reinitialized, 32, out)
    assert out.tolist() == [1] * 32


def test_a_phase_completes_when_all_announced_bytes_arrived():
    a = np.arange(TILE, dtype=np.float32)
    b = np.zeros(TILE, np.float32)
    taskmap.interpret(half_tile_twice, TILE, a, b)
    np.testing.assert_array_equal(b, a)


@pytest.mark.parametrize("checks", [True, False])
def test_many_blocks_and_checks_off_give_the_same_result(checks):
    n = TILE * 40                                  # 40 blocks run in lockstep, each with its own barrier
    a = np.random.default_rng(1).standard_normal(n).astype(np.float32)
    b = np.zeros(n, np.float32)
    taskmap.interpret(m.bulk_scale, n, a, b, checks=checks)
    np.testing.assert_array_equal(b, 2 * a)


def test_checks_off_still_lands_the_copies_of_a_pipeline():
    a = np.random.default_rng(2).integers(-8, 8, (7, TILE)).astype(np.float32)
    out = np.zeros(TILE, np.float32)
    taskmap.interpret(m.bulk_pipeline_sum, 7, a, out, checks=False)
    np.testing.assert_array_equal(out, a.astype(np.float64).sum(axis=0))


def test_trace_shows_the_barrier_statements():
    t = taskmap.Trace(threads=[(0, 0, 0)])
    taskmap.interpret(m.bulk_scale, TILE, np.zeros(TILE, np.float32), np.zeros(TILE, np.float32), trace=t)
    text = str(t)
    assert "mbarrier_init(bar[0], 1)" in text and "bulk_copy(" in text and "mbarrier_wait(bar[0], 0)" in text


def test_a_trapped_launch_names_the_barrier_element():
    with pytest.raises(KernelTrap) as info:
        taskmap.interpret(m.expect_too_few_bytes, TILE, np.zeros(TILE, np.float32), np.zeros(TILE, np.float32))
    assert info.value.buffer == "bar" and info.value.index == (0,)
    assert "expects 512 transaction bytes but its TMA copies deliver 1024" in str(info.value)


def test_tma_load_of_an_unwritten_element_names_that_element():
    a = taskmap.empty((20, 20), "float32")
    a[:] = 0.0
    a.initialized[:] = True
    a.initialized[3, 14] = False                   # inside the box at (-8, 12), not its first element
    with pytest.raises(KernelTrap) as info:
        taskmap.interpret(m.tma_zero_fill, 20, a, np.zeros((32, 16), np.float32))
    assert info.value.phrase == "uninitialized global read"
    assert info.value.index == (3, 14) and "a[3, 14]" in str(info.value)
