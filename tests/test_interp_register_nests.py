"""Register loop nests that the interpreter runs as array operations (refimpl/register_nests.py):
results against NumPy, traced runs (the loops run one iteration at a time) agreeing, and the
traps of such a loop still raised at its statement."""
from __future__ import annotations

import numpy as np
import pytest

from taskmap import refimpl
from taskmap.refimpl.trace import Trace
from taskmap.lang import bf16, blockIdx, f16, f32, i32, kernel, register_tensor, repeat, threadIdx


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
