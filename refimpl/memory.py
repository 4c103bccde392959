"""Tensors and their shadow state (SPEC.md §3, race rule of §10).

A `Space` is one tensor's storage for the blocks of the current batch: a flat array of the
storage dtype holding every instance (one for a global tensor, one per block for shared, one
per lane for register), the base offset of each lane's instance, and optionally
- `init`: which elements were written (uninitialized reads, §3.2),
- `race`: who last wrote / read each element and at which barrier stamp (§1.4),
- `pending`: elements awaiting an async copy (§5.4),
- `guard`: for TMA destinations, the mbarrier phase each element's copy completes on (§5.10;
  refimpl/mbarrier.py), which a thread must have waited for before touching the element,
- `mbar`: for an mbarrier tensor, the barriers' phases and counts (§5.9; refimpl/mbarrier.py),
- `wg_busy`: for wgmma operands and accumulators, how many issued wgmmas still use each
  element (§5.12; refimpl/wgmma.py), and for their registers `wg_touched`: which elements an
  ordinary access touched since the thread's last wgmma_fence.

An access record (`Who`) names the accessing thread (or several threads of one warp, of one
block, or of several blocks), the barrier count `bar` of its block at the access and the
warp-barrier count `wbar` (syncthreads and syncwarps of the warp). A recorded access is ordered before a lane's
access when both are in one block and a barrier of the block (or of the warp, for one warp)
separates them.
"""
from __future__ import annotations

import numpy as np

from taskmap.spec import ir

from .numerics import from_storage, to_storage
from .traps import fmt3

NONE = -1
_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


class Space:
    def __init__(self, buffer: ir.Buffer, data: np.ndarray, shape: tuple, strides: tuple, size: int,
                 base, scale: int = 1, *, init=None, race=None, pending=None, guard=None, mbar=None,
                 wg_busy=None, wg_touched=None):
        self.buffer = buffer
        self.name = ir.source_name(buffer)     # for messages: the DSL name
        self.scope = buffer.scope
        self.dtype = buffer.dtype
        self.data = data
        self.shape = shape
        self.strides = strides      # element strides of the row-major or strided layout
        self.size = size            # elements of one instance
        self.base = base            # per-lane offset of the lane's instance (array, or 0)
        self.scale = scale          # flat index = base + offset·scale (registers: element-major)
        self.full_rows: set[int] = set()   # registers: elements every lane has written (no init check)
        self.all_written = False           # shared: every element has been written (no init check)
        self.init = init
        self.race = race
        self.pending = pending
        self.guard = guard
        self.mbar = mbar
        self.wg_busy = wg_busy
        self.wg_touched = wg_touched
        self.checked = init is not None or race is not None or pending is not None or guard is not None \
            or wg_busy is not None


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


class Who:
    """Per-element access records, one int32 array per field, allocated on first use.

    thread: global thread id (block·T + tid), NONE, or MANY (several threads); warp: global
    warp id or MANY; bb: `block << 32 | bar`, the block (or MANY) and its syncthreads count at
    the (latest) access; wbar: the warp's syncthreads+syncwarp count then (not kept for a
    kernel without syncwarp: it would equal the block's count).
    """

    def __init__(self, n: int, clock=None, warp_barriers: bool = True):
        self.n = n
        self.thread = None
        self.thread_writes = 0      # changes of `thread` so far (they invalidate `sole_writers`)
        self.sole_writers = {}      # id(f) -> (f, threads, thread_writes): thread[f] == threads then
        self.stamps = []            # (f, bb) barrier stamps not yet written into bb (see RaceShadow)
        self.clock = clock          # mbarrier ordering (refimpl/mbarrier.py Clock), None without mbarriers
        self.warp_barriers = warp_barriers

    def ensure(self):
        if self.thread is None:
            self.thread = np.full(self.n, NONE, np.int32)
            self.warp = np.zeros(self.n, np.int32)
            # Without syncwarp a warp's count is its block's barrier count: it never orders more (ordered)
            self.wbar = np.zeros(self.n, np.int32) if self.warp_barriers else None
            self.bb = np.zeros(self.n, np.int64)
            self.block = self.bb.view(np.int32)[1::2]        # bb's high half (little-endian)
            if self.clock is not None:
                self.ep = np.zeros(self.n, np.int32)         # the accessing thread's arrival count then

    def known_written_by(self, f, threads) -> bool:
        """Is every element of f known, without a gather, to be last written by the corresponding
        thread of `threads`? So where it held for the same read-only f and threads arrays and
        `thread` has not changed since (a register nest storing a shared tile's stage again)."""
        kept = self.sole_writers.get(id(f))
        return kept is not None and kept[0] is f and kept[1] is threads and kept[2] == self.thread_writes

    def remember_written_by(self, f, threads):
        """thread[f] == threads holds now (see known_written_by)."""
        if not f.flags.writeable:
            if len(self.sole_writers) >= 8:
                self.sole_writers.clear()
            self.sole_writers[id(f)] = (f, threads, self.thread_writes)

    def write_stamps(self):
        for f, bb in self.stamps:
            self.bb[f] = bb
        self.stamps.clear()

    def stamp(self, f, me: dict):
        """Record the accessing threads' arrival counts (only where mbarriers order accesses)."""
        if self.clock is not None:
            self.ep[f] = me["ep"]


class RaceShadow:
    """`deferred` (shared memory only): read Accesses not yet recorded in `r`, in program
    order, and `deferred_span` the range of instance offsets they touch. Recording a read only
    matters to a later write of one of its elements in the same barrier interval: a block
    barrier orders every recorded read of the block's shared memory before all later accesses,
    so the interpreter records deferred reads only when a write's offsets overlap that range
    and drops them at syncthreads (the reads of one stage of a double-buffered tile are never
    followed by such a write). Recording them later is exact: the lanes' barrier counts change
    only after record_all_deferred or drop_deferred. For the same reason a read need not look
    for a racing writer when `writes_since_barrier` is False (always True for global memory:
    blocks do not synchronize).

    The same holds for the barrier stamps of a shared write by threads that already are each
    element's last writer (a store nest's rerun, `w.stamps`): only the low half of `bb` changes
    (the block stays), which only `ordered` reads, and after a block barrier of every lane the
    element's older stamp orders it before every later access just as the new one would; so
    they are written before `ordered` or another write of `bb` needs them, or at a barrier that
    orders some lanes only, and dropped at a block barrier of every lane."""

    def __init__(self, n: int, defer_reads: bool = False, clock=None, warp_barriers: bool = True):
        self.w = Who(n, clock, warp_barriers)    # last writer (a group only for atomics)
        self.r = Who(n, clock, warp_barriers)    # readers since the last write
        self.atomic = np.zeros(n, np.bool_)      # last write was atomic
        self.any_atomic = False
        self.deferred = [] if defer_reads else None
        self.deferred_span = None                # (lowest, highest) instance offset of the deferred reads
        self.deferred_elements = 0
        self.writes_since_barrier = True


DEFER_LIMIT = 1 << 21       # deferred read elements kept before recording them (bounds the memory)


MANY = -2
# The shadow records are read with take(f, mode="clip"): f are element indices of accesses
# already in bounds, and take skips its per-index bounds test in that mode (2.5x faster).
MANY_BB = np.int64(MANY) << 32


def ordered(rec: Who, f, me: dict):
    """Is the recorded access of elements f ordered before the lanes' accesses `me`: same
    block and an earlier block barrier count, or same warp and an earlier warp count?"""
    if rec.stamps:
        rec.write_stamps()
    gap = me["bb"] - rec.bb.take(f, mode="clip")    # take: faster than fancy indexing (see MANY)
    out = (gap > 0) & (gap < (1 << 32))
    rest = np.flatnonzero(~out)
    if rest.size:
        fr = f[rest]
        if rec.wbar is not None:
            out[rest] = ((gap[rest] == 0) & (rec.warp[fr] == me["warp"][rest]) & (rec.wbar[fr] < me["wbar"][rest]))
        if rec.clock is not None:
            out[rest] |= rec.clock.ordered(rec, fr, me["lanes"][rest], me["block"][rest])
    return out


def _select(me: dict, k, n: int) -> dict:
    return me if k.size == n else {name: v[k] for name, v in me.items()}


# ---------------------------------------------------------------- accesses

class Access:
    """One instruction's access to a Space by the lanes `lanes` (an index array)."""

    span = None             # (lowest, highest) offset within the instance, where known (instance_span)
    repeats = 0             # > 0: the lanes are every lane `repeats` times over (a register nest's iterations)

    def __init__(self, st, space: Space, index: list, lanes: np.ndarray, flat, node):
        self.st, self.space, self.index, self.lanes, self.flat, self.node = st, space, index, lanes, flat, node

    def index_at(self, k: int) -> tuple:
        return index_at(self.index, self.lanes[k])

    def element(self, k: int) -> str:
        return f"{self.space.name}[{', '.join(map(str, self.index_at(k)))}]"

    def trap(self, phrase: str, k: int, detail: str, hint: str = "", thread=None):
        st, lane = self.st, int(self.lanes[k])
        return st.trap(phrase, detail, self.node, lane, buffer=self.space.name, index=self.index_at(k),
                       hint=hint, thread=thread)


def index_at(index: list, lane: int) -> tuple:
    """The index tuple one lane used (entries are uniform scalars or arrays over lanes)."""
    return tuple(int(v if getattr(v, "ndim", 0) == 0 else v[lane]) for v in index)


def first_lane(bad, sel) -> int:
    """The lowest active lane where `bad` (over all lanes, or uniform) holds, else -1."""
    if getattr(bad, "ndim", 0) == 0:
        return (0 if sel is None else int(sel[0])) if bad else -1
    hits = np.flatnonzero(bad if sel is None else bad[sel])
    if not hits.size:
        return -1
    return int(hits[0] if sel is None else sel[hits[0]])


def element_offsets(st, space: Space, index: list, sel, node, proven=()):
    """Bounds-check the index tuple on the active lanes (§3.3), then apply the layout.
    `proven[d]`: dimension d's index is statically known to be in range.

    Returns the per-instance element offset (array over all lanes, or a uniform scalar)."""
    off = 0
    if not any(type(i) is np.ndarray for i in index):       # uniform: Python ints
        for d, (i, n, s) in enumerate(zip(index, space.shape, space.strides)):
            i = int(i)
            if not 0 <= i < n:
                _out_of_bounds(st, space, index, sel, node, d)
            off += i * s
    else:
        lanes = None                # the lane-varying part, in int64 (no overflow), built in place
        for d, (i, n, s) in enumerate(zip(index, space.shape, space.strides)):
            if type(i) is not np.ndarray:
                if not 0 <= i < n:
                    _out_of_bounds(st, space, index, sel, node, d)
                off += int(i) * s
                continue
            if not (d < len(proven) and proven[d]) and np.any(i.view(_UNSIGNED[i.dtype.itemsize]) >= n):
                _out_of_bounds(st, space, index, sel, node, d)  # one pass over all lanes: some out of range
            if lanes is None:
                lanes = np.multiply(i, s, dtype=np.int64)
            elif s == 1:
                lanes += i
            else:
                lanes += np.multiply(i, s, dtype=np.int64)
        if off:
            lanes += off
        off = lanes
    layout = space.buffer.layout
    if isinstance(layout, ir.Swizzle):
        off = off ^ ((off & layout.mask) >> layout.shift)
    return off


def _out_of_bounds(st, space: Space, index: list, sel, node, d: int):
    """Trap if an active lane's index in dimension d is outside the shape (inactive lanes may be)."""
    i, n = index[d], space.shape[d]
    lane = first_lane((i < 0) | (i >= n), sel)
    if lane < 0:
        return
    idx = index_at(index, lane)
    shape = ", ".join(map(str, space.shape))
    raise st.trap(f"out of bounds {space.scope} access",
                  f"{space.name}[{', '.join(map(str, idx))}] is outside shape ({shape}) in dimension {d}",
                  node, lane, buffer=space.name, index=idx,
                  hint="guard the access with a bounds check")


def lanes_of(st, sel) -> np.ndarray:
    return st.all_lanes if sel is None else sel


def flat_of(space: Space, off, lanes, sel):
    """Flat storage indices of the active lanes' elements."""
    flat = off if space.scale == 1 else off * space.scale
    if type(space.base) is not int or space.base:           # global tensors start at 0: no addition
        flat = space.base + flat
    if getattr(flat, "ndim", 0) == 0:
        return flat
    return flat if sel is None else flat[lanes]


def check_wgmma_use(acc: Access, write: bool):
    """An ordinary access to an element an issued wgmma still uses (§5.12): a trap for its
    registers (any access) and its shared operands (writes); registers remember the touch,
    which the next wgmma on them needs a wgmma_fence after."""
    sp, f = acc.space, acc.flat
    register = sp.scope == "register"
    if (write or register) and np.any(sp.wg_busy[f]):
        k = _first(sp.wg_busy[f] > 0, acc)
        if register:
            raise acc.trap("access to wgmma registers before wgmma_wait_group", k,
                           f"{acc.element(k)} is {'written' if write else 'read'} while a wgmma that uses it "
                           "(accumulator or A fragment) is in flight",
                           "call wgmma_commit_group() and wgmma_wait_group() for its group first")
        raise acc.trap("write to wgmma operand before wgmma_wait_group", k,
                       f"{acc.element(k)} is written while a wgmma that reads it is in flight",
                       "wait for the wgmma's group (wgmma_wait_group) before overwriting its operand")
    if sp.wg_touched is not None:
        sp.wg_touched[f] = True


def check_read(acc: Access, atomic: bool = False):
    sp = acc.space                      # acc.flat only where a check needs it (it may be formed on demand)
    if sp.wg_busy is not None:
        check_wgmma_use(acc, write=False)
    if sp.guard is not None:
        sp.guard.check(acc, write=False)
    if sp.pending is not None and np.any(sp.pending[acc.flat]):
        k = _first(sp.pending[acc.flat], acc)
        raise acc.trap("read of pending async copy destination", k,
                       f"{acc.element(k)} is the destination of an async copy not yet waited for",
                       "call cp_async_wait_group() (and syncthreads() if another thread issued it) first")
    ok = True if sp.init is None or sp.all_written else sp.init[acc.flat]
    if ok is not True and not ok.all():
        k = _first(~ok, acc)
        kind = sp.scope
        raise acc.trap(f"uninitialized {kind} read", k, f"{acc.element(k)} is read before any thread wrote it",
                       "write the element before reading it" if kind != "global"
                       else "the array came from refimpl.empty(); the kernel never wrote this element")
    if sp.race is not None:
        _race_read(acc, atomic)


def check_write(acc: Access, atomic: bool = False, landing: bool = False):
    sp, f = acc.space, acc.flat
    if sp.wg_busy is not None:
        check_wgmma_use(acc, write=True)
    if sp.guard is not None:
        sp.guard.check(acc, write=True)
    if sp.pending is not None and not landing and np.any(sp.pending[f]):
        k = _first(sp.pending[f], acc)
        raise acc.trap("write to pending async copy destination", k,
                       f"{acc.element(k)} is the destination of an async copy not yet waited for",
                       "call cp_async_wait_group() before overwriting the destination")
    if sp.race is not None:
        _race_write(acc, atomic)
    if sp.init is not None and not sp.all_written:
        sp.init[f] = True
        if sp.scope == "shared":
            sp.all_written = bool(sp.init.all())


def _per_lane(acc: Access) -> np.ndarray:
    """The access's flat element indices, one per lane (a uniform index repeated)."""
    f = acc.flat
    return f if type(f) is np.ndarray and f.shape == acc.lanes.shape else np.broadcast_to(f, acc.lanes.shape)


def _first(bad, acc: Access) -> int:
    return int(np.flatnonzero(np.broadcast_to(bad, np.shape(acc.lanes)))[0])


def _me(acc: Access) -> dict:
    st, lanes = acc.st, acc.lanes
    clock = acc.space.race.w.clock
    if lanes is st.all_lanes or acc.repeats:
        me = {"thread": st.gid, "warp": st.gwarp, "bb": st.bb, "wbar": st.wbar, "block": st.gblock}
        if clock is not None:
            me |= {"lanes": st.all_lanes, "ep": clock.ep}
        if not acc.repeats:
            return me
        if not acc.space.race.w.warp_barriers:
            del me["wbar"]                  # not recorded (Who.ensure)
        return {k: _tiled(st, k, v, acc.repeats) for k, v in me.items()}
    me = {"thread": st.gid[lanes], "warp": st.gwarp[lanes], "bb": st.bb[lanes], "wbar": st.wbar[lanes],
          "block": st.gblock[lanes]}
    if clock is not None:
        me |= {"lanes": lanes, "ep": clock.ep[lanes]}
    return me


_BARRIER_COUNTS = ("bb", "wbar")     # change at barriers (st.barriers); ep at mbarrier arrivals; the rest never


def _tiled(st, name: str, v: np.ndarray, repeats: int) -> np.ndarray:
    """A lane field repeated for each iteration of a register nest, kept while it holds."""
    if name == "ep":
        return np.tile(v, repeats)
    when = st.barriers if name in _BARRIER_COUNTS else 0
    kept = st.tiles.get((name, repeats))
    if kept is None or kept[0] != when:
        kept = st.tiles[name, repeats] = (when, np.tile(v, repeats))
    return kept[1]


def _unordered(rec: Who, f, me: dict, candidates) -> np.ndarray:
    """Positions among `candidates` whose record is not ordered before the access (on all lanes
    at once when most are candidates: cheaper than gathering the subset)."""
    n = np.count_nonzero(candidates)
    if not n:
        return np.empty(0, np.intp)
    if 4 * n > len(f):
        return np.flatnonzero(candidates & ~ordered(rec, f, me))
    k = np.flatnonzero(candidates)
    return k[~ordered(rec, f[k], _select(me, k, len(f)))]


def _conflict(acc: Access, rec: Who, f, me: dict, candidates, first: str, second: str):
    """Trap on the first candidate whose record is not ordered before the access."""
    bad = _unordered(rec, f, me, candidates)
    if bad.size:
        _race_trap(acc, int(bad[0]), rec, int(f[bad[0]]), first, second)


def _race_read(acc: Access, atomic: bool):
    sh = acc.space.race
    if sh.w.thread is not None and sh.writes_since_barrier:
        f, me = _per_lane(acc), _me(acc)
        w = sh.w.thread.take(f, mode="clip")
        cand = (w != NONE) & (w != me["thread"])
        _conflict(acc, sh.w, f, me, cand & ~sh.atomic[f] if atomic else cand, "written", "read")
    if atomic:
        return
    if sh.deferred is None:
        _record_read(sh.r, _per_lane(acc), _me(acc), False)
        return
    sh.deferred.append(acc)
    lo, hi = instance_span(acc)
    span = sh.deferred_span
    sh.deferred_span = (lo, hi) if span is None else (min(lo, span[0]), max(hi, span[1]))
    sh.deferred_elements += acc.lanes.size
    if sh.deferred_elements > DEFER_LIMIT:
        record_deferred(sh)


def instance_span(acc: Access) -> tuple[int, int]:
    """The lowest and highest element offset within its instance (shared: the block's copy,
    at a multiple of the instance size) that the access touches."""
    if acc.span is None:
        off = np.asarray(acc.flat) % acc.space.size
        acc.span = (int(off.min()), int(off.max()))
    return acc.span


def _record_read(r: Who, f, me: dict, one_block: bool):
    r.ensure()
    old = r.thread.take(f, mode="clip")
    _record_group(r, f, me, _unordered(r, f, me, (old != NONE) & (old != me["thread"])), one_block)
    if r.wbar is not None:
        r.wbar[f] = me["wbar"]
    r.stamp(f, me)


def record_deferred(sh: RaceShadow):
    """Record the deferred reads in program order, exactly as if each had been recorded at once."""
    for acc in sh.deferred:
        _record_read(sh.r, _per_lane(acc), _me(acc), True)
    drop_deferred(sh)


def drop_deferred(sh: RaceShadow):
    sh.deferred.clear()
    sh.deferred_span = None
    sh.deferred_elements = 0


def record_all_deferred(st):
    """Record the deferred shared reads before a barrier that changes the lanes' barrier counts
    in place without ordering all of them (syncwarp, syncthreads of some blocks)."""
    for sp in st.spaces:
        if sp is not None and sp.race is not None and sp.race.deferred:
            record_deferred(sp.race)
        if sp is not None and sp.race is not None and sp.race.w.stamps:
            sp.race.w.write_stamps()


def after_syncthreads(st):
    """Every lane passed a block barrier: the deferred shared reads are ordered before all later
    accesses, so recording them could never report a race (see RaceShadow)."""
    for sp in st.spaces:
        if sp is not None and sp.race is not None and sp.race.deferred is not None:
            sp.race.writes_since_barrier = False
            sp.race.w.stamps.clear()
            if sp.race.deferred:
                drop_deferred(sp.race)


def end_batch(st):
    """The batch's blocks have finished: their deferred shared reads can never be recorded now
    (shared memory is per block), and dropping them frees the batch's state (the reads' accesses
    refer to it, a reference cycle only the garbage collector would break)."""
    for sp in st.spaces:
        if sp is not None and sp.race is not None and sp.race.deferred:
            drop_deferred(sp.race)


def _record_group(rec: Who, f, me: dict, merge, one_block: bool):
    """Record the lanes' accesses, joined with the prior record at positions `merge` and with
    each other where several lanes hit one element: disagreeing fields become MANY.
    one_block: every access to an element comes from one block (shared memory)."""
    rec.thread_writes += 1
    if rec.stamps:
        rec.write_stamps()
    for name, key, many in (("thread", "thread", MANY), ("warp", "warp", MANY), ("bb", "block", MANY_BB)):
        arr, mine, check, mykey = getattr(rec, name), me[name], getattr(rec, key), me[key]
        if one_block and name == "bb":
            arr[f] = mine
            continue
        if merge.size:
            agree = check[f[merge]] == mykey[merge]
            mine = mine.copy()
            mine[merge] = np.where(agree, mine[merge], many)
            if name != "bb":
                mykey = mine
        arr[f] = mine
        k = np.flatnonzero(check.take(f, mode="clip") != mykey)
        if k.size:
            arr[f[k]] = many


def _race_write(acc: Access, atomic: bool):
    sh, f = acc.space.race, _per_lane(acc)
    if sh.deferred and _overlaps(instance_span(acc), sh.deferred_span):
        record_deferred(sh)
    me = _me(acc)
    sh.writes_since_barrier = True
    w = sh.w
    w.ensure()
    known = all_same = not atomic and w.known_written_by(f, me["thread"])  # then nothing can conflict with the last writers
    if not all_same:
        old = w.thread.take(f, mode="clip")
        same = old == me["thread"]
        all_same = bool(same.all())
        if all_same and not atomic:
            w.remember_written_by(f, me["thread"])
    if not all_same:
        cand = ~same & (old != NONE)
        _conflict(acc, w, f, me, cand & ~sh.atomic[f] if atomic else cand, "written", "written")
    if sh.r.thread is not None:
        r = sh.r.thread[f]
        _conflict(acc, sh.r, f, me, (r != NONE) & (r != me["thread"]), "read", "written")
        sh.r.thread[f] = NONE
    if atomic:
        _record_group(w, f, me, np.flatnonzero((old != NONE) & sh.atomic[f]),   # atomics of several threads
                      acc.space.scope == "shared")
    else:
        if not all_same:            # else each element's last writer is the writing thread (and its warp) already
            w.thread[f] = me["thread"]
            w.thread_writes += 1
            dup = np.flatnonzero(w.thread.take(f, mode="clip") != me["thread"])
            if dup.size:
                _race_trap(acc, int(dup[0]), w, int(f[dup[0]]), "written", "written", same_instruction=True)
            w.remember_written_by(f, me["thread"])
            w.warp[f] = me["warp"]
        if known and acc.repeats and sh.deferred is not None and w.wbar is None and w.clock is None:
            w.stamps.append((f, me["bb"]))      # a shared tile's stage rewritten (see RaceShadow)
        else:
            if w.stamps:
                w.write_stamps()
            w.bb[f] = me["bb"]
    if w.wbar is not None:
        w.wbar[f] = me["wbar"]
    w.stamp(f, me)
    if atomic or sh.any_atomic:             # all False until the first atomic write
        sh.atomic[f] = atomic
        sh.any_atomic |= atomic


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def forget_writer(space: Space, flat):
    """Drop the last-writer record of elements an asynchronous unit is about to write: the
    threads that later wait for that write are ordered after it by the mbarrier (§5.10), which
    the guard checks instead of the barrier stamps."""
    if space.race is not None and space.race.w.thread is not None:
        space.race.w.thread[flat] = NONE
        space.race.w.thread_writes += 1
        space.race.atomic[flat] = False


def _race_trap(acc: Access, k: int, rec: Who, element: int, first: str, second: str,
               same_instruction: bool = False):
    st = acc.st
    lane = int(acc.lanes[k])
    me = st.thread_of(lane)
    memory = "shared memory" if acc.space.scope == "shared" else "global memory"
    other = int(rec.thread[element])
    who = describe(st, other, int(rec.warp[element]), int(rec.bb[element] >> 32), here=st.block_of(lane))
    detail = f"{acc.element(k)} {first} by {who} and {second} by thread {fmt3(me)}"
    if same_instruction:
        hint = "two threads store to one element in the same statement; give each thread its own element"
    elif acc.space.scope == "shared":
        hint = f"add syncthreads() between the {'write' if first == 'written' else 'read'} and the " \
               f"{'read' if second == 'read' else 'write'}"
    else:
        hint = "blocks cannot synchronize: give each element one writing thread, or use atomics"
    other_thread = st.coords_of_gid(other)[1] if other >= 0 else None
    raise acc.trap(f"data race on {memory}", k, detail, hint, thread=[other_thread, me])


def describe(st, thread: int, warp: int, block: int, here) -> str:
    """Who made a recorded access; the block is named when it is not `here`."""
    if thread >= 0:
        blk, thr = st.coords_of_gid(thread)
        return f"thread {fmt3(thr)}" + ("" if blk == here else f" of block {fmt3(blk)}")
    if warp >= 0:
        return f"threads of warp {warp % st.WPB}"
    return "several threads" if block >= 0 else "threads of several blocks"


def load(st, space: Space, index: list, off, sel, node):
    """Read one element per active lane (checked), as lane values; inactive lanes read 0."""
    if space.scale != 1 and getattr(off, "ndim", 0) == 0:
        return _register_row_load(st, space, index, off, sel, node)
    lanes = lanes_of(st, sel)
    flat = flat_of(space, off, lanes, sel)
    if space.checked:
        check_read(_spanned(Access(st, space, index, lanes, flat, node), off))
    vals = space.data.take(flat) if type(flat) is np.ndarray else space.data[flat]
    if sel is not None and getattr(vals, "ndim", 0):
        out = np.zeros(st.L, vals.dtype)
        out[sel] = vals
        vals = out
    return from_storage(vals, space.dtype)


def store(st, space: Space, index: list, off, values, sel, node, atomic: bool = False):
    """Write lane values (already of the element type) of the active lanes (checked)."""
    if space.scale != 1 and getattr(off, "ndim", 0) == 0:
        return _register_row_store(st, space, index, off, values, sel, node)
    lanes = lanes_of(st, sel)
    flat = flat_of(space, off, lanes, sel)
    if space.checked:
        check_write(_spanned(Access(st, space, index, lanes, flat, node), off), atomic)
    v = to_storage(values, space.dtype)
    if getattr(v, "ndim", 0) and sel is not None:
        v = v[sel]
    if getattr(flat, "ndim", 0) == 0 and getattr(v, "ndim", 0):    # one element for every lane: the last lane's value
        v = v[-1]
    space.data[flat] = v


def _spanned(acc: Access, off) -> Access:
    """acc with its span taken from the instance offsets `off` (cheaper than from the flat
    indices) where deferred reads may need it; inactive lanes' offsets only widen it."""
    race = acc.space.race
    if race is not None and race.deferred is not None:
        acc.span = (int(off.min()), int(off.max())) if type(off) is np.ndarray else (int(off), int(off))
    return acc


def elements(st, space: Space, lanes, off, n: int, index: list, node):
    """Access to n consecutive elements from each lane's offset `off` (aligned with lanes)."""
    over = np.flatnonzero(off + n > space.size)
    if over.size:
        lane = int(lanes[over[0]])
        idx = index_at(index, lane)
        raise st.trap(f"out of bounds {space.scope} access",
                      f"{n} elements from {space.name}[{', '.join(map(str, idx))}] run past the end of the tensor "
                      f"({space.size} elements)", node, lane, buffer=space.name, index=idx,
                      hint="start the access at least that many elements before the end")
    base = space.base[lanes, None] if getattr(space.base, "ndim", 0) else space.base
    flat = base + (off[:, None] + np.arange(n)) * space.scale
    return Access(st, space, index, np.repeat(lanes, n), flat.ravel(), node), flat


def read_elements(st, space: Space, lanes, off, n: int, index: list, node) -> np.ndarray:
    """(len(lanes), n) storage values, checked as reads by the lanes."""
    acc, flat = elements(st, space, lanes, off, n, index, node)
    if space.checked:
        check_read(acc)
    return space.data[flat]


def write_elements(st, space: Space, lanes, off, values, index: list, node, landing: bool = False):
    """Store (len(lanes), n) storage values, checked as writes by the lanes."""
    acc, flat = elements(st, space, lanes, off, values.shape[1], index, node)
    if space.checked:
        check_write(acc, landing=landing)
    space.data[flat] = values


def _register_row_load(st, space: Space, index, off, sel, node):
    """A register element at one offset for every lane: a contiguous row of storage."""
    row = slice(int(off) * st.L, (int(off) + 1) * st.L)
    if space.wg_busy is not None:
        _wgmma_row(st, space, index, row, sel, node, write=False)
    if space.init is not None and int(off) not in space.full_rows:
        ok = space.init[row] if sel is None else space.init[row][sel]
        if not ok.all():
            lanes = lanes_of(st, sel)
            acc = Access(st, space, index, lanes, None, node)
            k = int(np.flatnonzero(~ok)[0])
            raise acc.trap("uninitialized register read", k, f"{acc.element(k)} is read before it was written",
                           "write the element before reading it")
    return from_storage(space.data[row].copy(), space.dtype)


def _register_row_store(st, space: Space, index, off, values, sel, node):
    L = space.base.shape[0]
    row = slice(int(off) * L, (int(off) + 1) * L)
    if space.wg_busy is not None:
        _wgmma_row(st, space, index, row, sel, node, write=True)
    v = to_storage(values, space.dtype)
    if sel is None:
        space.data[row] = v
        if space.init is not None:
            space.init[row] = True
            space.full_rows.add(int(off))
    else:
        space.data[row][sel] = v if getattr(v, "ndim", 0) == 0 else v[sel]
        if space.init is not None:
            space.init[row][sel] = True


def _wgmma_row(st, space: Space, index, row: slice, sel, node, write: bool):
    """check_wgmma_use for a register element at one offset for every active lane."""
    lanes = lanes_of(st, sel)
    check_wgmma_use(Access(st, space, index, lanes, np.arange(row.start, row.stop)[lanes], node), write)
