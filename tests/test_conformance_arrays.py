"""Case data: generators, the bf16 rounding helper, comparisons (against brute force / by hand)."""
from __future__ import annotations

import numpy as np
import pytest

from taskmap.conformance import arrays
from taskmap.spec import dtypes as dt


def nearest_bf16_by_search(x: np.ndarray) -> np.ndarray:
    """Independent reference: try the bf16 neighbours of x, keep the nearest (ties: even bits)."""
    bits = (x.astype(np.float32).view(np.uint32) >> 16).astype(np.int64)
    cands = np.stack([bits - 1, bits, bits + 1]) & 0xFFFF
    vals = (cands.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    err = np.abs(vals - x)
    best = err.min(axis=0)
    tied_even = np.where((err == best) & (cands % 2 == 0), 0, 1) + np.where(err == best, 0, 2)
    return vals[np.argmin(tied_even, axis=0), np.arange(x.size)].astype(np.float32)


def test_round_bf16_rounds_once_to_nearest_even():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(100_000) * np.exp2(rng.integers(-40, 40, 100_000))
    ties = np.array([1 + 2.0**-8, 1 + 3 * 2.0**-8, 1 + 2.0**-8 + 2.0**-30])   # even, even, just above a tie
    x = np.concatenate([x, ties])
    assert np.array_equal(arrays.round_bf16(x), nearest_bf16_by_search(x))
    assert arrays.round_bf16(ties).tolist() == [1.0, 1 + 2.0**-6, 1 + 2.0**-7]


@pytest.mark.parametrize("init, dtype, check", [
    ("randint", dt.float32, lambda v: np.all(v == np.round(v)) and v.min() >= -8 and v.max() < 8),
    ("random", dt.float32, lambda v: v.min() >= -1 and v.max() < 1 and len(np.unique(v)) > 90),
    ("random", dt.uint8, lambda v: v.min() >= 0 and v.max() < 100),
    ("arange", dt.int32, lambda v: v.ravel().tolist() == list(range(100))),
    ("zeros", dt.float16, lambda v: not v.any()),
])
def test_generators(init, dtype, check):
    spec = arrays.TensorSpec(init, (10, 10), dtype, seed=3)
    a = arrays.make_tensor(spec, arrays.garbage)
    assert a.shape == (10, 10) and a.dtype == dtype.storage and a.flags.c_contiguous
    assert check(arrays.as_values(a, dtype))


def test_bf16_tensors_hold_bit_patterns_of_rounded_values():
    spec = arrays.TensorSpec("randint", (64,), dt.bfloat16, seed=1, low=-16, high=17, scale=0.125)
    bits = arrays.make_tensor(spec, arrays.garbage)
    assert bits.dtype == np.uint16
    values = dt.from_bf16_bits(bits)
    assert np.all(values * 8 == np.round(values * 8)) and np.abs(values).max() <= 2


def test_garbage_is_nan_or_minus_one():
    assert np.isnan(arrays.garbage((3,), dt.float32)).all()
    assert (arrays.garbage((3,), dt.int32) == -1).all()


@pytest.mark.parametrize("got, want, exact, ok", [
    ([1.0, np.nan], [1.0, np.nan], True, True),
    ([1.0, np.nan], [1.0, np.nan], False, True),
    ([1.0, np.nan], [1.0, 2.0], False, False),
    ([np.inf], [np.inf], False, True),
    ([1.0 + 2**-23], [1.0], True, False),
    ([1.0 + 2**-23], [1.0], False, True),       # error 2^-23 = atol + rtol * 1: the bound itself passes
    ([1.0 + 2**-22], [1.0], False, False),
])
def test_compare_nan_inf_and_tolerance(got, want, exact, ok):
    actual = np.array(got, np.float32)
    rtol = atol = 2.0**-24
    assert arrays.compare("x", actual, want, dt.float32, exact, rtol, atol).ok is ok


def test_exact_compare_rounds_the_expected_value_to_the_output_type():
    actual = np.array([0.1], np.float32)
    assert arrays.compare("x", actual, [0.1], dt.float32, True, 0, 0).ok           # 0.1 (f64) -> f32
    bits = dt.to_bf16_bits(np.array([3.140625], np.float32))
    assert arrays.compare("x", bits, [3.14159], dt.bfloat16, True, 0, 0).ok


def test_expressions_are_restricted():
    assert arrays.evaluate("a.T @ b", {"a": np.eye(2), "b": np.ones(2)}).tolist() == [1.0, 1.0]
    assert arrays.evaluate("bf16(np.float64(1 + 2**-8 + 2**-30))", {}) == np.float32(1 + 2**-7)
    with pytest.raises(ValueError, match="names starting with '_'"):
        arrays.evaluate("np.__dict__", {})
    with pytest.raises(ValueError, match="NameError"):
        arrays.evaluate("open('x')", {})
