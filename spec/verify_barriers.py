"""Barriers, warp collectives and task-mapping coverage (SPEC.md §9.6).

A flow-insensitive data-flow analysis (verify_uniformity's domain) finds, for every local
variable and register tensor, which threads may hold different values; a fixpoint over the
kernel body covers loops. Each walk notes the rules it sees broken, and the verdict is that of
the walk whose summaries came out unchanged (a further walk would repeat it exactly): it rejects
- `syncthreads()` inside a branch (if/while/range bounds/task-mapping guard) whose condition
  may differ between the threads of a block, `syncwarp()` inside one whose condition may
  differ between lanes of a warp;
- shuffles, ldmatrix, mma_sync and the wgmma instructions where the lanes of a warp may diverge, including behind a
  short-circuit `&&`/`||` or a select branch;
- a task mapping whose worker index (an exact function of the thread index) leaves some of
  the mapping's workers without a thread.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import ir
from . import semantics
from .mapping import TaskMapping
from .printer import expr_str
from .verify_common import const_value, fail, own_exprs, where
from .verify_launch import block_shape
from .verify_uniformity import Dep, Threads, join, meet, restrict, same, uniform_on, warp_uniform_on

MAX_PASSES = 16


@dataclass(frozen=True, eq=False)
class _Ctx:
    """Where a statement runs: the threads that may reach it and the branches it sits in."""
    mask: np.ndarray | None
    block_div: str | None = None      # the enclosing branch that may split the block
    warp_div: str | None = None       # the enclosing branch that may split a warp
    ctl: tuple = ()                   # enclosing thread-dependent conditions, outermost first


@dataclass(eq=False)
class _State:
    kernel: ir.Kernel
    threads: Threads
    env: dict                         # variable -> summary from the previous pass
    regs: dict                        # register tensor -> summary of its contents
    at: ir.Stmt | None = None                   # the statement being analysed
    problem: tuple | None = None                # fail()'s arguments for the pass's first broken rule
    defs: dict = field(default_factory=dict)
    reg_defs: dict = field(default_factory=dict)
    depth: dict = field(default_factory=dict)   # name -> len(ctl) where it was declared

    def define(self, name: str, value, ctx: _Ctx, registers: bool = False) -> None:
        """Record a definition; one made under conditions the declaration is not under also
        depends on them (which threads took the branch)."""
        extra = ctx.ctl[self.depth.get(name, 0):]
        (self.reg_defs if registers else self.defs).setdefault(name, []).append(
            meet(value, *extra) if extra else value)

    def declare(self, name: str, value, ctx: _Ctx) -> None:
        self.depth[name] = len(ctx.ctl)
        self.define(name, value, ctx)

    def flag(self, phrase: str, detail: str, node, at=None) -> None:
        """Note a broken rule; the walk goes on (the pass's summaries may not be final yet)."""
        if self.problem is None:
            self.problem = (phrase, detail, node, at)


def check_barriers(kernel: ir.Kernel) -> None:
    threads = Threads.of(tuple(const_value(e) for e in kernel.block))
    env, regs = {}, {}
    for _ in range(MAX_PASSES):
        st = _walk(kernel, threads, env, regs)
        new_env = {n: join(d) for n, d in st.defs.items()}
        new_regs = {n: meet(*d) for n, d in st.reg_defs.items()}
        if _stable(env, new_env) and _stable(regs, new_regs):
            break                                  # this pass saw the final summaries: its verdict stands
        env, regs = new_env, new_regs
    else:                                          # no fixpoint: assume every local may differ
        st = _walk(kernel, threads, {n: threads.varying() for n in env}, {n: threads.varying() for n in regs})
    if st.problem:
        raise fail(kernel, *st.problem)


def _walk(kernel: ir.Kernel, threads: Threads, env: dict, regs: dict) -> _State:
    st = _State(kernel, threads, env, regs)
    _block(kernel.body, st, _Ctx(threads.all()))
    return st


def _stable(old: dict, new: dict) -> bool:
    return old.keys() == new.keys() and all(same(old[n], new[n]) for n in new)


def _block(body, st: _State, ctx: _Ctx) -> None:
    for s in body:
        _stmt(s, st, ctx)


def _stmt(s, st: _State, ctx: _Ctx) -> None:
    st.at = s
    vals = [_value(e, st, ctx) for e in own_exprs(s)]
    match s:
        case ir.DeclareVar(var=v):
            st.declare(v.name, vals[0] if vals else None, ctx)
        case ir.Assign(var=v):
            st.define(v.name, vals[0], ctx)
        case ir.DeclareBuffer(buffer=b):
            st.depth[b.name] = len(ctx.ctl)
        case ir.Store(buffer=b) if b.scope == "register":
            st.define(b.name, meet(*vals), ctx, registers=True)
        case ir.Atomic(result=ir.Var() as r):
            st.define(r.name, st.threads.varying(), ctx)
        case ir.If(cond=c, then=then, orelse=orelse):
            desc = f"`if {expr_str(c)}`{where(s)}"
            _block(then, st, _branch(ctx, vals[0], restrict(ctx.mask, vals[0], True), desc))
            _block(orelse, st, _branch(ctx, vals[0], restrict(ctx.mask, vals[0], False), desc))
        case ir.While(cond=c, body=body):
            desc = f"`while {expr_str(c)}`{where(s)}"
            inner = _branch(ctx, vals[0], restrict(ctx.mask, vals[0], True), desc)
            _block(body, st, inner)
            st.at = s
            _value(c, st, inner)                   # later evaluations: only threads still looping
        case ir.For(var=v, start=a, stop=b, step=c, body=body):
            st.declare(v.name, meet(vals[0], vals[2]), ctx)
            desc = f"the trip count of `for {v.name} in range({expr_str(a)}, {expr_str(b)}, {expr_str(c)})`{where(s)}"
            _block(body, st, _branch(ctx, meet(*vals), ctx.mask, desc))
        case ir.ForTask():
            _for_task(s, vals[0], st, ctx)
        case ir.SyncThreads() if ctx.block_div:
            st.flag("barrier in thread-dependent branch",
                    f"syncthreads() must be reached by every thread of the block (SPEC §5.3), but it is "
                    f"inside {ctx.block_div}, which can differ between threads of one block; move the "
                    "barrier out of the branch and keep only the per-thread work inside", s)
        case ir.SyncWarp() if ctx.warp_div:
            st.flag("barrier in thread-dependent branch",
                    f"syncwarp() must be reached by every lane of the warp (SPEC §5.3), but it is inside "
                    f"{ctx.warp_div}, which can differ between lanes of one warp; move it out of the branch", s)
        case ir.LdMatrix(dst=r) | ir.MmaSync(acc=r):
            _collective(s, "ldmatrix" if isinstance(s, ir.LdMatrix) else "mma_sync", st, ctx, ())
            st.define(r.buffer.name, st.threads.varying(), ctx, registers=True)
        case ir.Wgmma(acc=r):
            _collective(s, "wgmma", st, ctx, ())
            st.define(r.buffer.name, st.threads.varying(), ctx, registers=True)
        case ir.WgmmaFence() | ir.WgmmaCommit() | ir.WgmmaWait():
            _collective(s, type(s).__name__.replace("Wgmma", "wgmma_").lower(), st, ctx, ())


def _branch(ctx: _Ctx, cond, mask, desc: str) -> _Ctx:
    split = not uniform_on(cond, ctx.mask)
    return _Ctx(mask, ctx.block_div or (desc if split else None),
                ctx.warp_div or (None if warp_uniform_on(cond, ctx.mask) else desc),
                ctx.ctl + ((cond,) if split else ()))


def _for_task(s: ir.ForTask, w, st: _State, ctx: _Ctx) -> None:
    m: TaskMapping = s.mapping
    if uniform_on(w, st.threads.all()):
        for v in s.vars:                           # every thread runs the same tasks
            st.declare(v.name, None, ctx)
        _block(s.body, st, ctx)
        return
    if w.exact:
        _check_coverage(s, w, ctx.mask, st)
        guard = Dep((w.labels < m.num_workers).astype(np.int64), exact=True)
        tasks = _first_tasks(m, w.labels)
    else:
        guard, tasks = w, [Dep(w.labels)] * m.ndim
    for v, t in zip(s.vars, tasks):
        st.declare(v.name, t, ctx)
    desc = (f"`for {', '.join(v.name for v in s.vars)} in ({m}).on({expr_str(s.worker)})`{where(s)}, whose "
            f"{m.num_workers} workers guard its body with `{expr_str(s.worker)} < {m.num_workers}`")
    _block(s.body, st, _branch(ctx, guard, restrict(ctx.mask, guard, True), desc))


def _first_tasks(m: TaskMapping, workers: np.ndarray) -> list[Dep]:
    """Per thread, the first task of its worker (every repeat index 0): it tells the workers
    apart exactly as the full task list does, and is the task itself when the mapping is
    purely spatial. Workers outside [0, W) get -1."""
    exact = all(a.kind == "spatial" for a in m.atoms)
    return [Dep(tasks, exact) for tasks in m.first_tasks(workers.ravel()).reshape((m.ndim, *workers.shape))]


def _check_coverage(s: ir.ForTask, w: Dep, mask, st: _State) -> None:
    active = w.labels[mask]
    n = s.mapping.num_workers
    covered = np.unique(active[(active >= 0) & (active < n)])
    if active.size and len(covered) < n:
        st.flag("task mapping has more workers than threads",
                f"{s.mapping} has {n} workers, but `{expr_str(s.worker)}` takes only {len(covered)} of the "
                f"values 0..{n - 1} in the {active.size} threads that reach this loop (block "
                f"{block_shape(st.kernel)}), so the tasks of the other workers never run; use a mapping "
                f"with at most {len(covered)} workers (add repeat(...) atoms) or launch more threads", s)


def _collective(node, what: str, st: _State, ctx: _Ctx, guards) -> None:
    desc = ctx.warp_div or next((d for g, d in guards if not warp_uniform_on(g, ctx.mask)), None)
    if desc:
        st.flag("warp collective in thread-dependent branch",
                f"{what} is warp-collective (SPEC §5.6, §5.7, §5.12): every lane of a warp must execute it "
                f"together, but it is inside {desc}, which can differ between lanes of one warp; make the "
                "condition depend on the warp index only (threadIdx.x // 32) or move the collective out",
                node, st.at)


def _value(e, st: _State, ctx: _Ctx, guards: tuple = ()):
    """The abstract value of expression `e`; also checks the shuffles it evaluates."""
    match e:
        case ir.Const(value=v, type=t):
            return None if t.is_float else st.threads.constant(v)
        case ir.Special(name=n):
            return st.threads.specials.get(n)
        case ir.Var(name=n):
            return st.env.get(n)
        case ir.Load(buffer=b, indices=idx):
            deps = [_value(i, st, ctx, guards) for i in idx]     # memory: §9.6's load rule
            return meet(*deps, st.regs.get(b.name)) if b.scope == "register" else meet(*deps)
        case ir.Shuffle(value=v, lane=lane, width=width, kind=kind):
            _collective(e, f"shfl_{kind}", st, ctx, guards)
            dv, dl = _value(v, st, ctx, guards), _value(lane, st, ctx, guards)
            if warp_uniform_on(dv, st.threads.all()):
                return dv                                        # every lane holds the same value
            return meet(st.threads.segments(width), dl) if kind == "idx" else st.threads.varying()
        case ir.Binary(op="&&" | "||", a=a) | ir.Select(cond=a):
            first = _value(a, st, ctx, guards)
            inner = guards + ((first, f"the short-circuit condition `{expr_str(a)}`{where(e)}"),)
            rest = [_value(x, st, ctx, inner) for x in list(ir.children(e))[1:]]
            return _combine(e, [first, *rest], st.threads)
    return _combine(e, [_value(c, st, ctx, guards) for c in ir.children(e)], st.threads)


def _combine(e, vals, threads: Threads):
    if all(v is None for v in vals):
        return None
    exact = _exact(e, vals, threads)
    return meet(*vals) if exact is None else Dep(exact, exact=True)


def _exact(e, vals, threads: Threads):
    """Integer/bool results computed per thread when every operand is a constant or exact."""
    children = list(ir.children(e))
    if threads.count is None or e.dtype.is_float or any(c.dtype.is_float for c in children):
        return None
    if not all(v is not None and v.exact for v in vals):
        return None
    try:                                  # §2.3 semantics, one value per thread
        return np.asarray(semantics.apply(e, [v.labels for v in vals])).astype(np.int64)
    except (semantics.Unknown, semantics.Trap):
        return None
