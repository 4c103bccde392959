"""KernelTrap: the dynamic errors of SPEC.md §10, each with a stable kind and phrase."""
from __future__ import annotations

import os

from taskmap.spec.errors import TaskmapError

# kind -> phrases (SPEC.md §10's table, in order)
PHRASES = {
    "oob": ("out of bounds global access", "out of bounds shared access", "out of bounds register access"),
    "uninit": ("uninitialized global read", "uninitialized shared read", "uninitialized register read",
               "uninitialized variable read"),
    "race": ("data race on shared memory", "data race on global memory"),
    "barrier": ("divergent barrier",),
    "collective": ("divergent warp collective", "divergent warpgroup collective"),
    "async": ("read of pending async copy destination", "write to pending async copy destination",
              "wait on uncommitted async copies", "async copies pending at kernel exit",
              "misaligned async copy"),
    "mbarrier": ("mbarrier wait on wrong phase parity", "mbarrier transaction count mismatch",
                 "mbarrier wait never completes", "mbarrier arrivals exceed its count", "mbarrier count out of range"),
    "tma": ("read of TMA destination before its mbarrier phase completed",
            "write to TMA destination before its mbarrier phase completed", "misaligned TMA copy",
            "TMA copies pending at kernel exit"),
    "wgmma": ("access to wgmma registers before wgmma_wait_group", "write to wgmma operand before wgmma_wait_group",
              "wgmma without wgmma_fence", "wgmma descriptor does not match the shared layout",
              "wgmma pending at kernel exit"),
    "align": ("misaligned ldmatrix row",),
    "arith": ("integer divide by zero", "shift out of range"),
    "assert": ("assertion failed",),
    "loop": ("zero loop step", "step budget exceeded"),
}
KIND_OF = {p: k for k, ps in PHRASES.items() for p in ps}


def where(loc) -> str:
    """`file.py:17` for a DSL location (the basename keeps messages short and stable)."""
    return f"{os.path.basename(loc.file)}:{loc.line}" if loc is not None else "<unknown>"


class KernelTrap(TaskmapError):
    """A kernel did something SPEC.md §10 forbids, found while interpreting it.

    kind/phrase: §10's table; kernel: kernel name; loc: DSL location (spec.ir.Loc) of the
    offending statement or expression; block: block index (x, y, z); thread: thread index
    (x, y, z), or a list of them when several threads are involved (a race: [first, second]);
    buffer: tensor name; index: element index tuple; partial: what the launch's output
    tensors held when it trapped (name -> array; SPEC.md §10.1), the caller's arrays being
    left as they were.

    str(trap): `[kind] phrase: detail in block B, thread T at FILE:LINE (statement) [kernel K];
    hint`, with the parts that apply.
    """

    def __init__(self, phrase: str, detail: str = "", *, kernel: str = "", loc=None, block=None,
                 thread=None, buffer: str | None = None, index=None, code: str = "", hint: str = ""):
        self.kind = KIND_OF[phrase]
        self.phrase = phrase
        self.kernel = kernel
        self.loc = loc
        self.block = block
        self.thread = thread
        self.buffer = buffer
        self.index = index
        self.partial: dict = {}
        sep = " " if detail.startswith("for ") else ": "
        text = f"[{self.kind}] {phrase}" + (sep + detail if detail else "")
        place = ([f"block {fmt3(block)}"] if block is not None else []) + ([_threads(thread)] if thread else [])
        if place:
            text += " in " + ", ".join(place)
        if loc is not None:
            text += f" at {where(loc)}" + (f" ({code})" if code else "")
        if kernel:
            text += f" [kernel {kernel}]"
        if hint:
            text += f"; {hint}"
        super().__init__(text)


def fmt3(t) -> str:
    return "(" + ",".join(str(int(v)) for v in t) + ")"


def _threads(thread) -> str:
    """`thread (x,y,z)`, or `threads A and B` for a trap between threads (an unknown one left out)."""
    if not isinstance(thread[0], (tuple, list)) and thread[0] is not None:
        return f"thread {fmt3(thread)}"
    known = [fmt3(t) for t in thread if t is not None]
    return ("threads " if len(known) > 1 else "thread ") + " and ".join(known)
