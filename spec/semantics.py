"""SPEC.md §2.3–§2.4 on scalars: the one table of operations that constant folding
(`ir.fold`), the verifier (`verify_common.const_value`, the per-thread values of §9.6) and the
launch binding (grid, block and shapes from the arguments) evaluate with. The interpreter's
lane arrays (refimpl/numerics.py) use its integer rules directly, and a test checks that the
two agree on the edge values of every operation and dtype.

A value of type t is a Python scalar: `bool`; an `int` in t's range; a `float` that t
represents exactly. The integer rules are written so that the same code runs on NumPy
integer arrays (the verifier holds one value per thread in int64): compute the exact result,
or one that is congruent modulo 2^64, and wrap it to t. Float operations compute in float64
and round once to t: for `+ - * /` on f32, f16 and bf16 operands the float64 result rounded
again is the correctly rounded one (53 ≥ 2p + 2 bits), and fmod, min, max are exact.
"""
from __future__ import annotations

import math
import operator

import numpy as np

from . import dtypes as dt
from . import ir


class Trap(ArithmeticError):
    """The operation traps (§2.3): `phrase` is the trap's SPEC phrase."""

    def __init__(self, phrase: str, detail: str):
        self.phrase = phrase
        super().__init__(f"{phrase}: {detail}")


class Unknown(LookupError):
    """The expression reads what has no value here: a variable not bound, memory, a thread index."""

    def __init__(self, node):
        self.node = node
        super().__init__(type(node).__name__)


# ---------------------------------------------------------------- integer rules (Python ints or NumPy arrays)

def wrap(v, t: dt.DType):
    """An integer (or integer array) as a value of integer or bool type t: modulo 2^bits, two's
    complement (§2.3); anything non-zero is true (§2.4)."""
    if t is dt.boolean:
        return v != 0
    if isinstance(v, np.ndarray):
        if t.bits >= 64:                     # int64 arithmetic already wrapped modulo 2^64
            return v.astype(np.int64)
        return (v.astype(np.int64) - t.min) % (1 << t.bits) + t.min
    return (int(v) - t.min) % (1 << t.bits) + t.min


def c_div(x, y):
    """C's x / y, truncating toward zero (y != 0); MIN / -1 is left to `wrap` (or to the
    fixed-width array arithmetic, which gives MIN)."""
    if type(x) is int and type(y) is int:     # Python ints (uniform values): no overflow, no errstate
        q = x // y
        return q + (q * y != x and (x < 0) != (y < 0))
    with np.errstate(over="ignore"):          # int64 MIN // -1
        q = x // y
    return q + ((q * y != x) & ((x < 0) != (y < 0)))


def c_rem(x, y):
    """C's x % y: the sign of the dividend (y != 0)."""
    return x - c_div(x, y) * y


def shift_out_of_range(amount, t: dt.DType):
    """Where a shift of a t value by `amount` traps (§2.3)."""
    return (amount < 0) | (amount >= t.bits)


def float_to_int(x, t: dt.DType):
    """Float(s) -> integer type t: truncate toward zero, saturate to t's range, NaN -> 0 (§2.4).
    Returns NumPy values of t's storage dtype (an array for an array)."""
    v = np.trunc(np.asarray(x, np.float64))
    top = float(t.max) + 1.0                 # 2^(bits-1) or 2^bits: exact in f64, unlike t.max itself
    inside = np.where(np.isnan(v) | (v >= top), 0.0, np.maximum(v, float(t.min))).astype(t.storage)
    return np.where(v >= top, t.storage.type(t.max), inside)[()]


def int_to_float(x: int, t: dt.DType) -> float:
    """An integer rounded once to float type t (§2.4): through float64 rounded to odd when
    float64 is not exact, so the second rounding (to t's fewer bits) is the correct one."""
    f = float(x)
    if t is not dt.float64 and int(f) != x and not int(np.float64(f).view(np.uint64)) & 1:
        f = math.nextafter(f, math.inf if x > int(f) else -math.inf)
    return dt.round_to(f, t)


def fmin(x, y):
    """IEEE minimumNumber (§2.3): the other operand when one is NaN, and -0 below +0 (C's fmin
    leaves the sign of a zero result open, and NumPy's differs between its vector and scalar
    loops). Floats or float arrays."""
    return np.where(np.isnan(y) | (x < y) | ((x == y) & np.signbit(x)), x, y)[()]


def fmax(x, y):
    """IEEE maximumNumber: the other operand when one is NaN, and +0 above -0."""
    return np.where(np.isnan(y) | (x > y) | ((x == y) & ~np.signbit(x)), x, y)[()]


# ---------------------------------------------------------------- the table

COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq,
           "!=": operator.ne}
LOGIC = {"&&": operator.and_, "||": operator.or_}
_INTEGER = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": c_div, "%": c_rem,
            "&": operator.and_, "|": operator.or_, "^": operator.xor, "<<": operator.lshift,
            ">>": operator.rshift, "min": np.minimum, "max": np.maximum}
_FLOAT = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "%": np.fmod, "min": fmin, "max": fmax}


def binary(op: str, x, y, t: dt.DType):
    """`x op y` on operands of type t (for a shift: x of type t, y of any integer type), with the
    result type of §2.2: bool for comparisons and logic, t otherwise. Raises Trap."""
    if op in COMPARE:
        return COMPARE[op](x, y)
    if op in LOGIC:
        return LOGIC[op](x, y)
    if t.is_float:
        with np.errstate(all="ignore"):
            return dt.round_to(float(_FLOAT[op](np.float64(x), np.float64(y))), t)
    if op in ("/", "%") and _anywhere(y == 0):
        raise Trap("integer divide by zero", f"the divisor of `{op}` is 0")
    if op in ("<<", ">>") and _anywhere(shift_out_of_range(y, t)):
        raise Trap("shift out of range", f"shift of a {t.short} by {y} (amounts lie in [0, {t.bits}))")
    return wrap(_INTEGER[op](x, y), t)


def _anywhere(condition) -> bool:
    """True if the condition holds for the value, or for any element of an array."""
    return bool(condition.any()) if isinstance(condition, np.ndarray) else bool(condition)


def unary(op: str, x, t: dt.DType):
    """neg, not (bool), invert (bitwise; logical on bool) of a value of type t."""
    if op == "not" or (op == "invert" and t is dt.boolean):
        return x == 0
    if t.is_float:
        return -x
    return wrap(-x if op == "neg" else ~x, t)


def convert(x, src: dt.DType, dst: dt.DType):
    """A value of type src as a value of type dst (§2.4)."""
    if src == dst:
        return x
    if dst is dt.boolean:
        return x != 0
    if dst.is_integer:
        return int(float_to_int(x, dst)) if src.is_float else wrap(x, dst)
    if src.is_float:
        return dt.round_to(x, dst)
    return int_to_float(int(x), dst)


# ---------------------------------------------------------------- expressions

def apply(e: ir.Expr, operands: list):
    """The operation of a Cast, Unary, Binary or Select node on its operands' values (in
    `ir.children` order), each converted to the operation's type first (§2.2). Operands may be
    Python scalars or, for integer and bool operations, NumPy arrays."""
    match e:
        case ir.Cast(a=a, type=t):
            return convert(operands[0], a.dtype, t)
        case ir.Unary(op=op, a=a):
            return unary(op, operands[0], a.dtype)
        case ir.Binary(op="<<" | ">>" as op, a=a):
            return binary(op, operands[0], operands[1], a.dtype)
        case ir.Binary(op=op, a=a, b=b):
            t = dt.promote(a.dtype, b.dtype)
            return binary(op, convert(operands[0], a.dtype, t), convert(operands[1], b.dtype, t), t)
        case ir.Select(a=a, b=b):
            c, x, y = operands[0], convert(operands[1], a.dtype, e.dtype), convert(operands[2], b.dtype, e.dtype)
            return np.where(c, x, y) if isinstance(c, np.ndarray) else x if c else y
    raise Unknown(e)


def evaluate(e: ir.Expr, env: dict):
    """The value of an expression of constants and the variables in `env` (name -> value).
    `&&`, `||` and select evaluate only the operand they need (§2.3). Raises Trap, or Unknown
    for anything else (memory, thread indices, intrinsics, a variable not in env)."""
    match e:
        case ir.Const(value=v):
            return v
        case ir.Var(name=n) if n in env:
            return env[n]
        case ir.Binary(op="&&" | "||" as op, a=a, b=b):
            x = evaluate(a, env)
            return x if bool(x) == (op == "||") else evaluate(b, env)
        case ir.Select(cond=c, a=a, b=b):
            chosen = a if evaluate(c, env) else b
            return convert(evaluate(chosen, env), chosen.dtype, e.dtype)
        case ir.Cast() | ir.Unary() | ir.Binary():
            return apply(e, [evaluate(c, env) for c in ir.children(e)])
    raise Unknown(e)
