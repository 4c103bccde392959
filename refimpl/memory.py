"""Tensors and their shadow state (SPEC.md §3, race rule of §10).

A `Space` is one tensor's storage for the blocks of the current batch: a flat array of the
storage dtype holding every instance (one for a global tensor, one per block for shared, one
per lane for register), the base offset of each lane's instance, and optionally
- `init`: which elements were written (uninitialized reads, §3.2),
- `race`: who last wrote / read each element and at which barrier stamp (§1.4),
- `pending`: elements awaiting an async copy (§5.4).

Lanes are identified by their global thread id `gid = block·T + tid`. A lane's barrier stamp
is `bar << 32 | wbar`: `bar` counts its block's syncthreads, `wbar` its warp's syncthreads and
syncwarps. An access record is ordered before a lane's access when both are in one block and
a barrier of the block (or of the warp, for one warp) separates them.

Access records name a group of threads: a thread (gid ≥ 0), none (-1), or several threads of
one warp, of one block, or of several blocks (negative codes, see `Groups`).
"""
from __future__ import annotations

import numpy as np

from spec import ir

from .numerics import from_storage, to_storage
from .traps import fmt3

NONE = -1
LOW32 = np.int64(0xFFFFFFFF)


class Space:
    def __init__(self, buffer: ir.Buffer, data: np.ndarray, shape: tuple, strides: tuple, size: int,
                 base, *, init=None, race=None, pending=None):
        self.buffer = buffer
        self.name = buffer.name
        self.scope = buffer.scope
        self.dtype = buffer.dtype
        self.data = data
        self.shape = shape
        self.strides = strides      # element strides of the row-major or strided layout
        self.size = size            # elements of one instance
        self.base = base            # per-lane offset of the lane's instance (array, or 0)
        self.init = init
        self.race = race
        self.pending = pending


def layout_strides(shape: tuple, strides: tuple | None) -> tuple[tuple, int]:
    """Element strides (row-major unless given) and the elements one instance spans."""
    if strides is not None:
        span = 1 + sum((n - 1) * s for n, s in zip(shape, strides)) if all(shape) else 0
        return strides, span
    strides, acc = [], 1
    for n in reversed(shape):
        strides.append(acc)
        acc *= n
    return tuple(reversed(strides)), acc


class RaceShadow:
    """Last writer and readers of every element, with their barrier stamps."""

    def __init__(self, n: int):
        self.w = np.full(n, NONE, np.int64)
        self.ws = np.zeros(n, np.int64)
        self.wa = np.zeros(n, np.bool_)        # last write was atomic
        self.r = np.full(n, NONE, np.int64)
        self.rs = np.zeros(n, np.int64)


class Groups:
    """Thread-group codes of access records, and the ordering/joining rules on them."""

    def __init__(self, threads: int, blocks: int):
        self.T = threads
        self.WPB = (threads + 31) // 32
        self.NW = blocks * self.WPB
        self.NB = blocks
        self.MULTI = -2 - self.NW - self.NB

    def block(self, code):
        c = -2 - code
        return np.where(code >= 0, code // self.T,
                        np.where(c < self.NW, c // self.WPB, np.where(c < self.NW + self.NB, c - self.NW, -1)))

    def warp(self, code):
        c = -2 - code
        return np.where(code >= 0, (code // self.T) * self.WPB + (code % self.T) // 32,
                        np.where((c >= 0) & (c < self.NW), c, -1))

    def ordered(self, code, stamp, gid, now):
        same_block = self.block(code) == gid // self.T
        my_warp = (gid // self.T) * self.WPB + (gid % self.T) // 32
        before = (stamp >> 32) < (now >> 32)
        warp_before = (self.warp(code) == my_warp) & ((stamp & LOW32) < (now & LOW32))
        return same_block & (before | warp_before)

    def join(self, a, b):
        wa, ba = self.warp(a), self.block(a)
        same_warp = (wa == self.warp(b)) & (wa >= 0)
        same_block = (ba == self.block(b)) & (ba >= 0)
        return np.where(a == b, a, np.where(same_warp, -2 - wa,
                                            np.where(same_block, -2 - self.NW - ba, self.MULTI)))

    def describe(self, code: int, st) -> str:
        if code >= 0:
            blk, thr = st.coords_of_gid(code)
            return f"thread {fmt3(thr)}" + ("" if blk == st.current_block else f" of block {fmt3(blk)}")
        c = -2 - code
        if c < self.NW:
            return f"threads of warp {c % self.WPB}"
        return "several threads" if c < self.NW + self.NB else "threads of several blocks"

    def thread(self, code: int, st):
        return st.coords_of_gid(code)[1] if code >= 0 else None


# ---------------------------------------------------------------- accesses

class Access:
    """One instruction's access to a Space by the lanes `lanes` (an index array)."""

    def __init__(self, st, space: Space, index: list, lanes: np.ndarray, flat, node):
        self.st, self.space, self.index, self.lanes, self.flat, self.node = st, space, index, lanes, flat, node

    def index_at(self, k: int) -> tuple:
        lane = self.lanes[k]
        return tuple(int(v if np.ndim(v) == 0 else v[lane]) for v in self.index)

    def element(self, k: int) -> str:
        return f"{self.space.name}[{', '.join(map(str, self.index_at(k)))}]"

    def trap(self, phrase: str, k: int, detail: str, hint: str = "", thread=None):
        st, lane = self.st, int(self.lanes[k])
        return st.trap(phrase, detail, self.node, lane, buffer=self.space.name, index=self.index_at(k),
                       hint=hint, thread=thread)


def element_offsets(st, space: Space, index: list, sel, node):
    """Bounds-check the index tuple on the active lanes (§3.3), then apply the layout.

    Returns the per-instance element offset (array over all lanes, or a uniform scalar)."""
    for d, (i, n) in enumerate(zip(index, space.shape)):
        bad = (i < 0) | (i >= n)
        if np.ndim(bad) == 0:
            if not bad:
                continue
            lane = 0 if sel is None else int(sel[0])
        else:
            hits = np.flatnonzero(bad if sel is None else bad[sel])
            if not hits.size:
                continue
            lane = int(hits[0] if sel is None else sel[hits[0]])
        idx = tuple(int(v if np.ndim(v) == 0 else v[lane]) for v in index)
        shape = ", ".join(map(str, space.shape))
        raise st.trap(f"out of bounds {space.scope} access",
                      f"{space.name}[{', '.join(map(str, idx))}] is outside shape ({shape}) in dimension {d}",
                      node, lane, buffer=space.name, index=idx,
                      hint="guard the access with a bounds check")
    off = 0
    for i, s in zip(index, space.strides):
        off = off + np.asarray(i, np.int64) * s
    layout = space.buffer.layout
    if isinstance(layout, ir.Swizzle):
        mask = ((1 << layout.bits) - 1) << (layout.base + layout.shift)
        off = off ^ ((off & mask) >> layout.shift)
    return off


def lanes_of(st, sel) -> np.ndarray:
    return st.all_lanes if sel is None else sel


def flat_of(space: Space, off, lanes, sel):
    """Flat storage indices of the active lanes' elements."""
    flat = space.base + off
    if np.ndim(flat) == 0:
        return flat
    return flat if sel is None else flat[lanes]


def check_read(acc: Access, atomic: bool = False):
    sp, st, f = acc.space, acc.st, acc.flat
    if sp.pending is not None and np.any(sp.pending[f]):
        k = _first(sp.pending[f], acc)
        raise acc.trap("read of pending async copy destination", k,
                       f"{acc.element(k)} is the destination of an async copy not yet waited for",
                       "call cp_async_wait_group() (and syncthreads() if another thread issued it) first")
    if sp.init is not None:
        ok = sp.init[f]
        if not np.all(ok):
            k = _first(~ok, acc)
            kind = sp.scope
            raise acc.trap(f"uninitialized {kind} read", k, f"{acc.element(k)} is read before any thread wrote it",
                           "write the element before reading it" if kind != "global"
                           else "the array came from refimpl.empty(); the kernel never wrote this element")
    if sp.race is not None:
        _race_read(acc, atomic)


def check_write(acc: Access, atomic: bool = False, landing: bool = False):
    sp, f = acc.space, acc.flat
    if sp.pending is not None and not landing and np.any(sp.pending[f]):
        k = _first(sp.pending[f], acc)
        raise acc.trap("write to pending async copy destination", k,
                       f"{acc.element(k)} is the destination of an async copy not yet waited for",
                       "call cp_async_wait_group() before overwriting the destination")
    if sp.race is not None:
        _race_write(acc, atomic)
    if sp.init is not None:
        sp.init[f] = True


def _first(bad, acc: Access) -> int:
    return int(np.flatnonzero(np.broadcast_to(bad, np.shape(acc.lanes)))[0])


def _gids(acc: Access):
    st = acc.st
    return st.gid[acc.lanes], st.stamp[acc.lanes]


def _unordered(groups: Groups, codes, stamps, g, now, candidates):
    """Positions among `candidates` whose record is not ordered before the access."""
    k = np.flatnonzero(candidates)
    if not k.size:
        return k
    return k[~groups.ordered(codes[k], stamps[k], g[k], now[k])]


def _race_read(acc: Access, atomic: bool):
    sh, st, f = acc.space.race, acc.st, np.broadcast_to(acc.flat, np.shape(acc.lanes))
    groups = st.groups
    g, now = _gids(acc)
    w = sh.w[f]
    cand = (w != NONE) & (w != g)
    if atomic:
        cand &= ~sh.wa[f]
    bad = _unordered(groups, w, sh.ws[f], g, now, cand)
    if bad.size:
        _race_trap(acc, int(bad[0]), int(w[bad[0]]), "written", "read")
    if atomic:
        return
    r, rs = sh.r[f], sh.rs[f]
    fresh = (r == NONE) | (r == g)
    others = np.flatnonzero(~fresh)
    if others.size:
        fresh[others] = groups.ordered(r[others], rs[others], g[others], now[others])
    new = np.where(fresh, g, groups.join(r, g)) if others.size else g.copy()
    _scatter_joined(sh.r, f, new, groups)
    sh.rs[f] = now


def _scatter_joined(arr, f, codes, groups: Groups):
    """arr[f] = codes where several lanes hitting one element leave the join of their codes."""
    arr[f] = codes
    back = arr[f]
    while True:
        k = np.flatnonzero(back != codes)
        if not k.size:
            return
        codes[k] = groups.join(codes[k], back[k])
        arr[f[k]] = codes[k]
        back = arr[f]


def _race_write(acc: Access, atomic: bool):
    sh, st, f = acc.space.race, acc.st, np.broadcast_to(acc.flat, np.shape(acc.lanes))
    groups = st.groups
    g, now = _gids(acc)
    w = sh.w[f]
    cand = (w != NONE) & (w != g)
    if atomic:
        cand &= ~sh.wa[f]
    bad = _unordered(groups, w, sh.ws[f], g, now, cand)
    if bad.size:
        _race_trap(acc, int(bad[0]), int(w[bad[0]]), "written", "written")
    r = sh.r[f]
    bad = _unordered(groups, r, sh.rs[f], g, now, (r != NONE) & (r != g))
    if bad.size:
        _race_trap(acc, int(bad[0]), int(r[bad[0]]), "read", "written")
    if atomic:
        prior = (w != NONE) & (w != g) & sh.wa[f]
        new = np.where(prior, groups.join(w, g), g)
        _scatter_joined(sh.w, f, new, groups)
    else:
        sh.w[f] = g
        back = sh.w[f]
        dup = np.flatnonzero(back != g)
        if dup.size:
            _race_trap(acc, int(dup[0]), int(back[dup[0]]), "written", "written", same_instruction=True)
    sh.ws[f] = now
    sh.wa[f] = atomic
    sh.r[f] = NONE


def _race_trap(acc: Access, k: int, other: int, first: str, second: str, same_instruction: bool = False):
    st = acc.st
    lane = int(acc.lanes[k])
    st.current_block = st.block_of(lane)
    me = st.thread_of(lane)
    memory = "shared memory" if acc.space.scope == "shared" else "global memory"
    who = st.groups.describe(other, st)
    detail = f"{acc.element(k)} {first} by {who} and {second} by thread {fmt3(me)}"
    if same_instruction:
        hint = "two threads store to one element in the same statement; give each thread its own element"
    elif acc.space.scope == "shared":
        hint = f"add syncthreads() between the {'write' if first == 'written' else 'read'} and the " \
               f"{'read' if second == 'read' else 'write'}"
    else:
        hint = "blocks cannot synchronize: give each element one writing thread, or use atomics"
    raise acc.trap(f"data race on {memory}", k, detail, hint, thread=[st.groups.thread(other, st), me])


def load(st, space: Space, index: list, off, sel, node):
    """Read one element per active lane (checked), as lane values; inactive lanes read 0."""
    lanes = lanes_of(st, sel)
    flat = flat_of(space, off, lanes, sel)
    if space.init is not None or space.race is not None or space.pending is not None:
        check_read(Access(st, space, index, lanes, flat, node))
    vals = space.data[flat]
    if sel is not None and np.ndim(vals):
        out = np.zeros(st.L, vals.dtype)
        out[sel] = vals
        vals = out
    return from_storage(vals, space.dtype)


def store(st, space: Space, index: list, off, values, sel, node, atomic: bool = False):
    """Write lane values (already of the element type) of the active lanes (checked)."""
    lanes = lanes_of(st, sel)
    flat = flat_of(space, off, lanes, sel)
    if space.init is not None or space.race is not None or space.pending is not None:
        check_write(Access(st, space, index, lanes, flat, node), atomic)
    v = to_storage(values, space.dtype)
    space.data[flat] = v if sel is None or np.ndim(v) == 0 else v[sel]


def elements(st, space: Space, lanes, off, n: int, index: list, node):
    """Access to n consecutive elements from each lane's offset `off` (aligned with lanes)."""
    over = np.flatnonzero(off + n > space.size)
    if over.size:
        lane = int(lanes[over[0]])
        idx = tuple(int(v if np.ndim(v) == 0 else v[lane]) for v in index)
        raise st.trap(f"out of bounds {space.scope} access",
                      f"{n} elements from {space.name}[{', '.join(map(str, idx))}] run past the end of the tensor "
                      f"({space.size} elements)", node, lane, buffer=space.name, index=idx,
                      hint="start the access at least that many elements before the end")
    base = space.base[lanes] if np.ndim(space.base) else space.base
    flat = (base + off)[:, None] + np.arange(n)
    return Access(st, space, index, np.repeat(lanes, n), flat.ravel(), node), flat


def read_elements(st, space: Space, lanes, off, n: int, index: list, node) -> np.ndarray:
    """(len(lanes), n) storage values, checked as reads by the lanes."""
    acc, flat = elements(st, space, lanes, off, n, index, node)
    if space.init is not None or space.race is not None or space.pending is not None:
        check_read(acc)
    return space.data[flat]


def write_elements(st, space: Space, lanes, off, values, index: list, node, landing: bool = False):
    """Store (len(lanes), n) storage values, checked as writes by the lanes."""
    acc, flat = elements(st, space, lanes, off, values.shape[1], index, node)
    if space.init is not None or space.race is not None or space.pending is not None:
        check_write(acc, landing=landing)
    space.data[flat] = values
