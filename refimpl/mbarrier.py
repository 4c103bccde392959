"""mbarriers (SPEC.md §5.9) and the TMA copies completing on them (§5.10, §5.11: refimpl/tma.py).

An mbarrier tensor's Space carries `Barriers`: per element (over the batch's blocks) the
arrival count of a phase, the arrivals still pending, the phase number, the transaction bytes
expected (arrive_expect_tx) and delivered (bulk copies issued) in the current phase, and per
lane the latest phase the lane has observed complete (`seen`: its own waits, and every wait of
its block before a syncthreads). A phase completes as soon as it can: when no arrival is
pending and the delivered bytes equal the expected ones; its copies land then.

A copy's source is read at issue and its destination elements are guarded by (barrier, phase)
(`Guard`): touching one before the touching thread has observed that phase complete traps.

Ordinary shared accesses are ordered by mbarriers too (`Clock`): an arrival releases the
arriving thread's earlier accesses to the phase it joins, and a wait that observes the phase
acquires them, so the race rule (refimpl/memory.py) counts them as ordered before the waiter's
later accesses.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import memory

COUNT_LIMIT = (1 << 20) - 1       # the PTX ISA's range of arrival and transaction counts
BULK_ALIGN = 16


@dataclass
class Copy:
    bar: int                 # flat barrier element it completes on
    phase: int
    space: memory.Space      # destination
    flat: np.ndarray         # destination storage indices (elements of one issuing lane)
    values: np.ndarray       # storage values, read at issue
    node: object
    lane: int


class Clock:
    """Per lane: `ep`, its arrivals so far; `acq[lane, t]`, how many of thread t's arrivals (of
    the lane's block) the lane has acquired through waits. Thread t's access made after e of its
    arrivals is ordered before the lane's later accesses when acq[lane, t] > e."""

    def __init__(self, st):
        self.T = st.T
        self.ep = np.zeros(st.L, np.int32)
        self.acq = np.zeros((st.L, st.T), np.int32)

    def ordered(self, rec, fr, lanes, blocks) -> np.ndarray:
        """For records `fr` of Who `rec` (memory.ordered's rest): ordered through an mbarrier?"""
        t = rec.thread[fr]
        out = np.zeros(len(fr), bool)
        k = np.flatnonzero((t >= 0) & (rec.block[fr] == blocks))
        if k.size:
            out[k] = self.acq[lanes[k], t[k] % self.T] > rec.ep[fr[k]]
        return out


def clock(st) -> Clock:
    if st.clock is None:
        st.clock = Clock(st)
    return st.clock


class Barriers:
    def __init__(self, n: int, size: int, lanes: int, threads: int):
        self.size = size
        self.count = np.zeros(n, np.int64)      # 0: not initialized
        self.pending = np.zeros(n, np.int64)
        self.phase = np.zeros(n, np.int64)
        self.expected = np.zeros(n, np.int64)
        self.delivered = np.zeros(n, np.int64)
        self.seen = np.full((size, lanes), -1, np.int64)
        self.release = np.zeros((n, threads), np.int32)     # the current phase's arrivals (Clock)
        self.released = np.zeros((n, threads), np.int32)    # those of the phase completed last
        self.copies: list[Copy] = []


class Guard:
    """The TMA copy each destination element last received: the barrier tensor's slot, the
    barrier's offset in its block's instance, and the phase (slot -1: none)."""

    def __init__(self, n: int, st):
        self.st = st
        self.slot = np.full(n, -1, np.int32)
        self.off = np.zeros(n, np.int64)
        self.phase = np.zeros(n, np.int64)

    def check(self, acc: memory.Access, write: bool):
        lanes = acc.lanes
        f = np.broadcast_to(acc.flat, lanes.shape)
        slots = self.slot[f]
        if not (slots >= 0).any():
            return
        for slot in np.unique(slots[slots >= 0]):
            k = np.flatnonzero(slots == slot)
            bars = self.st.spaces[int(slot)]
            seen = bars.mbar.seen[self.off[f[k]], lanes[k]]
            bad = np.flatnonzero(seen < self.phase[f[k]])
            if bad.size:
                self._trap(acc, int(k[bad[0]]), int(f[k[bad[0]]]), bars, write)

    def _trap(self, acc: memory.Access, k: int, e: int, bars: memory.Space, write: bool):
        off, phase, b = int(self.off[e]), int(self.phase[e]), bars.mbar
        done = b.phase[int(self.st.lane_block[acc.lanes[k]]) * b.size + off] > phase
        why = "which this thread has not waited for" if done else "which has not completed"
        raise acc.trap(f"{'write to' if write else 'read of'} TMA destination before its mbarrier phase completed", k,
                       f"{acc.element(k)} is the destination of a TMA copy completing on {bars.name}[{off}] phase "
                       f"{phase}, {why}", f"call mbarrier_wait({bars.name}[{off}], {phase % 2}) before touching the "
                       "destination (another thread's wait orders it only through a following syncthreads())")


def elements(st, space: memory.Space, index, sel, node):
    lanes = memory.lanes_of(st, sel)
    off = np.broadcast_to(memory.element_offsets(st, space, index, sel, node), (st.L,))[lanes]
    flat = space.base[lanes] + off
    return lanes, off.astype(np.int64), flat.astype(np.int64)


def access(st, space, index, lanes, flat, node, *, init: bool = False):
    """The barrier operation as a memory access (§10 race rule): init writes the barrier, every
    other operation reads and updates it atomically. Using it uninitialized traps."""
    b = space.mbar
    if not init:
        bad = np.flatnonzero(b.count[flat] == 0)
        if bad.size:
            acc = memory.Access(st, space, index, lanes, flat, node)
            raise acc.trap("uninitialized shared read", int(bad[0]),
                           f"mbarrier {acc.element(int(bad[0]))} is used before mbarrier_init",
                           "initialize it with mbarrier_init in one thread, then syncthreads()")
    if space.checked:
        acc = memory.Access(st, space, index, lanes, flat, node)
        if init:
            memory.check_write(acc)
        else:
            memory.check_read(acc, atomic=True)


def init(st, sel, node, space: memory.Space, index, count):
    lanes, off, flat = elements(st, space, index, sel, node)
    count = np.broadcast_to(count, (st.L,))[lanes].astype(np.int64)
    bad = np.flatnonzero((count < 1) | (count > COUNT_LIMIT))
    if bad.size:
        raise _count_trap(st, node, int(lanes[bad[0]]), f"arrival count {int(count[bad[0]])}", 1)
    access(st, space, index, lanes, flat, node, init=True)
    b = space.mbar
    b.count[flat] = b.pending[flat] = count
    b.phase[flat] = b.expected[flat] = b.delivered[flat] = 0
    b.release[flat] = b.released[flat] = 0
    for o, blk in zip(off, st.lane_block[lanes]):
        b.seen[o, blk * st.T:(blk + 1) * st.T] = -1


def _count_trap(st, node, lane: int, what: str, least: int):
    return st.trap("mbarrier count out of range", f"{what} is outside {least} … {COUNT_LIMIT} (2^20 - 1)", node, lane,
                   hint="an mbarrier counts at most 2^20 - 1 arrivals and transaction bytes per phase")


def arrive(st, sel, node, space: memory.Space, index, tx):
    lanes, off, flat = elements(st, space, index, sel, node)
    access(st, space, index, lanes, flat, node)
    tx = np.zeros(len(lanes), np.int64) if tx is None else np.broadcast_to(tx, (st.L,))[lanes].astype(np.int64)
    bad = np.flatnonzero((tx < 0) | (tx > COUNT_LIMIT))
    if bad.size:
        raise _count_trap(st, node, int(lanes[bad[0]]), f"transaction byte count {int(tx[bad[0]])}", 0)
    b = space.mbar
    if st.clock is not None:
        memory.record_all_deferred(st)              # deferred reads hold the arrival counts of their moment
    for e in np.unique(flat):
        k = np.flatnonzero(flat == e)
        if len(k) <= b.pending[e]:                  # the common case: every arrival joins this phase
            _release(st, b, int(e), lanes[k])
            b.pending[e] -= len(k)
            b.expected[e] += int(tx[k].sum())
            _settle(space, int(e))
            continue
        for j in k:                                 # arrivals beyond the phase: lane by lane
            if b.pending[e] == 0:
                raise st.trap("mbarrier arrivals exceed its count",
                              f"{space.name}[{int(off[j])}] phase {int(b.phase[e])} already has all its "
                              f"{int(b.count[e])} arrivals and waits for {int(b.expected[e] - b.delivered[e])} "
                              "more transaction bytes", node, int(lanes[j]), buffer=space.name, index=(int(off[j]),),
                              hint="initialize the barrier with the number of threads that arrive per phase")
            _release(st, b, int(e), lanes[j:j + 1])
            b.pending[e] -= 1
            b.expected[e] += int(tx[j])
            _settle(space, int(e))


def _release(st, b: Barriers, e: int, lanes):
    """The arriving lanes' accesses so far are released to barrier element e's current phase."""
    if st.clock is None:
        return
    tid = st.tid[lanes]
    b.release[e, tid] = np.maximum(b.release[e, tid], st.clock.ep[lanes] + 1)
    st.clock.ep[lanes] += 1


def _settle(space: memory.Space, e: int):
    """Complete the barrier's phase if nothing is pending: its copies land, the next phase starts."""
    b = space.mbar
    if b.pending[e] or b.expected[e] != b.delivered[e]:
        return
    phase = int(b.phase[e])
    kept = []
    for c in b.copies:
        if c.bar == e and c.phase == phase:
            c.space.data[c.flat] = c.values
        else:
            kept.append(c)
    b.copies = kept
    b.phase[e] += 1
    b.pending[e] = b.count[e]
    b.expected[e] = b.delivered[e] = 0
    b.released[e] = b.release[e]
    b.release[e] = 0


def wait(st, sel, node, space: memory.Space, index, parity):
    lanes, off, flat = elements(st, space, index, sel, node)
    access(st, space, index, lanes, flat, node)
    b = space.mbar
    parity = np.broadcast_to(parity, (st.L,))[lanes].astype(np.int64)
    bad = np.flatnonzero((parity != 0) & (parity != 1))
    if bad.size:
        j = int(bad[0])
        raise _parity_trap(st, node, space, lanes[j], off[j], f"parity {int(parity[j])} is neither 0 nor 1")
    phase = b.phase[flat]
    seen = b.seen[off, lanes]
    passes = parity != phase % 2                    # the phase before the current one completed
    never = np.flatnonzero(passes & (phase == 0))
    if never.size:
        j = int(never[0])
        raise _parity_trap(st, node, space, lanes[j], off[j], f"parity 1 names the phase before phase 0: "
                           f"{space.name}[{int(off[j])}] has not completed a phase yet (wait for phase 0 with parity 0)")
    blocked = np.flatnonzero(~passes)
    if blocked.size:
        j = int(blocked[0])
        e, n = int(flat[j]), int(phase[j])
        name = f"{space.name}[{int(off[j])}]"
        if n >= 1 and seen[j] < n - 1:
            raise _parity_trap(st, node, space, lanes[j], off[j],
                               f"parity {n % 2} waits for phase {n} of {name}, which has not completed, while phase "
                               f"{n - 1} (parity {(n - 1) % 2}) completed and this thread has not waited for it")
        if b.pending[e]:
            raise st.trap("mbarrier wait never completes",
                          f"phase {n} of {name} has {int(b.count[e] - b.pending[e])} of its {int(b.count[e])} arrivals "
                          "and no thread of the block can still arrive (the interpreter runs the block's threads in "
                          "lockstep, so an arrival in a branch other threads take later does not count)",
                          node, int(lanes[j]), buffer=space.name, index=(int(off[j]),),
                          hint="every arrival of a phase must come before the wait in program order: "
                               "check the barrier's count and the arriving threads")
        raise st.trap("mbarrier transaction count mismatch",
                      f"phase {n} of {name} expects {int(b.expected[e])} transaction bytes but its TMA copies "
                      f"deliver {int(b.delivered[e])}", node, int(lanes[j]), buffer=space.name, index=(int(off[j]),),
                      hint="mbarrier_arrive_expect_tx must announce exactly the bytes the copies on the barrier move")
    b.seen[off, lanes] = np.maximum(seen, phase - 1)
    if st.clock is not None:
        st.clock.acq[lanes] = np.maximum(st.clock.acq[lanes], b.released[flat])


def _parity_trap(st, node, space, lane, off, detail: str):
    return st.trap("mbarrier wait on wrong phase parity", detail, node, int(lane), buffer=space.name, index=(int(off),),
                   hint="phase k has parity k % 2: a loop waiting once per phase flips the parity every time "
                        "(e.g. (k // stages) % 2 for stage k % stages)")


def bulk_copy(st, sel, node, dst: memory.Space, dst_index, src: memory.Space, src_index, elems: int,
              bars: memory.Space, bar_slot: int, bar_index):
    lanes, boff, bflat = elements(st, bars, bar_index, sel, node)
    access(st, bars, bar_index, lanes, bflat, node)
    nbytes = elems * dst.dtype.nbytes
    doff = np.broadcast_to(memory.element_offsets(st, dst, dst_index, sel, node), (st.L,))[lanes]
    soff = np.broadcast_to(memory.element_offsets(st, src, src_index, sel, node), (st.L,))[lanes]
    for space, o, index in ((dst, doff, dst_index), (src, soff, src_index)):
        check_aligned(st, node, lanes, space, o, index, BULK_ALIGN, nbytes, "bulk copies start at 16-byte aligned "
                      "addresses in both tensors")
    values = memory.read_elements(st, src, lanes, soff, elems, src_index, node).astype(dst.data.dtype)
    issue(st, node, lanes, dst, doff, dst_index, values, bars, bar_slot, boff, bflat)


def check_aligned(st, node, lanes, space: memory.Space, off, index, align: int, nbytes: int, hint: str):
    """Trap "misaligned TMA copy" where a lane's element offset is not `align`-byte aligned."""
    bad = np.flatnonzero((off * space.dtype.nbytes) % align)
    if bad.size:
        lane = int(lanes[bad[0]])
        at = memory.index_at(index, lane)
        raise st.trap("misaligned TMA copy", f"{nbytes} bytes at {space.name}[{', '.join(map(str, at))}] "
                      f"(byte offset {int(off[bad[0]]) * space.dtype.nbytes}, not a multiple of {align})", node, lane,
                      buffer=space.name, index=at, hint=hint)


def issue(st, node, lanes, dst: memory.Space, doff, dst_index, values, bars: memory.Space, bar_slot: int, boff, bflat):
    """Issue one TMA copy per lane of `values` ((lanes, elements) storage values, read at issue)
    into `dst` from element offset `doff`, completing on barrier elements `bflat`."""
    acc, flat = memory.elements(st, dst, lanes, doff, values.shape[1], dst_index, node)
    if dst.checked:
        memory.check_write(acc)                     # issue orders the copy after the issuer's accesses
    memory.forget_writer(dst, flat.ravel())
    b = bars.mbar
    nbytes = values.shape[1] * dst.dtype.nbytes
    for j, lane in enumerate(lanes):
        e = int(bflat[j])
        if dst.guard is not None:
            dst.guard.slot[flat[j]] = bar_slot
            dst.guard.off[flat[j]] = boff[j]
            dst.guard.phase[flat[j]] = b.phase[e]
        b.copies.append(Copy(e, int(b.phase[e]), dst, flat[j].copy(), values[j], node, int(lane)))
        b.delivered[e] += nbytes
        _settle(bars, e)


def after_syncthreads(st, sel):
    """A block barrier orders every wait before it before every access after it: each lane of
    the block has observed the latest phase any of them observed."""
    blocks = np.arange(st.B) if sel is None else np.unique(st.lane_block[sel])
    for sp in st.spaces:
        if sp is None or sp.mbar is None:
            continue
        seen = sp.mbar.seen.reshape(sp.mbar.size, st.B, st.T)
        seen[:, blocks, :] = seen[:, blocks, :].max(axis=2, keepdims=True)


def finish(st):
    """At kernel exit every TMA copy must have landed (its phase completed)."""
    for sp in st.spaces:
        if sp is not None and sp.mbar is not None and sp.mbar.copies:
            c = sp.mbar.copies[0]
            b = sp.mbar
            off = c.bar % b.size
            raise st.trap("TMA copies pending at kernel exit",
                          f"the copy into {c.space.name} issued here completes on {sp.name}[{off}] phase {c.phase}, "
                          f"which never completed ({int(b.count[c.bar] - b.pending[c.bar])} of {int(b.count[c.bar])} "
                          f"arrivals; {int(b.expected[c.bar])} transaction bytes expected, {int(b.delivered[c.bar])} delivered)",
                          c.node, c.lane, buffer=sp.name, index=(int(off),),
                          hint="announce the copy's bytes with mbarrier_arrive_expect_tx and wait for its phase")
