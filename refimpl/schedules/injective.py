"""The generic injective schedule: a kernel generated from an element-wise compute definition.

`injective_kernel(name, out, axes, body, point)` builds the kernel computing
`out[axes] = body` for every index of `out` (a global `ir.Buffer` of constant shape; `body`
an expression over the `axes` variables and `Load`s of global input buffers, which become the
kernel's parameters in order of first use). The flattened output index space is mapped with
`repeat(items) * spatial(threads)` over each block's threads, so neighbouring threads take
neighbouring groups (coalesced). A group is `vec` consecutive elements of the innermost
dimension (`vec` divides it): the results are staged in registers and stored with one
unrolled copy loop, which the CUDA emitter turns into a single 8/16-byte access, and every
input read at `[..., last axis]` with the last axis unshifted (and not under a condition) is
loaded the same way.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from taskmap.spec import dtypes as dt
from taskmap.spec import ir
from taskmap.spec.mapping import repeat, spatial

from .space import Resources, product, prune, register_estimate

MAX_INDEX = 2**31 - 1


@dataclass(frozen=True)
class InjectivePoint:
    threads: int = 256
    items: int = 2           # groups per thread
    vec: int = 4             # widest group: the plan takes the largest width ≤ vec dividing the last extent


def resources(p: InjectivePoint) -> Resources:
    return Resources(p.threads, 0, register_estimate(2 * p.vec))


SPACE = prune(product(InjectivePoint, threads=(128, 256, 512), items=(1, 2, 4), vec=(1, 2, 4, 8)), resources)
DEFAULT = InjectivePoint()


def group_width(last_extent: int, dtypes, widest: int) -> int:
    """The widest group ≤ `widest` that divides the last extent and stays within 16 bytes."""
    biggest = max(t.nbytes for t in dtypes)
    v = widest
    while v > 1 and (last_extent % v or v * biggest > 16):
        v //= 2
    return v


def injective_kernel(name: str, out: ir.Buffer, axes: tuple[ir.Var, ...], body: ir.Expr,
                     point: InjectivePoint = DEFAULT) -> ir.Kernel:
    shape = tuple(int(s.value) for s in out.shape)
    n = math.prod(shape)
    if n > MAX_INDEX:
        raise ValueError(f"{name}: {n} elements exceed the i32 index space of the injective schedule")
    inputs = _inputs(body, out)
    vec = group_width(shape[-1], [out.dtype] + [b.dtype for b in inputs], point.vec)
    per_block = point.threads * point.items
    groups = n // vec
    i32 = dt.int32
    tid, bid = ir.Special("threadIdx.x"), ir.Special("blockIdx.x")
    taken = {n.name for n in ir.walk(body) if isinstance(n, (ir.Var, ir.Buffer))} | {a.name for a in axes} | {out.name}
    t, grp, first, last0 = (fresh_var(v, taken) for v in ("t", "grp", "first", "last0"))
    strides = [math.prod(shape[d + 1:]) for d in range(len(shape))]
    decls = [ir.DeclareVar(first, _b("*", grp, vec))]
    for a, extent, stride in zip(axes[:-1], shape[:-1], strides[:-1]):
        decls.append(ir.DeclareVar(a, _b("%", _b("/", first, stride), extent)))
    last = axes[-1]
    if vec == 1:
        decls.append(ir.DeclareVar(last, _b("%", first, shape[-1])))
        work = decls + [ir.Store(out, tuple(axes), body)]
    else:
        decls.append(ir.DeclareVar(last0, _b("%", first, shape[-1])))
        j, k = fresh_var("j", taken), fresh_var("k", taken)
        staged, preload = _stage_inputs(body, last, last0, j, vec, taken)
        result = ir.Buffer(fresh_var("res", taken).name, out.dtype, (ir.const(vec),), "register")
        shifted = ir.rewrite(staged, lambda e: _b("+", last0, j) if e == last else e)
        compute = ir.For(j, ir.const(0), ir.const(vec), ir.const(1),
                         (ir.Store(result, (j,), shifted),), unroll=True)
        store = ir.For(k, ir.const(0), ir.const(vec), ir.const(1),
                       (ir.Store(out, tuple(axes[:-1]) + (_b("+", last0, k),), ir.Load(result, (k,))),), unroll=True)
        work = decls + [ir.DeclareBuffer(result)] + preload + [compute, store]
    loop = ir.ForTask((t,), repeat(point.items) * spatial(point.threads), tid,
                      (ir.DeclareVar(grp, _b("+", _b("*", bid, per_block), t)),
                       ir.If(_b("<", grp, groups), tuple(work))))
    grid = (ir.const(max(1, -(-groups // per_block))), ir.const(1), ir.const(1))
    k = ir.Kernel(name, tuple(inputs) + (out,), grid, (ir.const(point.threads), ir.const(1), ir.const(1)), (loop,))
    return k.verify()


def _stage_inputs(body, last, last0, j, vec, taken):
    """Loads `x[..., last]` whose other indices neither involve `last` nor load (a gather's
    index may depend on `last` through its load) read from a register copy of the group's
    `vec` elements, filled by one unrolled copy loop. A load in a select branch or the right
    operand of `&&` / `||` stays where it is: it may be out of bounds where it is not
    evaluated (concat reads x0[i] only for i below x0's extent, SPEC §4.4)."""
    preload, staged = [], {}
    guarded = _guarded_loads(body)

    def stage(e):
        if not (isinstance(e, ir.Load) and e.indices and e.indices[-1] == last and e.buffer.scope == "global"
                and e not in guarded and not any(_uses(i, last) or _loads(i) for i in e.indices[:-1])):
            return e
        if e not in staged:
            reg = ir.Buffer(fresh_var(f"in{len(staged)}", taken).name, e.buffer.dtype, (ir.const(vec),), "register")
            v = fresh_var(f"j{len(staged)}", taken)
            staged[e] = reg
            preload.extend([ir.DeclareBuffer(reg), ir.For(
                v, ir.const(0), ir.const(vec), ir.const(1),
                (ir.Store(reg, (v,), ir.Load(e.buffer, e.indices[:-1] + (_b("+", last0, v),))),), unroll=True)])
        return ir.Load(staged[e], (j,))
    return ir.rewrite(body, stage), preload


def _guarded_loads(body: ir.Expr) -> set:
    """The loads evaluated only under a condition: in a select's branches or the right
    operand of a short-circuit `&&` / `||`."""
    branches = [b for n in ir.walk(body) for b in ((n.a, n.b) if isinstance(n, ir.Select) else
                (n.b,) if isinstance(n, ir.Binary) and n.op in ("&&", "||") else ())]
    return {n for b in branches for n in ir.walk(b) if isinstance(n, ir.Load)}


def _inputs(body: ir.Expr, out: ir.Buffer) -> list[ir.Buffer]:
    seen = []
    for node in ir.walk(body):
        if isinstance(node, ir.Load) and node.buffer not in seen:
            if node.buffer.scope != "global" or node.buffer.name == out.name:
                raise ValueError(f"injective body loads {node.buffer.name}: only global inputs other than the output")
            seen.append(node.buffer)
    return seen


def _uses(e, var) -> bool:
    return any(n == var for n in ir.walk(e))


def _loads(e) -> bool:
    return any(isinstance(n, ir.Load) for n in ir.walk(e))


def fresh_var(base: str, taken: set) -> ir.Var:
    """An i32 variable named `base`, suffixed until no name in `taken` clashes; taken grows."""
    name, i = base, 0
    while name in taken:
        i += 1
        name = f"{base}_{i}"
    taken.add(name)
    return ir.Var(name, dt.int32)


def _b(op, a, b):
    return ir.binary(op, a, b)
