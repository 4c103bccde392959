"""Statement-by-statement traces of chosen threads (what `taskmap debug` prints)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .traps import fmt3, where


@dataclass
class Event:
    thread: tuple
    loc: object
    code: str
    values: str | None

    def __str__(self) -> str:
        head = f"{where(self.loc):>18}  thread {fmt3(self.thread)}  {self.code}"
        return head + (f"    # {self.values}" if self.values else "")


class Trace:
    """Record what the threads `threads` of block `block` execute: `interpret(..., trace=t)`,
    then `print(t)` or read `t.events` (statement text, DSL location, values assigned).
    At most `limit` events are kept; `dropped` counts the later ones, and `str(t)` says so."""

    def __init__(self, block=(0, 0, 0), threads=((0, 0, 0),), limit: int = 100_000):
        self.block = _xyz(block)
        self.threads = [_xyz(t) for t in threads]
        self.limit = limit
        self.events: list[Event] = []
        self.dropped = 0
        self.watched: dict[int, tuple] = {}

    def bind(self, st) -> bool:
        """Find the watched threads among the batch's lanes; False when none is in it."""
        bx, by, _ = st.bdim
        gx, gy, _ = st.grid
        b = self.block[0] + gx * (self.block[1] + gy * self.block[2])
        hit = np.flatnonzero(st.blocks == b)
        self.watched = {}
        if hit.size:
            for t in self.threads:
                tid = t[0] + bx * (t[1] + by * t[2])
                if tid < st.T:
                    self.watched[int(hit[0]) * st.T + tid] = t
        return bool(self.watched)

    def step(self, st, node, sel, render):
        for lane, thread in self.watched.items():
            if sel is None or _contains(sel, lane):
                if len(self.events) >= self.limit:
                    self.dropped += 1
                    continue
                self.events.append(Event(thread, node.loc, st.prog.code_of(node),
                                         render(lane) if render is not None else None))

    def __str__(self) -> str:
        lines = list(map(str, self.events))
        if self.dropped:
            lines.append(f"... trace truncated: {self.dropped} more step(s) after the first {self.limit} "
                         "not shown (raise the limit: Trace(limit=...), taskmap debug --limit)")
        return "\n".join(lines)


def _contains(sel: np.ndarray, lane: int) -> bool:
    i = np.searchsorted(sel, lane)
    return i < len(sel) and sel[i] == lane


def _xyz(t) -> tuple:
    t = (t,) if isinstance(t, int) else tuple(t)
    return t + (0,) * (3 - len(t))
