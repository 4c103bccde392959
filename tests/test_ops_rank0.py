"""Rank-0 (scalar) tensors through the operators (issue 10): a 0-d input gives a 0-d output,
in the NumPy reference (`Operator.reference`, `registry.to_storage`), in `Operator.sample`
and in the scheduled plan on the interpreter; checked against NumPy computing the same
scalar directly."""
from __future__ import annotations

import numpy as np
import pytest

from taskmap.lang import bf16, boolean, f16, f32, i32
from taskmap.refimpl.schedules import evaluate, schedule
from taskmap.spec import dtypes as dt
from taskmap.spec.ops import get
from taskmap.spec.ops.registry import to_storage, values_of

X, Y = np.float32(-1.75), np.float32(0.5)

CASES = [   # (operator, input types, input values as float32/bool/int NumPy scalars, attrs, NumPy's result)
    ("relu", [f32[()]], [X], {}, np.maximum(X, 0)),
    ("exp", [f16[()]], [X], {}, np.exp(np.float64(np.float16(X)))),
    ("neg", [bf16[()]], [X], {}, -X),
    ("add", [f32[()], f32[()]], [X, Y], {}, X + Y),
    ("mul", [bf16[()], bf16[()]], [X, Y], {}, X * Y),
    ("less", [f32[()], f32[()]], [X, Y], {}, X < Y),
    ("where", [boolean[()], f32[()], f32[()]], [np.bool_(False), X, Y], {}, Y),
    ("sum", [f32[()]], [X], {"keepdims": 0}, X),
    ("sum", [f32[2, 3]], [np.arange(6, dtype=np.float32).reshape(2, 3)], {"keepdims": 0}, np.float32(15)),
    ("reduce_max", [f16[4]], [np.array([1, -2, 3.5, 0], np.float32)], {"keepdims": 0}, np.float32(3.5)),
    ("reshape", [f32[1, 1]], [np.array([[X]])], {"shape": ()}, X),
    ("cast", [f32[()]], [X], {"to": dt.float16}, np.float16(X)),
    ("abs", [i32[()]], [np.int32(-7)], {}, np.int32(7)),
]


def _storage(value, t: dt.DType) -> np.ndarray:
    return to_storage(np.asarray(value, np.float64) if t.is_float else np.asarray(value), t)


@pytest.mark.parametrize("name,types,values,attrs,want", CASES, ids=lambda v: v if isinstance(v, str) else None)
def test_rank0_result_is_rank0(name, types, values, attrs, want):
    op = get(name)
    (out_type,) = op.infer(types, **attrs)
    arrays = [_storage(v, t.dtype) for v, t in zip(values, types)]
    assert [a.shape for a in arrays] == [t.shape for t in types]
    (ref,) = op.reference(*arrays, **attrs)
    (got,) = evaluate(schedule(name, types, attrs), *arrays)
    for result in (ref, got):
        assert isinstance(result, np.ndarray) and result.shape == out_type.shape
        assert result.dtype == out_type.dtype.storage and result.flags.c_contiguous
    assert out_type.shape == ()
    expected = _storage(want, out_type.dtype)
    np.testing.assert_allclose(values_of(ref, out_type.dtype), values_of(expected, out_type.dtype), rtol=2 ** -8)
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("t", [f32, f16, bf16, i32, boolean], ids=lambda t: t.short)
def test_to_storage_and_sample_keep_rank0(t):
    assert to_storage(np.float64(2.5), t).shape == ()
    assert to_storage(np.zeros((1,)), t).shape == (1,)
    (a,) = get("abs" if t is not boolean else "logical_not").sample(np.random.default_rng(0), [t[()]])
    assert isinstance(a, np.ndarray) and a.shape == () and a.dtype == t.storage
