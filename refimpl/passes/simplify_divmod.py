"""Exact div/mod rewrites of lowered index arithmetic (refimpl.ranges: `(X·c + B) % c -> B`,
`(X·c + B) / c -> X` where X ≥ 0 and 0 ≤ B < c, and their relatives), so that register indices
computed from task indices become loop variables again: the interpreter proves more accesses
in bounds, and the CUDA emitter (whose pipeline runs it too) gives nvcc constant indices."""
from __future__ import annotations

from taskmap.spec import ir

from ..ranges import Ranges


def simplify_divmod(kernel: ir.Kernel) -> ir.Kernel:
    """Lowered `/` and `%` of task indices rewritten where the value ranges make it exact."""
    return Ranges(kernel).simplify(kernel)
