"""What the fusion passes read off the kernel IR: how a kernel touches a tensor, and the
launches and parameters a value is bound to.

Fusibility is never declared per operator: a producer can be inlined at a tensor only if
every access to it is a plain `Load` (SPEC §6.3: `replace_tensor` rewrites loads element by
element), a consumer only if every access is a plain `Store`. An access through an address —
`cp_async`'s source, an atomic's target, `ldmatrix` / `mma_sync` operands — moves or combines
elements the rewrite cannot see one at a time, so it keeps the tensor materialized.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from taskmap.spec import dtypes as dt
from taskmap.spec import ir

from ..schedules import Plan, View
from ..schedules.injective import MAX_INDEX, fresh_var

ADDRESS_USES = {ir.CpAsync: "cp_async", ir.Atomic: "atomic", ir.LdMatrix: "ldmatrix", ir.MmaSync: "mma_sync"}


def accesses(kernel: ir.Kernel, name: str) -> set[str]:
    """How `kernel` touches its tensor parameter `name`: "load", "store", or the statement
    ("cp_async", "atomic", "ldmatrix", "mma_sync") that takes its address."""
    out = set()
    for n in ir.walk(kernel):
        if isinstance(n, ir.Load) and n.buffer.name == name:
            out.add("load")
        elif isinstance(n, ir.Store) and n.buffer.name == name:
            out.add("store")
        elif isinstance(n, ir.Stmt) and any(isinstance(c, ir.Ref) and c.buffer.name == name for c in ir.children(n)):
            out.add(ADDRESS_USES.get(type(n), type(n).__name__))
    return out


@dataclass(frozen=True)
class Binding:
    """Launch `launch` passes value `value` as its parameter `position`, viewed as `shape`."""
    launch: int
    position: int
    param: ir.Buffer
    shape: tuple[int, ...]


def bindings(plan: Plan, value: str, launches=None) -> list[Binding]:
    """Where `plan`'s launches (or `launches`, rewritten ones of the plan) take `value`."""
    shapes = {t.name: t.shape for t in plan.inputs + plan.outputs + plan.temps}
    out = []
    for k, launch in enumerate(plan.launches if launches is None else launches):
        for i, (p, a) in enumerate(zip(launch.kernel.params, launch.args)):
            if isinstance(a, str) and a == value:
                out.append(Binding(k, i, p, shapes[value]))
            elif isinstance(a, View) and a.name == value:
                out.append(Binding(k, i, p, a.shape))
    return out


def refusal(plan: Plan, value: str, allowed: str) -> str | None:
    """Why `value` cannot be rewritten in `plan` with accesses of kind `allowed` only (None:
    it can): another access kind, or an index space beyond i32."""
    if math.prod(next(t.shape for t in plan.inputs + plan.outputs if t.name == value)) > MAX_INDEX:
        return f"{value} has more elements than an i32 index reaches"
    for b in bindings(plan, value):
        kernel = plan.launches[b.launch].kernel
        other = accesses(kernel, b.param.name) - {allowed}
        if other:
            return f"kernel {kernel.name} accesses {value} (as {b.param.name}) by {', '.join(sorted(other))}"
    return None


def reindex(indices, src: tuple[int, ...], dst: tuple[int, ...]) -> tuple[ir.Expr, ...]:
    """The index into a row-major tensor of shape `dst` of the element that index `indices`
    names in a view of shape `src` of its leading elements (trailing dimensions the two share
    are kept as they are)."""
    indices = tuple(indices)
    if tuple(src) == tuple(dst):
        return indices
    keep = 0
    while keep < min(len(src), len(dst)) and src[len(src) - 1 - keep] == dst[len(dst) - 1 - keep]:
        keep += 1
    lead_src, lead_dst = src[:len(src) - keep], dst[:len(dst) - keep]
    tail = indices[len(indices) - keep:] if keep else ()
    flat = ir.const(0)
    for i, n in zip(indices[:len(lead_src)], lead_src):
        flat = ir.binary("+", ir.binary("*", flat, ir.const(n)), i) if n > 1 else flat
    out, stride = [], 1
    for d, n in reversed(list(enumerate(lead_dst))):
        if n == 1:
            out.append(ir.const(0))
        else:
            q = ir.binary("/", flat, ir.const(stride)) if stride > 1 else flat
            out.append(q if d == 0 else ir.binary("%", q, ir.const(n)))
        stride *= n
    return tuple(reversed(out)) + tail


def fresh_buffer(base: str, dtype: dt.DType, shape: tuple[int, ...], taken: set) -> ir.Buffer:
    """A global tensor named `base` (suffixed until it clashes with nothing in `taken`)."""
    return ir.Buffer(fresh_var(base, taken).name, dtype, tuple(ir.const(s) for s in shape), "global")


def names_in(kernel: ir.Kernel) -> set[str]:
    """Every variable and buffer name of `kernel`: what a new parameter's name must avoid."""
    return {n.name for n in ir.walk(kernel) if isinstance(n, (ir.Var, ir.Buffer))}
