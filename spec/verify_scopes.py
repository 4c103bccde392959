"""Names and scopes (SPEC.md §9.2): every variable and tensor is used only where it is declared,
with the type it was declared with; names are unique within a kernel; kernel parameters and
loop variables are never assigned; a tensor parameter declared In is never written."""
from __future__ import annotations

from . import ir
from .printer import buffer_decl, param_type
from .verify_common import bodies, fail, own_exprs, refs, statements, where


def check_scopes(kernel: ir.Kernel) -> None:
    declared: set[str] = set()
    scope: dict[str, ir.Var | ir.Buffer] = {}
    readonly = {p.name: "kernel parameter" for p in kernel.scalar_params}
    for p in kernel.params:
        _declare(kernel, p, p, scope, declared)
    for p in kernel.buffer_params:
        for e in p.shape:
            _check_uses(kernel, e, scope, p)
    _block(kernel, kernel.body, scope, declared, readonly)
    _check_directions(kernel)


def _check_directions(kernel) -> None:
    inputs = {p.name: p for p in kernel.buffer_params if p.direction == "in"}
    for s in statements(kernel.body):
        written = sorted(ir.written_buffers(s) & inputs.keys()) if inputs and not bodies(s) else ()
        if written:
            p = inputs[written[0]]
            raise fail(kernel, "write to input tensor",
                       f"`{p.name}` is declared {param_type(p)}{where(p)}, read only, but this statement "
                       "writes it; declare it InOut[...] if the kernel updates it, Out[...] if it only writes "
                       "it, or drop the declaration to have it inferred", s)


def _block(kernel, body, scope, declared, readonly) -> None:
    scope = dict(scope)                      # names declared in a block die with it
    for s in body:
        for e in own_exprs(s):
            _check_uses(kernel, e, scope, s)
        for r in refs(s):
            _resolve(kernel, r.buffer, scope, s)
        match s:
            case ir.DeclareVar(var=v):
                _declare(kernel, v, s, scope, declared)
            case ir.DeclareBuffer(buffer=b):
                _declare(kernel, b, s, scope, declared)
            case ir.Store(buffer=b):
                _resolve(kernel, b, scope, s)
            case ir.Assign(var=v) | ir.Atomic(result=ir.Var() as v):
                _resolve(kernel, v, scope, s)
                if v.name in readonly:
                    raise fail(kernel, f"assignment to {readonly[v.name]}",
                               f"`{v.name}` is a {readonly[v.name]} and cannot be assigned; "
                               f"copy it into a new local first (`x = {v.name}`) and update that", s)
            case ir.For(var=v, body=b):
                _loop(kernel, (v,), s, b, scope, declared, readonly)
                continue
            case ir.ForTask(vars=vs, body=b):
                _loop(kernel, vs, s, b, scope, declared, readonly)
                continue
        for b in bodies(s):
            _block(kernel, b, scope, declared, readonly)


def _loop(kernel, loop_vars, stmt, body, scope, declared, readonly) -> None:
    inner = dict(scope)
    for v in loop_vars:
        _declare(kernel, v, stmt, inner, declared)
    _block(kernel, body, inner, declared, readonly | {v.name: "loop variable" for v in loop_vars})


def _declare(kernel, node, stmt, scope, declared) -> None:
    if node.name in declared:
        raise fail(kernel, "duplicate name",
                   f"`{node.name}` is declared twice in kernel {kernel.name}; every variable and tensor "
                   "needs its own name (the DSL front end renames reused Python names)", stmt)
    declared.add(node.name)
    scope[node.name] = node


def _check_uses(kernel, expr, scope, stmt) -> None:
    for n in ir.walk(expr):
        if isinstance(n, (ir.Var, ir.Buffer)):
            _resolve(kernel, n, scope, stmt)


def _resolve(kernel, node, scope, stmt) -> None:
    what = "variable" if isinstance(node, ir.Var) else "tensor"
    found = scope.get(node.name)
    if found is None or isinstance(found, ir.Var) != isinstance(node, ir.Var):
        raise fail(kernel, f"undeclared {what}",
                   f"{what} `{node.name}` is used outside the scope that declares it; declare it before "
                   "the enclosing if/for/while block (SPEC §8: names are block scoped)", node, stmt)
    if found != node:
        declared_as = _describe(found)
        raise fail(kernel, "type mismatch",
                   f"`{node.name}` is declared as {declared_as}{where(found)} but used as {_describe(node)}; "
                   "every use must carry the declared type (malformed IR)", node, stmt)


def _describe(node) -> str:
    return node.dtype.short if isinstance(node, ir.Var) else buffer_decl(node)
