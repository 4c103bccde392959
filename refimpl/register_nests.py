"""Loop nests over register tensors run as one NumPy operation per IR node.

A nest of `for` loops with constant bounds whose body is one store to a register tensor — the
lowered `for i, j in repeat(4, 4).on(tid): acc[i, j] += fa[s, i] * fb[s, j]` — would cost
one interpreted statement per iteration. When every register index is a loop variable of the
nest (each used at most once per access) or a value that does not depend on the nest, each
access is a strided view of the element-major register storage with one axis per loop and
one for the lanes, and the whole nest is a few NumPy calls on (n0, n1, ..., lanes) arrays.

Exact: each iteration writes its own element and reads the stored tensor only at that element
(no iteration sees another's write), other values are computed as in the loop, per element by
the same ufuncs. Whenever a fact needed for that cannot be shown up front (an uninitialized
element, an index out of bounds, some lanes inactive, a trace, a loop over the step budget)
the nest runs as ordinary loops instead, which then trap or trace exactly as before.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from taskmap.spec import ir

from . import numerics as num
from .exprs import compile_expr

_OPS = ("+", "-", "*", "min", "max")


def compile_nest(s: ir.For, cx):
    """A closure `run(st) -> bool` executing the nest s as array operations (False: it did not,
    run the loops), or None when s is not such a nest."""
    loops, body, axes = [], s, {}
    while isinstance(body, ir.For):
        if not all(isinstance(e, ir.Const) for e in (body.start, body.stop, body.step)) or body.step.value <= 0:
            return None
        axes[body.var.name] = len(loops)
        loops.append(body)
        stmts = []
        for x in body.body:
            if _alias(x, axes, cx):
                axes[x.var.name] = axes[x.init.name]
            elif not cx.only_traced(x):
                stmts.append(x)
        body = stmts[0] if len(stmts) == 1 else None
    if not isinstance(body, ir.Store) or body.buffer.scope != "register" or not loops:
        return None
    trips = [range(f.start.value, f.stop.value, f.step.value) for f in loops]
    if not all(trips):
        return None
    store = _access(body.buffer, body.indices, axes, trips, cx)
    if store is None or sorted(a for a in store.axis_of if a is not None) != list(range(len(loops))):
        return None                  # every iteration must write its own element
    value = _value(body.value, body.buffer.dtype, body, axes, trips, cx)
    if value is None:
        return None

    longest = max(len(r) for r in trips)

    def run(st) -> bool:
        if longest > st.max_steps:
            return False                 # the loop traps "step budget exceeded"
        spaces = {}
        for acc in value.reads + [store]:
            view = acc.view(st)
            if view is None:
                return False
            spaces[acc] = view
        for acc in value.reads:
            sp, rows, _, init = spaces[acc]
            if init is not None and not rows <= sp.full_rows and not init.all():
                return False
        sp, rows, data, init = spaces[store]
        value.store(st, spaces, data)
        if init is not None:
            init[...] = True
            sp.full_rows.update(rows)
        return True
    return run


def _alias(s, axes, cx) -> bool:
    """`i = i__r0`: a variable set once, to a loop variable of the nest (a task index)."""
    return isinstance(s, ir.DeclareVar) and isinstance(s.init, ir.Var) and s.init.name in axes \
        and s.var.name in cx.ranges.defs


def _independent(e, axes, cx) -> bool:
    """e does not depend on the nest and cannot trap: computed once, as the loop would."""
    return not any(ir.may_trap(n) or (isinstance(n, ir.Var) and (n.name in axes or n.name in cx.maybe_uninit))
                   for n in ir.walk(e))


class _Access:
    """A register access whose indices are nest variables (`axis_of[d]`) or nest-independent
    values (`fixed[d]`, uniform at run time)."""

    def __init__(self, buffer, slot, axis_of, fixed, trips):
        self.buffer, self.slot, self.axis_of, self.fixed, self.trips = buffer, slot, axis_of, fixed, trips
        self.relative_rows: dict[tuple, set] = {}     # (steps, counts) -> element rows from the first

    def view(self, st):
        """(space, element rows, storage view, init view) shaped (n0, ..., lanes); None if an index is
        out of bounds, not uniform, or an element read is not known to be written on every lane."""
        sp = st.spaces[self.slot]
        if not isinstance(sp.buffer.layout, ir.RowMajor):
            return None
        first, steps, counts = 0, [0] * len(self.trips), [1] * len(self.trips)
        for d, (axis, f) in enumerate(zip(self.axis_of, self.fixed)):
            n, stride = sp.shape[d], sp.strides[d]
            if axis is not None:
                r = self.trips[axis]
                if r[0] < 0 or r[-1] >= n:
                    return None
                first += r[0] * stride
                steps[axis], counts[axis] = r.step * stride, len(r)
                continue
            i = f(st, None)
            if type(i) is np.ndarray or not 0 <= i < n:
                return None
            first += int(i) * stride
        shape = tuple(counts) + (st.L,)
        data = _strided(sp.data, first, steps, shape, st.L)
        if sp.init is None:
            return sp, None, data, None
        key = (tuple(steps), tuple(counts))
        if key not in self.relative_rows:
            self.relative_rows[key] = {sum(k * s for k, s in zip(ks, steps)) for ks in np.ndindex(*counts)}
        rows = {first + r for r in self.relative_rows[key]}
        return sp, rows, data, _strided(sp.init, first, steps, shape, st.L)


def _strided(flat: np.ndarray, first: int, steps, shape, L: int) -> np.ndarray:
    """The element-major storage rows first + Σ k_a·steps[a] as a (n0, ..., L) view."""
    item = flat.itemsize
    return as_strided(flat[first * L:], shape, tuple(s * L * item for s in steps) + (item,))


def _access(buffer, indices, axes, trips, cx):
    axis_of, fixed = [], []
    for i in indices:
        if isinstance(i, ir.Var) and i.name in axes:
            axis_of.append(axes[i.name])
            fixed.append(None)
        elif _independent(i, axes, cx):
            axis_of.append(None)
            fixed.append(compile_expr(i, cx))
        else:
            return None
    used = [a for a in axis_of if a is not None]
    if len(used) != len(set(used)):
        return None
    return _Access(buffer, cx.buf_slot(buffer), axis_of, fixed, trips)


class _Value:
    """`store(st, views, out)` writes the value into the store's storage view `out` (the top
    operation writes there directly when it is a ufunc on the storage type: no temporary)."""

    def __init__(self, eval_, reads, t, into=None):
        self.eval, self.reads, self.t, self.into = eval_, reads, t, into

    def store(self, st, views, out):
        if self.into is not None:
            self.into(st, views, out)
        else:
            out[...] = num.to_storage(self.eval(st, views), self.t)


def _value(e, t, store: ir.Store, axes, trips, cx):
    """The stored value as a function of the accesses' views, converted to t; None when e has a
    part that the loop would evaluate differently (a trap, a load outside registers, ...)."""
    reads = []

    def build(x):
        if _independent(x, axes, cx):
            f = compile_expr(x, cx)
            return lambda st, views: f(st, None)
        match x:
            case ir.Load(buffer=b, indices=idx) if b.scope == "register":
                if b.name == store.buffer.name and idx != store.indices:
                    return None          # another iteration's element: the loop order would matter
                acc = _access(b, idx, axes, trips, cx)
                if acc is None:
                    return None
                reads.append(acc)
                return lambda st, views: num.from_storage(views[acc][2], b.dtype)
            case ir.Binary(op=op, a=a, b=b) if op in _OPS and a.dtype == b.dtype == x.dtype:
                fa, fb, fn = build(a), build(b), num.binary_op(op, x.dtype)
                if fa is None or fb is None:
                    return None
                if not isinstance(fn, np.ufunc):
                    return lambda st, views: fn(fa(st, views), fb(st, views))
                return _into_scratch(fn, fa, fb, num.lane_dtype(x.dtype), cx.cache_slot())
            case ir.Cast(a=a, type=to):
                fa, src = build(a), a.dtype
                return None if fa is None else lambda st, views: num.convert(fa(st, views), src, to)
        return None
    f = build(e)
    if f is None:
        return None
    src = e.dtype
    if src != t:
        return _Value(lambda st, views: num.convert(f(st, views), src, t), reads, t)
    if getattr(f, "ufunc", None) is None or num.lane_dtype(t) != t.storage:
        return _Value(f, reads, t)
    fn, fa, fb = f.ufunc
    return _Value(f, reads, t, lambda st, views, out: fn(fa(st, views), fb(st, views), out=out))


def _into_scratch(fn, fa, fb, dtype, slot: int):
    """fn of the operands into an array kept in the batch's cache slot `slot` (a fresh
    temporary of a few MB per call costs more in page faults than the arithmetic)."""
    def run(st, views):
        a, b = fa(st, views), fb(st, views)
        shape = np.broadcast_shapes(np.shape(a), np.shape(b))
        out = st.cache[slot]
        if out is None or out.shape != shape:
            out = st.cache[slot] = np.empty(shape, dtype)
        return fn(a, b, out=out)
    run.ufunc = (fn, fa, fb)
    return run
