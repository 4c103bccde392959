"""Types (SPEC.md §9.3): operand dtypes of every operator and statement, index arity, and
constants that fit their dtype. The DSL front end inserts the implicit conversions of §2.4,
so a value/target mismatch here means IR built or rewritten by hand went wrong."""
from __future__ import annotations

import math


from . import dtypes as dt
from . import ir
from .printer import expr_str
from .verify_common import const_value, fail, own_exprs, refs, statements

SHUFFLE_WIDTHS = (1, 2, 4, 8, 16, 32)


def check_types(kernel: ir.Kernel) -> None:
    for p in kernel.buffer_params:
        for e in p.shape:
            _expr_tree(kernel, e, p)
    for s in statements(kernel.body):
        for e in own_exprs(s):
            _expr_tree(kernel, e, s)
        _stmt(kernel, s)


def _expr_tree(kernel, expr, stmt) -> None:
    for n in ir.walk(expr):
        problem = _expr_problem(n)
        if problem is not None:
            raise fail(kernel, *problem, n, stmt)


def _expr_problem(e) -> tuple[str, str] | None:
    """(phrase, detail) for an ill-typed expression node, None if it is fine."""
    match e:
        case ir.Const():
            return _const_problem(e)
        case ir.Special(name=n) if n not in ir.SPECIALS:
            return "unknown operation", f"`{n}` is not a special register; expected one of {', '.join(ir.SPECIALS)}"
        case ir.Unary(op=op) if op not in ir.UNARY_OPS:
            return "unknown operation", f"unary operator {op!r}; expected one of {ir.UNARY_OPS}"
        case ir.Unary(op="neg", a=a) if a.dtype is dt.boolean:
            return "arithmetic on bool", f"`{expr_str(e)}` negates a bool; use `not` or cast to an integer first"
        case ir.Unary(op="not", a=a) if a.dtype is not dt.boolean:
            return _not_bool("the operand of `not`", a)
        case ir.Unary(op="invert", a=a) if not a.dtype.is_integer:
            return _bitwise(e, a)
        case ir.Binary(op=op) if op not in ir.BINARY_OPS:
            return "unknown operation", f"binary operator {op!r}; expected one of {ir.BINARY_OPS}"
        case ir.Binary(op=op) if op in ir.ARITH_OPS + ir.MINMAX_OPS and e.dtype is dt.boolean:
            return "arithmetic on bool", (f"`{expr_str(e)}` computes `{op}` on two bools (a bool operand yields "
                                          "to a numeric one, §2.2, but here none is numeric); cast one to i32")
        case ir.Binary(op=op, a=a, b=b) if op in ir.LOGIC_OPS:
            bad = next((x for x in (a, b) if x.dtype is not dt.boolean), None)
            return None if bad is None else _not_bool(f"an operand of `{op}`", bad)
        case ir.Binary(op=op, a=a, b=b) if op in ("&", "|", "^"):
            bad = next((x for x in (a, b) if x.dtype.is_float), None)
            return None if bad is None else _bitwise(e, bad)
        case ir.Binary(op=op, a=a, b=b) if op in ("<<", ">>"):
            bad = next((x for x in (a, b) if not x.dtype.is_integer), None)
            return None if bad is None else _bitwise(e, bad)
        case ir.Select(cond=c) if c.dtype is not dt.boolean:
            return _not_bool("the condition of select", c)
        case ir.Call(fn=fn, args=args) if ir.MATH_FUNCS.get(fn) != len(args):
            return "unknown operation", f"`{fn}` with {len(args)} argument(s) is not a math intrinsic (SPEC §4.6)"
        case ir.Call(fn=fn, args=args):
            bad = next((a for a in args if not (a.dtype.is_float or (fn == "abs" and a.dtype.kind == "int"))), None)
            if bad is None:
                return None
            return "math intrinsic on non-float", (
                f"`{fn}` takes floats{' or signed integers' if fn == 'abs' else ''} but `{expr_str(bad)}` is "
                f"{bad.dtype.short}; convert it first, e.g. `{fn}(f32({expr_str(bad)}))`")
        case ir.Load(buffer=b, indices=idx):
            return _index_problem(b, idx, exact=True)
        case ir.Shuffle(kind=k) if k not in ir.SHUFFLE_KINDS:
            return "unknown operation", f"shuffle kind {k!r}; expected one of {ir.SHUFFLE_KINDS}"
        case ir.Shuffle(lane=lane) if not lane.dtype.is_integer:
            return "index is not an integer", f"the shuffle lane `{expr_str(lane)}` is {lane.dtype.short}"
        case ir.Shuffle(width=w) if w not in SHUFFLE_WIDTHS:
            return "invalid shuffle width", f"width={w}; it must be a power of two from 1 to 32 (SPEC §5.6)"
    return None


def _not_bool(what: str, e: ir.Expr) -> tuple[str, str]:
    return "condition is not bool", (f"{what}, `{expr_str(e)}`, is {e.dtype.short}; compare it explicitly, "
                                     f"e.g. `{expr_str(e)} != 0`")


def _bitwise(e, bad) -> tuple[str, str]:
    return "bitwise operation on non-integer", (
        f"`{expr_str(e)}` needs integer operands but `{expr_str(bad)}` is {bad.dtype.short}; convert it with "
        f"an explicit cast, e.g. `i32({expr_str(bad)})`")


def _index_problem(buf: ir.Buffer, idx, exact: bool) -> tuple[str, str] | None:
    if len(idx) > buf.ndim or (exact and len(idx) != buf.ndim):
        want = f"exactly {buf.ndim}" if exact else f"at most {buf.ndim}"
        return "wrong number of indices", (
            f"`{buf.name}` has {buf.ndim} dimension(s) but is indexed with {len(idx)} index(es); "
            f"an element access takes {want}")
    bad = next((i for i in idx if not i.dtype.is_integer), None)
    if bad is not None:
        return "index is not an integer", (f"index `{expr_str(bad)}` of `{buf.name}` is {bad.dtype.short}; "
                                           f"indices must be integers, e.g. `i32({expr_str(bad)})`")
    return None


def _const_problem(c: ir.Const) -> tuple[str, str] | None:
    t, v = c.type, c.value
    if t is dt.boolean:
        ok = isinstance(v, bool)
    elif t.is_integer:
        lo, hi = t.min, t.max
        ok = isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi
        if isinstance(v, int) and not ok:
            hint = f" (for all bits set write {hex(hi)})" if v == -1 and t.kind == "uint" else ""
            return "constant out of range", (f"{v} does not fit {t.short}, whose range is [{lo}, {hi}]; write "
                                             f"a value in range{hint} or use a wider type")
    else:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        if ok and math.isfinite(v) and not math.isfinite(dt.round_to(v, t)):
            return "constant out of range", (f"{v!r} overflows {t.short} to infinity; write float('inf') if "
                                             "infinity is meant, or use a wider type")
    return None if ok else ("constant out of range", f"{v!r} is not a value of type {t.short} (malformed IR)")


def _stmt(kernel, s) -> None:
    problem = _stmt_problem(s)
    if problem is not None:
        raise fail(kernel, *problem[:2], problem[2] if len(problem) > 2 else s, s)


def _stmt_problem(s):
    """(phrase, detail[, node]) for an ill-typed statement, None if it is fine."""
    match s:
        case ir.DeclareVar(var=v, init=init) if init is not None and init.dtype != v.dtype:
            return _mismatch(f"`{v.name}`", v.dtype, init)
        case ir.Assign(var=v, value=x) if x.dtype != v.dtype:
            return _mismatch(f"`{v.name}`", v.dtype, x)
        case ir.Store(buffer=b, indices=idx, value=x):
            return _index_problem(b, idx, exact=True) or (
                _mismatch(f"an element of `{b.name}`", b.dtype, x) if x.dtype != b.dtype else None)
        case ir.For(var=v, start=a, stop=b, step=c):
            bad = next((x for x in (a, b, c, v) if not x.dtype.is_integer), None)
            if bad is not None:
                return "loop bound is not an integer", (f"range bound / loop variable `{expr_str(bad)}` is "
                                                        f"{bad.dtype.short}; range() loops count in integers")
            if const_value(c) == 0:
                return "loop step is zero", "range() with step 0 never terminates (SPEC §5.2)", c
        case ir.ForTask(vars=vs, mapping=m, worker=w):
            if len(vs) != m.ndim:
                return "task mapping arity mismatch", (f"{m} has {m.ndim} dimension(s) but the loop binds "
                                                       f"{len(vs)} variable(s); bind one per dimension")
            if not w.dtype.is_integer:
                return "loop bound is not an integer", f"the task worker `{expr_str(w)}` is {w.dtype.short}"
            bad = next((v for v in vs if v.dtype is not dt.int32), None)
            if bad is not None:
                return "type mismatch", f"task variable `{bad.name}` must be i32, not {bad.dtype.short}"
        case ir.If(cond=c) | ir.While(cond=c) | ir.Assert(cond=c) | ir.CpAsync(valid=ir.Expr() as c) \
                if c.dtype is not dt.boolean:
            return _not_bool("the condition", c)
        case ir.Atomic():
            return _atomic_problem(s)
    for r in refs(s):
        problem = _index_problem(r.buffer, r.indices, exact=False)
        if problem is not None:
            return (*problem, r)
    return None


def _atomic_problem(s: ir.Atomic):
    t = s.target.buffer
    if s.op not in ir.ATOMIC_OPS:
        return "unknown operation", f"atomic_{s.op}; expected one of {', '.join(ir.ATOMIC_OPS)}"
    if (s.op == "cas") != (s.compare is not None):
        return "unknown operation", "atomic_cas (and only it) takes a compare value"
    problem = _index_problem(t, s.target.indices, exact=True)
    if problem is not None:
        return (*problem, s.target)
    for x in (s.value, s.compare):
        if x is not None and x.dtype != t.dtype:
            return _mismatch(f"atomic_{s.op} on `{t.name}`", t.dtype, x)
    if s.result is not None and s.result.dtype != t.dtype:
        return "type mismatch", (f"`{s.result.name}` ({s.result.dtype.short}) receives the old {t.dtype.short} "
                                 f"value of atomic_{s.op}; assign it to a new variable and convert that")
    return None


def _mismatch(target: str, want: dt.DType, value: ir.Expr):
    return "type mismatch", (f"{target} has type {want.short} but the value `{expr_str(value)}` is "
                             f"{value.dtype.short}; insert `{want.short}(...)` (the front end does this for "
                             "DSL code, so this IR was built by hand)")
