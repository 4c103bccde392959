"""Register loop nests that the interpreter runs as array operations (refimpl/register_nests.py):
results against NumPy, traced runs (the loops run one iteration at a time) agreeing, and the
traps of such a loop still raised at its statement."""
from __future__ import annotations

import numpy as np
import pytest

from taskmap import refimpl
from taskmap.refimpl.trace import Trace
from taskmap.lang import (bf16, blockIdx, f16, f32, i32, kernel, register_tensor, repeat, shared_tensor, syncthreads,
                          threadIdx)


@kernel(grid=2, block=64)
def outer_product(x: f32[128, 4], y: f32[128, 4], out: f32[128, 4, 4], s: i32):
    t = threadIdx.x + 64 * blockIdx.x
    fx = register_tensor(f32, [2, 4])
    fy = register_tensor(f32, [2, 4])
    acc = register_tensor(f32, [4, 4])
    for i, j in repeat(4, 4).on(0):
        acc[i, j] = 0.0
    for k in range(4):
        for h in range(2):
            fx[h, k] = x[t, k]
            fy[h, k] = y[t, k]
    for r in range(3):
        for i, j in repeat(4, 4).on(0):
            acc[i, j] = acc[i, j] * 0.5 + fx[s, i] * fy[s, j] - 1.0
    for i, j in repeat(4, 4).on(0):
        out[t, i, j] = acc[i, j]


def _outer_reference(x, y):
    acc = np.zeros((128, 4, 4), np.float32)
    p = x[:, :, None] * y[:, None, :]
    for _ in range(3):
        acc = acc * np.float32(0.5) + p - np.float32(1.0)        # f32 ops, rounded one at a time
    return acc


@pytest.mark.parametrize("checks", [False, True])
def test_outer_product_nest_matches_numpy(checks):
    rng = np.random.default_rng(0)
    x, y = (rng.standard_normal((128, 4)).astype(np.float32) for _ in range(2))
    out = np.zeros((128, 4, 4), np.float32)
    refimpl.interpret(outer_product, x, y, out, 1, checks=checks)
    np.testing.assert_array_equal(out, _outer_reference(x, y))


def test_traced_run_agrees():
    rng = np.random.default_rng(1)
    x, y = (rng.standard_normal((128, 4)).astype(np.float32) for _ in range(2))
    out, traced = np.zeros((128, 4, 4), np.float32), np.zeros((128, 4, 4), np.float32)
    refimpl.interpret(outer_product, x, y, out, 0)
    refimpl.interpret(outer_product, x, y, traced, 0, trace=Trace(threads=[(3, 0, 0)]))
    np.testing.assert_array_equal(out, traced)


def test_uniform_index_out_of_bounds_traps_in_the_nest():
    x, y = np.ones((128, 4), np.float32), np.ones((128, 4), np.float32)
    with pytest.raises(refimpl.KernelTrap, match="out of bounds register access") as e:
        refimpl.interpret(outer_product, x, y, np.zeros((128, 4, 4), np.float32), 2)
    assert "fx[2, 0]" in str(e.value) and "acc[i, j] * 0.5" in str(e.value)


@kernel(grid=1, block=32)
def half_written(out: f16[32, 4]):
    r = register_tensor(f16, [4])
    w = register_tensor(f16, [4])
    for i in repeat(3).on(0):
        r[i] = 1.5
    for i in repeat(4).on(0):
        w[i] = r[i] * 2.0            # r[3] was never written
    for i in repeat(4).on(0):
        out[threadIdx.x, i] = w[i]


def test_uninitialized_element_in_the_nest_traps_at_its_line():
    with pytest.raises(refimpl.KernelTrap, match="uninitialized register read") as e:
        refimpl.interpret(half_written, np.zeros((32, 4), np.float16))
    assert "r[3]" in str(e.value) and "w[i] = r[i] * 2.0" in str(e.value)


@kernel(grid=1, block=32)
def doubled(out: f32[32, 4]):
    r = register_tensor(bf16, [4])
    w = register_tensor(bf16, [4])
    for i in repeat(4).on(0):
        r[i] = 1.5 + i
    for i in repeat(4).on(0):
        w[i] = r[i] * 2.0 - 0.25          # exact in bf16: the stored bits must come back
    for i in repeat(4).on(0):
        out[threadIdx.x, i] = w[i]


def test_bf16_nest_stores_its_bits():
    out = np.zeros((32, 4), np.float32)
    refimpl.interpret(doubled, out)
    np.testing.assert_array_equal(out, np.broadcast_to((1.5 + np.arange(4)) * 2 - 0.25, (32, 4)))


def test_step_budget_still_stops_a_nest():
    x, y = np.ones((128, 4), np.float32), np.ones((128, 4), np.float32)
    with pytest.raises(refimpl.KernelTrap, match="step budget exceeded") as e:
        refimpl.interpret(outer_product, x, y, np.zeros((128, 4, 4), np.float32), 1, max_steps=3)
    assert "for i, j in repeat(4, 4)" in str(e.value)          # the first nest, not the later k loop


# ---------------------------------------------------------------- memory reads in a nest

@kernel(grid=2, block=64)
def fragments(x: f32[128, 8], out: f32[128, 4], shift: i32, barrier: i32, written: i32):
    """Each thread loads four elements of a shared tile in a nest (affine in the loop variable):
    row t + 1 + i % 64 ... as one gather; `barrier` 0 leaves the read racing the tile's writes,
    `written` < 8 leaves columns uninitialized, `shift` moves the reads out of bounds."""
    t = threadIdx.x
    s = shared_tensor(f32, [65, 8])
    for k in range(written):
        s[t, k] = x[blockIdx.x * 64 + t, k]
        if t == 0:
            s[64, k] = x[blockIdx.x * 64, k]
    if barrier == 1:
        syncthreads()
    f = register_tensor(f32, [4])
    for i in range(4):
        f[i] = s[t + 1, 2 * i + 1 + shift]
    for i in range(4):
        out[blockIdx.x * 64 + t, i] = f[i]


def _fragments_reference(x):
    rows = np.concatenate([np.concatenate([x[b * 64 + 1:b * 64 + 64], x[b * 64:b * 64 + 1]]) for b in range(2)])
    return rows[:, 1::2]


@pytest.mark.parametrize("checks", [False, True])
def test_memory_read_nest_matches_numpy(checks):
    x = np.random.default_rng(3).standard_normal((128, 8)).astype(np.float32)
    out = np.zeros((128, 4), np.float32)
    refimpl.interpret(fragments, x, out, 0, 1, 8, checks=checks)
    np.testing.assert_array_equal(out, _fragments_reference(x))


def test_memory_read_nest_is_one_gather():
    """The nest above and the fragment loads and outer product of examples.matmul_simt run as
    array operations (else the interpreter is back to one statement per iteration)."""
    from taskmap.examples import matmul_simt
    from taskmap.refimpl.launch import program_for
    from taskmap.refimpl.register_nests import compile_nest
    from taskmap.spec import ir
    for k, loops in ((fragments, {"i"}), (matmul_simt.matmul_simt, {"i_2__r0", "i_3__r0", "i_4__r0"})):
        prog = program_for(k)
        found = {n.var.name for n in ir.walk(prog.kernel) if isinstance(n, ir.For) and compile_nest(n, prog)}
        assert loops <= found, found


@pytest.mark.parametrize("args, phrase, detail", [
    ((0, 0, 8), "data race on shared memory", "s[1, 1] written by thread (1,0,0) and read by thread (0,0,0)"),
    ((0, 1, 5), "uninitialized shared read", "s[1, 5] is read before any thread wrote it"),
    ((2, 1, 8), "out of bounds shared access", "s[1, 9] is outside shape (65, 8) in dimension 1"),
])
def test_memory_read_nest_traps_as_the_loop(args, phrase, detail):
    """A check the gather fails makes the loop run: the trap names the first iteration's element
    and thread, as a traced run (always the loop) does."""
    x = np.ones((128, 8), np.float32)
    with pytest.raises(refimpl.KernelTrap, match=phrase) as e:
        refimpl.interpret(fragments, x, np.zeros((128, 4), np.float32), *args)
    assert detail in str(e.value) and "f[i] = s[t + 1, 2 * i + 1 + shift]" in str(e.value)
    with pytest.raises(refimpl.KernelTrap) as traced:
        refimpl.interpret(fragments, x, np.zeros((128, 4), np.float32), *args, trace=Trace(threads=[(0, 0, 0)]))
    assert str(traced.value).splitlines()[0] == str(e.value).splitlines()[0]


@kernel(grid=1, block=64)
def read_then_overwrite(x: f32[64], out: f32[64, 2], lag: i32):
    """Reads of s[t + lag + i] in a nest, deferred until a write in the same barrier interval
    touches their range: s[t] = 0 races with thread t - lag's read unless lag is 64 (disjoint)."""
    t = threadIdx.x
    s = shared_tensor(f32, [130])
    s[t] = x[t]
    s[t + 64] = x[t]
    if t < 2:
        s[t + 128] = x[t]
    syncthreads()
    f = register_tensor(f32, [2])
    for i in range(2):
        f[i] = s[t + lag + i]
    s[t] = 0.0
    for i in range(2):
        out[t, i] = f[i]


def test_deferred_nest_reads_race_with_a_later_write():
    x = np.arange(64, dtype=np.float32)
    with pytest.raises(refimpl.KernelTrap, match="data race on shared memory") as e:
        refimpl.interpret(read_then_overwrite, x, np.zeros((64, 2), np.float32), 1)
    assert "s[1] read by thread (0,0,0) and written by thread (1,0,0)" in str(e.value)
    out = np.zeros((64, 2), np.float32)
    refimpl.interpret(read_then_overwrite, x, out, 64)         # reads [64, 129], write [0, 63]: no race
    np.testing.assert_array_equal(out, np.stack([np.r_[x, x[:2]][i:i + 64] for i in range(2)], axis=1))


# ---------------------------------------------------------------- memory stores in a nest

@kernel(grid=2, block=64)
def tile_store(x: f32[128, 4], out: f32[128, 4], step: i32, shift: i32, barrier: i32, rewrite: i32):
    """Nests storing to shared memory at t·step + i + shift (step 3 makes neighbours' elements
    meet: a race between iterations), a second nest rewriting the tile from other threads
    (a race unless `barrier`), and a nest copying the tile back to global memory."""
    t = threadIdx.x
    s = shared_tensor(f32, [260])
    for i in range(4):
        s[t * step + i + shift] = x[blockIdx.x * 64 + t, i]
    if rewrite == 1:
        if barrier == 1:
            syncthreads()
        for i in range(4):
            s[(t + 1) % 64 * 4 + i] = x[blockIdx.x * 64 + t, i] * 2.0
    syncthreads()
    for i in range(4):
        out[blockIdx.x * 64 + t, i] = s[t * 4 + i]


@pytest.mark.parametrize("checks", [False, True])
@pytest.mark.parametrize("rewrite", [0, 1])
def test_memory_store_nest_matches_numpy(checks, rewrite):
    x = np.random.default_rng(4).standard_normal((128, 4)).astype(np.float32)
    out = np.zeros((128, 4), np.float32)
    refimpl.interpret(tile_store, x, out, 4, 0, 1, rewrite, checks=checks)
    want = x if not rewrite else np.concatenate([np.roll(x[b * 64:b * 64 + 64], 1, axis=0) * 2 for b in range(2)])
    np.testing.assert_array_equal(out, want)
    from taskmap.refimpl.launch import program_for
    from taskmap.refimpl.register_nests import compile_nest
    from taskmap.spec import ir
    prog = program_for(tile_store)
    assert sum(1 for n in ir.walk(prog.kernel) if isinstance(n, ir.For) and compile_nest(n, prog)) == 3


@pytest.mark.parametrize("args, phrase, detail, line", [
    ((3, 0, 1, 0), "data race on shared memory", "s[3] written by thread (1,0,0) and written by thread (0,0,0)",
     "s[t * step + i + shift] = x[blockIdx.x * 64 + t, i]"),
    ((4, 0, 0, 1), "data race on shared memory", "s[4] written by thread (1,0,0) and written by thread (0,0,0)",
     "s[(t + 1) % 64 * 4 + i] = x[blockIdx.x * 64 + t, i] * 2.0"),
    ((4, 5, 1, 0), "out of bounds shared access", "s[260] is outside shape (260) in dimension 0 in block (0,0,0), thread (63,0,0)",
     "s[t * step + i + shift] = x[blockIdx.x * 64 + t, i]"),
])
def test_memory_store_nest_traps_as_the_loop(args, phrase, detail, line):
    x = np.ones((128, 4), np.float32)
    with pytest.raises(refimpl.KernelTrap, match=phrase) as e:
        refimpl.interpret(tile_store, x, np.zeros((128, 4), np.float32), *args)
    assert detail in str(e.value) and line in str(e.value)
    with pytest.raises(refimpl.KernelTrap) as traced:
        refimpl.interpret(tile_store, x, np.zeros((128, 4), np.float32), *args, trace=Trace(threads=[(0, 0, 0)]))
    assert str(traced.value).splitlines()[0] == str(e.value).splitlines()[0]


@kernel(grid=2, block=64)
def guarded_rows(n: i32, x: f32[n, 4], out: f32[128, 4], limit: i32):
    """A select-guarded load in a nest (the condition affine in the loop variable): one gather when
    it holds everywhere; where some lanes take 0.0 (rows ≥ n would be out of bounds) the loop runs."""
    t = blockIdx.x * 64 + threadIdx.x
    r = register_tensor(f32, [4])
    for i in range(4):
        r[i] = x[t, i] if t * 4 + i < limit else 0.0
    for i in range(4):
        out[t, i] = r[i]


@pytest.mark.parametrize("n, limit", [(128, 512), (128, 256), (100, 400), (100, 0)])
def test_select_guarded_nest_reads(n, limit):
    x = np.random.default_rng(5).standard_normal((n, 4)).astype(np.float32)
    out = np.full((128, 4), np.nan, np.float32)
    refimpl.interpret(guarded_rows, n, x, out, limit)
    want = np.zeros((128, 4), np.float32)
    want[:limit // 4] = x[:limit // 4]
    np.testing.assert_array_equal(out, want)


def test_select_guarded_nest_is_one_gather():
    from taskmap.refimpl.launch import program_for
    from taskmap.refimpl.register_nests import compile_nest
    from taskmap.spec import ir
    prog = program_for(guarded_rows)
    loop = next(n for n in ir.walk(prog.kernel) if isinstance(n, ir.For) and isinstance(n.body[-1], ir.Store)
                and isinstance(n.body[-1].value, ir.Select))
    assert compile_nest(loop, prog) is not None


@kernel(grid=2, block=64)
def guarded_shifted(x: f32[128, 4], out: f32[128, 4]):
    """The guard's uniform part changes between executions of the nest: s = 0 holds everywhere
    (one gather), s = 1 only for rows below 64 (the loop runs)."""
    t = blockIdx.x * 64 + threadIdx.x
    r = register_tensor(f32, [4])
    for s in range(2):
        for i in range(4):
            r[i] = x[t, i] if t * 4 + i + s * 256 < 512 else 0.0
    for i in range(4):
        out[t, i] = r[i]


def test_select_guard_with_a_uniform_part():
    x = np.random.default_rng(6).standard_normal((128, 4)).astype(np.float32)
    out = np.full((128, 4), np.nan, np.float32)
    refimpl.interpret(guarded_shifted, x, out)
    np.testing.assert_array_equal(out, np.concatenate([x[:64], np.zeros((64, 4), np.float32)]))


@kernel(grid=2, block=64)
def guarded_wrapping(x: f32[128, 4], out: f32[128, 4], big: i32):
    """t·4 + i + big wraps past 2^31 - 1 for rows ≥ 64 (SPEC §2.3: i32 wraps), so the guard fails
    there although the exact sum is positive: the nest must not decide it in int64."""
    t = blockIdx.x * 64 + threadIdx.x
    r = register_tensor(f32, [4])
    for i in range(4):
        r[i] = x[t, i] if t * 4 + i + big > 0 else 0.0
    for i in range(4):
        out[t, i] = r[i]


def test_select_guard_that_wraps():
    x = np.random.default_rng(7).standard_normal((128, 4)).astype(np.float32)
    out = np.full((128, 4), np.nan, np.float32)
    refimpl.interpret(guarded_wrapping, x, out, 2**31 - 256)
    np.testing.assert_array_equal(out, np.concatenate([x[:64], np.zeros((64, 4), np.float32)]))


@kernel(grid=1, block=64)
def rewrite_then_read(x: f32[64, 4], out: f32[64, 4]):
    """The second store nest rewrites the tile after a barrier (its barrier stamps must be the new
    ones); the read of a neighbour's elements without a barrier then races."""
    t = threadIdx.x
    s = shared_tensor(f32, [256])
    for i in range(4):
        s[t * 4 + i] = x[t, i]
    syncthreads()
    for i in range(4):
        s[t * 4 + i] = x[t, i] * 2.0
    for i in range(4):
        out[t, i] = s[(t + 1) % 64 * 4 + i]


def test_store_nest_after_a_barrier_stamps_the_new_interval():
    with pytest.raises(refimpl.KernelTrap, match="data race on shared memory") as e:
        refimpl.interpret(rewrite_then_read, np.ones((64, 4), np.float32), np.zeros((64, 4), np.float32))
    assert "s[4] written by thread (1,0,0) and read by thread (0,0,0)" in str(e.value)


@kernel(grid=1, block=64)
def restage(x: f32[64, 4], out: f32[64, 4]):
    """The same store nest runs again after another nest gave its elements other writers (a
    thread's neighbour): its writer records must be renewed (the nest knows them unchanged only
    while no other write changed them); the read of a neighbour's elements without a barrier
    in the second round then races with the neighbour's store."""
    t = threadIdx.x
    s = shared_tensor(f32, [256])
    for r in range(2):
        for i in range(4):
            s[t * 4 + i] = x[t, i]
        if r == 1:
            for i in range(4):
                out[t, i] = s[(t + 1) % 64 * 4 + i]
        syncthreads()
        for i in range(4):
            s[(t + 1) % 64 * 4 + i] = x[t, i] * 2.0
        syncthreads()


def test_store_nest_rerun_renews_its_writer_records():
    with pytest.raises(refimpl.KernelTrap, match="data race on shared memory") as e:
        refimpl.interpret(restage, np.ones((64, 4), np.float32), np.zeros((64, 4), np.float32))
    assert "s[4] written by thread (1,0,0) and read by thread (0,0,0)" in str(e.value)


@kernel(grid=1, block=64)
def restage_and_read(x: f32[64, 4], out: f32[64, 4]):
    """The same threads rewrite a shared tile each round (its barrier stamps are kept aside until
    needed); in the last round a read of a neighbour's elements without a barrier races."""
    t = threadIdx.x
    s = shared_tensor(f32, [256])
    for r in range(3):
        for i in range(4):
            s[t * 4 + i] = x[t, i]
        if r == 2:
            for i in range(4):
                out[t, i] = s[(t + 1) % 64 * 4 + i]
        syncthreads()


def test_store_nest_rerun_stamps_its_barrier_interval():
    with pytest.raises(refimpl.KernelTrap, match="data race on shared memory") as e:
        refimpl.interpret(restage_and_read, np.ones((64, 4), np.float32), np.zeros((64, 4), np.float32))
    assert "s[4] written by thread (1,0,0) and read by thread (0,0,0)" in str(e.value)
