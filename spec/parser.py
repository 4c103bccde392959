"""DSL front end: a decorated Python function's AST -> Kernel IR (SPEC.md §8).

Names in the kernel body resolve, in order, to kernel locals and parameters, then to the
function's closure and module globals. Python values (ints, floats, task mappings, dtypes)
are compile-time constants: arithmetic on them and calls of ordinary Python functions with
only such arguments run at decoration time, so schedules can be parameterized freely.
"""
from __future__ import annotations

import ast
import builtins
import difflib
import inspect
import operator
import textwrap

from . import dtypes as dt
from . import ir
from . import lang
from .errors import DSLError
from .mapping import TaskMapping
from .printer import expr_str

_UNSUPPORTED_HINTS = {
    ast.Return: "kernels cannot return early; guard the rest of the body with an `if`",
    ast.Break: "`break` is not supported; use a `while` loop with a flag",
    ast.Continue: "`continue` is not supported; guard the rest of the loop body with an `if`",
    ast.With: "`with` is not supported in kernels",
    ast.Try: "exceptions are not supported in kernels; use `assert` for checks",
    ast.FunctionDef: "define helper functions outside the kernel (they run at compile time)",
    ast.Lambda: "lambdas are not supported inside kernels",
    ast.ListComp: "comprehensions are not supported; write a loop",
    ast.Global: "`global` is not supported; pass data as a parameter",
    ast.Nonlocal: "`nonlocal` is not supported",
    ast.Delete: "`del` is not supported",
    ast.Import: "import at module level, outside the kernel",
    ast.ImportFrom: "import at module level, outside the kernel",
}
_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Mod: "%", ast.BitAnd: "&",
           ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>"}
_CMPOPS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}
_ATOMICS = {"atomic_add": "add", "atomic_max": "max", "atomic_min": "min",
            "atomic_exch": "exch", "atomic_cas": "cas"}
_SHUFFLES = {"shfl_xor": "xor", "shfl_down": "down", "shfl_up": "up", "shfl_idx": "idx"}
_COMPILE_TIME = (int, float, bool, str, TaskMapping, dt.DType, ir.Swizzle, type(None))


def parse_kernel(fn, grid=1, block=1, name: str | None = None, scope: dict | None = None) -> ir.Kernel:
    """scope: the defining function's locals, for names that only annotations mention."""
    return _Parser(fn, scope or {}).kernel(grid, block, name)


class _Parser:
    def __init__(self, fn, scope: dict):
        self.fn = fn
        self.file = inspect.getsourcefile(fn) or "<unknown>"
        lines, first = inspect.getsourcelines(fn)
        self.lines = lines
        self.line_offset = first - 1
        tree = ast.parse(textwrap.dedent("".join(lines)))
        self.func = tree.body[0]
        closure = inspect.getclosurevars(fn)
        self.env = {**vars(builtins), **fn.__globals__, **scope, **closure.nonlocals}
        self.scopes: list[dict] = [{}]
        self.ended: dict[str, int] = {}     # name -> line: declared in a block that has ended
        self.used_names: set[str] = set()

    # ------------------------------------------------------------ helpers
    def loc(self, node) -> ir.Loc:
        return ir.Loc(self.file, node.lineno + self.line_offset, node.col_offset + 1)

    def error(self, node, message: str, hint: str = "") -> DSLError:
        line = self.lines[node.lineno - 1] if 0 < node.lineno <= len(self.lines) else ""
        return DSLError(message, self.loc(node), hint, line)

    def fresh(self, name: str) -> str:
        """Unique within the kernel, so every Var/Buffer object names one storage location (the
        node's `origin` keeps `name`, for messages)."""
        out, n = name, 0
        while out in self.used_names:
            n += 1
            out = f"{name}_{n}"
        self.used_names.add(out)
        return out

    def lookup(self, name: str, node):
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        if name in self.env:
            return self.env[name]
        raise self.error(node, f"name {name!r} is not defined", self.undefined_hint(name))

    def undefined_hint(self, name: str) -> str:
        if name in self.ended:
            return (f"{name!r} is declared inside the block at line {self.ended[name]} and is local to it; "
                    f"declare it before that block (e.g. `{name} = 0.0`) to use it afterwards")
        if name in lang.__all__:
            return f"{name} is part of the DSL: add it to `from taskmap.lang import ...`"
        known = {n for scope in self.scopes for n in scope} | set(lang.__all__) | \
            {n for n in self.env if not n.startswith("_")}
        close = difflib.get_close_matches(name, known, n=1)
        if not close:
            return ""
        imported = any(close[0] in scope for scope in self.scopes) or close[0] in self.env
        return f"did you mean {close[0]!r}?" + ("" if imported else " (import it from taskmap.lang)")

    def bind(self, name: str, value):
        self.scopes[-1][name] = value

    def scoped(self, names: dict, stmts) -> tuple[ir.Stmt, ...]:
        """Parse stmts as a block in which `names` are bound (loop variables); every name
        bound in it ends with it."""
        self.scopes.append(dict(names))
        try:
            out = []
            for s in stmts:
                out.extend(self.stmt(s))
            return tuple(out)
        finally:
            for name, value in self.scopes.pop().items():
                loc = getattr(value, "loc", None)
                if loc is not None:
                    self.ended.setdefault(name, loc.line)

    def block(self, stmts) -> tuple[ir.Stmt, ...]:
        return self.scoped({}, stmts)

    def expr(self, node, like: dt.DType | None = None) -> ir.Expr:
        v = self.scalar(node, self.value(node))
        if isinstance(v, ir.Expr):
            return v
        e = ir.as_expr(v, like)
        return ir.Const(e.value, e.dtype, loc=self.loc(node))

    def scalar(self, node, v):
        """v (the value of node) if it is a scalar expression or number, else the error."""
        if isinstance(v, (ir.Expr, bool, int, float)):
            return v
        what, hint = _describe(ast.unparse(node), v)
        raise self.error(node, f"expected a scalar expression, got {what}", hint)

    def at_compile_time(self, node, compute):
        """Evaluate a compile-time operation (Python semantics); its exception is the kernel's error."""
        try:
            return compute()
        except Exception as e:
            raise self.error(node, f"`{ast.unparse(node)}` failed at compile time: {type(e).__name__}: {e}") from None

    def const_int(self, node, what: str) -> int:
        v = self.value(node)
        if isinstance(v, bool) or not isinstance(v, int):
            got = f"`{ast.unparse(node)}` is a runtime value" if isinstance(v, ir.Expr) else f"got {v!r}"
            raise self.error(node, f"{what} must be a compile-time integer, {got}")
        return v

    def convert(self, value: ir.Expr, to: dt.DType, node) -> ir.Expr:
        """Implicit conversion on assignment and store (SPEC.md §2.4)."""
        if value.dtype == to:
            return value
        if isinstance(value, ir.Const):
            return ir.Const(ir.const(value.value, to).value, to, loc=value.loc)
        return ir.Cast(value, to, loc=self.loc(node))

    # ------------------------------------------------------------ kernel
    def kernel(self, grid, block, name) -> ir.Kernel:
        f = self.func
        if not isinstance(f, ast.FunctionDef):
            raise self.error(f, "@kernel must decorate a plain `def` function")
        if f.args.vararg or f.args.kwarg or f.args.kwonlyargs or f.args.defaults:
            raise self.error(f, "kernel parameters must be plain positional parameters with annotations")
        params = []
        for a in f.args.args:
            if a.annotation is None:
                raise self.error(a, f"parameter {a.arg!r} needs a type annotation",
                                 "write `n: i32` for a scalar or `x: f32[n]` for a tensor")
            p = self.param(a)
            self.used_names.add(p.name)
            self.bind(a.arg, p)
            params.append(p)
        scalars = {p.name: p for p in params if isinstance(p, ir.Var)}
        body = self.block(f.body)
        return ir.Kernel(name or f.name, tuple(params), self.launch_dims(grid, scalars, "grid", f),
                         self.launch_dims(block, scalars, "block", f), body, loc=self.loc(f))

    def param(self, a: ast.arg):
        ann = a.annotation
        if isinstance(ann, ast.Constant) and isinstance(ann.value, str):
            ann = ast.parse(ann.value, mode="eval").body
            ast.copy_location(ann, a.annotation)
            ast.fix_missing_locations(ann)
        direction = None
        if isinstance(ann, ast.Subscript) and isinstance(marker := self.value(ann.value), lang.Direction):
            direction, ann = marker.direction, ann.slice          # In[...], Out[...], InOut[...]
            if not isinstance(ann, ast.Subscript):
                raise self.error(ann, f"{marker}[...] takes a tensor type, got {ast.unparse(ann)}",
                                 f"write `{a.arg}: {marker}[f32[n]]`; scalar parameters are always inputs")
        if isinstance(ann, ast.Subscript):
            dtype = self.value(ann.value)
            if not isinstance(dtype, dt.DType):
                raise self.error(ann, f"tensor annotation must be dtype[shape], got {ast.unparse(ann)}")
            dims = ann.slice.elts if isinstance(ann.slice, ast.Tuple) else [ann.slice]
            shape = tuple(self.expr(d) for d in dims)
            return ir.Buffer(a.arg, dtype, shape, "global", direction=direction, loc=self.loc(a), origin=a.arg)
        dtype = self.value(ann)
        if not isinstance(dtype, dt.DType):
            instead = {int: "i32", float: "f32", bool: "boolean"}.get(dtype) if isinstance(dtype, type) else None
            raise self.error(ann, f"unknown parameter type {ast.unparse(ann)}",
                             f"write {instead} for a Python {dtype.__name__}" if instead else
                             "use a dtype such as i32 or a tensor type such as f32[m, n]")
        return ir.Var(a.arg, dtype, loc=self.loc(a), origin=a.arg)

    def launch_dims(self, spec, scalars, what, node) -> tuple:
        if callable(spec):
            sig = inspect.signature(spec)
            missing = [p for p in sig.parameters if p not in scalars]
            if missing:
                raise self.error(node, f"{what}= lambda parameter(s) {missing} are not scalar kernel parameters")
            try:
                spec = spec(*(scalars[p] for p in sig.parameters))
            except Exception as e:
                raise self.error(node, f"{what}= lambda failed: {type(e).__name__}: {e}",
                                 "it receives the scalar parameters as expressions: use arithmetic only") from None
        dims = spec if isinstance(spec, (tuple, list)) else (spec,)
        if not 1 <= len(dims) <= 3:
            raise self.error(node, f"{what}= must have 1 to 3 dimensions, got {len(dims)}")
        bad = next((d for d in dims if isinstance(d, bool) or not isinstance(d, (int, ir.Expr))), None)
        if bad is not None:
            raise self.error(node, f"{what}= extents must be integers or expressions of the scalar parameters, "
                                   f"got {bad!r}", "e.g. grid=lambda n: (n + 255) // 256")
        return tuple(ir.as_expr(d) for d in dims) + (ir.const(1),) * (3 - len(dims))

    # ------------------------------------------------------------ statements
    def stmt(self, s) -> list[ir.Stmt]:
        loc = self.loc(s)
        match s:
            case ast.Expr(value=ast.Constant(value=str())) | ast.Pass():
                return []
            case ast.Expr(value=ast.Call() as call):
                return self.call_stmt(call, None)
            case ast.Assign(targets=[target], value=value):
                return self.assign(target, value, None, s)
            case ast.AnnAssign(target=target, annotation=ann, value=value) if value is not None:
                return self.assign(target, value, ann, s)
            case ast.AugAssign(target=target, op=op, value=value):
                load = ast.copy_location(ast.BinOp(self.as_load(target), op, value), s)
                return self.assign(target, load, None, s, augmented=True)
            case ast.For():
                return [self.for_stmt(s)]
            case ast.If(test=test, body=body, orelse=orelse):
                cond = self.value(test)
                if isinstance(cond, _COMPILE_TIME):      # static if: pick the branch now
                    return list(self.block(body if cond else orelse))
                return [ir.If(self.bool_expr(test, cond), self.block(body), self.block(orelse), loc=loc)]
            case ast.While(test=test, body=body, orelse=orelse):
                if orelse:
                    raise self.error(s, "while/else is not supported")
                return [ir.While(self.bool_expr(test, self.value(test)), self.block(body), loc=loc)]
            case ast.Assert(test=test, msg=msg):
                text = msg.value if isinstance(msg, ast.Constant) else ast.unparse(test)
                return [ir.Assert(self.bool_expr(test, self.value(test)), str(text), loc=loc)]
        hint = _UNSUPPORTED_HINTS.get(type(s), "see SPEC.md §8 for the statements kernels accept")
        raise self.error(s, f"unsupported statement `{type(s).__name__}` in kernel", hint)

    def as_load(self, target):
        t = ast.copy_location(type(target)(**{**{f: getattr(target, f) for f in target._fields}, "ctx": ast.Load()}), target)
        return t

    def bool_expr(self, node, v) -> ir.Expr:
        e = v if isinstance(v, ir.Expr) else self.expr(node)
        return e if e.dtype == dt.boolean else ir.Binary("!=", e, ir.const(0, e.dtype), loc=self.loc(node))

    def assign(self, target, value_node, ann, s, augmented=False) -> list[ir.Stmt]:
        loc = self.loc(s)
        if isinstance(target, ast.Subscript):
            buf = self.value(target.value)
            if not isinstance(buf, ir.Buffer):
                raise self.error(target, f"cannot store into {ast.unparse(target.value)}: not a tensor")
            idx = self.indices(target)
            return [ir.Store(buf, idx, self.convert(self.expr(value_node, buf.dtype), buf.dtype, s), loc=loc)]
        if not isinstance(target, ast.Name):
            raise self.error(target, "only `name = ...` and `tensor[i, ...] = ...` assignments are supported",
                             "unpack tuples into separate assignments")
        name = target.id
        existing = next((sc[name] for sc in reversed(self.scopes) if name in sc), None)
        if isinstance(value_node, ast.Call) and self.intrinsic_name(value_node) in _ATOMICS:
            return self.atomic_assign(name, existing, value_node, s)
        if isinstance(value_node, ast.Call) and self.intrinsic_name(value_node) in ("shared_tensor", "register_tensor"):
            if existing is not None:
                raise self.error(s, f"{name!r} is already defined; tensors cannot be re-bound")
            buf = self.tensor_decl(value_node, name)
            self.bind(name, buf)
            return [ir.DeclareBuffer(buf, loc=loc)]
        if isinstance(existing, ir.Var) and ann is None:
            if existing in self.params_set():
                raise self.error(s, f"cannot assign to kernel parameter {name!r}", "copy it into a local first")
            return [ir.Assign(existing, self.convert(self.expr(value_node, existing.dtype), existing.dtype, s), loc=loc)]
        if existing is not None and ann is None and not isinstance(existing, _COMPILE_TIME):
            what, _ = _describe(name, existing)
            raise self.error(s, f"cannot assign to {name!r}: it is {what}", "assign to a new name")
        value = self.value(value_node)
        if ann is None and isinstance(value, (TaskMapping, dt.DType, ir.Swizzle)):
            self.bind(name, value)           # compile-time alias, e.g. m = spatial(4, 8)
            return []
        dtype = self.value(ann) if ann is not None else None
        if ann is not None and not isinstance(dtype, dt.DType):
            raise self.error(ann, f"a local's annotation must be a dtype, got {ast.unparse(ann)}")
        init = self.expr(value_node, dtype)
        var = ir.Var(self.fresh(name), dtype or init.dtype, loc=loc, origin=name)
        self.bind(name, var)
        return [ir.DeclareVar(var, self.convert(init, var.dtype, s), loc=loc)]

    def params_set(self):
        return set(v for v in self.scopes[0].values() if isinstance(v, ir.Var))

    def tensor_decl(self, call, name) -> ir.Buffer:
        scope = "shared" if self.intrinsic_name(call) == "shared_tensor" else "register"
        kw = {k.arg: k.value for k in call.keywords}
        if len(call.args) != 2 or set(kw) - {"layout"}:
            raise self.error(call, f"expected {scope}_tensor(dtype, [d0, d1, ...], layout=None)")
        dtype = self.value(call.args[0])
        if not isinstance(dtype, dt.DType):
            raise self.error(call.args[0], f"first argument must be a dtype, got {ast.unparse(call.args[0])}")
        dims = call.args[1].elts if isinstance(call.args[1], (ast.List, ast.Tuple)) else [call.args[1]]
        layout = self.value(kw["layout"]) if "layout" in kw else ir.RowMajor()
        if layout is None:
            layout = ir.RowMajor()
        return ir.Buffer(self.fresh(name), dtype, tuple(self.expr(d) for d in dims), scope, layout, loc=self.loc(call),
                         origin=name)

    def for_stmt(self, s: ast.For) -> ir.Stmt:
        loc = self.loc(s)
        if s.orelse:
            raise self.error(s, "for/else is not supported")
        it = s.iter
        names = [t.id for t in s.target.elts] if isinstance(s.target, ast.Tuple) else [getattr(s.target, "id", None)]
        if None in names:
            raise self.error(s.target, "loop targets must be plain names")
        if isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and self.lookup(it.func.id, it) is range:
            if len(names) != 1:
                raise self.error(s.target, "range() loops take a single loop variable")
            kw = {k.arg: k.value for k in it.keywords}
            if set(kw) - {"unroll"} or not 1 <= len(it.args) <= 3:
                raise self.error(it, "expected range(stop), range(start, stop[, step]) with optional unroll=")
            args = [self.expr(a) for a in it.args]
            start, stop, step = (ir.const(0), args[0], ir.const(1)) if len(args) == 1 else (*args, ir.const(1))[:3]
            unroll = self.value(kw["unroll"]) if "unroll" in kw else False
            if not isinstance(unroll, int):
                raise self.error(kw["unroll"], "unroll= must be a compile-time bool or int")
            itype = dt.promote(dt.promote(start.dtype, stop.dtype), step.dtype)
            var = ir.Var(self.fresh(names[0]), itype, loc=loc, origin=names[0])
            body = self.scoped({names[0]: var}, s.body)
            return ir.For(var, start, stop, step, body, unroll, loc=loc)
        if isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute) and it.func.attr == "on":
            mapping = self.value(it.func.value)
            if not isinstance(mapping, TaskMapping):
                raise self.error(it, f"`.on()` needs a task mapping, got {ast.unparse(it.func.value)}")
            if len(it.args) != 1 or it.keywords:
                raise self.error(it, "expected mapping.on(worker_index)")
            if len(names) != mapping.ndim:
                raise self.error(s.target, f"{mapping} has {mapping.ndim} dimension(s) but the loop "
                                           f"binds {len(names)} variable(s)")
            worker = self.expr(it.args[0])
            vars_ = tuple(ir.Var(self.fresh(n), dt.int32, loc=loc, origin=n) for n in names)
            body = self.scoped(dict(zip(names, vars_)), s.body)
            return ir.ForTask(vars_, mapping, worker, body, loc=loc)
        raise self.error(it, f"cannot iterate over {ast.unparse(it)}",
                         "loop over range(...) or a task mapping's .on(worker)")

    # ------------------------------------------------------------ intrinsic calls
    def intrinsic_name(self, call: ast.Call) -> str | None:
        try:
            f = self.value(call.func)
        except DSLError:
            return None
        return f.name if isinstance(f, lang.Intrinsic) else None

    def ref(self, node) -> ir.Ref:
        if isinstance(node, ast.Subscript):
            buf = self.value(node.value)
            idx = self.indices(node)
        else:
            buf, idx = self.value(node), ()
        if not isinstance(buf, ir.Buffer):
            raise self.error(node, f"expected a tensor element or sub-tensor, got {ast.unparse(node)}")
        return ir.Ref(buf, idx, loc=self.loc(node))

    def kwargs(self, call, allowed: dict) -> dict:
        out = dict(allowed)
        for k in call.keywords:
            if k.arg not in allowed:
                raise self.error(k.value, f"unexpected keyword {k.arg!r}; allowed: {', '.join(allowed) or 'none'}")
            out[k.arg] = k.value
        return out

    def wgmma(self, call: ast.Call, arity) -> ir.Wgmma:
        """wgmma(acc[...], a, b, n=N): `a` a register view or a wgmma_desc(...), `b` a wgmma_desc(...)."""
        arity(3, keywords=True)
        kw = self.kwargs(call, {"n": None})
        if kw["n"] is None:
            raise self.error(call, "wgmma() needs n=: the N of the m64nNk16 shape", lang.wgmma.__doc__)
        acc, a, b = call.args
        if not self.is_desc(b):
            raise self.error(b, "wgmma's b operand must be a wgmma_desc(...) of a shared tensor", lang.wgmma_desc.__doc__)
        b_ref, b_lbo, b_sbo, b_swizzle = self.desc(b)
        fields = dict(b_lbo=b_lbo, b_sbo=b_sbo, b_swizzle=b_swizzle)
        if self.is_desc(a):
            a_ref, fields["a_lbo"], fields["a_sbo"], fields["a_swizzle"] = self.desc(a)
        else:
            a_ref = self.ref(a)
        return ir.Wgmma(self.ref(acc), a_ref, b_ref, self.const_int(kw["n"], "n"), **fields, loc=self.loc(call))

    def is_desc(self, node) -> bool:
        return isinstance(node, ast.Call) and self.intrinsic_name(node) == "wgmma_desc"

    def desc(self, call: ast.Call):
        """The parts of wgmma_desc(s[row, k], sbo=..., swizzle=..., lbo=16)."""
        kw = self.kwargs(call, {"sbo": None, "swizzle": None, "lbo": None})
        if len(call.args) != 1 or kw["sbo"] is None or kw["swizzle"] is None:
            raise self.error(call, "wgmma_desc() takes one shared element and the keywords sbo= and swizzle= "
                             "(lbo= defaults to 16)", lang.wgmma_desc.__doc__)
        lbo = ir.const(16) if kw["lbo"] is None else self.expr(kw["lbo"], dt.int32)
        return self.ref(call.args[0]), lbo, self.expr(kw["sbo"], dt.int32), self.const_int(kw["swizzle"], "swizzle")

    def call_stmt(self, call: ast.Call, result) -> list[ir.Stmt]:
        name = self.intrinsic_name(call)
        loc = self.loc(call)
        a = call.args

        def arity(n, keywords=False):
            if len(a) != n:
                raise self.error(call, f"{name}() takes {n} positional argument(s), got {len(a)}",
                                 getattr(lang, name).__doc__ or "")
            if not keywords:
                self.kwargs(call, {})
        if name == "syncthreads":
            arity(0)
            return [ir.SyncThreads(loc=loc)]
        if name == "syncwarp":
            arity(0)
            return [ir.SyncWarp(loc=loc)]
        if name == "cp_async_commit_group":
            arity(0)
            return [ir.CpAsyncCommit(loc=loc)]
        if name == "cp_async_wait_group":
            arity(1)
            return [ir.CpAsyncWait(self.const_int(a[0], "cp_async_wait_group's count"), loc=loc)]
        if name == "cp_async":
            arity(2, keywords=True)
            kw = self.kwargs(call, {"elems": None, "valid": None})
            elems = 1 if kw["elems"] is None else self.const_int(kw["elems"], "elems")
            valid = None if kw["valid"] is None else self.bool_expr(kw["valid"], self.value(kw["valid"]))
            return [ir.CpAsync(self.ref(a[0]), self.ref(a[1]), elems, valid, loc=loc)]
        if name == "mbarrier_init":
            arity(2)
            return [ir.MbarrierInit(self.ref(a[0]), self.expr(a[1], dt.int32), loc=loc)]
        if name == "mbarrier_arrive":
            arity(1)
            return [ir.MbarrierArrive(self.ref(a[0]), loc=loc)]
        if name == "mbarrier_arrive_expect_tx":
            arity(2)
            return [ir.MbarrierArrive(self.ref(a[0]), self.expr(a[1], dt.int32), loc=loc)]
        if name == "mbarrier_wait":
            arity(2)
            return [ir.MbarrierWait(self.ref(a[0]), self.expr(a[1], dt.int32), loc=loc)]
        if name == "bulk_copy":
            arity(3, keywords=True)
            kw = self.kwargs(call, {"elems": None})
            if kw["elems"] is None:
                raise self.error(call, "bulk_copy() needs elems=: the number of elements it copies",
                                 getattr(lang, name).__doc__)
            elems = self.const_int(kw["elems"], "elems")
            return [ir.BulkCopy(self.ref(a[0]), self.ref(a[1]), elems, self.ref(a[2]), loc=loc)]
        if name == "tma_load":
            arity(3)
            return [ir.TmaLoad(self.ref(a[0]), self.ref(a[1]), self.ref(a[2]), loc=loc)]
        if name == "tma_store":
            arity(2)
            return [ir.TmaStore(self.ref(a[0]), self.ref(a[1]), loc=loc)]
        if name == "ldmatrix":
            arity(2, keywords=True)
            kw = self.kwargs(call, {"num": None, "trans": None})
            num = 4 if kw["num"] is None else self.const_int(kw["num"], "num")
            trans = False if kw["trans"] is None else bool(self.value(kw["trans"]))
            return [ir.LdMatrix(self.ref(a[0]), self.ref(a[1]), num, trans, loc=loc)]
        if name == "mma_sync":
            arity(3)
            ra, rb, racc = (self.ref(x) for x in a)
            shape = "m16n8k8" if ra.buffer.dtype == dt.float32 else "m16n8k16"
            return [ir.MmaSync(shape, ra, rb, racc, loc=loc)]
        if name == "wgmma_fence":
            arity(0)
            return [ir.WgmmaFence(loc=loc)]
        if name == "wgmma_commit_group":
            arity(0)
            return [ir.WgmmaCommit(loc=loc)]
        if name == "wgmma_wait_group":
            arity(1)
            return [ir.WgmmaWait(self.const_int(a[0], "wgmma_wait_group's count"), loc=loc)]
        if name == "wgmma":
            return [self.wgmma(call, arity)]
        if name in _ATOMICS:
            op = _ATOMICS[name]
            arity(3 if op == "cas" else 2)
            target = self.ref(a[0])
            like = target.buffer.dtype
            compare = self.convert(self.expr(a[1], like), like, call) if op == "cas" else None
            value = self.convert(self.expr(a[-1], like), like, call)       # like a store (§2.4)
            return [ir.Atomic(op, target, value, compare, result, loc=loc)]
        if name is not None:
            raise self.error(call, f"{name}() produces a value; it cannot stand alone as a statement")
        self.value(call.func)                      # an undefined name is the error to report
        raise self.error(call, f"unsupported call statement `{ast.unparse(call.func)}(...)`",
                         "kernels may call taskmap intrinsics (taskmap.lang) as statements")

    def atomic_assign(self, name, existing, call, s) -> list[ir.Stmt]:
        out = []
        if isinstance(existing, ir.Var):
            var = existing
        else:
            target_dtype = self.ref(call.args[0]).buffer.dtype if call.args else dt.int32
            var = ir.Var(self.fresh(name), target_dtype, loc=self.loc(s), origin=name)
            self.bind(name, var)
            out.append(ir.DeclareVar(var, None, loc=self.loc(s)))
        return out + self.call_stmt(call, var)

    # ------------------------------------------------------------ expressions
    def indices(self, sub: ast.Subscript) -> tuple[ir.Expr, ...]:
        s = sub.slice
        elts = s.elts if isinstance(s, ast.Tuple) else [s]
        if any(isinstance(e, ast.Slice) for e in elts):
            raise self.error(sub, "slices are not supported", "index element by element, e.g. in a loop over range(...)")
        return tuple(self.expr(e) for e in elts)

    def value(self, node):
        """Evaluate to an ir.Expr or a compile-time Python value."""
        loc = self.loc(node)
        match node:
            case ast.Constant(value=v):
                return v
            case ast.Name(id=name):
                return self.lookup(name, node)
            case ast.Attribute(value=base, attr=attr):
                obj = self.value(base)
                if isinstance(obj, lang.SpecialGroup):
                    if attr not in "xyz" or len(attr) != 1:
                        raise self.error(node, f"{obj.name} has fields x, y, z, not {attr!r}")
                    return ir.Special(f"{obj.name}.{attr}", loc=loc)
                if isinstance(obj, ir.Expr):
                    raise self.error(node, f"scalar expressions have no attribute {attr!r}")
                if isinstance(obj, ir.Buffer):
                    if attr != "shape":
                        raise self.error(node, f"tensors have no attribute {attr!r}", "`.shape` is the only one")
                    return obj.shape
                try:
                    return getattr(obj, attr)
                except AttributeError:
                    what, _ = _describe(ast.unparse(base), obj)
                    raise self.error(node, f"{what} has no attribute {attr!r}") from None
            case ast.Subscript(value=base):
                obj = self.value(base)
                if isinstance(obj, ir.Buffer):
                    return ir.Load(obj, self.indices(node), loc=loc)
                if isinstance(obj, tuple):
                    i = self.const_int(node.slice, "tuple index")
                    if not -len(obj) <= i < len(obj):
                        raise self.error(node, f"tuple index {i} out of range: {ast.unparse(base)} has "
                                               f"{len(obj)} element(s)")
                    return obj[i]
                if isinstance(obj, dt.DType):
                    raise self.error(node, "tensor types may only appear in parameter annotations")
                raise self.error(node, f"cannot index {ast.unparse(base)}")
            case ast.BinOp(left=l, op=op, right=r):
                return self.binop(node, op, (l, self.value(l)), (r, self.value(r)))
            case ast.UnaryOp(op=op, operand=x):
                v = self.value(x)
                if isinstance(v, _COMPILE_TIME):
                    return self.at_compile_time(node, {ast.USub: lambda: -v, ast.UAdd: lambda: +v,
                                                       ast.Not: lambda: not v, ast.Invert: lambda: ~v}[type(op)])
                if not isinstance(v, ir.Expr):
                    self.expr(x)                          # the error: not a scalar
                if isinstance(op, ast.UAdd):
                    return v
                kind = {ast.USub: "neg", ast.Not: "not", ast.Invert: "invert"}[type(op)]
                return ir.Unary(kind, self.bool_expr(x, v) if kind == "not" else v, loc=loc)
            case ast.BoolOp(op=op, values=vals):
                vs = [self.value(v) for v in vals]
                if all(isinstance(v, _COMPILE_TIME) for v in vs):
                    return all(vs) if isinstance(op, ast.And) else any(vs)
                out = self.bool_expr(vals[0], vs[0])
                for vn, v in zip(vals[1:], vs[1:]):
                    out = ir.Binary("&&" if isinstance(op, ast.And) else "||", out, self.bool_expr(vn, v), loc=loc)
                return out
            case ast.Compare(left=left, ops=ops, comparators=comps):
                parts, lhs = [], (left, self.value(left))
                for op, cn in zip(ops, comps):
                    rhs = (cn, self.value(cn))
                    if type(op) not in _CMPOPS:
                        raise self.error(node, f"unsupported comparison {type(op).__name__}")
                    parts.append(self.binop(node, op, lhs, rhs))
                    lhs = rhs
                if all(isinstance(p, _COMPILE_TIME) for p in parts):
                    return all(parts)
                out = parts[0] if isinstance(parts[0], ir.Expr) else ir.const(bool(parts[0]))
                for p in parts[1:]:
                    out = ir.Binary("&&", out, p if isinstance(p, ir.Expr) else ir.const(bool(p)), loc=loc)
                return out
            case ast.IfExp(test=test, body=body, orelse=orelse):
                c = self.value(test)
                if isinstance(c, _COMPILE_TIME):
                    return self.value(body if c else orelse)
                a, b = self.scalar(body, self.value(body)), self.scalar(orelse, self.value(orelse))
                la = a.dtype if isinstance(a, ir.Expr) else None
                lb = b.dtype if isinstance(b, ir.Expr) else None
                return ir.Select(self.bool_expr(test, c), ir.as_expr(a, lb), ir.as_expr(b, la), loc=loc)
            case ast.Call():
                return self.call_expr(node)
            case ast.Tuple(elts=elts) | ast.List(elts=elts):
                return tuple(self.value(e) for e in elts)
        hint = _UNSUPPORTED_HINTS.get(type(node), "see SPEC.md §8 for the expressions kernels accept")
        raise self.error(node, f"unsupported expression `{type(node).__name__}` in kernel", hint)

    def binop(self, node, op, left: tuple, right: tuple):
        """left, right: (AST node, value) of each operand."""
        loc = self.loc(node)
        a, b = left[1], right[1]
        if type(op) not in _PYTHON_OPS:
            raise self.error(node, f"unsupported operator {type(op).__name__}")
        if isinstance(a, _COMPILE_TIME) and isinstance(b, _COMPILE_TIME):
            return self.at_compile_time(node, lambda: _PYTHON_OPS[type(op)](a, b))
        for side, x in (left, right):
            if not isinstance(x, (ir.Expr, int, float)):
                what, hint = _describe(ast.unparse(side), x)
                raise self.error(node, f"unsupported operand in `{ast.unparse(node)}`: {what}", hint)
        if type(op) in _CMPOPS:
            return ir.binary(_CMPOPS[type(op)], a, b, loc=loc)
        la = a.dtype if isinstance(a, ir.Expr) else ir.as_expr(a, b.dtype).dtype
        lb = b.dtype if isinstance(b, ir.Expr) else ir.as_expr(b, a.dtype).dtype
        ints = not la.is_float and not lb.is_float
        if isinstance(op, ast.FloorDiv):
            if not ints:
                raise self.error(node, "`//` is integer division; use `/` for floats")
            return ir.binary("/", a, b, loc=loc)
        if isinstance(op, ast.Div):
            if ints:
                raise self.error(node, "`/` on integers is ambiguous", "use `//` (C truncating division)")
            return ir.binary("/", a, b, loc=loc)
        if isinstance(op, ast.Pow):
            if ints:
                raise self.error(node, "`**` needs a float operand in kernels")
            return ir.Call("pow", (ir.as_expr(a, lb), ir.as_expr(b, la)), loc=loc)
        if type(op) not in _BINOPS:
            raise self.error(node, f"unsupported operator {type(op).__name__}")
        return ir.binary(_BINOPS[type(op)], a, b, loc=loc)

    def call_expr(self, node: ast.Call):
        loc = self.loc(node)
        f = self.value(node.func)
        if isinstance(f, dt.DType):
            if len(node.args) != 1 or node.keywords:
                raise self.error(node, f"{f.short}(x) takes one argument")
            x = self.expr(node.args[0], f)
            return x if x.dtype == f else ir.Cast(x, f, loc=loc)
        if isinstance(f, lang.Intrinsic):
            name = f.name
            args = node.args
            if name in ir.MATH_FUNCS:
                if len(args) != ir.MATH_FUNCS[name]:
                    raise self.error(node, f"{name}() takes {ir.MATH_FUNCS[name]} argument(s)")
                vals = [self.scalar(x, self.value(x)) for x in args]
                like = next((v.dtype for v in vals if isinstance(v, ir.Expr)), dt.float32)
                return ir.Call(name, tuple(ir.as_expr(v, like) for v in vals), loc=loc)
            if name == "cast":
                dtype = self.value(args[1]) if len(args) == 2 else None
                if not isinstance(dtype, dt.DType):
                    raise self.error(node, "expected cast(x, dtype)")
                return ir.Cast(self.expr(args[0], dtype), dtype, loc=loc)
            if name == "select":
                if len(args) != 3:
                    raise self.error(node, "expected select(cond, a, b)")
                c, a, b = (self.scalar(x, self.value(x)) for x in args)
                la = a.dtype if isinstance(a, ir.Expr) else None
                lb = b.dtype if isinstance(b, ir.Expr) else None
                return ir.Select(self.bool_expr(args[0], c), ir.as_expr(a, lb), ir.as_expr(b, la), loc=loc)
            if name in _SHUFFLES:
                kw = self.kwargs(node, {"width": None})
                if len(args) != 2:
                    raise self.error(node, f"expected {name}(value, lane, width=32)")
                width = 32 if kw["width"] is None else self.const_int(kw["width"], "width")
                return ir.Shuffle(_SHUFFLES[name], self.expr(args[0]), self.expr(args[1]), width, loc=loc)
            if name in _ATOMICS:
                raise self.error(node, f"{name}() must be a statement or the whole right side of `x = {name}(...)`")
            raise self.error(node, f"{name}() cannot be used inside an expression")
        if f in (builtins.min, builtins.max):
            vals = [self.value(x) for x in node.args]
            if all(isinstance(v, _COMPILE_TIME) for v in vals):
                return self.at_compile_time(node, lambda: f(*vals))
            vals = [self.scalar(x, v) for x, v in zip(node.args, vals)]
            if len(vals) < 2:
                raise self.error(node, f"{f.__name__}() needs at least two arguments")
            out = vals[0]
            for v in vals[1:]:
                out = ir.binary(f.__name__, out, v, loc=loc)
            return out
        if f is builtins.abs:
            if len(node.args) != 1 or node.keywords:
                raise self.error(node, "abs(x) takes one argument")
            v = self.value(node.args[0])
            if isinstance(v, _COMPILE_TIME):
                return self.at_compile_time(node, lambda: abs(v))
            return ir.Call("abs", (self.scalar(node.args[0], v),), loc=loc)
        if callable(f):           # an ordinary Python function: run it now, on constants only
            args = [self.value(x) for x in node.args]
            kwargs = {k.arg: self.value(k.value) for k in node.keywords}
            if any(isinstance(v, (ir.Expr, ir.Buffer)) for v in [*args, *kwargs.values()]):
                raise self.error(node, f"{ast.unparse(node.func)}() is a Python function and runs at compile "
                                       "time: its arguments must be compile-time constants")
            try:
                return f(*args, **kwargs)
            except Exception as e:
                raise self.error(node, f"{ast.unparse(node.func)}(...) failed at compile time: {e}") from None
        raise self.error(node, f"{ast.unparse(node.func)} is not callable")


_PYTHON_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
               ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
               ast.BitAnd: operator.and_, ast.BitOr: operator.or_, ast.BitXor: operator.xor,
               ast.LShift: operator.lshift, ast.RShift: operator.rshift, ast.Lt: operator.lt, ast.LtE: operator.le,
               ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Eq: operator.eq, ast.NotEq: operator.ne}


def _describe(source: str, v) -> tuple[str, str]:
    """A value that is not a scalar expression, in DSL terms: (what it is, how to use it)."""
    if isinstance(v, ir.Buffer):
        shape = ", ".join(map(expr_str, v.shape))
        return (f"the {v.scope} tensor `{source}` ({v.dtype.short}[{shape}])",
                f"index it to get an element, e.g. `{source}[i]`")
    if isinstance(v, lang.SpecialGroup):
        return f"`{source}`, a group of special registers", f"read one of them: `{source}.x`, `.y` or `.z`"
    if isinstance(v, TaskMapping):
        return f"the task mapping `{source}`", f"loop over its tasks: `for i in {source}.on(worker):`"
    if isinstance(v, dt.DType):
        return f"the dtype `{source}`", f"convert a value with `{source}(x)`"
    if isinstance(v, tuple):
        return f"the tuple `{source}`", f"index it with a constant, e.g. `{source}[0]`"
    if callable(v):
        return f"the function `{source}`", f"call it: `{source}(...)`"
    return f"{type(v).__name__} `{source}`", "kernels compute on numbers, booleans and tensor elements"
