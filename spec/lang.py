"""Public names of the kernel DSL (SPEC.md §8). Import from here:

    from taskmap.lang import kernel, i32, f32, spatial, repeat, threadIdx, shared_tensor, syncthreads

Inside a @kernel function these names are read by the parser (spec/parser.py); outside a
kernel, calling an intrinsic raises a clear error rather than doing anything.
"""
from __future__ import annotations

import __future__
import inspect
import linecache
import sys
from dataclasses import dataclass

from . import dtypes as _dt
from .errors import DSLError, TaskmapError
from .ir import Loc, Module, Swizzle
from .mapping import TaskMapping, auto_map, repeat, spatial

boolean = _dt.boolean
i8, i16, i32, i64 = _dt.int8, _dt.int16, _dt.int32, _dt.int64
u8, u32 = _dt.uint8, _dt.uint32
f16, bf16, f32, f64 = _dt.float16, _dt.bfloat16, _dt.float32, _dt.float64


@dataclass(frozen=True)
class TensorType:
    """`f32[m, n]` in a parameter annotation: a global tensor of that dtype and shape."""
    dtype: _dt.DType
    shape: tuple
    direction: str | None = None


class Direction:
    """`In[f32[n]]`, `Out[...]`, `InOut[...]` in a parameter annotation: the tensor's declared
    direction (SPEC §6.1); without one it is inferred from the body."""

    def __init__(self, name: str, direction: str):
        self.name, self.direction = name, direction

    def __getitem__(self, t: TensorType) -> TensorType:
        if not isinstance(t, TensorType):
            raise TypeError(f"{self.name}[...] takes a tensor type such as f32[n], got {t!r}")
        return TensorType(t.dtype, t.shape, self.direction)

    def __repr__(self) -> str:
        return self.name


In, Out, InOut = Direction("In", "in"), Direction("Out", "out"), Direction("InOut", "inout")


class Intrinsic:
    """A DSL built-in; only the parser gives it meaning."""

    def __init__(self, name: str, doc: str):
        self.name = name
        self.__doc__ = doc

    def __call__(self, *args, **kwargs):
        raise RuntimeError(f"{self.name}() can only be used inside a @kernel function")

    def __repr__(self) -> str:
        return f"<taskmap intrinsic {self.name}>"


class SpecialGroup:
    """threadIdx / blockIdx / blockDim / gridDim: read `.x`, `.y`, `.z` inside a kernel."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


threadIdx, blockIdx = SpecialGroup("threadIdx"), SpecialGroup("blockIdx")
blockDim, gridDim = SpecialGroup("blockDim"), SpecialGroup("gridDim")

_INTRINSICS = {
    "shared_tensor": "shared_tensor(dtype, [d0, d1, ...], layout=None): a per-block shared-memory tensor",
    "register_tensor": "register_tensor(dtype, [d0, ...]): a per-thread register tensor",
    "syncthreads": "syncthreads(): block-wide barrier (§5.3)",
    "syncwarp": "syncwarp(): warp-wide barrier (§5.3)",
    "cp_async": "cp_async(dst_shared[...], src_global[...], elems=1, valid=None): async copy (§5.4)",
    "cp_async_commit_group": "cp_async_commit_group(): close the current group of async copies",
    "cp_async_wait_group": "cp_async_wait_group(n): wait until at most n committed groups are pending",
    "mbarrier_init": "mbarrier_init(bar[i], count): bar (a shared i64 element) expects count arrivals per phase (§5.9)",
    "mbarrier_arrive": "mbarrier_arrive(bar[i]): one arrival on the barrier's current phase (§5.9)",
    "mbarrier_arrive_expect_tx": "mbarrier_arrive_expect_tx(bar[i], nbytes): arrive, and expect nbytes of bulk copies (§5.9)",
    "mbarrier_wait": "mbarrier_wait(bar[i], parity): wait until the barrier's phase of that parity (0 or 1) completed (§5.9)",
    "bulk_copy": "bulk_copy(dst_shared[...], src_global[...], bar[i], elems=n): bulk async copy completing on bar (§5.10)",
    "tma_load": "tma_load(dst_shared[...], src_global[coords], bar[i]): TMA tensor box load, zero outside src (§5.11)",
    "tma_store": "tma_store(dst_global[coords], src_shared[...]): TMA tensor box store, clipped to dst (§5.11)",
    "ldmatrix": "ldmatrix(dst_regs[...], src_shared[...], num=4, trans=False): warp matrix load (§5.7)",
    "mma_sync": "mma_sync(a_regs[...], b_regs[...], acc_regs[...]): acc += a @ b on tensor cores (§5.7)",
    "wgmma": "wgmma(acc_regs[...], a, b, n=N): acc += A @ B for one warpgroup, m64nNk16 (§5.12); a: wgmma_desc(...) "
             "or a register fragment, b: wgmma_desc(...)",
    "wgmma_desc": "wgmma_desc(s[row, k], sbo=bytes, swizzle=0|32|64|128, lbo=16): a wgmma operand in shared "
                  "memory through a matrix descriptor (§5.12); only as an argument of wgmma",
    "wgmma_fence": "wgmma_fence(): order the warpgroup's register accesses before the wgmmas that follow (§5.12)",
    "wgmma_commit_group": "wgmma_commit_group(): close the group of wgmmas issued since the last commit (§5.12)",
    "wgmma_wait_group": "wgmma_wait_group(n): wait until at most n committed wgmma groups are in flight (§5.12)",
    "shfl_xor": "shfl_xor(value, lane_mask, width=32)", "shfl_down": "shfl_down(value, delta, width=32)",
    "shfl_up": "shfl_up(value, delta, width=32)", "shfl_idx": "shfl_idx(value, src_lane, width=32)",
    "atomic_add": "atomic_add(t[...], v) -> old", "atomic_max": "atomic_max(t[...], v) -> old",
    "atomic_min": "atomic_min(t[...], v) -> old", "atomic_exch": "atomic_exch(t[...], v) -> old",
    "atomic_cas": "atomic_cas(t[...], compare, v) -> old",
    "cast": "cast(x, dtype)", "select": "select(cond, a, b)",
    "exp": "exp(x)", "exp2": "exp2(x)", "log": "log(x)", "log2": "log2(x)", "sqrt": "sqrt(x)",
    "rsqrt": "rsqrt(x)", "tanh": "tanh(x)", "erf": "erf(x)", "sin": "sin(x)", "cos": "cos(x)",
    "floor": "floor(x)", "ceil": "ceil(x)", "pow": "pow(x, y)", "fma": "fma(a, b, c) = a*b+c, one rounding",
}
for _name, _doc in _INTRINSICS.items():
    globals()[_name] = Intrinsic(_name, _doc)


def swizzle(bits: int, base: int, shift: int) -> Swizzle:
    """Layout for shared_tensor(..., layout=swizzle(3, 3, 3)): see ir.Swizzle."""
    return Swizzle(bits, base, shift)


def module(name: str, *kernels) -> Module:
    """A named collection of kernels compiled together (one CUDA translation unit), verified."""
    try:
        return Module(name, tuple(kernels)).verify()
    except TaskmapError as e:
        raise e.with_traceback(None) from None      # the caller's frame, not the verifier's


def kernel(fn=None, *, grid=1, block=1, name: str | None = None, verify: bool = True):
    """Decorator: `@kernel(grid=..., block=...)` parses a Python function into a Kernel IR
    node, verified unless verify=False (used by the invalid-kernel catalogues, which call
    `k.verify()` themselves).

    grid/block: an int, a tuple of up to 3 ints, or a lambda over the kernel's scalar
    parameters (by name) returning either; both default to 1, so `@kernel()` is one thread.
    A bare `@kernel` is rejected: forgetting the launch would silently run a single thread.
    """
    caller = sys._getframe(1)
    if fn is not None:
        raise _bare_kernel_error(fn, caller)
    if name is not None and not (isinstance(name, str) and name.isidentifier()):
        raise _error_at(caller, f"name= must be an identifier, got {name!r}", "it names the CUDA function too")
    if not caller.f_code.co_flags & __future__.annotations.compiler_flag:
        raise _error_at(caller, "kernel modules need `from __future__ import annotations`",
                        "add it as the first statement of the file: without it Python evaluates "
                        "annotations such as `a: f32[n]` when the def runs, before @kernel can read them")
    # The defining scope's locals: names used only in string annotations (`a: dtype[n]` in a
    # kernel built by a factory function) are not closure variables, so capture them here.
    defining_scope = dict(caller.f_locals)

    def wrap(f):
        from .parser import parse_kernel
        if not inspect.isfunction(f):
            raise _error_at(sys._getframe(1), f"@kernel must decorate a plain `def` function, got {f!r}",
                            "write `def name(params):` under @kernel(...)")
        try:
            k = parse_kernel(f, grid=grid, block=block, name=name, scope=defining_scope)
            if verify:
                k.verify()
        except TaskmapError as e:
            # The message already names the kernel's file:line; the parser's frames would only
            # bury it, so the traceback starts at the decorated function.
            raise e.with_traceback(None) from None
        return k
    return wrap


def _bare_kernel_error(fn, caller) -> DSLError:
    if callable(fn) and hasattr(fn, "__code__"):
        code = fn.__code__
        return _error_at(code, "@kernel needs its launch configuration in parentheses",
                         f"write @kernel(grid=..., block=...) above `def {fn.__name__}`; "
                         "@kernel() runs a single thread")
    return _error_at(caller, f"kernel() takes keyword arguments only, got {fn!r}",
                     "write @kernel(grid=..., block=...)")


def _error_at(where, message: str, hint: str) -> DSLError:
    """A DSLError at a frame's current line or a code object's first line (the decorator)."""
    code = getattr(where, "f_code", where)
    line = where.f_lineno if hasattr(where, "f_lineno") else code.co_firstlineno
    return DSLError(message, Loc(code.co_filename, line, 1), hint, linecache.getline(code.co_filename, line))


__all__ = [
    "kernel", "module", "TensorType", "In", "Out", "InOut", "TaskMapping", "spatial", "repeat", "auto_map", "swizzle",
    "threadIdx", "blockIdx", "blockDim", "gridDim",
    "boolean", "i8", "i16", "i32", "i64", "u8", "u32", "f16", "bf16", "f32", "f64",
    *_INTRINSICS,
]
