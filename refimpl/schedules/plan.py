"""A `Plan`: the kernel launches that compute one operator, over named buffers.

A plan is built for concrete input types (shapes and dtypes are known), so every launch
argument is either a buffer (an input, an output or a temporary, possibly viewed with
another shape of the same size) or a Python scalar. `run` executes it with any launcher
that takes what `refimpl.interpret` takes — `taskmap.gpu.launch` runs the same plan on a GPU.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from taskmap.spec import dtypes as dt
from taskmap.spec import ir
from taskmap.spec.errors import LaunchError

from ..launch import empty, interpret


@dataclass(frozen=True)
class Tensor:
    """A buffer of the plan: an input, an output or a temporary."""
    name: str
    shape: tuple[int, ...]
    dtype: dt.DType


@dataclass(frozen=True)
class View:
    """The leading elements of buffer `name` (all of them, or fewer: a kernel parameter it
    never reads, like the [1] gamma of a reduction) passed as a contiguous array of `shape`."""
    name: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Launch:
    kernel: ir.Kernel
    args: tuple          # per kernel parameter: a buffer name, a View, or a Python scalar


@dataclass(frozen=True)
class Plan:
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    temps: tuple[Tensor, ...]
    launches: tuple[Launch, ...]

    def __post_init__(self):
        buffers = {t.name: t for t in self.inputs + self.outputs + self.temps}
        if len(buffers) != len(self.inputs) + len(self.outputs) + len(self.temps):
            raise ValueError("plan buffer names must be unique")
        for launch in self.launches:
            if len(launch.args) != len(launch.kernel.params):
                raise ValueError(f"launch of {launch.kernel.name}: {len(launch.args)} arguments for "
                                 f"{len(launch.kernel.params)} parameters")
            for a in launch.args:
                if isinstance(a, (str, View)):
                    t = buffers.get(a if isinstance(a, str) else a.name)
                    if t is None:
                        raise ValueError(f"launch of {launch.kernel.name}: unknown buffer {a!r}")
                    if isinstance(a, View) and math.prod(a.shape) > math.prod(t.shape):
                        raise ValueError(f"launch of {launch.kernel.name}: view {a.shape} of {t.name}{t.shape} "
                                         "is larger than the buffer")

    @property
    def kernels(self) -> tuple[ir.Kernel, ...]:
        return tuple(launch.kernel for launch in self.launches)


def run(plan: Plan, *arrays, launch: Callable = interpret) -> None:
    """Run `plan` on its inputs then its outputs (NumPy arrays; outputs written in place).
    Temporaries start uninitialized (`refimpl.empty`), so with the interpreter's checks a
    launch reading a temporary element before an earlier launch wrote it traps."""
    params = plan.inputs + plan.outputs
    if len(arrays) != len(params):
        raise LaunchError("wrong number of arguments", f"the plan takes {len(params)} arrays "
                          f"({', '.join(t.name for t in params)}), got {len(arrays)}")
    env = {}
    for t, a in zip(params, arrays):
        if not isinstance(a, np.ndarray) or a.dtype != t.dtype.storage or a.shape != t.shape:
            got = f"{a.dtype}{a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
            raise LaunchError("shape mismatch", f"plan buffer {t.name}: expected {t.dtype.short}{t.shape}, got {got}",
                              param=t.name)
        env[t.name] = a
    for t in plan.temps:
        env[t.name] = empty(t.shape, t.dtype)
    for step in plan.launches:
        launch(step.kernel, *(argument(env, a) for a in step.args))


def evaluate(plan: Plan, *inputs, launch: Callable = interpret) -> list[np.ndarray]:
    """Run `plan` on `inputs` and return its outputs, allocated uninitialized (so a plan that
    leaves an output element unwritten is caught by whoever reads it)."""
    outputs = [empty(t.shape, t.dtype) for t in plan.outputs]
    run(plan, *inputs, *outputs, launch=launch)
    return [np.asarray(o) for o in outputs]


def argument(env: dict, a):
    """Launch argument `a` over the buffers `env` (name -> array): a buffer, a View of its
    leading elements, or a scalar as given. Any array type with reshape and slicing serves
    (NumPy on the interpreter, torch CUDA tensors in `taskmap bench --suite ops`)."""
    if isinstance(a, str):
        return env[a]
    if not isinstance(a, View):
        return a
    count = math.prod(a.shape)
    whole = env[a.name]
    view = whole.reshape(-1)[:count].reshape(a.shape)
    init = getattr(whole, "initialized", None)
    if init is not None:                    # the view shares the written-elements record
        view.initialized = init.reshape(-1)[:count].reshape(a.shape)
    return view
