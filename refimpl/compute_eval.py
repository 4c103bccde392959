"""Direct, vectorized evaluation of operator compute definitions (taskmap.spec.ops.compute).

`evaluate(task, *arrays)` computes every Compute of a Task over its whole index grid at once:
each axis is a NumPy index array, and the body is evaluated with the kernel IR's scalar
semantics (SPEC.md §2), so the result is the operator's definition, independent of any
schedule and of the operators' hand-written NumPy references.

Why here and not in spec/: the definitions are kernel-IR expressions and must mean exactly
what they mean inside a kernel — one rounding per operation, C integer division, fmin/fmax,
saturating conversions, bf16 as rounded f32. The vectorized form of those rules is
refimpl/numerics.py; spec may not import refimpl (spec <- refimpl), and a second copy of the
numerics in spec would be two semantics. So the evaluator lives beside them.

Laziness follows §2.3: `select`, `&&` and `||` evaluate their lazy operands only where
needed, so `select(0 <= i - p < n, x[i - p], 0)` never reads outside `x`. A Load outside its
tensor or an integer division by zero on a lane that needs it is an error in the definition
("compute definition error: ...").
"""
from __future__ import annotations

import numpy as np

from taskmap.spec import dtypes as dt
from taskmap.spec import ir
from taskmap.spec import semantics
from taskmap.spec.ops.compute import Reduce, Task

from . import numerics as num


class ComputeError(ValueError):
    """A compute definition read outside a tensor, divided by zero, or got wrong arguments."""


def evaluate(task: Task, *arrays) -> tuple[np.ndarray, ...]:
    """The outputs of `task` (storage arrays: bf16 as uint16 bits) for input storage arrays."""
    if len(arrays) != len(task.inputs):
        raise ComputeError(f"{task.name}: expected {len(task.inputs)} inputs "
                           f"({', '.join(t.name for t in task.inputs)}), got {len(arrays)}")
    values = {}
    for t, a in zip(task.inputs, arrays):
        a = np.asarray(a)
        if a.shape != t.shape or a.dtype != t.dtype.storage:
            raise ComputeError(f"{task.name}: input {t.name} must be {t.dtype.short}{list(t.shape)} "
                               f"(storage {t.dtype.storage}), got {a.dtype}{list(a.shape)}")
        values[t.name] = num.from_storage(a, t.dtype)
    with np.errstate(all="ignore"):
        for c in task.computes:
            n = len(c.shape)
            env = {v: np.arange(s, dtype=np.int32).reshape(_onehot(n, d, s))
                   for d, (v, s) in enumerate(zip(c.axes, c.shape))}
            v = _eval(c.body, env, values, n, None, c.name)
            values[c.name] = np.array(np.broadcast_to(v, c.shape), dtype=num.lane_dtype(c.dtype))
    return tuple(num.to_storage(values[o], task.compute(o).dtype) for o in task.outputs)


def _onehot(n: int, d: int, s: int) -> tuple[int, ...]:
    return tuple(s if k == d else 1 for k in range(n))


def _converted(e, t, *args):
    return num.convert(_eval(e, *args), e.dtype, t)


def _eval(e: ir.Expr, env: dict, values: dict, ndim: int, active, where: str):
    """Lane values of e: a 0-d value or an `ndim`-d array broadcastable to the grid; `active`
    (bool array or None = all) marks the grid points whose value is needed."""
    args = (env, values, ndim, active, where)
    match e:
        case ir.Const(value=v, type=t):
            return num.scalar(v, t)
        case ir.Var():
            return env[e]
        case ir.Unary(op=op, a=a):
            return num.unary(op, _eval(a, *args), a.dtype)
        case ir.Binary(op="&&" | "||", a=a, b=b):
            x = _converted(a, dt.boolean, *args)
            need = x if e.op == "&&" else np.logical_not(x)
            y = _converted(b, dt.boolean, env, values, ndim, _and(active, need), where)
            return np.logical_and(x, y) if e.op == "&&" else np.logical_or(x, y)
        case ir.Binary(op=op, a=a, b=b) if op in num.COMPARE:
            t = dt.promote(a.dtype, b.dtype)
            return num.COMPARE[op](_converted(a, t, *args), _converted(b, t, *args))
        case ir.Binary(op="<<" | ">>", a=a, b=b):
            x, s = _eval(a, *args), _eval(b, *args)
            if np.any(_masked(semantics.shift_out_of_range(s, a.dtype), active)):
                raise ComputeError(f"compute definition error: {where}: shift out of range")
            return num.shift(e.op, x, np.clip(s, 0, a.dtype.bits - 1), a.dtype)
        case ir.Binary(op=op, a=a, b=b):
            t = e.dtype
            x, y = _converted(a, t, *args), _converted(b, t, *args)
            if op in ("/", "%") and not t.is_float:
                zero = np.equal(y, 0)
                if np.any(_masked(zero, active)):
                    raise ComputeError(f"compute definition error: {where}: integer divide by zero")
                y = np.where(zero, np.ones_like(y), y)
            return num.binary_op(op, t)(x, y)
        case ir.Select(cond=c, a=a, b=b):
            k = _converted(c, dt.boolean, *args)
            t = e.dtype
            x = _converted(a, t, env, values, ndim, _and(active, k), where)
            y = _converted(b, t, env, values, ndim, _and(active, np.logical_not(k)), where)
            return np.where(k, x, y).astype(num.lane_dtype(t))
        case ir.Cast(a=a, type=t):
            return _converted(a, t, *args)
        case ir.Call(fn=fn, args=xs):
            t = e.dtype
            return num.math_call(fn, [_converted(x, t, *args) for x in xs], t)
        case ir.Load(buffer=b, indices=idx):
            return _load(b, [_eval(i, *args) for i in idx], values, active, where)
        case Reduce():
            return _reduce(e, env, values, ndim, active, where)
    raise ComputeError(f"compute definition error: {where}: {type(e).__name__} is not allowed in a compute body")


def _and(active, need):
    return need if active is None else np.logical_and(active, need)


def _masked(bad, active):
    return bad if active is None else np.logical_and(bad, active)


def _load(b: ir.Buffer, idx: list, values: dict, active, where: str):
    src = values[b.name]
    idx = np.broadcast_arrays(*idx) if idx else []
    bad = np.zeros(np.shape(idx[0]) if idx else (), bool)
    for d, i in enumerate(idx):
        bad = bad | (i < 0) | (i >= src.shape[d])
    bad = _masked(bad, active)
    if np.any(bad):
        at = tuple(int(i[np.unravel_index(np.argmax(bad), bad.shape)]) for i in idx)
        raise ComputeError(f"compute definition error: {where}: reads {b.name}{list(at)} outside its "
                           f"shape {list(src.shape)}")
    return src[tuple(np.clip(i, 0, s - 1) for i, s in zip(idx, src.shape))]


def _reduce(r: Reduce, env: dict, values: dict, ndim: int, active, where: str):
    k = len(r.axes)
    grow = lambda a: a.reshape(a.shape + (1,) * k) if np.ndim(a) else a
    inner = {v: grow(a) for v, a in env.items()}
    n = ndim + k
    for d, (v, s) in enumerate(zip(r.axes, r.extents)):
        inner[v] = np.arange(s, dtype=np.int32).reshape(_onehot(n, ndim + d, s))
    act = None if active is None else grow(np.asarray(active))
    x = _converted(r.body, r.acc, inner, values, n, act, where)
    x = np.broadcast_to(x, np.broadcast_shapes(np.shape(x), (1,) * ndim + r.extents))
    last = tuple(range(ndim, n))
    if r.op in ("argmax", "argmin"):
        flat = x.reshape(x.shape[:ndim] + (-1,))
        if r.acc.is_float:        # NaN never wins, as with fmax/fmin (§2.3)
            flat = np.where(np.isnan(flat), -np.inf if r.op == "argmax" else np.inf, flat)
        pick = np.argmax if r.op == "argmax" else np.argmin
        return pick(flat, axis=-1).astype(np.int64)
    if r.op in ("max", "min") and not r.acc.is_float:
        return (np.max if r.op == "max" else np.min)(x, axis=last)
    op = {"sum": "+", "prod": "*"}.get(r.op, r.op)
    if r.op in ("max", "min") or r.acc in (dt.float16, dt.bfloat16):   # fmin/fmax, or a rounding per step
        fn, flat = num.binary_op(op, r.acc), x.reshape(x.shape[:ndim] + (-1,))
        out = flat[..., 0]
        for j in range(1, flat.shape[-1]):
            out = fn(out, flat[..., j])
        return out
    ufunc = np.add if op == "+" else np.multiply
    return ufunc.reduce(x, axis=last, dtype=num.lane_dtype(r.acc))
