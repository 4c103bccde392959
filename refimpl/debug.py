"""`taskmap debug FILE.py::KERNEL --block B --thread T [--shape N=64 ...] [--seed S]`.

Runs the kernel in the interpreter on random inputs (scalar parameters from --shape, tensors
random of their dtype and shape), tracing one thread statement by statement; on a trap,
prints the trap, the offending statement and its DSL source line. Exit status: 0 clean,
1 trapped, 2 bad input (arguments, or a file that does not import).
"""
from __future__ import annotations

import argparse
import importlib.util
import linecache
import math
import os
import sys
import traceback

import numpy as np

from taskmap.spec import binding
from taskmap.spec import dtypes as dt
from taskmap.spec import ir
from taskmap.spec.errors import LaunchError, TaskmapError
from taskmap.spec.printer import expr_str

from .launch import STEP_BUDGET, interpret
from .trace import Trace
from .traps import KernelTrap, where


INPUT_BYTES = 1 << 30        # the random inputs of one debug run: a typo in --shape must not exhaust memory


class UsageError(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="taskmap debug", description=__doc__.split("\n\n")[1])
    p.add_argument("target", metavar="FILE.py::KERNEL")
    p.add_argument("--block", default="0", help="block index: x or x,y or x,y,z (default 0)")
    p.add_argument("--thread", default="0", help="thread index to trace: x or x,y or x,y,z (default 0)")
    p.add_argument("--shape", action="append", default=[], metavar="NAME=VALUE",
                   help="a scalar parameter's value (repeatable), e.g. --shape n=64")
    p.add_argument("--seed", type=int, default=0, help="random seed for the inputs")
    p.add_argument("--limit", type=int, default=2000, help="print at most this many trace steps")
    p.add_argument("--max-steps", type=int, default=None, metavar="N",
                   help="iterations one execution of a loop may run before it traps (SPEC.md §5.2; "
                        f"default $TASKMAP_MAX_STEPS, else {STEP_BUDGET} plus the tensors' element count)")
    a = p.parse_args(argv)
    try:
        for flag, v, least in (("--seed", a.seed, 0), ("--limit", a.limit, 0), ("--max-steps", a.max_steps, 1)):
            if v is not None and v < least:
                raise UsageError(f"{flag} must be ≥ {least}, got {v}")
        k = load_kernel(a.target)
        values = scalar_values(k, parse_scalars(a.shape))
        block, thread = parse_index(a.block, "--block"), parse_index(a.thread, "--thread")
        check_in_launch(k, values, block, thread)
        args = make_args(k, values, np.random.default_rng(a.seed))
    except (UsageError, LaunchError) as e:
        print(f"taskmap debug: {e}", file=sys.stderr)
        return 2
    trace = Trace(block=block, threads=[thread], limit=a.limit)
    print(f"kernel {k.name}: tracing thread {thread} of block {block}")
    try:
        interpret(k, *args, trace=trace, max_steps=a.max_steps)
    except LaunchError as e:                     # the launch is refused (SPEC §3.4): nothing ran
        print(f"taskmap debug: {e}", file=sys.stderr)
        return 2
    except KernelTrap as trap:
        print(trace)
        print(f"\nTRAP {trap}")
        if trap.loc is not None:
            print(f"  statement: {linecache.getline(trap.loc.file, trap.loc.line).strip()}")
            print(f"  at {where(trap.loc)} ({trap.loc.file})")
        return 1
    print(trace)
    if not trace.events:
        print(f"(thread {thread} of block {block} ran no statement)")
    print("\nno trap")
    return 0


def load_kernel(target: str) -> ir.Kernel:
    path, _, name = target.partition("::")
    if not name or not path.endswith(".py"):
        raise UsageError(f"expected FILE.py::KERNEL, got {target!r}")
    if not os.path.isfile(path):
        raise UsageError(f"no such file: {path}")
    module = _import(path)
    kernels = {v.name: v for v in vars(module).values() if isinstance(v, ir.Kernel)}
    kernels.update({attr: v for attr, v in vars(module).items() if isinstance(v, ir.Kernel)})
    if name not in kernels:
        listing = f"kernels: {', '.join(sorted(kernels)) or 'none'}"
        if name in vars(module):
            what = type(vars(module)[name]).__name__
            raise UsageError(f"{name!r} in {path} is a {what}, not a kernel (a factory must be called in the "
                             f"file and its kernel bound to a name); {listing}")
        raise UsageError(f"{path} has no kernel {name!r}; {listing}")
    return kernels[name]


def _import(path: str):
    """Import the file as a module; what goes wrong is reported at its file:line."""
    # under a name of its own: a file's bare name (kernels.py) would shadow the installed module of
    # that name for the rest of the process
    name = "taskmap_debug_file." + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module              # dataclasses and pickling look modules up here
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        raise UsageError(f"{e.filename}:{e.lineno}: syntax error: {e.msg}") from None
    except TaskmapError as e:                    # a kernel of the file fails to decorate: file:line first
        raise UsageError(str(e)) from None
    except Exception as e:
        here = os.path.abspath(path)
        frames = [f for f in traceback.extract_tb(e.__traceback__) if os.path.abspath(f.filename) == here]
        at = f"{path}:{frames[-1].lineno}: " if frames else f"{path}: "
        raise UsageError(f"{at}importing the file failed: {type(e).__name__}: {e}") from None
    return module


def parse_scalars(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise UsageError(f"--shape expects NAME=VALUE, got {item!r}")
        try:
            out[key.strip()] = int(value) if value.strip().lstrip("-").isdigit() else float(value)
        except ValueError:
            raise UsageError(f"--shape {item!r}: {value!r} is not a number") from None
    return out


def scalar_values(k: ir.Kernel, scalars: dict) -> dict:
    """--shape values checked against the kernel's scalar parameters: every one given, each a
    value of its dtype, no others."""
    params = {p.name: p for p in k.scalar_params}
    for name in scalars:
        if name not in params:
            tensor = any(b.name == name for b in k.buffer_params)
            raise UsageError(f"kernel {k.name} has no scalar parameter {name!r}" +
                             (" (it is a tensor: its contents are random)" if tensor else "") +
                             f"; scalar parameters: {', '.join(params) or 'none'}")
    missing = [n for n in params if n not in scalars]
    if missing:
        raise UsageError(f"kernel {k.name} needs " + " ".join(f"--shape {n}=..." for n in missing))
    values = {}
    for name, p in params.items():
        v = scalars[name]
        if p.dtype.is_float:
            v = float(v)
        elif p.dtype is dt.boolean and v in (0, 1):
            v = bool(v)
        if not p.dtype.accepts(v):
            if isinstance(v, float) or p.dtype is dt.boolean:
                want = "0 or 1" if p.dtype is dt.boolean else "an integer"
                raise UsageError(f"--shape {name}={scalars[name]}: {name} is a {p.dtype.short} parameter; give {want}")
            raise UsageError(f"--shape {name}={v}: outside the range of {p.dtype.short} [{p.dtype.min}, {p.dtype.max}]")
        values[name] = v
    return values


def check_in_launch(k: ir.Kernel, values: dict, block: tuple, thread: tuple):
    """The traced block and thread exist in the launch (an invalid launch is the interpreter's trap)."""
    grid, bdim = binding.launch_dims(k, values)
    if min(grid + bdim) < 1:
        return
    for what, index, extent, of in (("--block", block, grid, "grid"), ("--thread", thread, bdim, "block")):
        if not all(0 <= i < n for i, n in zip(index, extent)):
            raise UsageError(f"{what} {_dims(index)} is outside the {of} {_dims(extent)} of this launch")


def _dims(t) -> str:
    return ",".join(map(str, t))


def parse_index(text: str, what: str) -> tuple:
    try:
        parts = tuple(int(x) for x in text.replace(" ", "").strip("()").split(","))
    except ValueError:
        raise UsageError(f"{what} expects x, x,y or x,y,z, got {text!r}") from None
    if not 1 <= len(parts) <= 3:
        raise UsageError(f"{what} expects 1 to 3 numbers, got {text!r}")
    return parts + (0,) * (3 - len(parts))


def make_args(k: ir.Kernel, values: dict, rng: np.random.Generator) -> list:
    """Scalars from `values` (checked by scalar_values), tensors random of their declared dtype
    and shape; the shapes are checked before anything is allocated."""
    shapes = {b.name: binding.shape_of(k, b, values) for b in k.buffer_params}
    for b in k.buffer_params:
        if min(shapes[b.name], default=0) < 0:
            raise UsageError(f"tensor {b.name} would have shape {shapes[b.name]} (from "
                             f"{', '.join(map(expr_str, b.shape))}): extents must be ≥ 0; check the --shape values")
    nbytes = sum(math.prod(shapes[b.name]) * b.dtype.nbytes for b in k.buffer_params)
    if nbytes > INPUT_BYTES:
        raise UsageError(f"the tensors would take {nbytes / 2**30:.1f} GiB; taskmap debug allocates at most "
                         f"{INPUT_BYTES >> 30} GiB of inputs: use smaller --shape values")
    return [values[p.name] if isinstance(p, ir.Var) else random_tensor(p.dtype, shapes[p.name], rng)
            for p in k.params]


def random_tensor(t: dt.DType, shape: tuple, rng: np.random.Generator) -> np.ndarray:
    if t is dt.boolean:
        return rng.integers(0, 2, shape).astype(np.bool_)
    if t.is_integer:
        return rng.integers(-8 if t.kind == "int" else 0, 9, shape).astype(t.storage)
    x = rng.standard_normal(shape).astype(np.float32)
    return dt.to_bf16_bits(x) if t is dt.bfloat16 else x.astype(t.storage)


if __name__ == "__main__":
    sys.exit(main())
