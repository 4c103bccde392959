"""The IR builder's integer identities (spec.ir.binary): `x * 0`, `0 * x` and `x % 1` drop `x`
only when evaluating it cannot trap (SPEC.md §2.3); the traps themselves are checked on the
interpreter by conformance/cases/fold_traps.yaml."""
from __future__ import annotations

import pytest

from taskmap.spec import dtypes as dt
from taskmap.spec import ir
from taskmap.conformance.kernels import fold

I32 = dt.int32
N = ir.Var("n", I32)
TID = ir.Special("threadIdx.x")
A = ir.Buffer("a", I32, (N,), "global")

DROPPING = {                                       # identity -> builds it around an operand
    "x * 0": lambda x: ir.binary("*", x, 0),
    "0 * x": lambda x: ir.binary("*", 0, x),
    "x % 1": lambda x: ir.binary("%", x, 1),
}
TRAPPING = {                                       # operands that may trap (§2.3, §3, §5.6)
    "load": ir.Load(A, (TID,)),
    "load under arithmetic": ir.Binary("+", ir.Load(A, (TID,)), ir.const(1)),
    "shuffle": ir.Shuffle("xor", TID, ir.const(1)),
    "division by a variable": ir.Binary("/", TID, N),
    "division by zero": ir.Binary("/", TID, ir.const(0)),
    "remainder by a variable": ir.Binary("%", TID, N),
    "shift by a variable": ir.Binary("<<", TID, N),
    "shift out of range": ir.Binary(">>", TID, ir.const(32)),
    "negative shift": ir.Binary("<<", TID, ir.const(-1)),
    "call": ir.Cast(ir.Call("abs", (ir.Cast(TID, dt.float32),)), I32),
    "select of a load": ir.Select(ir.Binary("<", TID, N), ir.Load(A, (TID,)), ir.const(0)),
}
SAFE = {                                           # operands that cannot trap: folded away
    "variable": N,
    "special register": TID,
    "index arithmetic": ir.Binary("+", ir.Binary("*", TID, ir.const(4)), N),
    "division by a constant": ir.Binary("/", TID, ir.const(4)),
    "remainder by a negative constant": ir.Binary("%", TID, ir.const(-3)),
    "shift in range": ir.Binary("<<", TID, ir.const(31)),
    "cast and select": ir.Select(ir.Binary("<", TID, N), ir.Cast(ir.const(2.5), I32), N),
}


@pytest.mark.parametrize("operand", TRAPPING.values(), ids=TRAPPING.keys())
@pytest.mark.parametrize("identity", DROPPING.values(), ids=DROPPING.keys())
def test_identities_keep_operands_that_may_trap(identity, operand):
    e = identity(operand)
    assert isinstance(e, ir.Binary) and operand in (e.a, e.b)


@pytest.mark.parametrize("operand", SAFE.values(), ids=SAFE.keys())
@pytest.mark.parametrize("identity", DROPPING.values(), ids=DROPPING.keys())
def test_identities_fold_operands_that_cannot_trap(identity, operand):
    assert identity(operand) == ir.Const(0, I32)


@pytest.mark.parametrize("operand", [*TRAPPING.values(), *SAFE.values()])
def test_identities_that_keep_their_operand_always_apply(operand):
    for e in (ir.binary("+", operand, 0), ir.binary("-", operand, 0), ir.binary("*", operand, 1),
              ir.binary("/", operand, 1), ir.binary("+", 0, operand), ir.binary("*", 1, operand)):
        assert e is operand


def _store_line(k: ir.Kernel) -> str:
    return next(line.strip() for line in str(k).splitlines() if line.strip().startswith("b[i] ="))


def test_printed_ir_keeps_the_trapping_load_and_folds_the_safe_arithmetic():
    assert _store_line(fold.make_mul_zero_hides_oob(dt.int32)) == "b[i] = a[i + 1000] * 0"
    assert _store_line(fold.make_mod_one_hides_oob(dt.uint32)) == "b[i] = a[i + 1000] % u32(1)"
    assert _store_line(fold.mul_zero_hides_divide_by_zero) == "b[i] = a[i] / d[i] * 0"
    assert _store_line(fold.safe_folds) == "b[i] = a[i]"
