"""Statements (SPEC.md §5) compiled once into closures `f(state, sel)`.

Control flow is masked: `if` runs each branch on the lanes that take it; a `for` whose bounds
agree on all active lanes iterates once in Python for all of them, otherwise each lane runs
its own trip count under a shrinking active set; `while` iterates while any lane is active.
"""
from __future__ import annotations

import numpy as np

from taskmap.spec import ir

from . import asynccopy, atomics, collectives, mbarrier, memory, tma, wgmma
from . import numerics as num
from .exprs import compile_expr, converted, split
from .register_nests import compile_nest


def compile_block(stmts, cx):
    fs = [compile_stmt(s, cx) for s in stmts]
    if len(fs) == 1:
        return fs[0]

    def run(st, sel):
        for f in fs:
            f(st, sel)
    return run


def set_var(st, slot: int, value, sel, dtype):
    """Assign on the active lanes (copying: value arrays may be shared with other variables)."""
    if sel is None:
        st.vars[slot] = value
        return
    old = st.vars[slot]
    out = np.zeros(st.L, dtype) if old is None else np.array(np.broadcast_to(old, (st.L,)), dtype)
    out[sel] = value if getattr(value, "ndim", 0) == 0 else value[sel]
    st.vars[slot] = out


def _mark_init(st, slot, sel):
    init = st.var_init[slot]
    if init is not None:
        init[slice(None) if sel is None else sel] = True


def compile_stmt(s: ir.Stmt, cx):
    match s:
        case ir.DeclareVar(var=v, init=None):
            return _declare_uninit(s, cx)
        case ir.DeclareVar(var=v, init=e) | ir.Assign(var=v, value=e):
            return _assign(s, v, e, cx)
        case ir.DeclareBuffer(buffer=b):
            slot = cx.buf_slot(b)
            return lambda st, sel: st.prog.allocate(st, slot, b)
        case ir.Store():
            return _store(s, cx)
        case ir.For():
            return _for(s, cx)
        case ir.If(cond=c, then=then, orelse=orelse):
            return _if(s, cx)
        case ir.While():
            return _while(s, cx)
        case ir.SyncThreads():
            return _traced(s, lambda st, sel: collectives.syncthreads(st, sel, s))
        case ir.SyncWarp():
            return _traced(s, lambda st, sel: collectives.syncwarp(st, sel, s))
        case ir.CpAsync():
            return _cp_async(s, cx)
        case ir.CpAsyncCommit():
            return _traced(s, lambda st, sel: asynccopy.commit(st, sel))
        case ir.CpAsyncWait(pending=n):
            return _traced(s, lambda st, sel: asynccopy.wait(st, sel, s, n))
        case ir.LdMatrix(dst=dst, src=src, num=n, trans=t):
            fdst, fsrc = _ref(dst, cx), _ref(src, cx)
            return _traced(s, lambda st, sel: collectives.ldmatrix(st, sel, s, *fdst(st, sel), *fsrc(st, sel), n, t))
        case ir.MmaSync(shape=shape, a=a, b=b, acc=acc):
            fa, fb, fc = _ref(a, cx), _ref(b, cx), _ref(acc, cx)
            return _traced(s, lambda st, sel: collectives.mma_sync(st, sel, s, shape, fa(st, sel), fb(st, sel),
                                                                   fc(st, sel)))
        case ir.MbarrierInit(bar=bar, count=count):
            fbar, fcount = _ref(bar, cx), converted(count, count.dtype, cx)
            return _traced(s, lambda st, sel: mbarrier.init(st, sel, s, *fbar(st, sel), fcount(st, sel)))
        case ir.MbarrierArrive(bar=bar, tx=tx):
            fbar, ftx = _ref(bar, cx), (converted(tx, tx.dtype, cx) if tx is not None else None)
            return _traced(s, lambda st, sel: mbarrier.arrive(st, sel, s, *fbar(st, sel),
                                                              ftx(st, sel) if ftx is not None else None))
        case ir.MbarrierWait(bar=bar, parity=parity):
            fbar, fparity = _ref(bar, cx), converted(parity, parity.dtype, cx)
            return _traced(s, lambda st, sel: mbarrier.wait(st, sel, s, *fbar(st, sel), fparity(st, sel)))
        case ir.BulkCopy():
            return _bulk_copy(s, cx)
        case ir.TmaLoad():
            return _tma_load(s, cx)
        case ir.TmaStore(dst=dst, src=src):
            fdst, fsrc = _ref(dst, cx), _ref(src, cx)
            return _traced(s, lambda st, sel: tma.store(st, sel, s, *fdst(st, sel), *fsrc(st, sel)))
        case ir.Wgmma():
            return _wgmma(s, cx)
        case ir.WgmmaFence():
            return _traced(s, lambda st, sel: wgmma.fence(st, sel, s))
        case ir.WgmmaCommit():
            return _traced(s, lambda st, sel: wgmma.commit(st, sel, s))
        case ir.WgmmaWait(pending=n):
            return _traced(s, lambda st, sel: wgmma.wait(st, sel, s, n))
        case ir.Atomic():
            return _atomic(s, cx)
        case ir.Assert():
            return _assert(s, cx)
    raise TypeError(f"not a statement: {s!r}")


def _traced(s, f):
    def run(st, sel):
        f(st, sel)
        if st.trace is not None:
            st.trace.step(st, s, sel, None)
    return run


def _assign(s, v: ir.Var, e: ir.Expr, cx):
    slot, fe, dtype = cx.var_slot(v), converted(e, v.dtype, cx), num.lane_dtype(v.dtype)
    tracked = v.name in cx.maybe_uninit
    everywhere = isinstance(s, ir.DeclareVar) and v.name in cx.invariant   # pure: safe on every lane
    only_traced = cx.only_traced(s)

    def run(st, sel):
        if only_traced and st.trace is None:
            return
        if everywhere:
            set_var(st, slot, fe(st, None), None, dtype)
        else:
            set_var(st, slot, fe(st, sel), sel, dtype)
        if tracked:
            _mark_init(st, slot, sel)
        if st.trace is not None:
            st.trace.step(st, s, sel, lambda lane: f"{ir.source_name(v)} = {_at(st.vars[slot], lane)}")
    return run


def _declare_uninit(s: ir.DeclareVar, cx):
    slot, dtype = cx.var_slot(s.var), num.lane_dtype(s.var.dtype)

    def run(st, sel):
        st.vars[slot] = np.zeros(st.L, dtype)
        st.var_init[slot] = np.zeros(st.L, bool)
    return run


def _at(values, lane: int) -> str:
    """One lane's value, printed at its own precision (f32 as the shortest f32 repr)."""
    return str(values if getattr(values, "ndim", 0) == 0 else values[lane])


def _ref(ref: ir.Ref, cx):
    """Closure giving (space, index values) of a Ref: trailing indices default to 0."""
    slot = cx.buf_slot(ref.buffer)
    fidx = [compile_expr(i, cx) for i in ref.indices]
    zeros = [np.int32(0)] * (ref.buffer.ndim - len(ref.indices))
    return lambda st, sel: (st.spaces[slot], [f(st, sel) for f in fidx] + zeros)


def _store(s: ir.Store, cx):
    slot = cx.buf_slot(s.buffer)
    fidx = [compile_expr(i, cx) for i in s.indices]
    fval = converted(s.value, s.buffer.dtype, cx)
    proven = cx.in_bounds(s.buffer, s.indices)

    def run(st, sel):
        sp = st.spaces[slot]
        index = [f(st, sel) for f in fidx]
        value = fval(st, sel)
        off = memory.element_offsets(st, sp, index, sel, s, proven)
        memory.store(st, sp, index, off, value, sel, s)
        if st.trace is not None:
            st.trace.step(st, s, sel, lambda lane: f"{sp.name}[{', '.join(str(_at(i, lane)) for i in index)}] = "
                                                   f"{_at(value, lane)}")
    return run


def _if(s: ir.If, cx):
    fc, then = compile_expr(s.cond, cx), compile_block(s.then, cx)
    orelse = compile_block(s.orelse, cx) if s.orelse else None

    def run(st, sel):
        c = fc(st, sel)
        if st.trace is not None:
            st.trace.step(st, s, sel, lambda lane: f"-> {_at(c, lane)}")
        uniform = bool(c) if getattr(c, "ndim", 0) == 0 else (True if sel is None and c.all() else None)
        if uniform is not None:                     # every active lane goes one way
            if uniform:
                then(st, sel)
            elif orelse is not None:
                orelse(st, sel)
            return
        yes, no = split(c, sel, st.L)
        if yes is None or len(yes):
            then(st, yes)
        if orelse is not None and (no is None or len(no)):
            orelse(st, no)
    return run


def _uniform(x, sel):
    if getattr(x, "ndim", 0) == 0:
        return int(x)
    xs = x if sel is None else x[sel]
    lo = xs.min()
    return int(lo) if lo == xs.max() else None


def _for(s: ir.For, cx):
    slot, body = cx.var_slot(s.var), compile_block(s.body, cx)
    fa, fb, fc = (converted(e, s.var.dtype, cx) for e in (s.start, s.stop, s.step))
    generated = s.var.origin is None      # a task mapping's loop counter: its task variables are traced instead
    make = num.lane_dtype(s.var.dtype).type
    nest = compile_nest(s, cx)

    def run(st, sel):
        if nest is not None and sel is None and st.trace is None and nest(st):
            return
        a, b, c = fa(st, sel), fb(st, sel), fc(st, sel)
        lane = memory.first_lane(c == 0, sel)
        if lane >= 0:
            raise st.trap("zero loop step", "range() step is 0", s, lane, hint="use a non-zero step")
        ua, ub, uc = _uniform(a, sel), _uniform(b, sel), _uniform(c, sel)
        if None not in (ua, ub, uc):
            trips = range(ua, ub, uc)
            for v in trips[:st.max_steps]:
                st.vars[slot] = make(v)
                if st.trace is not None and not generated:
                    st.trace.step(st, s, sel, lambda lane: f"{ir.source_name(s.var)} = {v}")
                body(st, sel)
            if len(trips) > st.max_steps:
                raise _over_budget(st, s, sel)
            return
        v = np.array(np.broadcast_to(a, (st.L,)))
        cur = sel
        steps = 0
        while True:
            going = np.where(c > 0, v < b, v > b)
            cur, _ = split(going, cur, st.L)
            if cur is not None and not len(cur):
                return
            steps += 1
            if steps > st.max_steps:
                raise _over_budget(st, s, cur)
            st.vars[slot] = v
            if st.trace is not None and not generated:
                st.trace.step(st, s, cur, lambda lane: f"{ir.source_name(s.var)} = {_at(v, lane)}")
            body(st, cur)
            v = (v + c).astype(v.dtype)
    return run


def _while(s: ir.While, cx):
    fc, body = compile_expr(s.cond, cx), compile_block(s.body, cx)

    def run(st, sel):
        cur = sel
        steps = 0
        while True:
            c = fc(st, cur)
            if st.trace is not None:
                st.trace.step(st, s, cur, lambda lane: f"-> {_at(c, lane)}")
            if getattr(c, "ndim", 0) == 0:
                if not c:
                    return
            else:
                cur, _ = split(c, cur, st.L)
                if cur is not None and not len(cur):
                    return
            steps += 1
            if steps > st.max_steps:
                raise _over_budget(st, s, cur)
            body(st, cur)
    return run


def _over_budget(st, s: ir.Stmt, sel):
    """The step budget trap (SPEC.md §5.2) of loop s, in the first of the lanes still looping."""
    return st.trap("step budget exceeded", f"one execution of this loop reached {st.max_steps} iterations",
                   s, memory.first_lane(True, sel),
                   hint="make sure its condition becomes false; a loop meant to run longer needs "
                        "interpret(..., max_steps=N), TASKMAP_MAX_STEPS=N or taskmap debug --max-steps N")


def _cp_async(s: ir.CpAsync, cx):
    fdst, fsrc = _ref(s.dst, cx), _ref(s.src, cx)
    fvalid = compile_expr(s.valid, cx) if s.valid is not None else None

    def run(st, sel):
        valid = fvalid(st, sel) if fvalid is not None else None
        asynccopy.issue(st, sel, s, *fdst(st, sel), *fsrc(st, sel), s.elems, valid)
    return _traced(s, run)


def _wgmma(s: ir.Wgmma, cx):
    facc, fa, fb = _ref(s.acc, cx), _ref(s.a, cx), _ref(s.b, cx)
    offsets = [converted(e, e.dtype, cx) for e in (s.b_lbo, s.b_sbo)]
    if not s.a_in_registers:
        offsets += [converted(e, e.dtype, cx) for e in (s.a_lbo, s.a_sbo)]

    def run(st, sel):
        lbo_b, sbo_b, *a_desc = (f(st, sel) for f in offsets)
        wgmma.issue(st, sel, s, facc(st, sel), fa(st, sel), fb(st, sel), tuple(a_desc) or None, (lbo_b, sbo_b))
    return _traced(s, run)


def _bulk_copy(s: ir.BulkCopy, cx):
    fdst, fsrc, fbar = _ref(s.dst, cx), _ref(s.src, cx), _ref(s.bar, cx)
    slot = cx.buf_slot(s.bar.buffer)

    def run(st, sel):
        bars, bar_index = fbar(st, sel)
        mbarrier.bulk_copy(st, sel, s, *fdst(st, sel), *fsrc(st, sel), s.elems, bars, slot, bar_index)
    return _traced(s, run)


def _tma_load(s: ir.TmaLoad, cx):
    fdst, fsrc, fbar = _ref(s.dst, cx), _ref(s.src, cx), _ref(s.bar, cx)
    slot = cx.buf_slot(s.bar.buffer)

    def run(st, sel):
        bars, bar_index = fbar(st, sel)
        tma.load(st, sel, s, *fdst(st, sel), *fsrc(st, sel), bars, slot, bar_index)
    return _traced(s, run)


def _atomic(s: ir.Atomic, cx):
    t = s.target.buffer.dtype
    ftarget = _ref(s.target, cx)
    fval = converted(s.value, t, cx)
    fcmp = converted(s.compare, t, cx) if s.compare is not None else None
    result = s.result
    rslot = cx.var_slot(result) if result is not None else None

    def run(st, sel):
        sp, index = ftarget(st, sel)
        value = fval(st, sel)
        compare = fcmp(st, sel) if fcmp is not None else None
        off = memory.element_offsets(st, sp, index, sel, s)
        old = atomics.atomic(st, sel, s, sp, index, off, s.op, value, compare, result is not None)
        if result is not None:
            set_var(st, rslot, num.convert(old, t, result.dtype), sel, num.lane_dtype(result.dtype))
            _mark_init(st, rslot, sel)
        if st.trace is not None:
            st.trace.step(st, s, sel, (lambda lane: f"{ir.source_name(result)} = {_at(st.vars[rslot], lane)}")
                          if result is not None else None)
    return run


def _assert(s: ir.Assert, cx):
    fc = compile_expr(s.cond, cx)

    def run(st, sel):
        c = fc(st, sel)
        lane = memory.first_lane(np.logical_not(c), sel)
        if lane >= 0:
            raise st.trap("assertion failed", s.message, s, lane)
    return run
