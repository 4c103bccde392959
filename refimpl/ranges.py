"""Integer value ranges of a lowered kernel, for the interpreter's fast paths.

`Ranges(kernel).of(e)` is a sound interval (lo, hi) for an integer expression, or None.
Sources: constants, threadIdx (when the block size is constant), loop variables with
bounded ranges, and variables defined once and never reassigned. `simplify(e)` rewrites
`(X·c + B) % c -> B` and `(X·c + B) / c -> X` when X ≥ 0 and 0 ≤ B < c, `(X·k + B) / c ->
X / (c/k)` when k | c and 0 ≤ B < k, and `X / c -> 0`, `X % c -> X` when 0 ≤ X < c: the index
arithmetic that task-mapping lowering produces (`i % tm` of a task index), so that register
indices become loop variables again. Both are exact under SPEC.md §2.3 (no overflow: every
interval stays inside its type).
"""
from __future__ import annotations

from taskmap.spec import ir


class Ranges:
    def __init__(self, kernel: ir.Kernel):
        nodes = list(ir.walk(kernel))
        assigned = {n.var.name for n in nodes if isinstance(n, ir.Assign)}
        assigned |= {n.result.name for n in nodes if isinstance(n, ir.Atomic) and n.result is not None}
        declared: dict[str, int] = {}
        for n in nodes:
            if isinstance(n, ir.DeclareVar):
                declared[n.var.name] = declared.get(n.var.name, 0) + 1
        self.block = kernel.block
        self.defs: dict[str, ir.Expr] = {}          # immutable vars -> defining expression
        self.vars: dict[str, tuple] = {}            # immutable vars -> interval
        for n in nodes:
            match n:
                case ir.DeclareVar(var=v, init=e) if e is not None and declared[v.name] == 1 \
                        and v.name not in assigned:
                    self.defs[v.name] = e
                    self.vars[v.name] = self.of(e)
                case ir.For(var=v, start=a, stop=b, step=ir.Const(value=s)) if s > 0 and v.name not in assigned:
                    ra, rb = self.of(a), self.of(b)
                    if ra is not None and rb is not None:
                        self.vars[v.name] = (ra[0], max(ra[0], rb[1] - 1))
        self.immutable = set(self.defs) | set(self.vars)

    def of(self, e: ir.Expr):
        if not e.dtype.is_integer:
            return None
        r = self._of(e)
        if r is None:
            return None
        return r if e.dtype.min <= r[0] and r[1] <= e.dtype.max else None

    def _of(self, e):
        match e:
            case ir.Const(value=v):
                return (v, v)
            case ir.Var(name=n):
                return self.vars.get(n)
            case ir.Special(name=n):
                axis = "xyz".index(n[-1])
                extent = self.block[axis]
                if n.startswith("threadIdx") and isinstance(extent, ir.Const):
                    return (0, extent.value - 1)
                if n.startswith("blockDim") and isinstance(extent, ir.Const):
                    return (extent.value, extent.value)
                return (0 if n.startswith(("threadIdx", "blockIdx")) else 1, 2**31 - 1)
            case ir.Cast(a=a, type=t) if t.is_integer:
                return self.of(a)
            case ir.Binary(op=op, a=a, b=b):
                ra, rb = self.of(a), self.of(b)
                if ra is None or rb is None:
                    return None
                return _binary(op, ra, rb)
        return None

    def simplify(self, node):
        """The div/mod rewrites above, applied bottom-up to every expression under `node`."""
        return ir.rewrite(node, self._divmod)

    def invariant_vars(self, kernel: ir.Kernel) -> set[str]:
        """Scalar parameters and immutable variables whose values depend only on invariant
        expressions: the same on every evaluation, for every lane."""
        out = {p.name for p in kernel.scalar_params}
        for n in ir.walk(kernel):
            if isinstance(n, ir.DeclareVar) and n.var.name in self.defs and pure(n.init, out):
                out.add(n.var.name)
        return out

    def _divmod(self, e):
        if not (isinstance(e, ir.Binary) and e.op in ("/", "%") and isinstance(e.b, ir.Const)
                and e.dtype.is_integer and e.b.value > 0 and e.a.dtype == e.dtype):
            return e
        c = e.b.value
        whole = self.of(e.a)
        if whole is not None and 0 <= whole[0] and whole[1] < c:              # X / c = 0, X % c = X
            return e.a if e.op == "%" else ir.Const(0, e.dtype)
        a = self._definition(e.a)
        if not (isinstance(a, ir.Binary) and a.op == "+"):
            return e
        for x, rest in ((a.a, a.b), (a.b, a.a)):
            rr, rx = self.of(rest), self.of(x)
            if rr is None or rx is None or rx[0] < 0 or rr[0] < 0 or rest.dtype != e.dtype:
                continue
            q = self._quotient(x, c)
            if q is not None and q.dtype == e.dtype and rr[1] < c:              # keep every node's type
                return rest if e.op == "%" else q
            k = self._factor(x)
            if e.op == "/" and k is not None and 1 < k < c and c % k == 0 and rr[1] < k:
                # (X·k + B) / c = X / (c/k) for 0 <= B < k: the nested task-index arithmetic
                # ((w·2 + h)·4 + r) / 64 of a mapping's composed levels, one level at a time
                return self._divmod(ir.Binary("/", x.a, ir.Const(c // k, e.b.type), loc=e.loc))
        return e

    @staticmethod
    def _factor(x):
        """k where x is X·k (k a positive constant) with X of x's type, else None."""
        match x:
            case ir.Binary(op="*", a=a, b=ir.Const(value=k)) if k > 0 and a.dtype == x.dtype:
                return k
        return None

    def _definition(self, e):
        """See through a variable defined once to its defining expression, when every variable
        in that expression is immutable (so it means the same at the use)."""
        if isinstance(e, ir.Var) and e.name in self.defs:
            d = self.defs[e.name]
            if all(v.name in self.immutable for v in ir.walk(d) if isinstance(v, ir.Var)):
                return d
        return e

    def _quotient(self, x, c: int):
        """x / c when x is a multiple of c by construction (X·k with c | k), else None."""
        match x:
            case ir.Const(value=v) if v % c == 0:
                return ir.Const(v // c, x.type)
            case ir.Binary(op="*", a=a, b=ir.Const(value=k)) if k % c == 0:
                return a if k == c else ir.Binary("*", a, ir.Const(k // c, x.b.type), loc=x.loc)
        return None


def _binary(op: str, a: tuple, b: tuple):
    (a0, a1), (b0, b1) = a, b
    match op:
        case "+":
            return (a0 + b0, a1 + b1)
        case "-":
            return (a0 - b1, a1 - b0)
        case "*":
            p = (a0 * b0, a0 * b1, a1 * b0, a1 * b1)
            return (min(p), max(p))
        case "/" if b0 > 0 and a0 >= 0:
            return (a0 // b1, a1 // b0)
        case "%" if b0 > 0 and a0 >= 0:
            return (0, min(a1, b1 - 1))
        case "min":
            return (min(a0, b0), min(a1, b1))
        case "max":
            return (max(a0, b0), max(a1, b1))
        case "&" if a0 >= 0 or b0 >= 0:
            return (0, min(x for x in (a1 if a0 >= 0 else None, b1 if b0 >= 0 else None) if x is not None))
        case ">>" if a0 >= 0 and b0 >= 0:
            return (a0 >> b1, a1 >> b0)
    return None


def pure(e: ir.Expr, invariant_vars: set[str]) -> bool:
    """e reads no memory or other lanes, cannot trap, and reads only invariant variables."""
    return not any(ir.may_trap(n) or (isinstance(n, ir.Var) and n.name not in invariant_vars) for n in ir.walk(e))
