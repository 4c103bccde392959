"""Barriers (§5.3), warp shuffles (§5.6) and tensor-core fragments (§5.7).

All of these are collective: they check that the threads that must arrive together are all
active in the lockstep execution, then act on whole warps or blocks at once.
"""
from __future__ import annotations

import numpy as np

from taskmap.spec import dtypes as dt

from . import mbarrier, memory
from . import numerics as num
from .traps import fmt3


def _first_missing(group_lanes: np.ndarray, sel) -> int:
    """The lowest lane of `group_lanes` not in the active set."""
    return int(group_lanes[~np.isin(group_lanes, sel)][0])


def syncthreads(st, sel, node):
    if sel is not None:
        counts = np.bincount(st.lane_block[sel], minlength=st.B)
        bad = np.flatnonzero((counts > 0) & (counts < st.T))
        if bad.size:
            b = int(bad[0])
            lane = _first_missing(np.arange(b * st.T, (b + 1) * st.T), sel)
            raise st.trap("divergent barrier",
                          f"syncthreads() reached by {counts[b]} of the block's {st.T} threads; "
                          f"thread {fmt3(st.thread_of(lane))} did not reach it", node, lane,
                          hint="every thread of the block must reach the same syncthreads(): move it out of "
                               "the branch or loop whose condition differs between threads")
        memory.record_all_deferred(st)
        st.bb[sel] += 1
        st.wbar[sel] += 1
    else:
        st.bb += 1
        st.wbar += 1
        memory.after_syncthreads(st)
    st.barriers += 1
    mbarrier.after_syncthreads(st, sel)


def syncwarp(st, sel, node):
    require_full_warps(st, sel, node, "syncwarp()", "divergent barrier", whole=False)
    memory.record_all_deferred(st)
    if sel is None:
        st.wbar += 1
    else:
        st.wbar[sel] += 1
    st.barriers += 1


def require_full_warps(st, sel, node, what: str, phrase: str = "divergent warp collective", whole: bool = False):
    """Every existing lane of each warp with an active lane must be active (whole: and the warp
    must have all 32 lanes, as tensor-core instructions need)."""
    wpb = st.WPB
    sizes = np.minimum(32, st.T - 32 * np.arange(wpb))
    if whole and sizes[-1] != 32:
        lane = 0 if sel is None else int(sel[0])
        raise st.trap(phrase, f"{what} needs all 32 lanes of a warp, but the block has {st.T} threads "
                      f"(last warp has {sizes[-1]})", node, lane, hint="use a block size that is a multiple of 32")
    if sel is None:
        return
    counts = np.bincount(st.lane_warp[sel], minlength=st.B * wpb)
    full = np.tile(sizes, st.B)
    bad = np.flatnonzero((counts > 0) & (counts < full))
    if bad.size:
        w = int(bad[0])
        first = (w // wpb) * st.T + (w % wpb) * 32
        lane = _first_missing(np.arange(first, first + full[w]), sel)
        raise st.trap(phrase, f"{what} executed by {counts[w]} of the {full[w]} lanes of warp {w % wpb}; "
                      f"thread {fmt3(st.thread_of(lane))} is not active", node, lane,
                      hint="execute it outside branches whose condition differs within a warp")


# ---------------------------------------------------------------- shuffles (§5.6)

def shuffle(st, sel, kind: str, value, lane_arg, width: int, node):
    require_full_warps(st, sel, node, f"shfl_{kind}()")
    if getattr(value, "ndim", 0) == 0:
        return value
    lane = st.tid % 32
    rel = lane % width
    d = np.asarray(lane_arg, np.int64)
    if kind == "xor":
        src = lane ^ d
        inside = (src // width) == (lane // width)
    elif kind == "down":                      # a negative delta leaves the segment too
        src, inside = lane + d, (0 <= rel + d) & (rel + d < width)
    elif kind == "up":
        src, inside = lane - d, (0 <= rel - d) & (rel - d < width)
    else:
        src, inside = lane - rel + (d & (width - 1)), True
    exists = (st.tid - lane + src) < st.T
    source = np.where(inside & exists, st.all_lanes - lane + src, st.all_lanes)
    return value[source]


# ---------------------------------------------------------------- ldmatrix / mma (§5.7)

def ldmatrix(st, sel, node, dst: memory.Space, dst_index, src: memory.Space, src_index, num: int, trans: bool):
    require_full_warps(st, sel, node, "ldmatrix()", whole=True)
    lanes = memory.lanes_of(st, sel)
    supplies = (st.tid[lanes] % 32) < 8 * num
    sup = lanes[supplies]
    off = memory.element_offsets(st, src, src_index, sup, node)
    off = np.broadcast_to(off, (st.L,))[sup]
    misaligned = (off * src.dtype.nbytes) % 16 != 0
    if misaligned.any():
        lane = int(sup[np.flatnonzero(misaligned)[0]])
        at = memory.index_at(src_index, lane)
        raise st.trap("misaligned ldmatrix row", f"row address {src.name}[{', '.join(map(str, at))}] is element "
                      f"offset {int(off[misaligned][0])}, not a multiple of 8 elements (16 bytes)", node, lane,
                      buffer=src.name, index=at, hint="each lane's row must start on a 16-byte boundary")
    rows = np.zeros((st.L, 8), src.data.dtype)
    rows[sup] = memory.read_elements(st, src, sup, off, 8, src_index, node)
    lane = st.tid[lanes] % 32
    warp_base = lanes - lane
    out = np.empty((len(lanes), 2 * num), src.data.dtype)
    for i in range(num):
        for j in (0, 1):
            if trans:
                r, c = warp_base + 8 * i + 2 * (lane % 4) + j, lane // 4
            else:
                r, c = warp_base + 8 * i + lane // 4, 2 * (lane % 4) + j
            out[:, 2 * i + j] = rows[r, c]
    doff = np.broadcast_to(memory.element_offsets(st, dst, dst_index, sel, node), (st.L,))[lanes]
    memory.write_elements(st, dst, lanes, doff, out.view(dst.data.dtype), dst_index, node)


_G = np.arange(32) // 4
_Q = np.arange(32) % 4
_FRAGMENTS = {   # shape -> (A rows, A cols, B rows, B cols, k) for lane (rows) × element (cols)
    "m16n8k16": (lambda i: _G[:, None] + 8 * ((i // 2) % 2), lambda i: 2 * _Q[:, None] + i % 2 + 8 * (i // 4),
                 lambda i: 2 * _Q[:, None] + i % 2 + 8 * (i // 2), lambda i: _G[:, None] + 0 * i, 16),
    "m16n8k8": (lambda i: _G[:, None] + 8 * (i % 2), lambda i: _Q[:, None] + 4 * (i // 2),
                lambda i: _Q[:, None] + 4 * i, lambda i: _G[:, None] + 0 * i, 8),
}


def mma_sync(st, sel, node, shape: str, a, b, acc):
    """a, b, acc: (Space, index) pairs of register fragments; acc += a·b per warp, in f64."""
    require_full_warps(st, sel, node, "mma_sync()", whole=True)
    lanes = memory.lanes_of(st, sel)
    ar, ac, br, bc, k = _FRAGMENTS[shape]
    na, nb = (8, 4) if shape == "m16n8k16" else (4, 2)
    frags = []
    for (space, index), n in ((a, na), (b, nb), (acc, 4)):
        off = np.broadcast_to(memory.element_offsets(st, space, index, sel, node), (st.L,))[lanes]
        vals = memory.read_elements(st, space, lanes, off, n, index, node)
        x = num.from_storage(vals, space.dtype).astype(np.float32)
        if shape == "m16n8k8" and space is not acc[0]:
            x = num.tf32_round(x)
        frags.append((x.astype(np.float64).reshape(-1, 32, n), off))
    (fa, _), (fb, _), (fc, coff) = frags
    warps = fa.shape[0]
    ia, ib, ic = np.arange(na), np.arange(nb), np.arange(4)
    A = np.zeros((warps, 16, k))
    B = np.zeros((warps, k, 8))
    C = np.zeros((warps, 16, 8))
    A[:, ar(ia), ac(ia)] = fa
    B[:, br(ib), bc(ib)] = fb
    cr, cc = _G[:, None] + 8 * (ic // 2), 2 * _Q[:, None] + ic % 2
    C[:, cr, cc] = fc
    D = (A @ B + C)[:, cr, cc].astype(np.float32).reshape(-1, 4)
    space, index = acc
    memory.write_elements(st, space, lanes, coff, num.to_storage(num.convert(D, dt.float32, space.dtype), space.dtype),
                          index, node)
