"""Expressions (SPEC.md §4) compiled once into closures `f(state, sel) -> lane values`.

Values are computed on every lane (inactive lanes carry harmless garbage) except where
SPEC.md makes evaluation conditional: loads, integer division, shifts and shuffles look at the
active lanes `sel` only, and `&&`, `||`, `select` evaluate their lazy operands only on the
lanes that need them (§2.3), so a guarded `a[i]` never traps on the lanes that skip it.
"""
from __future__ import annotations

import operator

import numpy as np

from taskmap.spec import dtypes as dt
from taskmap.spec import ir
from taskmap.spec import semantics

from . import memory
from . import numerics as num
from .collectives import shuffle
from .ranges import pure


def compile_expr(e: ir.Expr, cx):
    """Closure computing e. Lane-invariant subexpressions (ranges.pure: index arithmetic on
    threadIdx and parameters) are computed once per batch and cached."""
    f = _compile(e, cx)
    if isinstance(e, (ir.Const, ir.Var, ir.Special)) or not pure(e, cx.invariant):
        return f
    slot = cx.cache_slot()

    def cached(st, sel):
        v = st.cache[slot]
        if v is None:
            v = st.cache[slot] = f(st, None)
        return v
    return cached


def _compile(e: ir.Expr, cx):
    match e:
        case ir.Const(value=v, type=t):
            c = num.scalar(v, t)
            return lambda st, sel: c
        case ir.Var():
            return _var(e, cx)
        case ir.Special(name=name):
            return lambda st, sel: st.special[name]
        case ir.Unary(op=op, a=a):
            fa, t = compile_expr(a, cx), a.dtype
            return lambda st, sel: num.unary(op, fa(st, sel), t)
        case ir.Binary(op="&&" | "||"):
            return _logic(e, cx)
        case ir.Binary(op="<<" | ">>"):
            return _shift(e, cx)
        case ir.Binary(op=op, a=a, b=b) if op in num.COMPARE:
            t = dt.promote(a.dtype, b.dtype)
            fa, fb, cmp = converted(a, t, cx), converted(b, t, cx), num.COMPARE[op]
            return lambda st, sel: cmp(fa(st, sel), fb(st, sel))
        case ir.Binary(op="/" | "%", a=a) if not e.dtype.is_float:
            return _int_division(e, cx)
        case ir.Binary(op=op, a=a, b=b):
            t = e.dtype
            fa, fb, fn = converted(a, t, cx), converted(b, t, cx), num.binary_op(op, t)
            return lambda st, sel: fn(fa(st, sel), fb(st, sel))
        case ir.Select():
            return _select(e, cx)
        case ir.Cast(a=a, type=t):
            return converted(a, t, cx)
        case ir.Call(fn=fn, args=args):
            t = e.dtype
            fs = [converted(x, t, cx) for x in args]
            return lambda st, sel: num.math_call(fn, [f(st, sel) for f in fs], t)
        case ir.Load(buffer=buf, indices=idx):
            return _load(e, cx)
        case ir.Shuffle(kind=kind, width=width):
            fv, fl = compile_expr(e.value, cx), compile_expr(e.lane, cx)
            return lambda st, sel: shuffle(st, sel, kind, fv(st, sel), fl(st, sel), width, e)
    raise TypeError(f"not an expression: {e!r}")


def converted(e: ir.Expr, t: dt.DType, cx):
    """e's closure, its values converted to t (§2.4) when its type differs."""
    f, src = compile_expr(e, cx), e.dtype
    if src == t:
        return f
    return lambda st, sel: num.convert(f(st, sel), src, t)


def split(cond, sel, L: int):
    """Active lanes where cond holds / fails; None stands for every lane."""
    if sel is None:
        yes, no = np.flatnonzero(cond), np.flatnonzero(~cond)
    else:
        c = cond[sel]
        yes, no = sel[c], sel[~c]
    return (None if len(yes) == L else yes), (None if len(no) == L else no)


def _var(e: ir.Var, cx):
    slot = cx.var_slot(e)
    if e.name not in cx.maybe_uninit:
        return lambda st, sel: st.vars[slot]

    def read(st, sel):
        init = st.var_init[slot]
        if init is not None:
            lane = memory.first_lane(~init, sel)
            if lane >= 0:
                raise st.trap("uninitialized variable read", f"{ir.source_name(e)} is read before it was assigned", e, lane,
                              hint="assign the variable on every path before reading it")
        return st.vars[slot]
    return read


def _logic(e: ir.Binary, cx):
    fa, fb, is_and = compile_expr(e.a, cx), compile_expr(e.b, cx), e.op == "&&"

    def run(st, sel):
        a = fa(st, sel)
        if getattr(a, "ndim", 0) == 0:
            return fb(st, sel) if bool(a) == is_and else a
        if sel is None and (a.all() if is_and else not a.any()):      # b needed on every lane
            b = fb(st, None)
            return (a & b) if is_and else (a | b)
        need, _ = split(a if is_and else ~a, sel, st.L)
        if need is not None and not len(need):
            return a
        b = fb(st, need)
        return (a & b) if is_and else (a | b)
    return run


def _select(e: ir.Select, cx):
    fc, t = compile_expr(e.cond, cx), e.dtype
    fa, fb = converted(e.a, t, cx), converted(e.b, t, cx)

    def run(st, sel):
        c = fc(st, sel)
        if getattr(c, "ndim", 0) == 0:
            return fa(st, sel) if c else fb(st, sel)
        if sel is None and c.all():         # the common case of a bounds guard: no split needed
            return fa(st, None)
        yes, no = split(c, sel, st.L)
        if yes is not None and not len(yes):
            return fb(st, sel)
        if no is not None and not len(no):
            return fa(st, sel)
        return np.where(c, fa(st, yes), fb(st, no))
    return run


def _int_division(e: ir.Binary, cx):
    t = e.dtype
    fa, fb = converted(e.a, t, cx), converted(e.b, t, cx)
    ra = cx.ranges.of(e.a)
    if isinstance(e.b, ir.Const) and e.b.value > 0 and ra is not None and ra[0] >= 0:
        floor, c = (np.floor_divide if e.op == "/" else np.remainder), num.scalar(e.b.value, t)
        return lambda st, sel: floor(fa(st, sel), c)         # C and floor division agree here
    fn = num.binary_op(e.op, t)
    if isinstance(e.b, ir.Const) and e.b.value > 0:
        c, make, exact = e.b.value, num.lane_dtype(t).type, (operator.floordiv if e.op == "/" else operator.mod)

        def positive_divisor(st, sel):
            a = fa(st, sel)
            if type(a) is not np.ndarray and a >= 0:       # uniform and non-negative: floor division is C's
                return make(exact(int(a), c))
            return fn(a, fb(st, sel))
        return positive_divisor
    if isinstance(e.b, ir.Const) and e.b.value != 0:
        return lambda st, sel: fn(fa(st, sel), fb(st, sel))

    def run(st, sel):
        a, b = fa(st, sel), fb(st, sel)
        zero = b == 0
        lane = memory.first_lane(zero, sel)
        if lane >= 0:
            raise st.trap("integer divide by zero", "the divisor is 0",
                          e, lane, hint="guard the division so the divisor is never zero")
        if getattr(zero, "ndim", 0) and zero.any():                    # inactive lanes: any non-zero divisor
            b = np.where(zero, num.scalar(1, t), b)
        return fn(a, b)
    return run


def _shift(e: ir.Binary, cx):
    t = e.dtype
    fa, fb = compile_expr(e.a, cx), compile_expr(e.b, cx)

    def run(st, sel):
        a, b = fa(st, sel), fb(st, sel)
        bad = semantics.shift_out_of_range(b, t)
        lane = memory.first_lane(bad, sel)
        if lane >= 0:
            amount = int(b if getattr(b, "ndim", 0) == 0 else b[lane])
            raise st.trap("shift out of range", f"shift by {amount} of a {t.bits}-bit {t.short}", e, lane,
                          hint=f"keep the shift amount in [0, {t.bits})")
        if getattr(bad, "ndim", 0) and bad.any():
            b = np.where(bad, 0, b)
        return num.shift(e.op, a, b, t)
    return run


def _load(e: ir.Load, cx):
    slot = cx.buf_slot(e.buffer)
    fidx = [compile_expr(i, cx) for i in e.indices]
    proven = cx.in_bounds(e.buffer, e.indices)

    def run(st, sel):
        sp = st.spaces[slot]
        index = [f(st, sel) for f in fidx]
        off = memory.element_offsets(st, sp, index, sel, e, proven)
        return memory.load(st, sp, index, off, sel, e)
    return run
