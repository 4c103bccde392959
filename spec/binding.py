"""The launch binding (SPEC.md §1.1, §3.4): a kernel and its arguments become the scalar
environment, the shape of every tensor, the grid and the block — evaluated with the one
scalar semantics (spec.semantics) and checked once, for every backend: the interpreter, the
CUDA runtime, and the graph executable. Every problem raises one `LaunchError` whose phrase
is one of `LaunchError.PHRASES` and whose text names the parameter and its DSL line.

    b = bind(kernel, args)              # raises LaunchError
    b.scalars["n"], b.grid, b.block, b.shapes["a"], b.strides.get("tile")
    b.check_array(param, array)         # a NumPy tensor argument: dtype, shape, layout, writability
    b.check_tensor(param, shape, dtype) # what a device tensor reports of itself
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import dtypes as dt
from . import ir
from . import semantics
from .cache import KernelCache
from .errors import LaunchError
from .printer import expr_str
from .verify_launch import BLOCK_LIMITS, GRID_LIMITS, MAX_THREADS


@dataclass(frozen=True)
class Binding:
    kernel: ir.Kernel
    scalars: dict            # scalar parameter name -> its value (a Python scalar of its dtype, §2.4)
    shapes: dict             # tensor name -> shape, for parameters, shared and register tensors
    strides: dict            # tensor name -> element strides, for strided layouts
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    written: frozenset       # the tensor parameters the kernel may write (its outputs, §6.1)

    def tensors(self, args) -> list[tuple[ir.Buffer, object]]:
        """(parameter, argument) for each tensor parameter, in order."""
        return [(p, a) for p, a in zip(self.kernel.params, args) if isinstance(p, ir.Buffer)]

    def check_array(self, p: ir.Buffer, a) -> None:
        """A NumPy array passed for tensor parameter p: its dtype and shape are the declared
        ones, it is C-contiguous (§3.4), and writable if the kernel writes it."""
        if not isinstance(a, np.ndarray):
            raise self.error("dtype mismatch", p, f"expects a NumPy array of {_storage(p.dtype)}, got "
                                                  f"{type(a).__name__}")
        self.check_tensor(p, a.shape, a.dtype)
        if not a.flags.c_contiguous:
            raise self.error("non-contiguous array", p, "is a strided view (a transpose or a slice); tensors "
                                                        "are passed C-contiguous: pass np.ascontiguousarray(...)")
        if p.name in self.written and not a.flags.writeable:
            raise self.error("read-only output", p, "is written by the kernel but its array is read-only; "
                                                    "pass a writable array (a copy)")

    def check_tensor(self, p: ir.Buffer, shape, dtype=None) -> None:
        """A tensor argument's shape (and NumPy dtype, where it has one) against p's."""
        if dtype is not None and np.dtype(dtype) != p.dtype.storage:
            raise self.error("dtype mismatch", p, f"expects an array of {_storage(p.dtype)}, got {np.dtype(dtype)}")
        want = self.shapes[p.name]
        if tuple(shape) != want:
            raise self.error("shape mismatch", p, f"expects shape {want} from ({', '.join(map(expr_str, p.shape))}), "
                                                  f"got {tuple(shape)}")

    def error(self, phrase: str, p: ir.Param | None, detail: str) -> LaunchError:
        return _error(self.kernel, phrase, p, detail)


def bind(kernel: ir.Kernel, args, caller: str = "interpret") -> Binding:
    """Check `args` against `kernel`'s parameters and evaluate its launch geometry (§1.1)."""
    if not isinstance(kernel, ir.Kernel):
        raise LaunchError("not a kernel", f"{caller}() takes a kernel (a function decorated with @kernel) first, "
                                          f"got {type(kernel).__name__} {_short(kernel)}")
    if len(args) != len(kernel.params):
        names = ", ".join(p.name for p in kernel.params)
        raise LaunchError("wrong number of arguments", f"kernel {kernel.name}({names}) takes {len(kernel.params)} "
                                                       f"arguments, got {len(args)}", kernel=kernel.name, loc=kernel.loc)
    env = {p.name: scalar_value(kernel, p, a) for p, a in zip(kernel.params, args) if isinstance(p, ir.Var)}
    grid, block = launch_dims(kernel, env)
    _check_dims(kernel, grid, block)
    tensors, outputs = _tensors(kernel)
    shapes, strides = {}, {}
    for b in tensors:
        shapes[b.name] = shape_of(kernel, b, env)
        if any(n < 0 for n in shapes[b.name]):
            raise _error(kernel, "invalid tensor shape", b, f"has shape ({', '.join(map(expr_str, b.shape))}) = "
                                                            f"{shapes[b.name]} for these arguments; extents are >= 0")
        if isinstance(b.layout, ir.Strided):
            strides[b.name] = tuple(int(_value(kernel, s, env, "stride", b)) for s in b.layout.strides)
    for b in _tma_tensors(kernel):
        _check_tensor_map(kernel, b, shapes[b.name])
    return Binding(kernel, env, shapes, strides, grid, block, outputs)


def _check_tensor_map(kernel: ir.Kernel, b: ir.Buffer, shape: tuple[int, ...]) -> None:
    """A tensor that TMA copies read or write is described by a tensor map (§5.11), which the
    driver builds only for extents 1 … 2^32 and row pitches (every stride but the innermost, in
    bytes) that are multiples of 16 below 2^40."""
    pitches = [math.prod(shape[d + 1:]) * b.dtype.nbytes for d in range(len(shape) - 1)]
    bad = next((n for n in shape if not 1 <= n <= 1 << 32), None)
    why = f"extent {bad} is outside 1 … 2^32" if bad is not None else next(
        (f"the stride of dimension {d} is {p} bytes, not a multiple of 16" for d, p in enumerate(pitches)
         if p % 16 or p >= 1 << 40), None)
    if why:
        raise _error(kernel, "invalid launch configuration", b,
                     f"has shape {shape}: TMA copies reach it through a tensor map, and {why}; pad the rows "
                     "(e.g. to a multiple of 16 bytes) or copy it another way")


def _walk_tensors(kernel: ir.Kernel) -> tuple[tuple[ir.Buffer, ...], frozenset]:
    """Every tensor of the kernel (parameters first) and its outputs (§6.1 directions out, inout)."""
    tensors = {n.name: n for n in ir.walk(kernel) if isinstance(n, ir.Buffer)}
    return tuple(tensors.values()), frozenset(b.name for b in kernel.outputs)


_tensors = KernelCache(_walk_tensors)      # a launch walks no IR
def _walk_tma_tensors(kernel: ir.Kernel) -> tuple[ir.Buffer, ...]:
    """The global tensors that TMA tensor copies (§5.11) read or write."""
    found = {n.src.buffer.name: n.src.buffer for n in ir.walk(kernel) if isinstance(n, ir.TmaLoad)}
    found |= {n.dst.buffer.name: n.dst.buffer for n in ir.walk(kernel) if isinstance(n, ir.TmaStore)}
    return tuple(found.values())


_tma_tensors = KernelCache(_walk_tma_tensors)


def scalar_value(kernel: ir.Kernel, p: ir.Var, a):
    """The argument `a` of scalar parameter p as a value of p's dtype (§3.4, §2.4)."""
    t = p.dtype
    if t.accepts(a):
        if t.is_float:
            return semantics.convert(int(a), dt.int64, t) if isinstance(a, (int, np.integer)) and abs(a) < 2**63 \
                else dt.round_to(float(a), t)
        return bool(a) if t is dt.boolean else int(a)
    number = isinstance(a, (int, float, np.integer, np.floating)) and not isinstance(a, (bool, np.bool_))
    if number and (t.is_float or t.is_integer and isinstance(a, (int, np.integer))):
        why = f"lies outside [{t.min}, {t.max}]; pass a value in range or declare a wider type" if t.is_integer \
            else f"would round to infinity in {t.short}; pass a value {t.short} holds (or inf itself, if meant)"
        raise _error(kernel, "scalar out of range", p, f"is {t.short}: {a!r} {why}")
    raise _error(kernel, "dtype mismatch", p, f"expects a {t.short} scalar, got {type(a).__name__} {_short(a)}")


def shape_of(kernel: ir.Kernel, b: ir.Buffer, env: dict) -> tuple[int, ...]:
    """The shape of tensor b for the scalar values `env` (parameter name -> value), as evaluated:
    `bind` refuses negative extents, callers that allocate before binding check them."""
    return tuple(int(_value(kernel, e, env, "extent", b)) for e in b.shape)


def launch_dims(kernel: ir.Kernel, env: dict) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(grid, block) for the scalar values `env`, not yet checked against §1.1's limits."""
    return tuple(tuple(int(_value(kernel, e, env, f"{what}.{axis}", None)) for axis, e in zip("xyz", exprs))
                 for what, exprs in (("grid", kernel.grid), ("block", kernel.block)))


def _check_dims(kernel, grid, block) -> None:
    bad = "invalid launch configuration"
    if min(grid + block) < 1:
        raise _error(kernel, bad, None, f"grid {grid} and block {block} for these arguments: every extent must "
                                        "be >= 1 (SPEC §1.1)")
    threads = math.prod(block)
    if threads > MAX_THREADS:
        raise _error(kernel, bad, None, f"block {block} has {threads} threads, over the limit of {MAX_THREADS} by "
                                        f"{threads - MAX_THREADS} (SPEC §1.1)")
    for what, dims, limits in (("grid", grid, GRID_LIMITS), ("block", block, BLOCK_LIMITS)):
        for axis, n, most in zip("xyz", dims, limits):
            if n > most:
                raise _error(kernel, bad, None, f"{what}.{axis} = {n} for these arguments, over CUDA's limit of "
                                                f"{most} (SPEC §1.1)")


def _value(kernel, e: ir.Expr, env: dict, what: str, p):
    """`what` names the expression: "grid.x", or for tensor p "extent" / "stride"."""
    try:
        return semantics.evaluate(e, env)
    except semantics.Trap as trap:
        why = f"traps for these arguments ({trap})"
    except semantics.Unknown as unknown:
        why = (f"uses `{expr_str(unknown.node)}`; launch dimensions and tensor shapes are expressions of the "
               "scalar parameters (SPEC §9.5)")
    head = f"{what} = `{expr_str(e)}`" if p is None else f"has {what} `{expr_str(e)}`, which"
    raise _error(kernel, "invalid launch configuration", p, f"{head} {why}")


def array_spec(shape, dtype, caller: str) -> tuple[tuple[int, ...], dt.DType]:
    """The (shape, dtype) of an array a caller asks for (`empty(shape, dtype)`): an extent or
    a tuple of extents ≥ 0, and a dtype (a DType, its name, or a NumPy dtype)."""
    if isinstance(dtype, dt.DType):
        t = dtype
    elif dtype is None:
        raise LaunchError("dtype mismatch", f"{caller}(dtype=None): give the element type, e.g. \"f32\"",
                          param="dtype")
    else:
        try:
            t = dt.by_name(dtype) if isinstance(dtype, str) else dt.from_numpy(dtype)
        except (TypeError, ValueError) as e:
            raise LaunchError("dtype mismatch", f"{caller}(dtype={_short(dtype)}): {e}", param="dtype") from None
    extents = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
    if not all(isinstance(n, (int, np.integer)) and not isinstance(n, (bool, np.bool_)) for n in extents):
        raise LaunchError("invalid tensor shape", f"{caller}(shape={_short(shape)}): a shape is an integer or a "
                                                  "tuple of integers", param="shape")
    if any(n < 0 for n in extents):
        raise LaunchError("invalid tensor shape", f"{caller}(shape={_short(shape)}): extents must be >= 0",
                          param="shape")
    return tuple(int(n) for n in extents), t


def _error(kernel: ir.Kernel, phrase: str, p, detail: str) -> LaunchError:
    if p is None:
        subject = f"kernel {kernel.name}: "
    else:
        what = "parameter" if isinstance(p, ir.Var) or p.scope == "global" else f"{p.scope} tensor"
        subject = f"{what} {p.name} of kernel {kernel.name} "
    return LaunchError(phrase, subject + detail, kernel=kernel.name, param=None if p is None else p.name,
                       loc=getattr(p, "loc", None) or kernel.loc)


def _storage(t: dt.DType) -> str:
    return f"{t.storage} (bf16 bit patterns)" if t is dt.bfloat16 else str(t.storage)


def _short(x) -> str:
    text = repr(x)
    return text if len(text) <= 60 else text[:57] + "..."
