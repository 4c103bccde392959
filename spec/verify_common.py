"""Shared pieces of the verifier's checks (SPEC.md §9): error construction and the statement
structure every check walks (a statement's own expressions versus its nested bodies)."""
from __future__ import annotations

import math

from . import ir
from . import printer
from .errors import VerifyError


def fail(kernel: ir.Kernel, phrase: str, detail: str, node, at=None) -> VerifyError:
    """The error for `node`, inside `at` (its statement or declaration). The IR window marks the
    statement (the kernel header for parameters and launch dimensions). `at` stands in for the
    location where `node` has none, and for a name (Var, Buffer): one object serves every use
    of a name and carries its declaration's location."""
    if at is not None and (getattr(node, "loc", None) is None or isinstance(node, (ir.Var, ir.Buffer))):
        node = at
    marked = at if isinstance(at, ir.Stmt) else node if isinstance(node, ir.Stmt) else kernel
    return VerifyError(phrase, detail, node=node, window=printer.window(kernel, marked), kernel=kernel.name)


def refs(stmt: ir.Stmt) -> tuple[ir.Ref, ...]:
    match stmt:
        case ir.CpAsync(dst=d, src=s) | ir.LdMatrix(dst=d, src=s):
            return (d, s)
        case ir.MmaSync(a=a, b=b, acc=c):
            return (a, b, c)
        case ir.Atomic(target=t):
            return (t,)
    return ()


def own_exprs(stmt: ir.Stmt) -> tuple[ir.Expr, ...]:
    """The expressions a statement evaluates itself (not those of its nested bodies)."""
    match stmt:
        case ir.DeclareVar(init=init):
            return () if init is None else (init,)
        case ir.Assign(value=v):
            return (v,)
        case ir.DeclareBuffer(buffer=b):
            return buffer_exprs(b)
        case ir.Store(indices=idx, value=v):
            return (*idx, v)
        case ir.For(start=a, stop=b, step=c):
            return (a, b, c)
        case ir.ForTask(worker=w):
            return (w,)
        case ir.If(cond=c) | ir.While(cond=c) | ir.Assert(cond=c):
            return (c,)
        case ir.CpAsync(valid=v):
            return tuple(i for r in refs(stmt) for i in r.indices) + (() if v is None else (v,))
        case ir.Atomic(value=v, compare=c):
            return tuple(i for r in refs(stmt) for i in r.indices) + (v,) + (() if c is None else (c,))
    return tuple(i for r in refs(stmt) for i in r.indices)


def bodies(stmt: ir.Stmt) -> tuple[tuple[ir.Stmt, ...], ...]:
    match stmt:
        case ir.For(body=b) | ir.ForTask(body=b) | ir.While(body=b):
            return (b,)
        case ir.If(then=t, orelse=e):
            return (t, e)
    return ()


def statements(body):
    """Every statement of `body`, nested ones included, in program order."""
    for s in body:
        yield s
        for b in bodies(s):
            yield from statements(b)


def buffer_exprs(b: ir.Buffer) -> tuple[ir.Expr, ...]:
    strides = b.layout.strides if isinstance(b.layout, ir.Strided) else ()
    return (*b.shape, *strides)


def const_value(e: ir.Expr):
    """The value of a constant expression (literals and integer arithmetic on them), else None."""
    match e:
        case ir.Const(value=v):
            return v
        case ir.Binary(op=op, a=a, b=b):
            x, y = const_value(a), const_value(b)
            if x is None or y is None:
                return None
            folded = ir.fold(op, ir.Const(x, a.dtype), ir.Const(y, b.dtype))
            return None if folded is None else folded.value
    return None


def non_parameter(e: ir.Expr, scalars: set[str]):
    """The first node of `e` that is neither a constant nor a scalar parameter (nor arithmetic
    on them), or None: what launch dimensions and tensor shapes may not use."""
    return next((n for n in ir.walk(e) if isinstance(n, (ir.Special, ir.Load, ir.Shuffle, ir.Call))
                 or (isinstance(n, ir.Var) and n.name not in scalars)), None)


def view_elements(ref: ir.Ref) -> int | None:
    """Elements of the sub-tensor a Ref starts (1 for an element), None if not constant."""
    dims = [const_value(d) for d in ref.buffer.shape[len(ref.indices):]]
    return None if None in dims else math.prod(dims)


def where(node) -> str:
    loc = getattr(node, "loc", None)
    return f" ({loc})" if loc else ""
