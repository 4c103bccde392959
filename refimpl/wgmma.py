"""Warpgroup MMA (SPEC.md §5.12): wgmma.mma_async, wgmma_fence, commit and wait groups.

A wgmma reads its operands and computes D = C + A·B when the warpgroup issues it, and writes D
to the accumulator registers then. Until the wgmma_wait_group that retires its group, the
accumulator and A-fragment registers and the shared operand elements are busy
(`Space.wg_busy` counts the wgmmas in flight per element): an ordinary access to a busy
register, or write to a busy shared element, traps (refimpl/memory.check_wgmma_use), so no
program can observe that the result was written early. Registers touched by ordinary
accesses (`Space.wg_touched`) need a wgmma_fence before a wgmma uses them.

Shared operands are addressed exactly as the PTX ISA's matrix descriptors address them (start
address, leading and stride byte offsets, swizzle applied to the address bits); the address of
every operand element must hold the element the operand's view names, else the descriptor
does not match the tensor's layout and the wgmma traps.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from taskmap.spec import ir
from taskmap.spec.printer import layout_str

from . import memory
from . import numerics as num
from .traps import fmt3

WARPGROUP = 128
K = 16                         # m64nNk16
DESC_FIELD = 0x3FFFF           # a descriptor field: 14 bits of 16-byte units

_T = np.arange(WARPGROUP)
_W, _G, _Q = _T // 32, _T % 32 // 4, _T % 4
# The matrix row and column of A-fragment and accumulator element i (arrays) of each warpgroup
# thread t (rows of the result) (§5.12)

def _A_ROWS(i):
    return 16 * _W[:, None] + _G[:, None] + 8 * ((i // 2) % 2)


def _A_COLS(i):
    return 2 * _Q[:, None] + i % 2 + 8 * (i // 4)


def _D_ROWS(i):
    return 16 * _W[:, None] + _G[:, None] + 8 * ((i % 4) // 2)


def _D_COLS(i):
    return 8 * (i // 4) + 2 * _Q[:, None] + i % 2


@dataclass
class InFlight:
    lanes: np.ndarray           # the issuing warpgroup's lanes
    group: int                  # the group it joined (index among the lanes' commits)
    uses: list                  # (Space, flat element indices) it keeps busy
    node: object


class Groups:
    """Per lane, the wgmma groups it committed; the wgmmas in flight."""

    def __init__(self, lanes: int):
        self.committed = np.zeros(lanes, np.int64)
        self.records: list[InFlight] = []


def _groups(st) -> Groups:
    if st.wgmma is None:
        st.wgmma = Groups(st.L)
    return st.wgmma


def require_full_warpgroups(st, sel, node, what: str) -> list[np.ndarray]:
    """Every warpgroup with an active lane has all 128 threads active (a block of whole
    warpgroups); returns the active warpgroups' lanes."""
    if st.T % WARPGROUP:
        lane = 0 if sel is None else int(sel[0])
        raise st.trap("divergent warpgroup collective", f"{what} runs on warpgroups of {WARPGROUP} threads (4 "
                      f"consecutive warps), but the block has {st.T} threads", node, lane,
                      hint=f"use a block size that is a multiple of {WARPGROUP}")
    per_block = st.T // WARPGROUP
    lanes = memory.lanes_of(st, sel)
    group_of = st.lane_block[lanes] * per_block + st.tid[lanes] // WARPGROUP
    counts = np.bincount(group_of, minlength=st.B * per_block)
    bad = np.flatnonzero((counts > 0) & (counts < WARPGROUP))
    if bad.size:
        g = int(bad[0])
        first = (g // per_block) * st.T + (g % per_block) * WARPGROUP
        whole = np.arange(first, first + WARPGROUP)
        lane = int(whole[~np.isin(whole, lanes)][0])
        raise st.trap("divergent warpgroup collective",
                      f"{what} executed by {counts[g]} of the {WARPGROUP} threads of warpgroup {g % per_block}; "
                      f"thread {fmt3(st.thread_of(lane))} is not active", node, lane,
                      hint="execute it outside branches whose condition differs within a warpgroup "
                           "(threadIdx.x // 128 may differ, the warp or lane index may not)")
    return [(g // per_block) * st.T + (g % per_block) * WARPGROUP + _T for g in np.flatnonzero(counts)]


def fence(st, sel, node):
    """wgmma_fence: the lanes' register accesses so far are ordered before their next wgmmas."""
    require_full_warpgroups(st, sel, node, "wgmma_fence()")
    lanes = memory.lanes_of(st, sel)
    for sp in st.spaces:
        if sp is not None and sp.wg_touched is not None:
            sp.wg_touched.reshape(-1, st.L)[:, lanes] = False     # register storage is element-major


def commit(st, sel, node):
    require_full_warpgroups(st, sel, node, "wgmma_commit_group()")
    _groups(st).committed[memory.lanes_of(st, sel)] += 1


def wait(st, sel, node, keep: int):
    """Retire the wgmmas of the lanes' groups older than their `keep` most recent commits."""
    require_full_warpgroups(st, sel, node, "wgmma_wait_group()")
    g = _groups(st)
    active = np.zeros(st.L, bool)
    active[memory.lanes_of(st, sel)] = True
    remaining = []
    for rec in g.records:
        lane = rec.lanes[0]
        if active[lane] and rec.group < g.committed[lane] - keep:
            for space, flat in rec.uses:
                if space.wg_busy is not None:
                    np.subtract.at(space.wg_busy, flat, 1)
        else:
            remaining.append(rec)
    g.records = remaining


def finish(st):
    """At kernel exit every wgmma must have been retired by a wgmma_wait_group."""
    if st.wgmma is not None and st.wgmma.records:
        rec = st.wgmma.records[0]
        raise st.trap("wgmma pending at kernel exit", "the wgmma issued here was never waited for", rec.node,
                      int(rec.lanes[0]), hint="end with wgmma_commit_group() and wgmma_wait_group(0)")


# ---------------------------------------------------------------- the instruction

def issue(st, sel, node: ir.Wgmma, acc, a, b, a_desc, b_desc):
    """acc, a, b: (Space, index); a_desc / b_desc: (lbo, sbo) lane values, a_desc None for an A fragment."""
    g = _groups(st)
    for lanes in require_full_warpgroups(st, sel, node, "wgmma"):
        uses = []
        C = _registers(st, node, *acc, lanes, sel, node.n // 2, _D_ROWS, _D_COLS, (64, node.n), uses)
        if a_desc is None:
            A = _registers(st, node, *a, lanes, sel, 8, _A_ROWS, _A_COLS, (64, K), uses)
        else:
            A = _shared(st, node, "A", 64, *a, *a_desc, node.a_swizzle, lanes, uses)
        B = _shared(st, node, "B", node.n, *b, *b_desc, node.b_swizzle, lanes, uses).T
        D = C.astype(np.float64)
        for k in range(K):                   # the interpreter's order: k = 0 … 15, in binary64 (§5.12)
            D += A[:, k, None] * B[None, k, :]
        space = acc[0]
        rows, cols = _D_ROWS(np.arange(node.n // 2)), _D_COLS(np.arange(node.n // 2))
        flat = uses[0][1]                     # the accumulator's elements, (thread, element) order
        space.data[flat] = num.to_storage(D.astype(np.float32)[rows, cols].ravel(), space.dtype)
        if space.init is not None:
            space.init[flat] = True
        for sp, f in uses:
            if sp.wg_busy is not None:
                np.add.at(sp.wg_busy, f, 1)
        g.records.append(InFlight(lanes, int(g.committed[lanes[0]]), uses, node))


def _registers(st, node, space, index, lanes, sel, n: int, rows, cols, shape, uses) -> np.ndarray:
    """The matrix (float64, `shape`) the warpgroup's register fragments of `n` elements hold.
    A wgmma may use registers an earlier wgmma still uses; other accesses since the last
    wgmma_fence trap."""
    off = np.broadcast_to(memory.element_offsets(st, space, index, sel, node), (st.L,))[lanes]
    acc, flat = memory.elements(st, space, lanes, off, n, index, node)
    flat = flat.ravel()
    if space.wg_touched is not None and space.wg_touched[flat].any():
        k = int(np.flatnonzero(space.wg_touched[flat])[0])
        raise acc.trap("wgmma without wgmma_fence", k, f"{acc.element(k)} was accessed by an ordinary instruction "
                       "after the thread's last wgmma_fence()",
                       "call wgmma_fence() between touching a wgmma's accumulator or A registers and the wgmma")
    if space.init is not None and not space.init[flat].all():
        k = int(np.flatnonzero(~space.init[flat])[0])
        raise acc.trap("uninitialized register read", k, f"{acc.element(k)} is read by wgmma before it was written",
                       "initialize the accumulator (e.g. with zeros) before the first wgmma")
    uses.append((space, flat))
    values = num.from_storage(space.data[flat], space.dtype).astype(np.float64).reshape(WARPGROUP, n)
    out = np.zeros(shape)
    i = np.arange(n)
    out[rows(i), cols(i)] = values
    return out


class _Operand(memory.Access):
    """The shared reads of a descriptor operand: element k is read by lane lanes[k] and is the
    tensor element `where[:, k]`."""

    def __init__(self, st, space, where: np.ndarray, lanes, flat, node):
        super().__init__(st, space, [], lanes, flat, node)
        self.where = where

    def index_at(self, k: int) -> tuple:
        return tuple(int(v) for v in self.where[:, k])


def _shared(st, node, which: str, rows: int, space, index, lbo, sbo, swizzle: int, lanes, uses) -> np.ndarray:
    """The rows × 16 operand (float64) a matrix descriptor reads, checked against the view."""
    start = _uniform(st, node, lanes, index, "start element")
    lbo, sbo = (_uniform(st, node, lanes, [v], what)[0] for v, what in ((lbo, "lbo"), (sbo, "sbo")))
    esize = space.dtype.nbytes
    start_off = int(memory.element_offsets(st, space, list(start), None, node))
    S, L, D = _field(start_off * esize), _field(lbo), _field(sbo)
    r, kb = np.arange(rows)[:, None], np.arange(K)[None, :] * esize
    if swizzle == 0:            # interleaved 8 × 16-byte core matrices
        addr = S + (r // 8) * D + (kb // 16) * L + (r % 8) * 16 + kb % 16
    else:                       # rows of `swizzle` bytes; 16-byte chunk index ^= row index mod 8 (address bits)
        addr = S + (r // 8) * D + (r % 8) * swizzle + kb
        bits = (swizzle // 16).bit_length() - 1
        addr = addr ^ (((addr >> 7) & ((1 << bits) - 1)) << 4)
    want = _view(st, node, which, space, start, rows, lanes)           # (ndim, rows, K) tensor indices
    phys = addr // esize
    logical = _logical(space, phys)
    wanted = np.ravel_multi_index(tuple(want), space.shape)
    bad = np.flatnonzero((logical != wanted).ravel())
    if bad.size:
        m, k = divmod(int(bad[0]), K)
        name = space.name
        holds = f"{name}[{', '.join(map(str, np.unravel_index(logical[m, k], space.shape)))}]" \
            if logical[m, k] >= 0 else "no element of it"
        raise st.trap("wgmma descriptor does not match the shared layout",
                      f"{which} element ({'m' if which == 'A' else 'n'}={m}, k={k}) of the operand at "
                      f"{name}[{', '.join(map(str, start))}] is {name}[{', '.join(str(int(v[m, k])) for v in want)}], "
                      f"but the descriptor (swizzle={swizzle}, lbo={L}, sbo={D}) reads byte {int(addr[m, k])} of "
                      f"{name}, which holds {holds}", node, int(lanes[0]), buffer=name, index=tuple(start),
                      hint=f"{name} is `{space.dtype.short}{list(space.shape)}{layout_str(space.buffer.layout)}`: "
                           "the descriptor's swizzle mode and byte offsets must describe that layout (SPEC §5.12)")
    flat = space.base[lanes[0]] + phys.ravel() if getattr(space.base, "ndim", 0) else space.base + phys.ravel()
    readers = lanes[np.arange(flat.size) % WARPGROUP]
    if space.checked:
        memory.check_read(_Operand(st, space, want.reshape(len(space.shape), -1), readers, flat, node))
    uses.append((space, flat))
    return num.from_storage(space.data[flat], space.dtype).astype(np.float64).reshape(rows, K)


def _field(x: int) -> int:
    """A byte address or offset as a descriptor field holds it: 14 bits of 16-byte units."""
    return (x & DESC_FIELD) >> 4 << 4


def _uniform(st, node, lanes, values, what: str) -> tuple[int, ...]:
    """The warpgroup's one value of each of `values` (lane arrays or scalars)."""
    out = []
    for v in values:
        if getattr(v, "ndim", 0):
            mine = v[lanes]
            if (mine != mine[0]).any():
                lane = int(lanes[np.flatnonzero(mine != mine[0])[0]])
                raise st.trap("divergent warpgroup collective", f"the threads of a warpgroup pass different "
                              f"wgmma descriptors ({what}: {int(mine[0])} and {int(v[lane])})", node, lane,
                              hint="every thread of the warpgroup passes the same descriptor")
            v = mine[0]
        out.append(int(v))
    return tuple(out)


def _view(st, node, which, space, start, rows: int, lanes) -> np.ndarray:
    """The tensor index of each operand element (row, k): the last two dimensions are rows and
    k, or a tensor [..., rows/8, k/8, 8, 8] holds 8 × 8 core matrices."""
    r, k = np.arange(rows)[:, None], np.arange(K)[None, :]
    shape = space.shape
    if len(shape) >= 4 and tuple(shape[-2:]) == (8, 8):
        steps = (r // 8, k // 8, r % 8, k % 8)
    else:
        steps = (r, k)
    lead = len(shape) - len(steps)
    want = np.stack([np.broadcast_to(np.int64(start[d]) + (steps[d - lead] if d >= lead else 0), (rows, K))
                     for d in range(len(shape))])
    outside = np.flatnonzero(((want < 0) | (want >= np.array(shape)[:, None, None])).any(axis=0).ravel())
    if outside.size:
        m, kk = divmod(int(outside[0]), K)
        raise st.trap("out of bounds shared access",
                      f"{which} element ({'m' if which == 'A' else 'n'}={m}, k={kk}) of the wgmma operand at "
                      f"{space.name}[{', '.join(map(str, start))}] is {space.name}"
                      f"[{', '.join(str(int(v[m, kk])) for v in want)}], outside shape "
                      f"({', '.join(map(str, shape))})", node, int(lanes[0]), buffer=space.name, index=tuple(start),
                      hint=f"the operand is {rows} × {K} elements from the start element")
    return want


def _logical(space, phys: np.ndarray) -> np.ndarray:
    """The row-major offset of the tensor element stored at each physical element offset
    (-1 where none is)."""
    o = np.arange(space.size, dtype=np.int64)
    layout = space.buffer.layout
    stored = o ^ ((o & layout.mask) >> layout.shift) if isinstance(layout, ir.Swizzle) else o
    inverse = np.full(space.size, -1, np.int64)
    inside = stored < space.size
    inverse[stored[inside]] = o[inside]
    return np.where((phys >= 0) & (phys < space.size), inverse[np.clip(phys, 0, space.size - 1)], -1)
