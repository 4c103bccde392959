"""Tensor compute definitions (Hidet's compute / reduce / Task), over the kernel IR's expressions.

An operator's definition says WHAT each output element is, not how a kernel computes it:

    x = TensorInput("x", (m, n), f32)
    y = compute("y", (m, n), lambda i, j: maximum(x[i, j], 0.0))            # relu
    s = compute("s", (m,), lambda i: reduce((n,), lambda k: x[i, k], "sum"))  # row sum
    task = Task("relu", (x,), (y,), inverse_maps=(("x", inverse_map(x, lambda i, j: (i, j))),))

- `TensorInput(name, shape, dtype)`: an operator input. `x[i, j]` is an `ir.Load` of
  `x.buffer` (a global `ir.Buffer`); indices are kernel-IR integer expressions.
- `Compute(name, shape, axes, body)`: output (or intermediate) element `[axes]` = `body`, an
  `ir.Expr` over the index variables `axes` (`ir.Var`, i32, one per dimension, ranging over
  `0 <= axes[d] < shape[d]`) and Loads of inputs and of earlier computes. `compute(...)` builds
  one from a Python function of the axes.
- `Reduce(op, axes, extents, body, acc)`: an expression node, `op` over `0 <= axes < extents`
  of `body` converted to the accumulation type `acc` (sum, prod, max, min: result `acc`;
  argmax, argmin: result i64, the row-major position within the reduced domain of the first
  extreme value). The order of a floating-point sum/prod is unspecified (a schedule picks it);
  max/min follow §2.3 (`fmax`/`fmin`). `reduce(...)` builds one.
- `Task(name, inputs, computes, outputs, inverse_maps, attrs)`: the whole operator. `computes`
  are in dependency order (a body loads only inputs and earlier computes; checked);
  `outputs` names the computes the operator returns.
- Fusion needs, per input: `task.injective(name)` (derived, never declared: the input reaches
  the outputs without passing through a Reduce, so a producer can be inlined at each Load) and
  `task.inverse_map(name)` (`InverseMap`: input index -> output index, given where the input's
  elements map one-to-one onto the elements of the single output, so an anchor kernel that
  produces the input at index i can write the output at inverse(i) directly: identity for
  element-wise inputs of the output's shape, the permutation for transpose, ...).

Numeric contract (SPEC.md "Operators"): f16/bf16 operators convert their inputs to f32,
compute and accumulate in f32 and round to the output dtype once, at the end; the kernel IR's
scalar semantics (SPEC.md §2) give every expression its meaning. `taskmap.refimpl.compute_eval`
executes a Task directly (the second, independent reference of every operator).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from .. import dtypes as dt
from .. import ir
from ..dtypes import DType

REDUCE_OPS = ("sum", "prod", "max", "min", "argmax", "argmin")


def _buffer(name: str, shape: tuple[int, ...], dtype: DType) -> ir.Buffer:
    return ir.Buffer(name, dtype, tuple(ir.const(s) for s in shape), "global")


def _indices(idx) -> tuple[ir.Expr, ...]:
    return tuple(ir.as_expr(i, dt.int32) for i in (idx if isinstance(idx, tuple) else (idx,)))


@dataclass(frozen=True)
class TensorInput:
    name: str
    shape: tuple[int, ...]
    dtype: DType

    @property
    def buffer(self) -> ir.Buffer:
        return _buffer(self.name, self.shape, self.dtype)

    def __getitem__(self, idx) -> ir.Load:
        return ir.Load(self.buffer, _indices(idx))


@dataclass(frozen=True)
class Reduce(ir.Expr):
    op: str
    axes: tuple[ir.Var, ...]
    extents: tuple[int, ...]
    body: ir.Expr
    acc: DType

    def __post_init__(self):
        if self.op not in REDUCE_OPS:
            raise ValueError(f"unknown reduction {self.op!r}; expected one of {', '.join(REDUCE_OPS)}")

    @property
    def dtype(self) -> DType:
        return dt.int64 if self.op in ("argmax", "argmin") else self.acc


@dataclass(frozen=True)
class Compute:
    name: str
    shape: tuple[int, ...]
    axes: tuple[ir.Var, ...]
    body: ir.Expr

    @property
    def dtype(self) -> DType:
        return self.body.dtype

    @property
    def buffer(self) -> ir.Buffer:
        return _buffer(self.name, self.shape, self.dtype)

    def __getitem__(self, idx) -> ir.Load:
        return ir.Load(self.buffer, _indices(idx))

    def at(self, indices) -> ir.Expr:
        """The body with the axes replaced by `indices`: what fusion inlines at a Load."""
        return substitute(self.body, dict(zip(self.axes, _indices(tuple(indices)))))


@dataclass(frozen=True)
class InverseMap:
    """Input index `axes` -> output index `indices` (see the module doc)."""
    axes: tuple[ir.Var, ...]
    indices: tuple[ir.Expr, ...]


@dataclass(frozen=True)
class Task:
    name: str
    inputs: tuple[TensorInput, ...]
    computes: tuple[Compute, ...]
    outputs: tuple[str, ...]
    inverse_maps: tuple[tuple[str, InverseMap], ...] = ()
    attrs: tuple[tuple[str, object], ...] = field(default=())

    def __post_init__(self):
        known = {t.name: t for t in self.inputs}
        if len(known) != len(self.inputs):
            raise ValueError(f"task {self.name}: duplicate input names")
        for c in self.computes:
            for n in ir.walk(c.body):
                if isinstance(n, ir.Load) and n.buffer.name not in known:
                    raise ValueError(f"task {self.name}: compute {c.name!r} loads {n.buffer.name!r}, "
                                     f"which is neither an input nor an earlier compute")
            if c.name in known:
                raise ValueError(f"task {self.name}: name {c.name!r} defined twice")
            known[c.name] = c
        for o in self.outputs:
            if not any(c.name == o for c in self.computes):
                raise ValueError(f"task {self.name}: output {o!r} is not a compute")
        for name, _ in self.inverse_maps:
            if not any(t.name == name for t in self.inputs):
                raise ValueError(f"task {self.name}: inverse map for unknown input {name!r}")

    def compute(self, name: str) -> Compute:
        return next(c for c in self.computes if c.name == name)

    @property
    def output_computes(self) -> tuple[Compute, ...]:
        return tuple(self.compute(o) for o in self.outputs)

    @property
    def is_injective(self) -> bool:
        """No reduction anywhere (Hidet's injective operator); otherwise the task is an anchor."""
        return not any(isinstance(n, Reduce) for c in self.computes for n in ir.walk(c.body))

    @property
    def reduction_depth(self) -> int:
        """The most terms one reduction combines (the product of its extents; 1 without any):
        what rounding error grows with, so what a result's tolerance scales by."""
        return max((math.prod(n.extents) for c in self.computes for n in ir.walk(c.body) if isinstance(n, Reduce)),
                   default=1)

    def injective(self, name: str) -> bool:
        """Input (or compute) `name` reaches every output without passing through a Reduce."""
        reduced: set[str] = set()       # names whose values flow into some Reduce
        for c in reversed(self.computes):
            inside = {n.buffer.name for r in ir.walk(c.body) if isinstance(r, Reduce)
                      for n in ir.walk(r.body) if isinstance(n, ir.Load)}
            if c.name in reduced:
                inside |= {n.buffer.name for n in ir.walk(c.body) if isinstance(n, ir.Load)}
            reduced |= inside
        return name not in reduced

    def inverse_map(self, name: str) -> InverseMap | None:
        return dict(self.inverse_maps).get(name)


# ---------------------------------------------------------------- builders

def axes_for(prefix: str, n: int) -> tuple[ir.Var, ...]:
    return tuple(ir.Var(f"{prefix}{k}", dt.int32) for k in range(n))


def compute(name: str, shape, fcompute: Callable, dtype: DType | None = None) -> Compute:
    """Compute `name` of `shape`: element [i0, i1, ...] = fcompute(i0, i1, ...), converted to
    `dtype` when given (the one final rounding of f16/bf16 operators)."""
    shape = tuple(int(s) for s in shape)
    axes = axes_for(f"{name}_i", len(shape))
    body = ir.as_expr(fcompute(*axes))
    if dtype is not None and body.dtype != dtype:
        body = ir.Cast(body, dtype)
    return Compute(name, shape, axes, body)


def reduce(extents, fcompute: Callable, op: str, acc: DType | None = None, prefix: str = "r") -> Reduce:
    """`op` over 0 <= r < extents of fcompute(r0, r1, ...); `acc` defaults to the body's type.
    Nested reductions need distinct `prefix`es."""
    extents = tuple(int(e) for e in extents)
    axes = axes_for(prefix, len(extents))
    body = ir.as_expr(fcompute(*axes))
    return Reduce(op, axes, extents, body, acc or body.dtype)


def inverse_map(t: TensorInput, fmap: Callable) -> InverseMap:
    axes = axes_for(f"{t.name}_j", len(t.shape))
    return InverseMap(axes, _indices(tuple(fmap(*axes))))


def substitute(e: ir.Expr, mapping: dict) -> ir.Expr:
    """e with the variables of `mapping` (Var -> Expr) replaced."""
    return ir.rewrite(e, lambda n: mapping.get(n, n) if isinstance(n, ir.Var) else n)


# ---------------------------------------------------------------- expression helpers

def _pair(a, b) -> tuple[ir.Expr, ir.Expr]:
    la = a.dtype if isinstance(a, ir.Expr) else None
    lb = b.dtype if isinstance(b, ir.Expr) else None
    return ir.as_expr(a, lb), ir.as_expr(b, la)


def cmp(op: str, a, b) -> ir.Expr:
    """a op b (op in ir.COMPARE_OPS or ir.LOGIC_OPS), literals weakly typed."""
    return ir.Binary(op, *_pair(a, b))


def select(cond, a, b) -> ir.Expr:
    return ir.Select(ir.as_expr(cond), *_pair(a, b))


def maximum(a, b) -> ir.Expr:
    return ir.binary("max", a, b)


def minimum(a, b) -> ir.Expr:
    return ir.binary("min", a, b)


def call(fn: str, *args) -> ir.Expr:
    like = next((a.dtype for a in args if isinstance(a, ir.Expr)), None)
    return ir.Call(fn, tuple(ir.as_expr(a, like) for a in args))


def cast(x, t: DType) -> ir.Expr:
    x = ir.as_expr(x, t)
    return x if x.dtype == t else ir.Cast(x, t)


def compute_type(t: DType) -> DType:
    """The type an operator on t computes in: f32 for f16/bf16, t otherwise."""
    return dt.float32 if t in (dt.float16, dt.bfloat16) else t
