"""`interpret`: launch a kernel on NumPy arrays (SPEC.md §1, §3.4, §6).

Blocks run in batches; inside a batch every thread of every block is one lane of the
lockstep execution. Global tensors are flat views of the caller's arrays, the written ones
staged on copies until the launch completes (outputs.Staged), with one race shadow per
launch; shared and register tensors live per batch.
"""
from __future__ import annotations

import math
import os

import numpy as np

from taskmap.spec import binding
from taskmap.spec import ir
from taskmap.spec.cache import KernelCache
from taskmap.spec.passes import run

from . import asynccopy, mbarrier, memory, wgmma
from . import numerics as num
from .passes import PIPELINE
from .outputs import Staged
from .program import Program
from .progress import Progress
from .state import State
from .traps import KernelTrap

STEP_BUDGET = 1 << 16             # loop iterations allowed beyond the tensors' element count (§5.2)
LANE_BUDGET = 1 << 16             # lanes per batch: large enough to amortize Python dispatch
BYTES_BUDGET = 192 << 20          # per-batch state (locals, registers, shared + shadows)


class UninitializedArray(np.ndarray):
    """An array from `empty`: `initialized` tracks which elements hold written data."""
    initialized: np.ndarray


def empty(shape, dtype) -> UninitializedArray:
    """An array whose elements count as uninitialized (§3.2): a kernel reading one before
    writing it traps "uninitialized global read". `dtype`: a spec dtype, its name ("bf16",
    "f32", "float32") or a NumPy dtype. Tracking needs checks=True: a launch with checks off
    neither checks nor records which elements it writes."""
    shape, t = binding.array_spec(shape, dtype, "empty")
    a = np.empty(shape, t.storage)
    a.reshape(-1).view(np.uint8).fill(0xFF)      # NaN / -1 garbage if it is ever read unchecked
    a = a.view(UninitializedArray)
    a.initialized = np.zeros(shape, bool)
    return a


# program_for(k): the compiled program of k, kept for the 64 most recently used kernels
program_for = KernelCache(lambda k: Program(run(PIPELINE, k)))


def interpret(k: ir.Kernel, *args, checks: bool = True, trace=None, max_steps: int | None = None):
    """Run `k` on `args` (NumPy arrays, Python scalars); see SPEC.md. The outputs reach the
    caller's arrays when the launch completes; a trap leaves them as they were and carries
    what they held in `trap.partial` (§10.1). max_steps: the most iterations one execution of
    a loop may run in one thread (§5.2); default: $TASKMAP_MAX_STEPS, else STEP_BUDGET plus
    the element count of the tensor arguments."""
    bound = binding.bind(k, args, "interpret")
    for p, a in bound.tensors(args):
        bound.check_array(p, a)
    prog = program_for(k)
    T, nblocks = math.prod(bound.block), math.prod(bound.grid)
    if T * nblocks >= 2**31:
        raise bound.error("invalid launch configuration", None,
                          f"grid {bound.grid} and block {bound.block} make {T * nblocks} threads; the interpreter "
                          "runs fewer than 2^31")
    scalars = {p.name: num.scalar(bound.scalars[p.name], p.dtype) for p in k.scalar_params}
    globals_ = _global_spaces(prog, bound, args, checks)
    budget = _step_budget(max_steps, bound, args)
    per_batch = _blocks_per_batch(prog, bound, checks)
    outputs = Staged(globals_, {p.name: a for p, a in bound.tensors(args)}, prog.written)
    progress = Progress(k.name, nblocks)
    try:
        with np.errstate(all="ignore"):
            for first in range(0, nblocks, per_batch):
                blocks = np.arange(first, min(nblocks, first + per_batch))
                st = State(prog, bound, blocks, [None] * len(prog.buf_slots), checks, None,
                           asynccopy.AsyncCopies(len(blocks) * T), budget)
                for slot, space in globals_.items():
                    st.spaces[slot] = space
                for name, v in scalars.items():
                    st.vars[prog.var_slots[name]] = v
                if trace is not None and trace.bind(st):
                    st.trace = trace
                prog.body(st, None)
                asynccopy.finish(st)
                mbarrier.finish(st)
                memory.end_batch(st)
                wgmma.finish(st)
                progress.update(first + len(blocks))
    except KernelTrap as trap:
        trap.partial = outputs.partial()
        raise
    finally:
        progress.close()
    outputs.commit()
    return None


def _step_budget(max_steps, bound: binding.Binding, args) -> int:
    """Loop iterations one execution of a loop may run in one thread (SPEC.md §5.2)."""
    given, source = max_steps, "max_steps"
    if given is None and os.environ.get("TASKMAP_MAX_STEPS"):
        given, source = os.environ["TASKMAP_MAX_STEPS"].strip(), "TASKMAP_MAX_STEPS"
        given = int(given) if given.isdigit() else given
    if given is None:
        return STEP_BUDGET + sum(np.size(a) for _, a in bound.tensors(args))
    if isinstance(given, bool) or not isinstance(given, int) or given < 1:
        raise bound.error("invalid launch configuration", None, f"{source} must be a positive integer, got {given!r}")
    return given


def _global_spaces(prog: Program, bound: binding.Binding, args, checks: bool) -> dict:
    out = {}
    for b, a in bound.tensors(args):
        shape = bound.shapes[b.name]
        data = np.asarray(a).reshape(-1)
        init = getattr(a, "initialized", None)
        out[prog.buf_slots[b.name]] = memory.Space(
            b, data, shape, *memory.layout_strides(shape, None), 0,
            init=init.reshape(-1) if checks and init is not None else None,
            race=memory.RaceShadow(data.size, warp_barriers=prog.warp_barriers)
            if checks and b.name in prog.written else None)
    return out


def _blocks_per_batch(prog: Program, bound: binding.Binding, checks: bool) -> int:
    """Blocks per batch so that lanes ≤ LANE_BUDGET and per-batch state ≤ BYTES_BUDGET."""
    shadow = 3 + 4 * 8 if checks else 0     # init, atomic, pending + the two race records
    per_lane = 24 * len(prog.var_slots)
    per_block = 0
    for b in prog.buffers.values():
        if b.scope == "global":
            continue
        size = math.prod(bound.shapes[b.name])
        if b.scope == "register":
            per_lane += size * (b.dtype.nbytes + 1)
        else:
            per_block += size * (b.dtype.nbytes + shadow)
    T = math.prod(bound.block)
    per_block += T * per_lane
    return max(1, min(LANE_BUDGET // T, BYTES_BUDGET // max(1, per_block)))
