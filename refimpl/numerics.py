"""Scalar arithmetic of SPEC.md §2 on lane arrays.

A value of kernel type `t` is held as a NumPy array (or NumPy scalar, when uniform over
lanes) of `lane_dtype(t)`: the storage type, except bf16, which is held as float32 values
that are exactly representable in bf16. Every function here returns values already rounded
to the result type (§2.3: one rounding per operation, f16/bf16 included).

The rules are spec/semantics.py's; where an integer rule is not NumPy's own fixed-width
arithmetic (C division and remainder, saturating float -> integer conversion) its code is
called here, and tests/test_semantics.py checks every operation against the scalar table on
the edge values of each dtype. Integer division by zero and out-of-range shifts are checked by
the caller (exprs.py), which knows the active lanes and the source location; here divisors are
assumed non-zero.
"""
from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np

from taskmap.spec import dtypes as dt
from taskmap.spec import semantics

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)


def lane_dtype(t: dt.DType) -> np.dtype:
    return F32 if t is dt.bfloat16 else t.storage


def scalar(value, t: dt.DType):
    """A Python constant as a uniform lane value of type t, rounded to t (§2.4)."""
    if t is dt.bfloat16:
        return round_f64_to(np.float64(value), t)[()]
    return lane_dtype(t).type(value)


def from_storage(x, t: dt.DType):
    """Memory contents (storage dtype) -> lane values."""
    if t is dt.bfloat16:
        return dt.from_bf16_bits(x)
    return x.view(np.bool_) if t is dt.boolean and x.dtype != np.bool_ else x


def to_storage(x, t: dt.DType):
    """Lane values of type t -> storage dtype (values are already rounded to t)."""
    if t is dt.bfloat16:
        return dt.to_bf16_bits(x)
    return np.asarray(x, dtype=t.storage)


# ---------------------------------------------------------------- rounding helpers

def round_f64_to(x64, t: dt.DType):
    """Round exact-or-odd-rounded f64 values once to float type t."""
    if t is dt.bfloat16:
        return dt.bf16_round(dt.round_to_odd_f32(x64))
    return np.asarray(x64, F64).astype(lane_dtype(t))


def round_f32_to(x32, t: dt.DType):
    """Round f32 values (exact results of f16/bf16 operations, or f32 results) to t."""
    if t is dt.bfloat16:
        return dt.bf16_round(x32)
    return np.asarray(x32).astype(lane_dtype(t))


def tf32_round(x32):
    """f32 -> tf32 (10-bit mantissa, round to nearest even), kept as f32 (§5.7)."""
    x32 = np.asarray(x32, F32)
    bits = x32.view(np.uint32)
    r = (bits + np.uint32(0xFFF) + ((bits >> np.uint32(13)) & np.uint32(1))) & np.uint32(0xFFFFE000)
    return np.where(np.isfinite(x32), r.view(np.float32), x32)


# ---------------------------------------------------------------- conversions (§2.4)

def convert(x, src: dt.DType, dst: dt.DType):
    if src == dst:
        return x
    if dst is dt.boolean:
        return np.not_equal(x, 0)
    if src is dt.boolean:
        return np.asarray(x).astype(lane_dtype(dst))
    if dst.is_integer:
        return semantics.float_to_int(x, dst) if src.is_float else np.asarray(x).astype(dst.storage)
    if src.is_integer:
        if dst is not dt.bfloat16:
            return np.asarray(x).astype(lane_dtype(dst))        # one correctly rounded C conversion
        return round_f64_to(_i64_to_f64_odd(x) if src is dt.int64 else np.asarray(x).astype(F64), dst)
    if dst is dt.bfloat16:
        return dt.bf16_round(dt.round_to_odd_f32(x)) if src is dt.float64 else dt.bf16_round(np.asarray(x, F32))
    return np.asarray(x).astype(lane_dtype(dst))


def _i64_to_f64_odd(x):
    """int64 -> f64 rounded to odd (exact where f64 holds the value), so that rounding it once
    more to bf16 is correct: the high and low 32 bits are each exact in f64."""
    x = np.asarray(x, np.int64)
    high = (x >> np.int64(32)) << np.int64(32)
    return _add_to_odd(high.astype(F64), (x - high).astype(F64))


# ---------------------------------------------------------------- operators (§2.3)

def _c_div(a, b):
    """Integer a / b truncating toward zero in the lane dtype (MIN / -1 wraps to MIN)."""
    if type(a) is not np.ndarray and type(b) is not np.ndarray:
        return _uniform_int(semantics.c_div(int(a), int(b)), a, b)
    return np.asarray(semantics.c_div(a, b)).astype(np.result_type(a, b))[()]


def _c_mod(a, b):
    """Integer a % b with the sign of the dividend."""
    if type(a) is not np.ndarray and type(b) is not np.ndarray:
        return _uniform_int(semantics.c_rem(int(a), int(b)), a, b)
    return np.asarray(semantics.c_rem(a, b)).astype(np.result_type(a, b))[()]


def _uniform_int(exact: int, a, b):
    """An exact integer result of uniform operands, wrapped to their type: Python ints are much
    cheaper than NumPy's scalar path (unrolled loop counters: `(kk - 1) % 2`)."""
    t = a.dtype if isinstance(a, np.generic) and type(a) is type(b) else np.result_type(a, b)
    return t.type(semantics.wrap(exact, _int_type(t)))


@functools.cache
def _int_type(t: np.dtype) -> dt.DType:
    return dt.from_numpy(t)


_UFUNCS = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "%": np.fmod,
           "&": np.bitwise_and, "|": np.bitwise_or, "^": np.bitwise_xor}


def binary_op(op: str, t: dt.DType):
    """The function computing `a op b` for operands already converted to the operation type t
    (not for shifts, comparisons or logic): chosen once per IR node."""
    if op in ("min", "max"):
        return (semantics.fmin if op == "min" else semantics.fmax) if t.is_float \
            else (np.minimum if op == "min" else np.maximum)
    if t in (dt.float16, dt.bfloat16):
        u = _UFUNCS[op]
        return lambda a, b: round_f32_to(u(np.asarray(a, F32), np.asarray(b, F32)), t)
    if not t.is_float and op in ("/", "%"):
        return _c_div if op == "/" else _c_mod
    return _UFUNCS[op]          # f32/f64 are correctly rounded; integers wrap modulo 2^bits


def binary(op: str, a, b, t: dt.DType):
    return binary_op(op, t)(a, b)


COMPARE = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
           "==": np.equal, "!=": np.not_equal}


def shift(op: str, a, b, t: dt.DType):
    """a << b / a >> b, amounts already checked to lie in [0, bits)."""
    b = np.asarray(b).astype(lane_dtype(t))
    return np.left_shift(a, b) if op == "<<" else np.right_shift(a, b)


def unary(op: str, a, t: dt.DType):
    if op == "not" or (op == "invert" and t is dt.boolean):
        return np.logical_not(a)
    if op == "invert":
        return np.invert(a)
    return np.negative(a)


# ---------------------------------------------------------------- math intrinsics (§4.6)

_erf = np.frompyfunc(math.erf, 1, 1)
_UNARY_MATH = {
    "exp": np.exp, "exp2": np.exp2, "log": np.log, "log2": np.log2, "sqrt": np.sqrt,
    "tanh": np.tanh, "sin": np.sin, "cos": np.cos, "abs": np.abs, "floor": np.floor, "ceil": np.ceil,
}


def math_call(fn: str, args: list, t: dt.DType):
    """Intrinsic fn on arguments already converted to t; f16/bf16 are computed in f32."""
    if fn == "abs" and not t.is_float:
        return np.abs(args[0])
    if fn == "fma":
        return fma(*args, t)
    narrow = t in (dt.float16, dt.bfloat16)
    xs = [np.asarray(a, F32) if narrow else np.asarray(a) for a in args]
    if fn in _UNARY_MATH:
        r = _UNARY_MATH[fn](xs[0])
    elif fn == "rsqrt":
        r = (1.0 / np.sqrt(xs[0].astype(F64))).astype(xs[0].dtype)
    elif fn == "erf":
        r = np.asarray(_erf(xs[0].astype(F64)), F64).astype(xs[0].dtype)   # 0-d: frompyfunc gives a float
    elif fn == "pow":
        r = np.power(xs[0], xs[1])
    else:
        raise ValueError(f"unknown intrinsic {fn}")
    return round_f32_to(r, t) if narrow else r


def fma(a, b, c, t: dt.DType):
    """a*b + c rounded once (§2.3). For ≤ 24-bit significands a*b is exact in f64; the sum is
    rounded to odd in f64, so the final rounding to t is correct."""
    if t is dt.float64:
        exact = np.frompyfunc(lambda x, y, z: float(Fraction(x) * Fraction(y) + Fraction(z))
                              if math.isfinite(x * y + z) else x * y + z, 3, 1)
        a, b, c = np.broadcast_arrays(np.asarray(a, F64), np.asarray(b, F64), np.asarray(c, F64))
        return np.asarray(exact(a, b, c), dtype=F64)
    return round_f64_to(_add_to_odd(np.asarray(a, F64) * np.asarray(b, F64), np.asarray(c, F64)), t)


def _add_to_odd(p, c):
    """p + c in f64 rounded to odd: the exact sum where f64 holds it, else the neighbour whose
    last significand bit is 1 (TwoSum gives the rounding error exactly)."""
    s = np.asarray(p + c)
    bb = s - p
    err = (p - (s - bb)) + (c - bb)
    bits = s.view(np.int64)
    fix = (err != 0) & ((bits & 1) == 0) & np.isfinite(s)
    if not fix.any():                  # exact sums, or already odd: nothing to move
        return s
    # The neighbour toward err (libm's nextafter is ~50x slower): one unit in the last place of the
    # magnitude up when err has s's sign, else down; s is finite and not 0 where it is taken.
    up = (err > 0) == (s > 0)
    return np.where(fix, (bits + 2 * up - 1).view(np.float64), s)
