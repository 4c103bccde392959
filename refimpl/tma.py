"""TMA tensor copies (SPEC.md §5.11): a box of a global tensor to or from a shared view.

`tma_load` reads the box at issue (elements outside the tensor as zero) and issues it as a TMA
copy on an mbarrier (refimpl/mbarrier.py: landing, guards, transaction bytes). `tma_store`
reads the shared view and writes the box's elements inside the tensor when the statement
runs; the emitted code waits for the store before the issuing thread goes on.
"""
from __future__ import annotations

import math

import numpy as np

from taskmap.spec import ir
from taskmap.spec.verify_mbarrier import tma_box, tma_swizzle

from . import mbarrier, memory

SHARED_ALIGN = 128       # cp.async.bulk.tensor: the shared box starts at a 128-byte aligned address


def _box_offsets(space: memory.Space, coords, box):
    """Element offsets of a box at `coords` in a row-major global tensor, and which lie inside it."""
    grid = np.indices(box).reshape(len(box), -1)
    idx = np.asarray(coords, np.int64)[:, None] + grid
    inside = np.all((idx >= 0) & (idx < np.asarray(space.shape, np.int64)[:, None]), axis=0)
    off = (np.asarray(space.strides, np.int64)[:, None] * idx).sum(axis=0)
    return off, inside


def _coords(index, lane: int) -> tuple[int, ...]:
    return memory.index_at(index, lane)


class _BoxAccess(memory.Access):
    """The in-tensor elements of one lane's box: messages name each element's own index."""

    def __init__(self, st, space, lane: int, flat, node):
        super().__init__(st, space, [], np.full(flat.size, lane), flat, node)

    def index_at(self, k: int) -> tuple:
        return tuple(int(i) for i in np.unravel_index(int(self.flat[k]), self.space.shape))


def _shared_offsets(st, node, lanes, space, index, sel, box, what: str):
    """The view's element offset per lane, aligned to 128 bytes, or for a swizzled tensor to the
    8 rows its swizzle permutes within (there the box's elements lie at the same offsets from
    the view's first as in the tensor: `_box_positions`)."""
    off = np.broadcast_to(memory.element_offsets(st, space, index, sel, node), (st.L,))[lanes]
    mode = tma_swizzle(space.buffer)
    align = 8 * mode if mode else SHARED_ALIGN
    hint = f"the shared box of a TMA {what} starts at a {SHARED_ALIGN}-byte aligned address" if not mode else \
        f"a box in a {mode}-byte swizzled tensor starts at a multiple of 8 of its rows ({align} bytes)"
    mbarrier.check_aligned(st, node, lanes, space, off, index, align, math.prod(box) * space.dtype.nbytes, hint)
    return off


def _box_positions(space: memory.Space, n: int) -> np.ndarray:
    """Where box element j (row-major) lies from the view's first element: j, swizzled like the
    tensor (the copy engine swizzles the same address bits, §5.11)."""
    j = np.arange(n)
    layout = space.buffer.layout
    return j ^ ((j & layout.mask) >> layout.shift) if isinstance(layout, ir.Swizzle) else j


def load(st, sel, node, dst: memory.Space, dst_index, src: memory.Space, coords, bars: memory.Space, bar_slot: int,
         bar_index):
    lanes, boff, bflat = mbarrier.elements(st, bars, bar_index, sel, node)
    mbarrier.access(st, bars, bar_index, lanes, bflat, node)
    box = tma_box(node.dst)
    doff = _shared_offsets(st, node, lanes, dst, dst_index, sel, box, "load")
    values = np.zeros((len(lanes), math.prod(box)), dst.data.dtype)
    for j, lane in enumerate(lanes):
        off, inside = _box_offsets(src, _coords(coords, int(lane)), box)
        f = off[inside]
        if src.checked and f.size:
            memory.check_read(_BoxAccess(st, src, int(lane), f, node))
        values[j, inside] = src.data[f]
    stored = np.empty_like(values)
    stored[:, _box_positions(dst, values.shape[1])] = values
    mbarrier.issue(st, node, lanes, dst, doff, dst_index, stored, bars, bar_slot, boff, bflat)


def store(st, sel, node, dst: memory.Space, coords, src: memory.Space, src_index):
    lanes = memory.lanes_of(st, sel)
    box = tma_box(node.src)
    soff = _shared_offsets(st, node, lanes, src, src_index, sel, box, "store")
    stored = memory.read_elements(st, src, lanes, soff, math.prod(box), src_index, node)
    values = stored[:, _box_positions(src, stored.shape[1])]
    for j, lane in enumerate(lanes):
        off, inside = _box_offsets(dst, _coords(coords, int(lane)), box)
        f = off[inside]
        if dst.checked and f.size:
            memory.check_write(_BoxAccess(st, dst, int(lane), f, node))
        dst.data[f] = values[j, inside]
