"""Loop nests over register tensors run as one NumPy operation per IR node.

A nest of `for` loops with constant bounds whose body is one store to a register tensor — the
lowered `for i, j in repeat(4, 4).on(tid): acc[i, j] += fa[s, i] * fb[s, j]` — would cost
one interpreted statement per iteration. When every register index is a loop variable of the
nest (each used at most once per access) or a value that does not depend on the nest, each
access is a strided view of the element-major register storage with one axis per loop and
one for the lanes, and the whole nest is a few NumPy calls on (n0, n1, ..., lanes) arrays.
A load from shared or global memory in the value (the fragment load `fa[s, i] = sa[st, k,
4·g(tid) + i]`) may have indices affine in the nest's variables: it is one gather, with its
lane-invariant offsets computed once per batch, checked as one access of all its iterations
in program order (iteration-major), as the loop's reads would be recorded one by one. A
store to shared or global memory at such indices is one checked write when no element is
written twice, and a select whose condition (comparisons of affine expressions) holds in every
iteration on every lane is its first operand, as the loop would evaluate it (`m0 + i < M ?
a[m0 + i, k] : 0.0`, the guarded tile load).

Exact: each iteration writes its own element and reads the stored tensor only at that element
(no iteration sees another's write), other values are computed as in the loop, per element by
the same ufuncs; a nest never reads a memory tensor it writes, so its reads see the same
contents and the same race records in every iteration. Whenever a fact needed for that
cannot be shown up front (an uninitialized element, an index out of bounds, an access that a
check rejects, some lanes inactive, a trace, a loop over the step budget, registers of a
wgmma) the nest runs as ordinary loops instead, which then trap or trace exactly as before.
"""
from __future__ import annotations

from functools import cached_property

import numpy as np
from numpy.lib.stride_tricks import as_strided

from taskmap.spec import ir

from . import memory
from . import numerics as num
from .exprs import compile_expr
from .ranges import pure
from .traps import KernelTrap

_OPS = ("+", "-", "*", "min", "max")


class _Nest:
    """The loops of a nest: `axes` maps each loop variable (and its aliases) to its axis,
    `defs` the integer variables the body declares from them (`i_2 = 4·g(tid) + i__r0`)."""

    def __init__(self, cx):
        self.cx, self.axes, self.defs, self.trips = cx, {}, {}, []

    def independent(self, e) -> bool:
        """e does not depend on the nest and cannot trap: computed once, as the loop would."""
        return not any(ir.may_trap(n) or (isinstance(n, ir.Var) and (n.name in self.axes or n.name in self.defs
                                                                       or n.name in self.cx.maybe_uninit))
                       for n in ir.walk(e))

    def steps(self, coeffs: dict) -> np.ndarray:
        """Σ_a coeffs[a]·k_a over the nest's iterations, int64, extent 1 along axes not in coeffs."""
        out = np.zeros([1] * len(self.trips), np.int64)
        for a, c in coeffs.items():
            if c:
                out = out + c * np.asarray(self.trips[a], np.int64).reshape([-1 if b == a else 1
                                                                             for b in range(len(self.trips))])
        return out

    def affine(self, e):
        """e as ({axis: coefficient}, [(coefficient, nest-independent expression)]), or None.
        Integer +, - and · wrap modulo 2^bits, so the form, evaluated exactly in int64, is
        congruent to e; where it lies inside a dimension's extent (checked before any
        access) it equals e."""
        match e:
            case ir.Var(name=n) if n in self.axes:
                return {self.axes[n]: 1}, []
            case ir.Var(name=n) if n in self.defs:
                return self.affine(self.defs[n])
            case _ if self.independent(e):
                return {}, [(1, e)]
            case ir.Binary(op="+" | "-", a=a, b=b):
                fa, fb = self.affine(a), self.affine(b)
                if fa is None or fb is None:
                    return None
                return _combine(fa, fb, 1 if e.op == "+" else -1)
            case ir.Binary(op="*", a=a, b=ir.Const(value=k)) | ir.Binary(op="*", a=ir.Const(value=k), b=a):
                fa = self.affine(a)
                return None if fa is None else _combine(({}, []), fa, k)
        return None


def _combine(x, y, k: int):
    """x + k·y of affine forms; None where a coefficient would not fit an int32 (int64 products)."""
    coeffs = dict(x[0])
    for a, c in y[0].items():
        coeffs[a] = coeffs.get(a, 0) + k * c
    terms = x[1] + [(k * c, t) for c, t in y[1]]
    if any(abs(c) >= 1 << 31 for c in list(coeffs.values()) + [c for c, _ in terms]):
        return None
    return coeffs, terms


def compile_nest(s: ir.For, cx):
    """A closure `run(st) -> bool` executing the nest s as array operations (False: it did not,
    run the loops), or None when s is not such a nest."""
    body, nest = s, _Nest(cx)
    while isinstance(body, ir.For):
        if not all(isinstance(e, ir.Const) for e in (body.start, body.stop, body.step)) or body.step.value <= 0:
            return None
        nest.axes[body.var.name] = len(nest.trips)
        nest.trips.append(range(body.start.value, body.stop.value, body.step.value))
        stmts = []
        for x in body.body:
            if _alias(x, nest.axes, cx):
                nest.axes[x.var.name] = nest.axes[x.init.name]
            elif _index_def(x, nest):
                nest.defs[x.var.name] = x.init
            elif not cx.only_traced(x):
                stmts.append(x)
        body = stmts[0] if len(stmts) == 1 else None
    if not isinstance(body, ir.Store) or not nest.trips or not all(nest.trips):
        return None
    if body.buffer.scope != "register":
        return _memory_store_nest(body, nest)
    trips = nest.trips
    store = _access(body.buffer, body.indices, nest)
    if store is None or sorted(a for a in store.axis_of if a is not None) != list(range(len(trips))):
        return None                  # every iteration must write its own element
    value = _value(body.value, body.buffer.dtype, body, nest)
    if value is None:
        return None

    longest = max(len(r) for r in trips)

    def run(st) -> bool:
        spaces = _operands(st, value, [store], longest)
        if spaces is None:
            return False
        sp, rows, data, init = spaces[store]
        value.store(st, spaces, data)
        if init is not None and not rows <= sp.full_rows:    # full rows are marked already
            init[...] = True
            sp.full_rows.update(rows)
        return True
    return run


def _operands(st, value, stores, longest: int):
    """The views of the value's register reads and of the register `stores`, and the gathers of
    its memory reads, by access; None where the loop must run instead."""
    if longest > st.max_steps:
        return None                      # the loop traps "step budget exceeded"
    spaces = {}
    for acc in value.reads + stores:
        view = acc.view(st)
        if view is None or view[0].wg_busy is not None:
            return None                  # wgmma registers: the loop checks every access (§5.12)
        spaces[acc] = view
    for acc in value.reads:
        sp, rows, _, init = spaces[acc]
        if init is not None and not rows <= sp.full_rows and not init.all():
            return None
    if not all(guard(st) for guard in value.guards):
        return None                      # some iteration takes a select's other operand
    for read in value.memory:
        gathered = read.gather(st)
        if gathered is None:
            return None
        spaces[read] = gathered
    return spaces


def _memory_store_nest(body: ir.Store, nest: _Nest):
    """A nest storing to shared or global memory at indices affine in every nest variable: the
    value of all iterations at once, one checked write of all of them in program order. Exact
    where no element is written twice (checked once per batch): then no iteration's write
    meets another's, and the value reads no memory the nest writes."""
    forms = [nest.affine(i) for i in body.indices]
    if None in forms or isinstance(body.buffer.layout, ir.Swizzle):
        return None
    target = _MemoryAccess(body, forms, nest)
    value = _value(body.value, body.buffer.dtype, body, nest)
    if not target.uses_all or value is None:
        return None
    longest, t = max(len(r) for r in nest.trips), body.buffer.dtype

    def run(st) -> bool:
        spaces = _operands(st, value, [], longest)
        return spaces is not None and target.scatter(st, lambda: num.to_storage(value.eval(st, spaces), t))
    return run


def _alias(s, axes, cx) -> bool:
    """`i = i__r0`: a variable set once, to a loop variable of the nest (a task index)."""
    return isinstance(s, ir.DeclareVar) and isinstance(s.init, ir.Var) and s.init.name in axes \
        and s.var.name in cx.ranges.defs


def _index_def(s, nest: _Nest) -> bool:
    """An integer variable set once to an affine function of the nest's variables (a memory index)."""
    return isinstance(s, ir.DeclareVar) and s.init is not None and s.var.dtype.is_integer \
        and s.init.dtype == s.var.dtype and s.var.name in nest.cx.ranges.defs and nest.affine(s.init) is not None


class _Access:
    """A register access whose indices are nest variables (`axis_of[d]`) or nest-independent
    values (`fixed[d]`, uniform at run time)."""

    def __init__(self, buffer, slot, axis_of, fixed, trips, cache: int):
        self.buffer, self.slot, self.axis_of, self.fixed, self.trips = buffer, slot, axis_of, fixed, trips
        self.cache = cache                            # the batch's views, by first element (as_strided is slow)
        self.relative_rows: dict[tuple, set] = {}     # (steps, counts) -> element rows from the first

    def view(self, st):
        """(space, element rows, storage view, init view) shaped (n0, ..., lanes); None if an index is
        out of bounds, not uniform, or an element read is not known to be written on every lane."""
        sp = st.spaces[self.slot]
        cached = st.cache[self.cache]
        if cached is None or cached[0] is not sp:
            cached = st.cache[self.cache] = (sp, self._axes(sp), {})
        _, axes, views = cached
        if axes is None:
            return None
        first, steps, counts = axes
        for d, f in enumerate(self.fixed):
            if f is not None:
                i = f(st, None)
                if type(i) is np.ndarray or not 0 <= i < sp.shape[d]:
                    return None
                first += int(i) * sp.strides[d]
        if first not in views:
            views[first] = self._views(st, sp, first, steps, counts)
        return views[first]

    def _axes(self, sp):
        """(first element from the nest's axes, per-axis element steps, trip counts), or None where a
        loop would run out of bounds or the layout is not row-major."""
        if not isinstance(sp.buffer.layout, ir.RowMajor):
            return None
        first, steps, counts = 0, [0] * len(self.trips), [1] * len(self.trips)
        for d, axis in enumerate(self.axis_of):
            if axis is not None:
                r = self.trips[axis]
                if r[0] < 0 or r[-1] >= sp.shape[d]:
                    return None
                first += r[0] * sp.strides[d]
                steps[axis], counts[axis] = r.step * sp.strides[d], len(r)
        return first, steps, counts

    def _views(self, st, sp, first: int, steps, counts):
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


def _access(buffer, indices, nest: _Nest):
    axis_of, fixed = [], []
    for i in indices:
        if isinstance(i, ir.Var) and i.name in nest.axes:
            axis_of.append(nest.axes[i.name])
            fixed.append(None)
        elif nest.independent(i):
            axis_of.append(None)
            fixed.append(compile_expr(i, nest.cx))
        else:
            return None
    used = [a for a in axis_of if a is not None]
    if len(used) != len(set(used)):
        return None
    return _Access(buffer, nest.cx.buf_slot(buffer), axis_of, fixed, nest.trips, nest.cx.cache_slot())


class _MemoryAccess:
    """A load from or store to shared or global memory whose index in dimension d is
    Σ_a c_da·k_a plus nest-independent terms: the lane-invariant ones (thread-index arithmetic)
    are evaluated once per batch, the others must be uniform. Axes the index does not use have
    extent 1."""

    def __init__(self, node: ir.Load | ir.Store, forms, nest: _Nest):
        cx = nest.cx
        self.node, self.buffer = node, node.buffer
        self.slot, self.cache = cx.buf_slot(node.buffer), cx.cache_slot()
        cx.cache_slot()                             # self.cache + 1: no element written twice (stores)
        self.proven = cx.in_bounds(node.buffer, node.indices)
        used = {a for coeffs, _ in forms for a, c in coeffs.items() if c}
        self.shape = tuple(len(r) if a in used else 1 for a, r in enumerate(nest.trips))
        self.uses_all = len(used) == len(nest.trips)
        self.steps = [np.broadcast_to(nest.steps(coeffs), self.shape) for coeffs, _ in forms]
        self.invariant = [[(c, compile_expr(t, cx)) for c, t in terms if pure(t, cx.invariant)] for _, terms in forms]
        self.uniform = [[(c, compile_expr(t, cx)) for c, t in terms if not pure(t, cx.invariant)] for _, terms in forms]

    def _batch(self, st, sp):
        """(offsets from the instance start with the uniform terms left out, shaped (n0, ..., lanes),
        their flat storage indices, per dimension the index range, the lanes of the iterations,
        the flat indices by uniform shift formed so far: see _NestAccess.flat)."""
        off, bounds = np.zeros(self.shape + (1,), np.int64), []
        for steps, terms, stride in zip(self.steps, self.invariant, sp.strides):
            lane = sum((c * np.asarray(f(st, None), np.int64) for c, f in terms), np.int64(0))
            bounds.append((int(np.min(lane)) + int(steps.min()), int(np.max(lane)) + int(steps.max())))
            off = off + stride * (steps[..., None] + lane)
        off = np.broadcast_to(off, self.shape + (st.L,))
        lanes = np.tile(st.all_lanes, int(np.prod(self.shape)))
        return (int(off.min()), int(off.max())), np.ascontiguousarray(off + sp.base), bounds, lanes, {}

    def _locate(self, st):
        """(space, the batch's offsets, the uniform shift) with every index in bounds, else None."""
        sp = st.spaces[self.slot]
        if sp.guard is not None:
            return None
        batch = st.cache[self.cache]
        if batch is None:
            batch = st.cache[self.cache] = self._batch(st, sp)
        shift = 0
        for d, (terms, (first, last), n, stride) in enumerate(zip(self.uniform, batch[2], sp.shape, sp.strides)):
            u = 0
            for c, f in terms:
                v = f(st, None)
                if type(v) is np.ndarray:
                    return None
                u += c * int(v)
            if not (d < len(self.proven) and self.proven[d]) and not (0 <= first + u and last + u < n):
                return None
            shift += stride * u
        return sp, batch, shift

    def _access(self, st, sp, batch, shift: int):
        (lo, hi), rel, _, lanes, flats = batch
        return _NestAccess(st, sp, lanes, rel, shift, self.node, (lo + shift, hi + shift), flats)

    def gather(self, st):
        """(storage, flat indices into it) of every iteration's element, checked as the loop's reads;
        None where the loop must run instead."""
        located = self._locate(st)
        if located is None:
            return None
        sp, batch, shift = located
        if sp.checked:
            try:
                memory.check_read(self._access(st, sp, batch, shift))
            except KernelTrap:
                return None          # the loop traps, at the first iteration and lane that does
        rel = batch[1]
        if shift >= 0:               # a view from `shift` on: no addition to every index
            return sp.data[shift:], rel
        return sp.data, rel + shift

    def scatter(self, st, values) -> bool:
        """Store values() (storage values broadcastable to (n0, ..., lanes)) in every iteration's
        element, checked as the loop's writes; False (nothing written) where the loop must run."""
        located = self._locate(st)
        if located is None:
            return False
        sp, batch, shift = located
        injective = st.cache[self.cache + 1]
        if injective is None:
            injective = st.cache[self.cache + 1] = _distinct(batch[1], sp.data.size)
        if not injective:
            return False
        v = values()
        acc = self._access(st, sp, batch, shift)
        if sp.checked:
            try:
                memory.check_write(acc)
            except KernelTrap:
                return False         # raised before any record changed: the loop traps as it would
        sp.data[acc.flat] = np.broadcast_to(v, batch[1].shape).reshape(-1)
        return True


def _distinct(flat: np.ndarray, size: int) -> bool:
    """No index occurs twice in `flat` (indices below `size`): marks where they are few enough."""
    if size > 16 * flat.size:
        return np.unique(flat).size == flat.size
    seen = np.zeros(size, np.bool_)
    seen[flat] = True
    return np.count_nonzero(seen) == flat.size


class _NestAccess(memory.Access):
    """A nest's accesses to one memory tensor as one access, iteration-major (program order); the
    flat indices are formed only when needed (deferred shared reads usually are dropped at the
    next barrier unrecorded). Trap messages come from the loop, never from here."""

    def __init__(self, st, space, lanes, rel, shift: int, node, span, flats: dict):
        self.st, self.space, self.index, self.lanes, self.node, self.span = st, space, [], lanes, node, span
        self.repeats = rel.size // st.L
        self._rel, self._shift, self._flats = rel, shift, flats

    @cached_property
    def flat(self):
        """Kept per batch for the last few shifts: a loop over the stages of a multi-buffered
        shared tile stores at a few shifts over and over (read-only: the checks share them)."""
        flat = self._flats.get(self._shift)
        if flat is None:
            if len(self._flats) >= _FLATS_KEPT:
                self._flats.clear()
            flat = self._flats[self._shift] = self._rel.reshape(-1) + self._shift
            flat.flags.writeable = False
        return flat


_FLATS_KEPT = 4


class _Value:
    """`store(st, views, out)` writes the value into the store's storage view `out` (the top
    operation writes there directly when it is a ufunc on the storage type, or a gather: no
    temporary)."""

    def __init__(self, eval_, reads, memory_reads, guards, t, into=None):
        self.eval, self.reads, self.memory, self.t, self.into = eval_, reads, memory_reads, t, into
        self.guards = guards             # st -> bool: the conditions of selects, true in every iteration

    def store(self, st, views, out):
        if self.into is not None:
            self.into(st, views, out)
        else:
            out[...] = num.to_storage(self.eval(st, views), self.t)


def _value(e, t, store: ir.Store, nest: _Nest):
    """The stored value as a function of the accesses' views, converted to t; None when e has a
    part that the loop would evaluate differently (a trap, a non-affine memory index, ...)."""
    cx, reads, memory_reads, guards = nest.cx, [], [], []

    def build(x):
        if nest.independent(x):
            f = compile_expr(x, cx)
            return lambda st, views: f(st, None)
        match x:
            case ir.Load(buffer=b, indices=idx) if b.scope == "register":
                if b.name == store.buffer.name and idx != store.indices:
                    return None          # another iteration's element: the loop order would matter
                acc = _access(b, idx, nest)
                if acc is None:
                    return None
                reads.append(acc)
                return lambda st, views: num.from_storage(views[acc][2], b.dtype)
            case ir.Load(buffer=b, indices=idx) if not isinstance(b.layout, ir.Swizzle):
                forms = [nest.affine(i) for i in idx]
                if None in forms or b.name == store.buffer.name or any(r.buffer.name == b.name for r in memory_reads):
                    return None          # a tensor the nest writes, or read twice (records would interleave)
                read = _MemoryAccess(x, forms, nest)
                memory_reads.append(read)

                def gathered(st, views):
                    src, flat = views[read]
                    return num.from_storage(src.take(flat, mode="clip"), b.dtype)   # in bounds (_locate)
                gathered.read = read
                return gathered
            case ir.Select(cond=c, a=a) if a.dtype == x.dtype:
                guard = _everywhere(c, nest)     # then the loop evaluates `a` on every lane, never `b`
                if guard is None:
                    return None
                guards.append(guard)
                return build(a)
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
        return _Value(lambda st, views: num.convert(f(st, views), src, t), reads, memory_reads, guards, t)
    if num.lane_dtype(t) != t.storage:
        return _Value(f, reads, memory_reads, guards, t)
    read = getattr(f, "read", None)
    if read is not None and read.uses_all:
        return _Value(f, reads, memory_reads, guards, t, lambda st, views, out: np.take(*views[read], out=out, mode="clip"))
    if getattr(f, "ufunc", None) is None:
        return _Value(f, reads, memory_reads, guards, t)
    fn, fa, fb = f.ufunc
    return _Value(f, reads, memory_reads, guards, t, lambda st, views, out: fn(fa(st, views), fb(st, views), out=out))


def _everywhere(e, nest: _Nest):
    """`st -> bool`: does condition e hold in every iteration on every lane? For nest-independent
    conditions and comparisons of expressions affine in the nest (joined by &&, evaluated on
    every lane: they cannot trap); None for others."""
    match e:
        case _ if nest.independent(e):
            f = compile_expr(e, nest.cx)
            return lambda st: bool(np.all(f(st, None)))
        case ir.Binary(op="&&", a=a, b=b):
            fa, fb = _everywhere(a, nest), _everywhere(b, nest)
            return None if fa is None or fb is None else lambda st: fa(st) and fb(st)
        case ir.Binary(op=op, a=a, b=b) if op in _DECIDE and a.dtype.is_integer and a.dtype == b.dtype:
            return _comparison(op, a, b, nest)
    return None


# Whether `d op x` holds for every d in [lo, hi] (for "!=": where that is certain)
_DECIDE = {"<": lambda lo, hi, x: hi < x, "<=": lambda lo, hi, x: hi <= x, ">": lambda lo, hi, x: lo > x,
           ">=": lambda lo, hi, x: lo >= x, "==": lambda lo, hi, x: lo == hi == x,
           "!=": lambda lo, hi, x: x < lo or x > hi}


def _comparison(op: str, a, b, nest: _Nest):
    """`a op b` everywhere, for a and b affine in the nest: a = A + ua and b = B + ub, with A, B
    the lane-invariant parts over the iterations (their ranges and that of A - B kept per batch)
    and ua, ub uniform, so it holds everywhere iff every A - B compares with ub - ua. Evaluated
    exactly in int64, which is the wrapped value where it stays inside the type (checked)."""
    fa, fb = nest.affine(a), nest.affine(b)
    if fa is None or fb is None:
        return None
    cx, t, decide, slot = nest.cx, a.dtype, _DECIDE[op], nest.cx.cache_slot()
    parts = []
    for coeffs, terms in (fa, fb):
        parts.append((nest.steps(coeffs)[..., None], [(c, compile_expr(x, cx)) for c, x in terms if pure(x, cx.invariant)],
                      [(c, compile_expr(x, cx)) for c, x in terms if not pure(x, cx.invariant)]))

    def ranges(st):
        va, vb = (steps + sum((c * np.asarray(f(st, None), np.int64) for c, f in inv), np.int64(0))
                  for steps, inv, _ in parts)
        d = va - vb
        return int(va.min()), int(va.max()), int(vb.min()), int(vb.max()), int(d.min()), int(d.max())

    def holds(st):
        if st.cache[slot] is None:
            st.cache[slot] = ranges(st)
        amin, amax, bmin, bmax, dmin, dmax = st.cache[slot]
        shifts = []
        for _, _, uniform in parts:
            u = 0
            for c, f in uniform:
                v = f(st, None)
                if type(v) is np.ndarray:
                    return False
                u += c * int(v)
            shifts.append(u)
        ua, ub = shifts
        if not (t.min <= amin + ua and amax + ua <= t.max and t.min <= bmin + ub and bmax + ub <= t.max):
            return False             # a value wraps: the loop decides
        return decide(dmin, dmax, ub - ua)
    return holds


def _into_scratch(fn, fa, fb, dtype, slot: int):
    """fn of the operands into an array kept in the batch's cache slot `slot` (a fresh
    temporary of a few MB per call costs more in page faults than the arithmetic)."""
    def run(st, views):
        a, b = fa(st, views), fb(st, views)
        shapes = (np.shape(a), np.shape(b))
        kept = st.cache[slot]
        if kept is None or kept[0] != shapes:
            kept = st.cache[slot] = (shapes, np.empty(np.broadcast_shapes(*shapes), dtype))
        return fn(a, b, out=kept[1])
    run.ufunc = (fn, fa, fb)
    return run
