"""Warp shuffles (SPEC.md §5.6: every dtype, partial warps, segment widths) and atomics
(§5.8: every type the verifier admits) on the GPU agree with the interpreter."""
from __future__ import annotations

import numpy as np
import pytest

from taskmap.spec import dtypes as dt
from taskmap.lang import (atomic_add, atomic_cas, atomic_exch, atomic_max, atomic_min, bf16, boolean, f16, f32, f64, i8,
                       i16, i32, i64, kernel, shfl_down, shfl_idx, shfl_up, shfl_xor, threadIdx, u8, u32)
from tests.gpu_compare import run_both

pytestmark = pytest.mark.gpu


def make_shuffles(threads: int, width: int, t=f32):
    @kernel(grid=1, block=threads, name=f"shuffles_{threads}_{width}_{t.short}")
    def shuffles(d: i32, x: t[threads], out: t[6, threads]):
        t = threadIdx.x
        v = x[t]
        out[0, t] = shfl_xor(v, 1, width=width)
        out[1, t] = shfl_xor(v, d, width=width)
        out[2, t] = shfl_down(v, d, width=width)
        out[3, t] = shfl_up(v, d, width=width)
        out[4, t] = shfl_idx(v, t * 3 + d, width=width)
        out[5, t] = shfl_down(v, 2, width=width)
    return shuffles


@pytest.mark.parametrize("t", [boolean, i8, i16, i32, i64, u8, u32, f16, bf16, f32, f64], ids=lambda t: t.short)
def test_shuffles_move_every_dtype(t):
    """Each dtype travels through a shuffle unchanged (narrow types are widened to a word)."""
    x = (np.arange(64) % 2 == 1) if t is boolean else np.arange(64) - 20
    data = dt.to_bf16_bits(x.astype(np.float32)) if t is bf16 else x.astype(t.storage)
    got, want = run_both(make_shuffles(64, 32, t), 3, data, np.zeros((6, 64), t.storage))
    np.testing.assert_array_equal(got[2], want[2])


@pytest.mark.parametrize("threads, width", [(64, 32), (64, 8), (48, 32), (40, 16)])
@pytest.mark.parametrize("d", [0, 1, 5, 31, 33])
def test_shuffles_agree(threads, width, d):
    x = np.arange(threads, dtype=np.float32) + 0.25
    got, want = run_both(make_shuffles(threads, width), d, x, np.zeros((6, threads), np.float32))
    np.testing.assert_array_equal(got[2], want[2])


def make_atomics(t, ops):
    """One block: reductions into acc (order-independent for the integer-valued inputs), a
    compare-and-swap per thread on its own slot, one exchange."""
    add, minmax, cas, exch = ("add" in ops), ("max" in ops), ("cas" in ops), ("exch" in ops)

    @kernel(grid=1, block=64, name=f"atomics_{t.short}_{'_'.join(ops)}")
    def atomics(x: t[64], acc: t[4], old: t[64], slots: t[64]):
        i = threadIdx.x
        if add:
            atomic_add(acc[0], x[i])
        if minmax:
            atomic_max(acc[1], x[i])
            atomic_min(acc[2], x[i])
        if cas:
            prev = atomic_cas(slots[i], x[i], x[(i + 1) % 64])
            old[i] = prev
        if exch:
            if i == 5:
                atomic_exch(acc[3], x[i])
    return atomics


ATOMIC_CASES = [(i32, ("add", "max", "cas", "exch")), (u32, ("add", "max", "cas", "exch")), (i64, ("max",)),
                (f32, ("add", "exch")), (f64, ("add",)), (f16, ("add",)), (bf16, ("add",))]


@pytest.mark.parametrize("t, ops", ATOMIC_CASES, ids=[t.short for t, _ in ATOMIC_CASES])
def test_atomics_agree_on_every_type(t, ops):
    rng = np.random.default_rng(3)
    values = rng.integers(0, 3, 64) if t.kind == "uint" else rng.integers(-3, 4, 64)   # sums stay exact
    x = dt.to_bf16_bits(values.astype(np.float32)) if t is dt.bfloat16 else values.astype(t.storage)
    slots = x.copy()
    slots[::3] = x[(np.arange(64)[::3] + 7) % 64]            # some compare-and-swaps fail
    got, want = run_both(make_atomics(t, ops), x, np.zeros(4, t.storage), np.zeros(64, t.storage), slots)
    for name, a, b in zip(("x", "acc", "old", "slots"), got, want):
        np.testing.assert_array_equal(a, b, err_msg=f"{t.short}: {name}")
