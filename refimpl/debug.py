"""`taskmap debug FILE.py::KERNEL --block B --thread T [--shape N=64 ...] [--seed S]`.

Runs the kernel in the interpreter on random inputs (scalar parameters from --shape, tensors
random of their dtype and shape), tracing one thread statement by statement; on a trap,
prints the trap, the offending statement and its DSL source line. Exit status: 0 clean,
1 trapped, 2 usage error.
"""
from __future__ import annotations

import argparse
import importlib.util
import linecache
import os
import sys

import numpy as np

from taskmap.spec import dtypes as dt
from taskmap.spec import ir

from . import numerics as num
from .launch import _Params, interpret, program_for
from .trace import Trace
from .traps import KernelTrap, where


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
    a = p.parse_args(argv)
    try:
        k = load_kernel(a.target)
        args = make_args(k, parse_scalars(a.shape), np.random.default_rng(a.seed))
        block, thread = parse_index(a.block, "--block"), parse_index(a.thread, "--thread")
    except UsageError as e:
        print(f"taskmap debug: {e}", file=sys.stderr)
        return 2
    trace = Trace(block=block, threads=[thread], limit=a.limit)
    print(f"kernel {k.name}: tracing thread {thread} of block {block}")
    try:
        interpret(k, *args, trace=trace)
    except KernelTrap as trap:
        print(trace)
        print(f"\nTRAP [{trap.kind}] {trap}")
        if trap.loc is not None:
            print(f"  statement: {linecache.getline(trap.loc.file, trap.loc.line).strip()}")
            print(f"  at {where(trap.loc)} ({trap.loc.file})")
        return 1
    print(trace)
    if not trace.events:
        print(f"(thread {thread} of block {block} does not exist in this launch, or ran no statement)")
    print("\nno trap")
    return 0


def load_kernel(target: str) -> ir.Kernel:
    path, _, name = target.partition("::")
    if not name or not path.endswith(".py"):
        raise UsageError(f"expected FILE.py::KERNEL, got {target!r}")
    if not os.path.exists(path):
        raise UsageError(f"no such file: {path}")
    spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module              # dataclasses and pickling look modules up here
    spec.loader.exec_module(module)
    kernels = {v.name: v for v in vars(module).values() if isinstance(v, ir.Kernel)}
    kernels.update({attr: v for attr, v in vars(module).items() if isinstance(v, ir.Kernel)})
    if name not in kernels:
        raise UsageError(f"{path} has no kernel {name!r}; kernels: {', '.join(sorted(kernels)) or 'none'}")
    return kernels[name]


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


def parse_index(text: str, what: str) -> tuple:
    try:
        parts = tuple(int(x) for x in text.replace(" ", "").strip("()").split(","))
    except ValueError:
        raise UsageError(f"{what} expects x, x,y or x,y,z, got {text!r}") from None
    if not 1 <= len(parts) <= 3:
        raise UsageError(f"{what} expects 1 to 3 numbers, got {text!r}")
    return parts + (0,) * (3 - len(parts))


def make_args(k: ir.Kernel, scalars: dict, rng: np.random.Generator) -> list:
    """Scalars from `scalars`, tensors random of their declared dtype and shape."""
    missing = [p.name for p in k.scalar_params if p.name not in scalars]
    if missing:
        raise UsageError(f"kernel {k.name} needs " + " ".join(f"--shape {n}=..." for n in missing))
    values = {p.name: (float(scalars[p.name]) if p.dtype.is_float else int(scalars[p.name]))
              for p in k.scalar_params}
    prog = program_for(k)
    env = _Params(prog, {p.name: num.scalar(values[p.name], p.dtype) for p in k.scalar_params})
    args = []
    for p in k.params:
        if isinstance(p, ir.Var):
            args.append(values[p.name])
            continue
        shape = prog.shape_of(env, prog.buf_slots[p.name])
        args.append(random_tensor(p.dtype, shape, rng))
    return args


def random_tensor(t: dt.DType, shape: tuple, rng: np.random.Generator) -> np.ndarray:
    if t is dt.boolean:
        return rng.integers(0, 2, shape).astype(np.bool_)
    if t.is_integer:
        return rng.integers(-8 if t.kind == "int" else 0, 9, shape).astype(t.storage)
    x = rng.standard_normal(shape).astype(np.float32)
    return dt.to_bf16_bits(x) if t is dt.bfloat16 else x.astype(t.storage)


if __name__ == "__main__":
    sys.exit(main())
