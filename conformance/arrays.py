"""Case data: generate argument arrays, view them as values, evaluate expected-value
expressions in a restricted namespace, and compare outputs (SPEC.md §2.5 tolerances).

bf16 tensors are stored as uint16 bit patterns (SPEC.md §2.1); everywhere a case *talks*
about values — generators, expressions, comparisons — it sees float32 values instead.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

import numpy as np

from taskmap.spec import dtypes as dt

INITS = ("random", "randint", "arange", "zeros", "full", "empty")

# SPEC.md §2.5: rtol per result dtype, multiplied by the reduction depth of the case.
RTOL_BASE = {dt.float32: 2.0**-20, dt.float16: 2.0**-8, dt.bfloat16: 2.0**-5, dt.float64: 2.0**-48}

# `__import__` because NumPy's C code imports through the calling frame's builtins; case
# text itself cannot name it (check_expression rejects names starting with "_").
_SAFE_BUILTINS = {"abs": abs, "min": min, "max": max, "range": range, "len": len,
                  "int": int, "float": float, "sum": sum, "tuple": tuple, "list": list,
                  "__import__": __import__}


@dataclass(frozen=True)
class TensorSpec:
    init: str
    shape: tuple[int, ...]
    dtype: dt.DType
    seed: int
    low: float | None = None     # `range: [low, high]` for random / randint
    high: float | None = None
    value: float = 0.0           # for `full`
    scale: float = 1.0           # generated values are multiplied by it (randint * 0.125: exact eighths)


def _default_range(init: str, dtype: dt.DType) -> tuple[float, float]:
    if dtype is dt.boolean:
        return 0, 2
    if dtype.is_float:
        return (-1.0, 1.0) if init == "random" else (-8, 8)
    unsigned = dtype.kind == "uint"
    return (0, 100) if unsigned and init == "random" else (0, 8) if unsigned \
        else (-100, 100) if init == "random" else (-8, 8)


def round_bf16(x) -> np.ndarray:
    """Values rounded once, to nearest even, to bf16 (returned as float32). From float64
    through float32 rounded to odd, so the two steps round like one (no double rounding)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return dt.bf16_round(dt.round_to_odd_f32(x))


def from_values(values, dtype: dt.DType) -> np.ndarray:
    """Values (any NumPy array) -> storage of `dtype` (bf16: rounded once to nearest even)."""
    values = np.asarray(values)
    if dtype is dt.bfloat16:
        return dt.to_bf16_bits(round_bf16(values))
    if dtype is dt.boolean:
        return values != 0
    return values.astype(dtype.storage)


def as_values(array: np.ndarray, dtype: dt.DType) -> np.ndarray:
    """Storage -> values: a copy, bf16 decoded to float32."""
    if dtype is dt.bfloat16:
        return dt.from_bf16_bits(np.asarray(array, dtype=np.uint16)).astype(np.float32)
    return np.array(array, copy=True)


def make_tensor(spec: TensorSpec, uninitialized) -> np.ndarray:
    """A C-contiguous array of spec.dtype's storage type. `uninitialized(shape, dtype)` makes
    the array for `empty` (the interpreter marks it; the GPU gets garbage bytes)."""
    if spec.init == "empty":
        return uninitialized(spec.shape, spec.dtype)
    size = int(np.prod(spec.shape, dtype=np.int64))
    rng = np.random.default_rng(spec.seed)
    low, high = _default_range(spec.init, spec.dtype)
    low = low if spec.low is None else spec.low
    high = high if spec.high is None else spec.high
    match spec.init:
        case "random" if spec.dtype.is_float:
            values = rng.uniform(low, high, size)
        case "random" | "randint":
            values = rng.integers(int(low), int(high), size)
        case "arange":
            values = np.arange(size)
        case "zeros":
            values = np.zeros(size)
        case "full":
            values = np.full(size, spec.value)
        case _:
            raise ValueError(f"unknown init {spec.init!r}; expected one of {', '.join(INITS)}")
    values = values * spec.scale if spec.scale != 1.0 else values
    if spec.dtype.is_integer:
        values = values.astype(np.int64)     # wraps modulo 2^bits below, like a C cast
    return np.ascontiguousarray(from_values(values, spec.dtype).reshape(spec.shape))


def garbage(shape, dtype: dt.DType) -> np.ndarray:
    """All-ones bytes (NaN for floats, -1 for signed ints): an output the kernel fails to
    write can never pass for a correct one."""
    if dtype is dt.boolean:
        return np.ones(shape, np.bool_)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.storage.itemsize
    return np.frombuffer(bytearray(b"\xff" * nbytes), dtype=dtype.storage).reshape(shape)


# ---------------------------------------------------------------- expressions

def check_expression(text: str) -> None:
    """Raise ValueError if `text` is not an expression the restricted evaluator accepts."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as e:
        raise ValueError(f"invalid Python expression {text!r}: {e.msg}") from None
    for node in ast.walk(tree):
        name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
        if name.startswith("_"):
            raise ValueError(f"{text!r}: names starting with '_' are not allowed in case expressions")


def evaluate(text: str, namespace: dict):
    """Evaluate an expected-value or size expression; the namespace holds `np`, the inputs
    (as values) and the sizes. Raises ValueError with the expression on any failure."""
    check_expression(text)
    try:
        with np.errstate(all="ignore"):     # overflow to inf is often the point of a case
            # the namespace goes in as globals, so lambdas and comprehensions see it too
            return eval(compile(text, "<case expression>", "eval"),  # noqa: S307 — checked above
                        {**namespace, "__builtins__": _SAFE_BUILTINS, "np": np, "bf16": round_bf16})
    except Exception as e:  # noqa: BLE001 — any error in user text becomes one clear message
        raise ValueError(f"cannot evaluate {text!r}: {type(e).__name__}: {e}") from None


# ---------------------------------------------------------------- comparison

@dataclass(frozen=True)
class Comparison:
    ok: bool
    message: str
    max_abs: float
    max_rel: float


def compare(name: str, actual: np.ndarray, expected, dtype: dt.DType, exact: bool,
            rtol: float, atol: float) -> Comparison:
    """actual: storage array written by the kernel; expected: values that broadcast to its shape."""
    expected = np.broadcast_to(np.asarray(expected), actual.shape)
    got = as_values(actual, dtype).astype(np.float64)
    if exact:                             # errors against the expected value in the output's type
        stored = from_values(expected, dtype)
        expected = as_values(stored, dtype)
    want = np.asarray(expected, dtype=np.float64)
    both_nan = np.isnan(got) & np.isnan(want)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.where(both_nan | (got == want), 0.0, np.abs(got - want))
        err = np.where(np.isnan(err), np.inf, err)
        nonzero = want != 0
        rel = np.divide(err, np.abs(want), out=np.zeros_like(err), where=nonzero)
    max_abs = float(err.max()) if err.size else 0.0
    max_rel = float(rel.max()) if rel.size else 0.0
    if exact:
        bad = _bits(actual) != _bits(stored)
        if not bad.any():
            return Comparison(True, "", max_abs, max_rel)
        idx = _index(np.argmax(bad), actual.shape)
        return Comparison(False, f"{name}: {int(bad.sum())} of {bad.size} elements differ (bit-exact "
                                 f"comparison); first at index {idx}: got {_num(got[idx])}, expected "
                                 f"{_num(want[idx])}", max_abs, max_rel)
    bound = atol + rtol * np.abs(want)
    bad = err > bound
    if not bad.any():
        return Comparison(True, "", max_abs, max_rel)
    idx = _index(np.argmax(np.where(bad, err / bound, -1.0)), actual.shape)
    worst = f"max rel err {rel[idx]:.3g} > rtol {rtol:.3g}" if want[idx] != 0 \
        else f"abs err {err[idx]:.3g} > atol {atol:.3g}"
    return Comparison(False, f"{name}: {worst} at index {idx} "
                             f"(got {_num(got[idx])}, expected {_num(want[idx])}, abs err {err[idx]:.3g}; "
                             f"{int(bad.sum())} of {bad.size} elements beyond atol {atol:.3g} "
                             f"+ rtol*|expected|)", max_abs, max_rel)


def _num(v) -> str:
    v = float(v)
    return str(int(v)) if v.is_integer() and abs(v) < 2**53 else repr(v)


def _bits(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    return a.view(f"u{a.dtype.itemsize}") if a.dtype != np.bool_ else a


def _index(flat: int, shape) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(int(flat), shape)) if shape else ()
