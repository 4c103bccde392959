"""Matrix products: matmul (NumPy/ONNX MatMul: 1-D promotion, broadcast batch dimensions),
batch_matmul (3-D, equal batches, torch.bmm) and gemm (ONNX Gemm: trans_a/trans_b, alpha, beta,
optional bias c broadcast to (M, N)).

Definition: y[..., i, j] = Reduce(sum over k, a[..., i, k] * b[..., k, j]) with both factors
converted to f32 for f16/bf16 (f32 accumulation, one rounding to the output at the end; the
products are not fused and the summation order is the schedule's: SPEC.md "Operators" gives
the tolerance); integers multiply and accumulate in their own type (wrapping). gemm:
y = alpha * acc + beta * c. a and b are not injective (anchors); gemm's c is.
"""
from __future__ import annotations

import numpy as np

from .. import ir
from .compute import Task, TensorInput, cast, compute, compute_type, reduce
from .elementwise import broadcast_load, broadcast_shape
from .registry import FLOATS, INTS, Attr, Example, OnnxNode, Operator, OpError, TensorType, get, register


def _inner_mismatch(op: Operator, ka: int, kb: int, b_shape) -> Exception:
    b_desc = f"b[{kb}, ...]" if len(b_shape) <= 2 else f"b[..., {kb}, {b_shape[-1]}]"
    return op.fail(f"inner dimensions differ: a[..., {ka}] vs {b_desc}")


def _matmul_shapes(op: Operator, a, b):
    """(batch shape, m, k, n, output shape) of NumPy matmul."""
    if len(a.shape) == len(b.shape) == 1:
        raise op.fail("both inputs are 1-D: their product has rank 0, which operators do not support; "
                      "reshape one to 2-D")
    sa = (1,) + a.shape if len(a.shape) == 1 else a.shape
    sb = b.shape + (1,) if len(b.shape) == 1 else b.shape
    if sa[-1] != sb[-2]:
        raise _inner_mismatch(op, a.shape[-1], b.shape[0] if len(b.shape) <= 2 else b.shape[-2], b.shape)
    try:
        batch = broadcast_shape(op, ("a", "b"), [TensorType(a.dtype, sa[:-2]), TensorType(b.dtype, sb[:-2])])
    except OpError:
        raise op.fail(f"batch dimensions do not broadcast: a{list(a.shape)} vs b{list(b.shape)}") from None
    out = batch + ((sa[-2],) if len(a.shape) > 1 else ()) + ((sb[-1],) if len(b.shape) > 1 else ())
    return batch, sa[-2], sa[-1], sb[-1], out


def _matmul_infer(types, attrs):
    op = get("matmul")
    op.same_dtype(types)
    return [TensorType(types[0].dtype, _matmul_shapes(op, *types)[4])]


def _products(a: TensorInput, b: TensorInput, batch, i, j, k: int):
    """Reduce(sum over k, a[batch, i, r] * b[batch, r, j]) in the compute type (1-D: a[r], b[r])."""
    acc = compute_type(a.dtype)
    left = lambda r: a[r] if len(a.shape) == 1 else broadcast_load(a, tuple(batch) + (i, r))
    right = lambda r: b[r] if len(b.shape) == 1 else broadcast_load(b, tuple(batch) + (r, j))
    return reduce((k,), lambda r: cast(left(r), acc) * cast(right(r), acc), "sum")


def _matmul_task(types, attrs):
    a, b = (TensorInput(n, t.shape, t.dtype) for n, t in zip("ab", types))
    batch, m, k, n, out = _matmul_shapes(get("matmul"), a, b)
    nb = len(batch)

    def body(*idx):
        bi = idx[:nb]
        rest = list(idx[nb:])
        i = rest.pop(0) if len(a.shape) > 1 else ir.const(0)
        j = rest.pop(0) if len(b.shape) > 1 else ir.const(0)
        return _products(a, b, bi, i, j, k)
    return Task("matmul", (a, b), (compute("y", out, body, a.dtype),), ("y",))


def _matmul_ref(values, types, attrs):
    a, b = values
    return [np.matmul(a, b)]


MATMUL_EXAMPLES = (Example(((4, 5), (5, 3))), Example(((1, 7), (7, 1))), Example(((2, 3, 5), (5, 4))),
                   Example(((5,), (5, 3))), Example(((3, 5), (5,))), Example(((2, 1, 3, 4), (3, 4, 2))))
register(Operator("matmul", "matmul", "NumPy matmul: batch dims broadcast, 1-D operands promoted", ("a", "b"),
                  (), FLOATS + INTS, _matmul_infer, _matmul_ref, _matmul_task, MATMUL_EXAMPLES, "MatMul",
                  lambda types, a: OnnxNode("MatMul", {}, opset=13)))


# ---------------------------------------------------------------- batch_matmul

def _bmm_infer(types, attrs):
    op = get("batch_matmul")
    a, b = types
    op.same_dtype(types)
    for nm, t in zip("ab", types):
        if len(t.shape) != 3:
            raise op.fail(f"input {nm} must be 3-D (batch, rows, cols), got {list(t.shape)}")
    if a.shape[0] != b.shape[0]:
        raise op.fail(f"batch dimensions differ: a[{a.shape[0]}, ...] vs b[{b.shape[0]}, ...]")
    if a.shape[2] != b.shape[1]:
        raise _inner_mismatch(op, a.shape[2], b.shape[1], b.shape)
    return [TensorType(a.dtype, (a.shape[0], a.shape[1], b.shape[2]))]


def _bmm_task(types, attrs):
    a, b = (TensorInput(n, t.shape, t.dtype) for n, t in zip("ab", types))
    (out,) = _bmm_infer(types, attrs)
    return Task("batch_matmul", (a, b), (compute("y", out.shape, lambda p, i, j: _products(a, b, (p,), i, j, a.shape[2]),
                                                 a.dtype),), ("y",))


register(Operator("batch_matmul", "matmul", "a[p] @ b[p] for each batch p (3-D operands)", ("a", "b"), (),
                  FLOATS + INTS, _bmm_infer, lambda v, types, a: [v[0] @ v[1]], _bmm_task,
                  (Example(((2, 4, 5), (2, 5, 3))), Example(((1, 1, 7), (1, 7, 1))), Example(((3, 5, 1), (3, 1, 6)))),
                  "MatMul", lambda types, a: OnnxNode("MatMul", {}, opset=13)))


# ---------------------------------------------------------------- gemm

def _gemm_dims(types, attrs):
    op = get("gemm")
    op.same_dtype(types)
    a, b = types[:2]
    for nm, t in zip("ab", (a, b)):
        if len(t.shape) != 2:
            raise op.fail(f"input {nm} must be 2-D, got {list(t.shape)}")
    m, ka = a.shape[::-1] if attrs["trans_a"] else a.shape
    kb, n = b.shape[::-1] if attrs["trans_b"] else b.shape
    if ka != kb:
        ta, tb = "a^T" if attrs["trans_a"] else "a", "b^T" if attrs["trans_b"] else "b"
        raise op.fail(f"inner dimensions differ: {ta}[..., {ka}] vs {tb}[{kb}, ...]")
    if len(types) > 2:
        c = types[2]
        if len(c.shape) > 2 or any(s not in (1, o) for s, o in zip(c.shape[::-1], (n, m))):
            raise op.fail(f"input c{list(c.shape)} must broadcast to the output [{m}, {n}]")
    return m, ka, n


def _gemm_task(types, attrs):
    a, b, *c = (TensorInput(nm, t.shape, t.dtype) for nm, t in zip("abc", types))
    m, k, n = _gemm_dims(types, attrs)
    acc = compute_type(a.dtype)

    def body(i, j):
        ak = lambda r: a[r, i] if attrs["trans_a"] else a[i, r]
        bk = lambda r: b[j, r] if attrs["trans_b"] else b[r, j]
        y = reduce((k,), lambda r: cast(ak(r), acc) * cast(bk(r), acc), "sum") * float(attrs["alpha"])
        return y + cast(broadcast_load(c[0], (i, j)), acc) * float(attrs["beta"]) if c else y
    return Task("gemm", (a, b, *c), (compute("y", (m, n), body, a.dtype),), ("y",), attrs=tuple(attrs.items()))


def _gemm_ref(values, types, attrs):
    a, b, *c = values
    y = attrs["alpha"] * ((a.T if attrs["trans_a"] else a) @ (b.T if attrs["trans_b"] else b))
    return [y + attrs["beta"] * c[0] if c else y]


register(Operator("gemm", "matmul", "alpha op(a) @ op(b) + beta c, op = transpose when trans_*", ("a", "b", "c?"),
                  (Attr("alpha", 1.0, (int, float)), Attr("beta", 1.0, (int, float)),
                   Attr("trans_a", 0, int, "1: use a^T", (0, 1)), Attr("trans_b", 0, int, "1: use b^T", (0, 1))),
                  FLOATS, lambda types, a: [TensorType(types[0].dtype, (_gemm_dims(types, a)[0], _gemm_dims(types, a)[2]))],
                  _gemm_ref, _gemm_task,
                  (Example(((4, 5), (5, 3), (3,))), Example(((5, 4), (3, 5), (4, 1)), {"trans_a": 1, "trans_b": 1}),
                   Example(((1, 7), (7, 1)), {"alpha": 0.5}), Example(((3, 6), (2, 6), (3, 2)),
                                                                        {"trans_b": 1, "alpha": 2.0, "beta": -1.5})),
                  "Gemm", lambda types, a: OnnxNode("Gemm", {"alpha": float(a["alpha"]), "beta": float(a["beta"]),
                                                            "transA": a["trans_a"], "transB": a["trans_b"]}, opset=13)))
