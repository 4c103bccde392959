"""refimpl.passes.fold_range_compares: comparisons decided by the value ranges become constants,
undecided ones stay, and the interpreter's results do not change (checked against NumPy)."""
from __future__ import annotations

import numpy as np

from taskmap import refimpl
from taskmap.lang import i32, kernel, threadIdx
from taskmap.refimpl.passes import fold_range_compares
from taskmap.spec import ir
from taskmap.spec.passes import lower


@kernel(grid=1, block=64)
def guards(out: i32[64]):
    t = threadIdx.x
    out[t] = 0
    if t < 64:           # always: t in [0, 63]
        out[t] = out[t] + 1
    if t >= 64:          # never
        out[t] = out[t] + 10
    if t < 32:           # depends on the thread
        out[t] = out[t] + 100


def _compares(k: ir.Kernel) -> list[str]:
    return [n.op for n in ir.walk(k) if isinstance(n, ir.Binary) and n.op in ("<", "<=", ">", ">=")]


def test_decided_comparisons_fold_and_the_rest_stay():
    lowered = lower(guards)
    folded = fold_range_compares(lowered)
    assert _compares(lowered) == ["<", ">=", "<"] and _compares(folded) == ["<"]
    consts = [n.value for n in ir.walk(folded) if isinstance(n, ir.If) for n in [n.cond] if isinstance(n, ir.Const)]
    assert consts == [True, False]


def test_results_unchanged():
    out = np.full(64, -1, np.int32)
    refimpl.interpret(guards, out)
    np.testing.assert_array_equal(out, np.where(np.arange(64) < 32, 101, 1))
