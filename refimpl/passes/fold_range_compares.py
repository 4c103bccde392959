"""Integer comparisons that the value ranges decide (refimpl.ranges) become constants: the
`if tid < 256:` guards that task-mapping lowering puts around every mapped loop, with tid in
[0, 255], then cost the interpreter nothing per execution. Operands that could trap are kept."""
from __future__ import annotations

from taskmap.spec import dtypes as dt
from taskmap.spec import ir

from ..ranges import Ranges

_DECIDE = {   # op -> (holds for every pair of the intervals, fails for every pair)
    "<": (lambda a, b: a[1] < b[0], lambda a, b: a[0] >= b[1]),
    "<=": (lambda a, b: a[1] <= b[0], lambda a, b: a[0] > b[1]),
    ">": (lambda a, b: a[0] > b[1], lambda a, b: a[1] <= b[0]),
    ">=": (lambda a, b: a[0] >= b[1], lambda a, b: a[1] < b[0]),
}


def fold_range_compares(kernel: ir.Kernel) -> ir.Kernel:
    """Integer comparisons decided by the operands' value ranges replaced by true / false."""
    ranges = Ranges(kernel)

    def fold(e):
        if not (isinstance(e, ir.Binary) and e.op in _DECIDE and e.a.dtype == e.b.dtype and e.a.dtype.is_integer):
            return e
        ra, rb = ranges.of(e.a), ranges.of(e.b)
        if ra is None or rb is None or any(ir.may_trap(n) for n in ir.walk(e)):
            return e
        holds, fails = _DECIDE[e.op]
        if holds(ra, rb) or fails(ra, rb):
            return ir.Const(holds(ra, rb), dt.boolean, loc=e.loc)
        return e
    return ir.rewrite(kernel, fold)
