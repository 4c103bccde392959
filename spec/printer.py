"""Readable text for IR (what `print(kernel)` shows), plus node -> line lookup for error windows."""
from __future__ import annotations

from . import ir

_PREC = {"||": 1, "&&": 2, "|": 3, "^": 4, "&": 5, "==": 6, "!=": 6, "<": 7, "<=": 7, ">": 7,
         ">=": 7, "<<": 8, ">>": 8, "+": 9, "-": 9, "*": 10, "/": 10, "%": 10}


def expr_str(e, prec: int = 0) -> str:
    match e:
        case ir.Const(value=v, type=t):
            if t.is_float:
                return f"{v!r}" if t.short == "f32" else f"{t.short}({v!r})"
            if t.short in ("i32", "bool"):
                return str(v).lower() if t.short == "bool" else str(v)
            return f"{t.short}({v})"
        case ir.Var(name=n):
            return n
        case ir.Special(name=n):
            return n
        case ir.Unary(op=op, a=a):
            sym = {"neg": "-", "not": "!", "invert": "~"}[op]
            return f"{sym}{expr_str(a, 11)}"
        case ir.Binary(op=op, a=a, b=b) if op in ("min", "max"):
            return f"{op}({expr_str(a)}, {expr_str(b)})"
        case ir.Binary(op=op, a=a, b=b):
            p = _PREC.get(op, 0)             # an op the verifier rejects still prints (in its error window)
            s = f"{expr_str(a, p)} {op} {expr_str(b, p + 1)}"
            return f"({s})" if p < prec else s
        case ir.Select(cond=c, a=a, b=b):
            s = f"{expr_str(c, 1)} ? {expr_str(a, 1)} : {expr_str(b, 1)}"
            return f"({s})" if prec > 0 else s
        case ir.Cast(a=a, type=t):
            return f"{t.short}({expr_str(a)})"
        case ir.Call(fn=fn, args=args):
            return f"{fn}({', '.join(map(expr_str, args))})"
        case ir.Load(buffer=b, indices=idx):
            return f"{b.name}[{', '.join(map(expr_str, idx))}]"
        case ir.Shuffle(kind=k, value=v, lane=l, width=w):
            return f"shfl_{k}({expr_str(v)}, {expr_str(l)}" + (f", width={w})" if w != 32 else ")")
        case ir.Ref(buffer=b, indices=idx):
            return f"{b.name}[{', '.join(map(expr_str, idx))}]" if idx else b.name
    raise TypeError(f"not an expression: {e!r}")


def layout_str(layout) -> str:
    match layout:
        case ir.RowMajor():
            return ""
        case ir.Strided(strides=s):
            return f" strides({', '.join(map(expr_str, s))})"
        case ir.Swizzle(bits=b, base=m, shift=s):
            return f" swizzle({b}, {m}, {s})"
    return f" {layout}"


def buffer_decl(b: ir.Buffer) -> str:
    direction = f" {b.direction}" if b.direction else ""
    return f"{b.scope}{direction} {b.dtype.short} {b.name}[{', '.join(map(expr_str, b.shape))}]{layout_str(b.layout)}"


def param_type(b: ir.Buffer) -> str:
    """A tensor parameter's type as the DSL writes it: `f32[n]`, `Out[f32[n]]`."""
    t = f"{b.dtype.short}[{', '.join(map(expr_str, b.shape))}]"
    return f"{_DIRECTION_WORDS[b.direction]}[{t}]" if b.direction else t


_DIRECTION_WORDS = {"in": "In", "out": "Out", "inout": "InOut"}


class _Lines:
    def __init__(self):
        self.lines: list[str] = []
        self.where: dict[int, int] = {}     # id(node) -> line index

    def emit(self, depth: int, text: str, node=None):
        if node is not None:
            self.where.setdefault(id(node), len(self.lines))
        self.lines.append("  " * depth + text)

    def stmts(self, body, depth: int):
        for s in body:
            self.stmt(s, depth)

    def stmt(self, s, d: int):
        match s:
            case ir.DeclareVar(var=v, init=init):
                self.emit(d, f"{v.dtype.short} {v.name}" + (f" = {expr_str(init)}" if init is not None else ""), s)
            case ir.Assign(var=v, value=x):
                self.emit(d, f"{v.name} = {expr_str(x)}", s)
            case ir.DeclareBuffer(buffer=b, dynamic=dyn):
                self.emit(d, buffer_decl(b) + (" dynamic" if dyn else ""), s)
            case ir.Store(buffer=b, indices=idx, value=x):
                self.emit(d, f"{b.name}[{', '.join(map(expr_str, idx))}] = {expr_str(x)}", s)
            case ir.For(var=v, start=a, stop=b, step=st, body=body, unroll=u, vector=vec):
                rng = expr_str(b) if a == ir.const(0) and st == ir.const(1) else \
                    f"{expr_str(a)}, {expr_str(b)}" + ("" if st == ir.const(1) else f", {expr_str(st)}")
                hint = "" if not u else (" unroll" if u is True else f" unroll({u})")
                hint += f" vector({vec})" if vec else ""
                self.emit(d, f"for {v.name} in range({rng}){hint}:", s)
                self.stmts(body, d + 1)
            case ir.ForTask(vars=vs, mapping=m, worker=w, body=body):
                self.emit(d, f"for {', '.join(v.name for v in vs)} in ({m}).on({expr_str(w)}):", s)
                self.stmts(body, d + 1)
            case ir.If(cond=c, then=t, orelse=e):
                self.emit(d, f"if {expr_str(c)}:", s)
                self.stmts(t, d + 1)
                if e:
                    self.emit(d, "else:")
                    self.stmts(e, d + 1)
            case ir.While(cond=c, body=body):
                self.emit(d, f"while {expr_str(c)}:", s)
                self.stmts(body, d + 1)
            case ir.SyncThreads():
                self.emit(d, "syncthreads()", s)
            case ir.SyncWarp():
                self.emit(d, "syncwarp()", s)
            case ir.CpAsync(dst=dst, src=src, elems=n, valid=v):
                extra = "" if v is None else f", valid={expr_str(v)}"
                self.emit(d, f"cp_async({expr_str(dst)}, {expr_str(src)}, elems={n}{extra})", s)
            case ir.CpAsyncCommit():
                self.emit(d, "cp_async_commit_group()", s)
            case ir.CpAsyncWait(pending=n):
                self.emit(d, f"cp_async_wait_group({n})", s)
            case ir.MbarrierInit(bar=b, count=c):
                self.emit(d, f"mbarrier_init({expr_str(b)}, {expr_str(c)})", s)
            case ir.MbarrierArrive(bar=b, tx=None):
                self.emit(d, f"mbarrier_arrive({expr_str(b)})", s)
            case ir.MbarrierArrive(bar=b, tx=tx):
                self.emit(d, f"mbarrier_arrive_expect_tx({expr_str(b)}, {expr_str(tx)})", s)
            case ir.MbarrierWait(bar=b, parity=p):
                self.emit(d, f"mbarrier_wait({expr_str(b)}, {expr_str(p)})", s)
            case ir.BulkCopy(dst=dst, src=src, elems=n, bar=b):
                self.emit(d, f"bulk_copy({expr_str(dst)}, {expr_str(src)}, {expr_str(b)}, elems={n})", s)
            case ir.TmaLoad(dst=dst, src=src, bar=b):
                self.emit(d, f"tma_load({expr_str(dst)}, {expr_str(src)}, {expr_str(b)})", s)
            case ir.TmaStore(dst=dst, src=src):
                self.emit(d, f"tma_store({expr_str(dst)}, {expr_str(src)})", s)
            case ir.LdMatrix(dst=dst, src=src, num=n, trans=t):
                self.emit(d, f"ldmatrix({expr_str(dst)}, {expr_str(src)}, num={n}" + (", trans=True)" if t else ")"), s)
            case ir.Wgmma(acc=acc, a=a, b=b, n=n):
                ops = [expr_str(acc), expr_str(a) if s.a_in_registers else _desc(a, s.a_lbo, s.a_sbo, s.a_swizzle),
                       _desc(b, s.b_lbo, s.b_sbo, s.b_swizzle)]
                self.emit(d, f"wgmma.m64n{n}k16({', '.join(ops)})", s)
            case ir.WgmmaFence():
                self.emit(d, "wgmma_fence()", s)
            case ir.WgmmaCommit():
                self.emit(d, "wgmma_commit_group()", s)
            case ir.WgmmaWait(pending=n):
                self.emit(d, f"wgmma_wait_group({n})", s)
            case ir.MmaSync(shape=shape, a=a, b=b, acc=acc):
                self.emit(d, f"mma_sync.{shape}({expr_str(a)}, {expr_str(b)}, {expr_str(acc)})", s)
            case ir.Atomic(op=op, target=t, value=v, compare=c, result=r):
                args = ", ".join([expr_str(t)] + ([expr_str(c)] if c is not None else []) + [expr_str(v)])
                self.emit(d, (f"{r.name} = " if r is not None else "") + f"atomic_{op}({args})", s)
            case ir.Assert(cond=c, message=m):
                self.emit(d, f"assert {expr_str(c)}, {m!r}", s)
            case _:
                raise TypeError(f"not a statement: {s!r}")


def kernel_lines(k: ir.Kernel) -> _Lines:
    out = _Lines()
    params = ", ".join(f"{p.name}: {p.dtype.short}" if isinstance(p, ir.Var) else f"{p.name}: {param_type(p)}"
                       for p in k.params)
    out.emit(0, f"kernel {k.name}({params})", k)
    out.emit(1, f"grid ({', '.join(map(expr_str, k.grid))})  block ({', '.join(map(expr_str, k.block))})")
    out.stmts(k.body, 1)
    return out


def print_kernel(k: ir.Kernel) -> str:
    return "\n".join(kernel_lines(k).lines)


def window(k: ir.Kernel, node, context: int = 3) -> str:
    """The printed IR around `node`, its line marked with `>`: the verifier's error window."""
    out = kernel_lines(k)
    at = out.where.get(id(node))
    if at is None:                       # an expression: point at its enclosing statement
        at = _enclosing_line(k, node, out)
    lo, hi = max(0, at - context), min(len(out.lines), at + context + 1)
    return "\n".join(("  > " if i == at else "    ") + f"{i + 1:3d} | {out.lines[i]}" for i in range(lo, hi))


def _enclosing_line(k: ir.Kernel, node, out: _Lines) -> int:
    best = 0
    for stmt in ir.walk(k):
        if id(stmt) in out.where and any(n is node for n in ir.walk(stmt)):
            best = max(best, out.where[id(stmt)])
    return best


def _desc(ref: ir.Ref, lbo: ir.Expr, sbo: ir.Expr, swizzle: int) -> str:
    """A wgmma operand read through a matrix descriptor, as the DSL writes it (§5.12)."""
    return f"wgmma_desc({expr_str(ref)}, sbo={expr_str(sbo)}, swizzle={swizzle}, lbo={expr_str(lbo)})"
