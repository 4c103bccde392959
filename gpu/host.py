"""Host-side launch geometry: grid, block, tensor shapes and dynamic shared memory, evaluated
from a kernel's scalar arguments with the C integer semantics of SPEC.md §2.3."""
from __future__ import annotations

import operator

import numpy as np

from taskmap.spec import dtypes as dt
from taskmap.spec import ir
from taskmap.spec.errors import TaskmapError

from .emit import shared_bytes


class LaunchError(TaskmapError):
    """A launch the device cannot run or arguments that do not match the kernel (SPEC §1.1, §3.4)."""
    kind = "launch"

    def __init__(self, phrase: str, detail: str):
        self.phrase = phrase
        super().__init__(f"{phrase}: {detail}")


def evaluate(e: ir.Expr, env: dict) -> int | float | bool:
    """Value of a scalar expression over constants and scalar parameters (no memory, no threads)."""
    match e:
        case ir.Const(value=v):
            return v
        case ir.Var(name=n):
            return env[n]
        case ir.Cast(a=a, type=t):
            return _wrap(evaluate(a, env), t)
        case ir.Unary(op=op, a=a):
            v = evaluate(a, env)
            return not v if op == "not" else _wrap(-v if op == "neg" else ~v, e.dtype)
        case ir.Select(cond=c, a=a, b=b):
            return evaluate(a, env) if evaluate(c, env) else evaluate(b, env)
        case ir.Binary(op=op, a=a, b=b):
            x = evaluate(a, env)
            if op == "&&":
                return bool(x) and bool(evaluate(b, env))
            if op == "||":
                return bool(x) or bool(evaluate(b, env))
            return _binary(op, x, evaluate(b, env), e.dtype)
    raise LaunchError("invalid launch configuration",
                      f"{type(e).__name__} cannot appear in a launch dimension or tensor shape")


_OPERATORS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "min": min,
              "max": max, "&": operator.and_, "|": operator.or_, "^": operator.xor, "<<": operator.lshift,
              ">>": operator.rshift, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
              "==": operator.eq, "!=": operator.ne}


def _binary(op, x, y, t: dt.DType):
    if op in ("/", "%") and t.is_integer:
        if y == 0:
            raise LaunchError("invalid launch configuration", "integer divide by zero in a launch expression")
        q, r = ir.c_divmod(x, y)
        return _wrap(q if op == "/" else r, t)
    v = _OPERATORS[op](x, y)
    return v if isinstance(v, bool) else _wrap(v, t)


def _wrap(v, t: dt.DType):
    if t is dt.boolean:
        return bool(v)
    if t.is_integer:
        v = int(v) & ((1 << t.bits) - 1)
        return v - (1 << t.bits) if t.kind == "int" and v >= 1 << (t.bits - 1) else v
    return float(np.dtype(t.compute).type(v))


def dims(exprs, env) -> tuple[int, int, int]:
    return tuple(int(evaluate(e, env)) for e in exprs)


def shape(buf: ir.Buffer, env) -> tuple[int, ...]:
    return tuple(int(evaluate(s, env)) for s in buf.shape)


def dynamic_shared_bytes(buffers, env) -> int:
    return sum(shared_bytes(b, shape(b, env)) for b in buffers)
