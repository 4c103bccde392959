"""Which values differ between the threads of a block (SPEC.md §9.6): the abstract domain of
the barrier check.

A value is either uniform (`None`: equal in every thread of a block, value unknown) or a
`Dep`: a label per linear thread id such that threads with equal labels hold equal values. An
exact Dep's labels are the values themselves: integer and bool constants and expressions of
them and the thread indices, computed like §2.3 does (so `threadIdx.x < 256` in a 256-thread
block is known to be true everywhere). When the block shape is not a compile-time constant the
labels are unknown (`labels is None`) and any thread may differ from any other.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


WARP = 32


@dataclass(frozen=True, eq=False)
class Dep:
    labels: np.ndarray | None
    exact: bool = False


@dataclass(frozen=True, eq=False)
class Threads:
    """The block's threads, by linear id (§1.2); `count` is None when the block is dynamic."""
    count: int | None
    specials: dict                  # "threadIdx.x" -> Dep or None

    @staticmethod
    def of(block: tuple) -> Threads:
        """block: the (x, y, z) extents, each an int or None where it is not a constant."""
        if None in block:
            return Threads(None, {f"threadIdx.{a}": None if n == 1 else Dep(None) for a, n in zip("xyz", block)})
        bx, by, bz = block
        tid = np.arange(bx * by * bz)
        values = {"x": tid % bx, "y": tid // bx % by, "z": tid // (bx * by)}
        return Threads(len(tid), {f"threadIdx.{a}": Dep(values[a], exact=True) for a in "xyz"}
                       | {f"blockDim.{a}": Dep(np.full(len(tid), n), exact=True) for a, n in zip("xyz", block)})

    def constant(self, value) -> Dep | None:
        return None if self.count is None else Dep(np.full(self.count, int(value), dtype=np.int64), exact=True)

    def varying(self) -> Dep:
        return Dep(None if self.count is None else np.arange(self.count))

    def all(self) -> np.ndarray | None:
        return None if self.count is None else np.ones(self.count, dtype=bool)

    def segments(self, width: int) -> Dep:
        return Dep(None if self.count is None else np.arange(self.count) // width)


def meet(*values) -> Dep | None:
    """The common refinement: threads equal in every operand's partition (never exact)."""
    deps = [v for v in values if v is not None and not _constant(v)]
    if not deps:
        return None
    if any(d.labels is None for d in deps):
        return Dep(None)
    if len(deps) == 1:
        return Dep(deps[0].labels)
    # Each thread's rank among the distinct rows of labels (one row per thread), built one
    # operand at a time: two dense ranks combined in mixed radix keep the rows' lexicographic
    # order, and ranking again keeps the numbers below the thread count. As np.unique(rows,
    # axis=0) would number them, at a fraction of its cost (this runs per expression, per pass).
    rank = _classes(deps[0].labels)
    for d in deps[1:]:
        r = _classes(d.labels)
        rank = _classes(rank * (int(r.max()) + 1) + r)
    return Dep(rank)


def join(defs: list) -> Dep | None:
    """A variable's summary over all its definitions (flow-insensitive)."""
    if len(defs) == 1 or (defs and all(isinstance(d, Dep) and d.exact for d in defs)
                          and all(np.array_equal(d.labels, defs[0].labels) for d in defs)):
        return defs[0]
    return meet(*defs)


def same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    if a.exact != b.exact or (a.labels is None) != (b.labels is None):
        return False
    if a.labels is None or a.exact:
        return a.labels is None or np.array_equal(a.labels, b.labels)
    return np.array_equal(_classes(a.labels), _classes(b.labels))


def _constant(d: Dep) -> bool:
    return d.labels is not None and bool(np.all(d.labels == d.labels[0]))


def _classes(labels: np.ndarray) -> np.ndarray:
    return np.unique(labels, return_inverse=True)[1].reshape(-1)


def uniform_on(v, mask) -> bool:
    """Equal in every active thread of the block."""
    if v is None:
        return True
    if v.labels is None:
        return False
    active = v.labels[mask]
    return active.size == 0 or bool(np.all(active == active[0]))


def warp_uniform_on(v, mask) -> bool:
    """Equal in every active lane of each warp."""
    if v is None:
        return True
    if v.labels is None:
        return False
    lanes = np.flatnonzero(mask)
    if not lanes.size:
        return True
    labels, warps = v.labels[lanes], lanes // WARP
    first = np.concatenate(([True], warps[1:] != warps[:-1]))     # each warp's first active lane
    return bool(np.all(labels == labels[first][np.cumsum(first) - 1]))


def restrict(mask, v, truth: bool):
    """The threads of `mask` where the exact condition `v` is `truth` (mask itself otherwise)."""
    if mask is None or v is None or not v.exact:
        return mask
    return mask & ((v.labels != 0) == truth)
