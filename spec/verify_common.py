"""Shared pieces of the verifier's checks (SPEC.md §9): error construction and the statement
structure every check walks (a statement's own expressions versus its nested bodies)."""
from __future__ import annotations

import dataclasses
import functools
import math
import typing

from . import ir
from . import printer
from . import semantics
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


# A statement field's role, from its declared type: an expression the statement evaluates, an
# address (whose indices it evaluates), a nested body, a name it declares, assigns or stores
# to, or a compile-time attribute (an int, a string, a task mapping). First match wins: a Var
# is an Expr, but a Var-typed field names a variable rather than reading it.
_ROLES = ((ir.Var, "name"), (ir.Buffer, "name"), (ir.Ref, "ref"), (ir.Expr, "expr"), (ir.Stmt, "body"))


@functools.cache
def field_roles(cls: type) -> tuple[tuple[str, str], ...]:
    """(field, role) of a statement class in field order. A field holding IR nodes of a kind
    with no role is a TypeError, so no new statement's field escapes the checks."""
    hints = typing.get_type_hints(cls)
    return tuple((f.name, _role(cls, f.name, hints[f.name])) for f in dataclasses.fields(cls) if f.name != "loc")


def _role(cls, name: str, hint) -> str:
    if typing.get_origin(hint) is tuple:                  # tuple[X, ...]
        hint = typing.get_args(hint)[0]
    kinds = [t for t in typing.get_args(hint) or (hint,) if t is not type(None)]
    roles = {next((r for base, r in _ROLES if issubclass(t, base)), None) for t in kinds if isinstance(t, type)}
    roles.discard(None)
    nodes = [t for t in kinds if isinstance(t, type) and issubclass(t, ir.Node)]
    if len(roles) == 1 and len(nodes) == len(kinds):
        return roles.pop()
    if not nodes:
        return "static"
    raise TypeError(f"{cls.__name__}.{name}: the verifier does not know the role of a {hint} field")


def _values(stmt: ir.Stmt, *roles: str):
    """(role, node) for the nodes in `stmt`'s fields of those roles, in field order (a tuple
    field gives its items)."""
    for name, role in field_roles(type(stmt)):
        v = getattr(stmt, name)
        if role in roles and v is not None:
            yield from ((role, x) for x in (v if isinstance(v, tuple) else (v,)))


def refs(stmt: ir.Stmt) -> tuple[ir.Ref, ...]:
    return tuple(r for _, r in _values(stmt, "ref"))


def own_exprs(stmt: ir.Stmt) -> tuple[ir.Expr, ...]:
    """The expressions a statement evaluates itself (not those of its nested bodies), in field
    order; an address contributes its indices, a tensor declaration its shape and strides."""
    out = []
    for role, v in _values(stmt, "expr", "ref"):
        out.extend(v.indices if role == "ref" else (v,))
    if isinstance(stmt, ir.DeclareBuffer):       # a declaration allocates: it evaluates the shape
        out.extend(buffer_exprs(stmt.buffer))
    return tuple(out)


def bodies(stmt: ir.Stmt) -> tuple[tuple[ir.Stmt, ...], ...]:
    return tuple(getattr(stmt, name) for name, role in field_roles(type(stmt)) if role == "body")


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
    """The value of a constant expression (spec.semantics), else None (it reads a variable, or
    it traps: left to run time)."""
    try:
        return semantics.evaluate(e, {})
    except (semantics.Unknown, semantics.Trap):
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
