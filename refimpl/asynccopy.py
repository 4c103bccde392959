"""Asynchronous global->shared copies (SPEC.md §5.4).

The source is read at issue; the data is held in a pending record and lands at the
`cp_async_wait_group` that completes its group, as a write by the issuing thread then.
Each lane counts its committed groups (`committed`), the copies of its open group (`open`),
and a record remembers, per copy, the group it joined.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import memory


@dataclass
class Pending:
    space: memory.Space
    lanes: np.ndarray        # issuing lanes
    group: np.ndarray        # per lane: index of the group the copy joined
    off: np.ndarray          # per lane: destination element offset
    values: np.ndarray       # (lanes, elems) storage values
    index: list              # destination index values (for messages)
    node: object


class AsyncCopies:
    def __init__(self, lanes: int):
        self.committed = np.zeros(lanes, np.int64)
        self.open = np.zeros(lanes, np.int64)
        self.records: list[Pending] = []


def issue(st, sel, node, dst: memory.Space, dst_index, src: memory.Space, src_index, elems: int, valid):
    lanes = memory.lanes_of(st, sel)
    nbytes = elems * dst.dtype.nbytes
    doff = np.broadcast_to(memory.element_offsets(st, dst, dst_index, sel, node), (st.L,))[lanes]
    soff = np.broadcast_to(memory.element_offsets(st, src, src_index, sel, node), (st.L,))[lanes]
    for space, off, index in ((dst, doff, dst_index), (src, soff, src_index)):
        bad = np.flatnonzero((off * space.dtype.nbytes) % nbytes != 0) if nbytes in (4, 8, 16) else [0]
        if len(bad):
            lane = int(lanes[bad[0]])
            at = memory.index_at(index, lane)
            raise st.trap("misaligned async copy", f"{elems} × {dst.dtype.short} = {nbytes} bytes from "
                          f"{space.name}[{', '.join(map(str, at))}] (byte offset {int(off[bad[0]]) * space.dtype.nbytes})",
                          node, lane, buffer=space.name, index=at,
                          hint="copies must be 4, 8 or 16 bytes, both addresses aligned to the copy size")
    ok = np.ones(len(lanes), bool) if valid is None else np.broadcast_to(valid, (st.L,))[lanes]
    values = np.zeros((len(lanes), elems), dst.data.dtype)
    if ok.any():
        values[ok] = memory.read_elements(st, src, lanes[ok], soff[ok], elems, src_index, node).astype(dst.data.dtype)
    if dst.pending is not None:
        _, flat = memory.elements(st, dst, lanes, doff, elems, dst_index, node)
        hit = dst.pending[flat].any(axis=1)
        if hit.any():
            k = int(np.flatnonzero(hit)[0])
            acc = memory.Access(st, dst, dst_index, lanes, flat[:, 0], node)
            raise acc.trap("write to pending async copy destination", k,
                           f"{acc.element(k)} is already the destination of an async copy not yet waited for",
                           "wait for the earlier copy (cp_async_wait_group) before reusing its destination")
        dst.pending[flat] = True
    a = st.asyncs
    a.records.append(Pending(dst, lanes, a.committed[lanes].copy(), doff, values, dst_index, node))
    a.open[lanes] += 1


def commit(st, sel):
    lanes = memory.lanes_of(st, sel)
    st.asyncs.committed[lanes] += 1
    st.asyncs.open[lanes] = 0


def wait(st, sel, node, keep: int):
    a = st.asyncs
    lanes = memory.lanes_of(st, sel)
    uncommitted = np.flatnonzero(a.open[lanes])
    if uncommitted.size:
        lane = int(lanes[uncommitted[0]])
        raise st.trap("wait on uncommitted async copies",
                      f"{a.open[lane]} copies issued since the last cp_async_commit_group() can never complete",
                      node, lane, hint="call cp_async_commit_group() after issuing the copies and before waiting")
    active = np.zeros(st.L, bool)
    active[lanes] = True
    limit = a.committed - keep           # groups with a smaller index complete now
    remaining = []
    for rec in a.records:
        lands = active[rec.lanes] & (rec.group < limit[rec.lanes])
        if lands.any():
            _land(st, rec, lands)
            keep_mask = ~lands
            if keep_mask.any():
                remaining.append(Pending(rec.space, rec.lanes[keep_mask], rec.group[keep_mask], rec.off[keep_mask],
                                         rec.values[keep_mask], rec.index, rec.node))
        else:
            remaining.append(rec)
    a.records = remaining


def _land(st, rec: Pending, lands):
    lanes, off = rec.lanes[lands], rec.off[lands]
    if rec.space.pending is not None:
        _, flat = memory.elements(st, rec.space, lanes, off, rec.values.shape[1], rec.index, rec.node)
        rec.space.pending[flat] = False
    memory.write_elements(st, rec.space, lanes, off, rec.values[lands], rec.index, rec.node, landing=True)


def finish(st):
    """At kernel exit every issued copy must have landed."""
    a = st.asyncs
    if a.records:
        rec = a.records[0]
        lane = int(rec.lanes[0])
        raise st.trap("async copies pending at kernel exit",
                      f"the copy into {rec.space.name} issued here never completed", rec.node, lane,
                      hint="end the pipeline with cp_async_commit_group() and cp_async_wait_group(0)")
