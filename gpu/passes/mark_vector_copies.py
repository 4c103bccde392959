"""Unrolled element-by-element copies of 8 or 16 contiguous bytes, marked so that the emitter
writes one vector access (guarded by a run-time alignment test, the loop as written otherwise)."""
from __future__ import annotations

import dataclasses

from taskmap.spec import ir


def mark_vector_copies(kernel: ir.Kernel) -> ir.Kernel:
    """Sets `For.vector` on loops that copy 8 or 16 contiguous bytes between row-major tensors."""
    def mark(n):
        nbytes = _vector_bytes(n) if isinstance(n, ir.For) else 0
        return dataclasses.replace(n, vector=nbytes) if nbytes else n
    return ir.rewrite(kernel, mark)


def _vector_bytes(s: ir.For) -> int:
    """The bytes copied when `s` is `for v in range(V) unroll: dst[..., b + v] = src[..., c + v]`
    over row-major tensors of one dtype, V elements being 8 or 16 bytes; else 0."""
    if not (s.unroll and s.start == ir.const(0) and s.step == ir.const(1) and isinstance(s.stop, ir.Const)):
        return 0
    if len(s.body) != 1 or not isinstance(s.body[0], ir.Store) or not isinstance(s.body[0].value, ir.Load):
        return 0
    store, load = s.body[0], s.body[0].value
    nbytes = s.stop.value * store.buffer.dtype.nbytes
    if nbytes not in (8, 16) or store.buffer.dtype != load.buffer.dtype or store.buffer.name == load.buffer.name:
        return 0
    for idx, buf in ((store.indices, store.buffer), (load.indices, load.buffer)):
        if not isinstance(buf.layout, ir.RowMajor) or len(idx) != buf.ndim or not _last_is_plus_var(idx, s.var):
            return 0
    return nbytes


def _uses(e, var: ir.Var) -> bool:
    return any(n == var for n in ir.walk(e))


def _last_is_plus_var(idx, var: ir.Var) -> bool:
    """The loop variable appears only as `... + var` (or `var`) in the last index."""
    if any(_uses(i, var) for i in idx[:-1]):
        return False
    last = idx[-1]
    if last == var:
        return True
    return isinstance(last, ir.Binary) and last.op == "+" and last.b == var and not _uses(last.a, var)
