"""`interpret`: launch a kernel on NumPy arrays (SPEC.md §1, §3.4, §6).

Blocks run in batches; inside a batch every thread of every block is one lane of the
lockstep execution. Global tensors are flat views of the caller's arrays (written in place)
with one race shadow per launch; shared and register tensors live per batch.
"""
from __future__ import annotations

import math

import numpy as np

from taskmap.spec import dtypes as dt
from taskmap.spec import ir
from taskmap.spec.cache import KernelCache
from taskmap.spec.passes import run
from taskmap.spec.printer import expr_str

from . import asynccopy, memory
from . import numerics as num
from .passes import PIPELINE
from .program import Program
from .state import State
from .traps import KernelTrap

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
    t = dtype if isinstance(dtype, dt.DType) else dt.BY_NAME.get(dtype) if isinstance(dtype, str) and \
        dtype in dt.BY_NAME else dt.from_numpy(dtype)
    shape = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
    a = np.empty(shape, t.storage)
    a.view(np.uint8).fill(0xFF)                  # NaN / -1 garbage if it is ever read unchecked
    a = a.view(UninitializedArray)
    a.initialized = np.zeros(shape, bool)
    return a


# program_for(k): the compiled program of k, kept for the 64 most recently used kernels
program_for = KernelCache(lambda k: Program(run(PIPELINE, k)))


class _Params:
    """Just enough of a State to evaluate expressions of the scalar parameters."""

    def __init__(self, prog: Program, values: dict):
        self.prog = prog
        self.vars = [None] * len(prog.var_slots)
        for name, v in values.items():
            self.vars[prog.var_slots[name]] = v
        self.special, self.L = {}, 1
        self.cache = [None] * prog.cache_slots


def launch_shape(prog: Program, env: _Params) -> tuple[tuple, tuple]:
    """(grid, block) of a launch, from the scalar parameters in env."""
    return tuple(int(f(env, None)) for f in prog.grid), tuple(int(f(env, None)) for f in prog.block)


def interpret(k: ir.Kernel, *args, checks: bool = True, trace=None):
    """Run `k` on `args` (NumPy arrays written in place, Python scalars); see SPEC.md."""
    prog = program_for(k)
    kernel = prog.kernel
    scalars, arrays = _bind(kernel, args)
    env = _Params(prog, scalars)
    grid, block = launch_shape(prog, env)
    if min(grid + block) < 1 or math.prod(block) > 1024:
        raise KernelTrap("invalid launch configuration",
                         f"grid {grid} and block {block}: every extent must be ≥ 1 and a block ≤ 1024 threads",
                         kernel=kernel.name, loc=kernel.loc)
    globals_ = _global_spaces(prog, env, arrays, checks, kernel)
    T, nblocks = math.prod(block), math.prod(grid)
    if T * nblocks >= 2**31:
        raise KernelTrap("invalid launch configuration", f"{T * nblocks} threads: the interpreter supports < 2^31",
                         kernel=kernel.name, loc=kernel.loc)
    per_batch = _blocks_per_batch(prog, env, T, checks)
    with np.errstate(all="ignore"):
        for first in range(0, nblocks, per_batch):
            blocks = np.arange(first, min(nblocks, first + per_batch))
            st = State(prog, grid, block, blocks, [None] * len(prog.buf_slots), checks, None,
                       asynccopy.AsyncCopies(len(blocks) * T))
            for slot, space in globals_.items():
                st.spaces[slot] = space
            for name, v in scalars.items():
                st.vars[prog.var_slots[name]] = v
            if trace is not None and trace.bind(st):
                st.trace = trace
            prog.body(st, None)
            asynccopy.finish(st)
    return None


def _bind(kernel: ir.Kernel, args) -> tuple[dict, dict]:
    if len(args) != len(kernel.params):
        names = ", ".join(p.name for p in kernel.params)
        raise KernelTrap("shape mismatch", f"kernel {kernel.name}({names}) takes {len(kernel.params)} arguments, "
                         f"got {len(args)}", kernel=kernel.name, loc=kernel.loc)
    scalars, arrays = {}, {}
    for p, a in zip(kernel.params, args):
        if isinstance(p, ir.Var):
            scalars[p.name] = _scalar_arg(kernel, p, a)
        else:
            arrays[p.name] = a
    return scalars, arrays


def _scalar_arg(kernel, p: ir.Var, a):
    t = p.dtype
    if not t.accepts(a):
        raise KernelTrap("dtype mismatch", f"parameter {p.name}: expected a {t.short} scalar, got "
                         f"{type(a).__name__} {a!r}", kernel=kernel.name, loc=p.loc or kernel.loc)
    return num.convert(np.float64(a), dt.float64, t) if t.is_float else num.scalar(a, t)


def _global_spaces(prog: Program, env, arrays: dict, checks: bool, kernel) -> dict:
    out = {}
    for b in kernel.buffer_params:
        a = arrays[b.name]
        slot = prog.buf_slots[b.name]
        shape = prog.shape_of(env, slot)
        if not isinstance(a, np.ndarray):
            raise KernelTrap("dtype mismatch", f"parameter {b.name}: expected a NumPy array, got {type(a).__name__}",
                             kernel=kernel.name, loc=b.loc or kernel.loc)
        if a.dtype != b.dtype.storage:
            want = f"{b.dtype.storage} (bf16 bit patterns)" if b.dtype is dt.bfloat16 else str(b.dtype.storage)
            raise KernelTrap("dtype mismatch", f"parameter {b.name}: expected {want}, got {a.dtype}",
                             kernel=kernel.name, loc=b.loc or kernel.loc)
        if a.shape != shape or not a.flags.c_contiguous:
            got = f"{a.shape}" + ("" if a.flags.c_contiguous else " (not C-contiguous)")
            raise KernelTrap("shape mismatch", f"for parameter {b.name}: expected {shape} from "
                             f"({', '.join(map(expr_str, b.shape))}), got {got}", kernel=kernel.name,
                             loc=b.loc or kernel.loc)
        data = np.asarray(a).reshape(-1)
        init = getattr(a, "initialized", None)
        out[slot] = memory.Space(
            b, data, shape, *memory.layout_strides(shape, None), 0,
            init=init.reshape(-1) if checks and init is not None else None,
            race=memory.RaceShadow(data.size) if checks and b.name in prog.written else None)
    return out


def _blocks_per_batch(prog: Program, env, T: int, checks: bool) -> int:
    """Blocks per batch so that lanes ≤ LANE_BUDGET and per-batch state ≤ BYTES_BUDGET."""
    shadow = 4 + 4 * 8 if checks else 0     # init, atomic, pending, deferred marks + the two race records
    per_lane = 24 * len(prog.var_slots)
    per_block = 0
    for slot, b in prog.buffers.items():
        if b.scope == "global":
            continue
        size = math.prod(prog.shape_of(env, slot))
        if b.scope == "register":
            per_lane += size * (b.dtype.nbytes + 1)
        else:
            per_block += size * (b.dtype.nbytes + shadow)
    per_block += T * per_lane
    return max(1, min(LANE_BUDGET // T, BYTES_BUDGET // max(1, per_block)))
