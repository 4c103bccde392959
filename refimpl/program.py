"""A kernel after the interpreter's PIPELINE, compiled once into closures, with its variable
and tensor slots."""
from __future__ import annotations

import io
import linecache
import tokenize

import numpy as np

from taskmap.spec import ir
from taskmap.spec.printer import _Lines, expr_str

from . import mbarrier, memory
from .ranges import Ranges
from .stmts import compile_block


class Program:
    def __init__(self, kernel: ir.Kernel):
        self.kernel = kernel
        self.ranges = Ranges(kernel)
        self.invariant = self.ranges.invariant_vars(kernel)
        self.cache_slots = 0
        self.var_slots: dict[str, int] = {}
        self.buf_slots: dict[str, int] = {}
        self.buffers: dict[int, ir.Buffer] = {}
        self.maybe_uninit = {n.var.name for n in ir.walk(kernel) if isinstance(n, ir.DeclareVar) and n.init is None}
        self.uses_async = any(isinstance(n, ir.CpAsync) for n in ir.walk(kernel))
        self.warp_barriers = any(isinstance(n, ir.SyncWarp) for n in ir.walk(kernel))
        self.mbarriers = {n.bar.buffer.name for n in ir.walk(kernel)
                          if isinstance(n, (*ir.MBARRIER_STMTS, ir.BulkCopy, ir.TmaLoad))}
        self.tma_destinations = {n.dst.buffer.name for n in ir.walk(kernel) if isinstance(n, (ir.BulkCopy, ir.TmaLoad))}
        self.wgmma_operands = {r.buffer.name for n in ir.walk(kernel) if isinstance(n, ir.Wgmma)
                               for r in (n.acc, n.a, n.b)}
        self.written = ir.written_buffers(kernel)
        self.read_vars = _read_vars(kernel)
        for p in kernel.params:
            self.var_slot(p) if isinstance(p, ir.Var) else self.buf_slot(p)
        for b in ir.walk(kernel):
            if isinstance(b, ir.Buffer):
                self.buf_slot(b)
        self.body = compile_block(kernel.body, self)
        self._code: dict[int, str] = {}

    def cache_slot(self) -> int:
        self.cache_slots += 1
        return self.cache_slots - 1

    def only_traced(self, s: ir.Stmt) -> bool:
        """A declaration that nothing reads, of a value that cannot trap: executing it matters
        only to a trace (task mappings declare their task indices whether the body uses them)."""
        return isinstance(s, ir.DeclareVar) and s.init is not None and s.var.name not in self.read_vars \
            and not any(ir.may_trap(n) or (isinstance(n, ir.Var) and n.name in self.maybe_uninit)
                        for n in ir.walk(s.init))

    def in_bounds(self, buffer: ir.Buffer, indices) -> tuple[bool, ...]:
        """Per dimension: is the index statically within a constant extent?"""
        out = []
        for i, n in zip(indices, buffer.shape):
            r = self.ranges.of(i)
            out.append(isinstance(n, ir.Const) and r is not None and 0 <= r[0] and r[1] < n.value)
        return tuple(out)

    def var_slot(self, v: ir.Var) -> int:
        return self.var_slots.setdefault(v.name, len(self.var_slots))

    def buf_slot(self, b: ir.Buffer) -> int:
        slot = self.buf_slots.setdefault(b.name, len(self.buf_slots))
        self.buffers[slot] = b
        return slot

    def code_of(self, node) -> str:
        """The DSL source line of a node (comment stripped), else its IR text: for messages."""
        key = id(node)
        if key not in self._code:
            loc = getattr(node, "loc", None)
            text = linecache.getline(loc.file, loc.line).strip() if loc is not None else ""
            text = _without_comment(text)
            if not text and isinstance(node, (ir.Expr, ir.Ref)):
                text = expr_str(node)
            elif not text:
                lines = _Lines()
                lines.stmt(node, 0)
                text = lines.lines[0].rstrip(":")
            self._code[key] = text
        return self._code[key]

    # ------------------------------------------------------------ tensors
    def allocate(self, st, slot: int, b: ir.Buffer):
        """A fresh, uninitialized shared (per block) or register (per lane) tensor."""
        shape = st.binding.shapes[b.name]             # evaluated once per launch (spec.binding)
        strides, size = memory.layout_strides(shape, st.binding.strides.get(b.name))
        shared = b.scope == "shared"
        copies = st.B if shared else st.L
        base, scale = (st.lane_block * size, 1) if shared else (st.all_lanes, st.L)
        n = copies * size
        checks = st.checks
        st.spaces[slot] = memory.Space(
            b, np.zeros(n, b.dtype.storage), shape, strides, size, base, scale,
            init=np.zeros(n, bool) if checks else None,
            race=memory.RaceShadow(n, defer_reads=True, clock=mbarrier.clock(st) if self.mbarriers else None,
                                   warp_barriers=self.warp_barriers)
            if checks and shared else None,
            pending=np.zeros(n, bool) if checks and self.uses_async and shared else None,
            guard=mbarrier.Guard(n, st) if checks and b.name in self.tma_destinations else None,
            mbar=mbarrier.Barriers(n, size, st.L, st.T) if b.name in self.mbarriers else None,
            wg_busy=np.zeros(n, np.int32) if checks and b.name in self.wgmma_operands else None,
            wg_touched=np.zeros(n, bool) if checks and not shared and b.name in self.wgmma_operands else None)


def _read_vars(kernel: ir.Kernel) -> set[str]:
    """Names of the variables some expression reads (not only assigned or declared)."""
    targets = [n.var for n in ir.walk(kernel) if isinstance(n, (ir.DeclareVar, ir.Assign, ir.For))]
    targets += [n.result for n in ir.walk(kernel) if isinstance(n, ir.Atomic) and n.result is not None]
    uses: dict[str, int] = {}
    for n in ir.walk(kernel):
        if isinstance(n, ir.Var):
            uses[n.name] = uses.get(n.name, 0) + 1
    for v in targets:
        uses[v.name] -= 1
    return {name for name, count in uses.items() if count > 0}


def _without_comment(line: str) -> str:
    try:
        for tok in tokenize.generate_tokens(io.StringIO(line).readline):
            if tok.type == tokenize.COMMENT:
                return line[:tok.start[1]].rstrip()
    except (tokenize.TokenError, SyntaxError):
        pass
    return line
