"""Atomic read-modify-writes (SPEC.md §5.8) on global or shared elements.

Lanes of one instruction that hit the same element are applied one after another in lane
order (one of the orders SPEC.md allows), each seeing the previous one's result.
"""
from __future__ import annotations

import numpy as np

from taskmap.spec import dtypes as dt

from . import memory
from . import numerics as num

_UFUNC_AT = {"add": np.add, "max": np.maximum, "min": np.minimum}


def atomic(st, sel, node, space: memory.Space, index: list, off, op: str, value, compare, want_old: bool):
    """Apply the atomic on the active lanes; return the old values (lane values over all lanes)."""
    t = space.dtype
    lanes = memory.lanes_of(st, sel)
    flat = np.broadcast_to(memory.flat_of(space, off, lanes, sel), lanes.shape)
    if space.checked:
        acc = memory.Access(st, space, index, lanes, flat, node)
        memory.check_read(acc, atomic=True)
        memory.check_write(acc, atomic=True)
    value = _active(value, lanes, st.L)
    if not want_old and op in _UFUNC_AT and t is not dt.bfloat16 and not (t.is_float and op != "add"):
        _UFUNC_AT[op].at(space.data, flat, num.to_storage(value, t))
        return None
    compare = _active(compare, lanes, st.L) if compare is not None else None
    old = np.zeros(len(lanes), num.lane_dtype(t))
    todo = np.arange(len(lanes))
    while todo.size:
        _, first = np.unique(flat[todo], return_index=True)
        now = todo[first]
        cur = num.from_storage(space.data[flat[now]], t)
        old[now] = cur
        space.data[flat[now]] = num.to_storage(_apply(op, cur, value[now], None if compare is None else compare[now], t), t)
        todo = np.setdiff1d(todo, now, assume_unique=True)
    if not want_old:
        return None
    out = np.zeros(st.L, old.dtype)
    out[lanes] = old
    return out


def _active(values, lanes, L: int):
    return np.broadcast_to(values, (L,))[lanes]


def _apply(op: str, cur, v, cmp, t: dt.DType):
    match op:
        case "add":
            return num.binary("+", cur, v, t)
        case "max" | "min":
            return num.binary(op, cur, v, t)
        case "exch":
            return v
        case "cas":
            return np.where(cur == cmp, v, cur)
    raise ValueError(f"unknown atomic {op}")
