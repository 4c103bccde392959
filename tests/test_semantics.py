"""One scalar semantics (SPEC.md §2.3–§2.4): the scalar table of spec/semantics.py (constant
folding, the verifier, the launch binding), the same table on NumPy int64 arrays (the
verifier's per-thread values) and the interpreter's lane arrays (refimpl/numerics.py) give
the same result for every operation and dtype on a grid of edge values — and trap alike."""
from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from taskmap.refimpl import numerics as num
from taskmap.spec import dtypes as dt
from taskmap.spec import ir
from taskmap.spec import semantics as sem
from taskmap.spec.verify_common import const_value

INTS = tuple(t for t in dt.ALL if t.is_integer)
FLOATS = tuple(t for t in dt.ALL if t.is_float)
BF16_MAX = (2 - 2**-7) * 2.0**127


def edges(t: dt.DType) -> list:
    """Edge values of type t: range ends, zero and its neighbours, shift widths, ties, NaN..."""
    if t is dt.boolean:
        return [False, True]
    if t.is_integer:
        near = {t.min, t.min + 1, -2, -1, 0, 1, 2, 3, 7, t.bits - 1, t.bits, 100, t.max - 1, t.max}
        return sorted(v for v in near if t.min <= v <= t.max)
    info = None if t is dt.bfloat16 else np.finfo(t.storage)
    biggest = BF16_MAX if info is None else float(info.max)
    tiny = 2.0**-126 if info is None else float(info.smallest_normal)
    sub = 2.0**-133 if info is None else float(info.smallest_subnormal)
    raw = [0.0, -0.0, 1.0, -1.0, 0.5, 1.5, 2.5, -2.5, 3.0, 1 / 3, 0.1, 7.0, 65504.0, 2.0**24 + 1,
           tiny, sub, -sub, biggest, -biggest, math.inf, -math.inf, math.nan, 1 + 2.0**-7]
    out = []
    for v in raw:
        r = dt.round_to(v, t)
        if not any(_same(r, o) for o in out):
            out.append(r)
    return out


def _same(x, y) -> bool:
    """Equal values (floats: equal bits, or both NaN)."""
    if isinstance(x, float) or isinstance(y, float):
        x, y = np.float64(x), np.float64(y)
        return bool(np.isnan(x) and np.isnan(y)) or x.view(np.uint64) == y.view(np.uint64)
    return x == y and type(bool(x)) is type(bool(y))


def lanes(values, t: dt.DType) -> np.ndarray:
    return np.array(values, dtype=num.lane_dtype(t))


def _scalar(v):
    """A lane element as the Python scalar the table uses."""
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (np.integer, int)):
        return int(v)
    return float(v)


def _check_lanes(name: str, want: list, got: np.ndarray, args: list):
    got = [_scalar(v) for v in np.broadcast_to(got, (len(want),))]
    bad = [(a, w, g) for a, w, g in zip(args, want, got) if not _same(w, g)]
    assert not bad, f"{name}: (operands, scalar table, lane arrays) disagree: {bad[:5]}"


def _scalar_or_trap(fn, *args):
    try:
        return fn(*args)
    except sem.Trap as e:
        return e


BINARY = {t: ([*ir.ARITH_OPS, "&", "|", "^", "<<", ">>", *ir.MINMAX_OPS] if t.is_integer else
              [*ir.ARITH_OPS, *ir.MINMAX_OPS] if t.is_float else ["&", "|", "^"]) + list(ir.COMPARE_OPS)
          for t in dt.ALL}
CASES = [(op, t) for t in dt.ALL for op in BINARY[t]]


@pytest.mark.parametrize("op, t", CASES, ids=[f"{op}-{t.short}" for op, t in CASES])
def test_binary_operations_agree_on_scalars_int64_arrays_and_lanes(op, t):
    pairs = list(itertools.product(edges(t), repeat=2))
    results = [_scalar_or_trap(sem.binary, op, x, y, t) for x, y in pairs]
    traps = [p for p, r in zip(pairs, results) if isinstance(r, sem.Trap)]
    if op in ("/", "%") and t.is_integer:
        assert traps == [p for p in pairs if p[1] == 0]
    elif op in ("<<", ">>"):
        assert traps == [p for p in pairs if not 0 <= p[1] < t.bits]
    else:
        assert not traps
    ok = [(p, r) for p, r in zip(pairs, results) if not isinstance(r, sem.Trap)]
    xs, ys = lanes([p[0] for p, _ in ok], t), lanes([p[1] for p, _ in ok], t)
    want = [r for _, r in ok]
    with np.errstate(all="ignore"):
        if op in ir.COMPARE_OPS:
            got = num.COMPARE[op](xs, ys)
        elif op in ("<<", ">>"):
            got = num.shift(op, xs, ys, t)
        else:
            got = num.binary_op(op, t)(xs, ys)
    _check_lanes(f"{op} on {t.short}", want, got, [p for p, _ in ok])
    if not t.is_float:                           # the verifier's per-thread int64 values
        wide = sem.binary(op, np.array([p[0] for p, _ in ok], np.int64), np.array([p[1] for p, _ in ok], np.int64), t)
        _check_lanes(f"{op} on {t.short} (int64 arrays)", [int(r) for r in want], np.asarray(wide, np.int64),
                     [p for p, _ in ok])
        if traps:
            with pytest.raises(sem.Trap):
                sem.binary(op, np.array([x for x, _ in traps], np.int64), np.array([y for _, y in traps], np.int64), t)


UNARY = [(op, t) for t in dt.ALL for op in (("not",) if t is dt.boolean else ("neg", "invert") if t.is_integer
                                             else ("neg",))]


@pytest.mark.parametrize("op, t", UNARY, ids=[f"{op}-{t.short}" for op, t in UNARY])
def test_unary_operations_agree(op, t):
    values = edges(t)
    want = [sem.unary(op, x, t) for x in values]
    _check_lanes(f"{op} on {t.short}", want, num.unary(op, lanes(values, t), t), values)


CONVERSIONS = list(itertools.product(dt.ALL, dt.ALL))


@pytest.mark.parametrize("src, dst", CONVERSIONS, ids=[f"{s.short}-to-{d.short}" for s, d in CONVERSIONS])
def test_conversions_agree(src, dst):
    values = edges(src) + ([2**62 + 2**54 + 1, -(2**62 + 2**38 + 1), 2**53 + 1] if src is dt.int64 else [])
    want = [sem.convert(x, src, dst) for x in values]
    with np.errstate(all="ignore"):
        got = num.convert(lanes(values, src), src, dst)
    _check_lanes(f"{src.short} -> {dst.short}", want, got, values)


def test_conversions_round_once_and_saturate():
    assert sem.convert(2**62 + 2**38 + 1, dt.int64, dt.float32) == 2.0**62 + 2**39   # not 2^62 (through f64)
    assert sem.convert(2**62 + 2**54 + 1, dt.int64, dt.bfloat16) == 2.0**62 + 2**55
    assert sem.convert(-1e10, dt.float32, dt.int32) == -2**31 and sem.convert(math.nan, dt.float64, dt.uint8) == 0
    assert sem.convert(300, dt.int32, dt.uint8) == 44 and sem.convert(-1, dt.int8, dt.uint32) == 2**32 - 1
    assert sem.convert(7, dt.int32, dt.boolean) is True


def test_integer_rules_are_c_rules():
    assert [sem.binary("/", x, y, dt.int32) for x, y in ((7, 2), (-7, 2), (7, -2), (-7, -2))] == [3, -3, -3, 3]
    assert [sem.binary("%", x, y, dt.int32) for x, y in ((7, 2), (-7, 2), (7, -2), (-7, -2))] == [1, -1, 1, -1]
    assert sem.binary("/", -2**31, -1, dt.int32) == -2**31 and sem.binary("%", -2**31, -1, dt.int32) == 0
    assert sem.binary("*", 2**30, 4, dt.int32) == 0 and sem.binary("-", 0, 1, dt.uint32) == 2**32 - 1
    assert sem.binary(">>", -8, 1, dt.int32) == -4 and sem.binary(">>", 2**32 - 8, 1, dt.uint32) == 2**31 - 4
    assert sem.binary("<", -1, 1, dt.int32) is True


def test_float_operations_round_once_to_the_type():
    assert sem.binary("+", 1.0, 2.0**-11, dt.float16) == 1.0            # the tie goes to even
    assert sem.binary("+", 1.0, 2.0**-11 + 2.0**-20, dt.float32) == 1.0 + 2.0**-11 + 2.0**-20
    assert sem.binary("*", 65504.0, 2.0, dt.float16) == math.inf
    assert sem.binary("/", 1.0, -0.0, dt.float32) == -math.inf and math.isnan(sem.binary("%", 1.0, 0.0, dt.float32))
    assert sem.binary("min", math.nan, 2.0, dt.float32) == 2.0 and sem.binary("max", 3.0, math.nan, dt.bfloat16) == 3.0


def test_expressions_evaluate_lazily_and_report_what_they_cannot():
    n = ir.Var("n", dt.int32)
    guarded = ir.Binary("&&", ir.Binary("!=", n, ir.const(0)), ir.Binary(">", ir.Binary("/", ir.const(8), n),
                                                                          ir.const(1)))
    assert sem.evaluate(guarded, {"n": 0}) is False and sem.evaluate(guarded, {"n": 4}) is True
    pick = ir.Select(ir.Binary("<", n, ir.const(0)), ir.Binary("/", ir.const(1), n), ir.Cast(n, dt.int64))
    assert sem.evaluate(pick, {"n": 0}) == 0
    with pytest.raises(sem.Unknown):
        sem.evaluate(ir.Binary("+", n, ir.Special("threadIdx.x")), {"n": 1})
    with pytest.raises(sem.Trap, match="integer divide by zero"):
        sem.evaluate(ir.Binary("%", ir.const(1), n), {"n": 0})
    assert const_value(ir.Binary("*", ir.const(2**30), ir.const(4))) == 0     # folds like it runs: wraps
    assert const_value(ir.Binary("/", ir.const(1), ir.const(0))) is None      # traps at run time instead


def test_dtype_ranges():
    for t in INTS:
        info = np.iinfo(t.storage)
        assert (t.min, t.max) == (int(info.min), int(info.max))
    assert (dt.boolean.min, dt.boolean.max) == (0, 1)
    assert all((t.min, t.max) == (-math.inf, math.inf) for t in FLOATS)
    assert not dt.float32.accepts(1e39) and dt.float32.accepts(3.4e38) and dt.float32.accepts(math.inf)
    assert not dt.float16.accepts(65520.0) and dt.float16.accepts(65519.0) and not dt.float64.accepts(10**400)
    assert not dt.int32.accepts(2**31) and dt.uint32.accepts(2**32 - 1) and not dt.int32.accepts(True)


@pytest.mark.parametrize("n", [-100, -33, -1, 0, 5, 99, 2**31 - 1])
def test_launch_arithmetic_truncates_like_c(n):
    """Grid and shape expressions (spec.binding) against exact rational arithmetic."""
    m = ir.Var("m", dt.int32)
    e = ir.binary("%", ir.binary("/", ir.binary("-", m, 7), 3), 5)
    q = int(Fraction(n - 7, 3)) if n - 7 >= -2**31 else None   # int() of a Fraction truncates
    want = q - int(Fraction(q, 5)) * 5
    assert sem.evaluate(e, {"m": n}) == want


def test_launch_arithmetic_wraps_at_32_bits():
    m = ir.Var("m", dt.int32)
    assert sem.evaluate(ir.binary("*", m, 2), {"m": 2**30}) == -2**31
    assert sem.evaluate(ir.binary("+", m, 1), {"m": 2**31 - 1}) == -2**31
