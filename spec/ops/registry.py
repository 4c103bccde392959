"""The operator registry: one `Operator` record per operator (definition side of issue 10).

    from taskmap.spec.ops import get
    from taskmap.lang import f32
    op = get("matmul")
    (out,) = op.infer([f32[4, 5], f32[5, 3]])          # TensorType(f32, (4, 3)); OpError if bad
    (y,) = op.reference(a, b)                          # NumPy, storage arrays in and out
    task = op.task([f32[4, 5], f32[5, 3]])             # the compute definition (compute.Task)
    taskmap.refimpl.compute_eval.evaluate(task, a, b)  # runs the definition directly

Types are `taskmap.lang.TensorType` (`f32[4, 5]`) with concrete positive int dimensions.
Arrays are storage arrays (SPEC §2.1): bf16 is a uint16 array of bit patterns (no kernel type
is u16, so a uint16 array always means bf16). Attributes are keyword arguments, checked against
the operator's `Attr` schema (unknown names get a close-name suggestion; defaults filled in).
Errors are `OpError`s whose text starts with the operator's name and says which input and
dimension is wrong ("matmul: inner dimensions differ: a[..., 5] vs b[7, ...]").

References compute in float64 (integers in their own type) from the inputs' values and round
once to the inferred output dtype: an independent check of the f32-accumulating definitions.
`Operator.onnx_node(types, attrs)` gives the equivalent one-node ONNX graph as plain data
(op type, attributes, constant inputs, opset), so tests can run it on ONNX Runtime.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .. import dtypes as dt
from .. import semantics
from ..dtypes import DType
from ..errors import TaskmapError
from ..lang import TensorType
from .compute import Task

FLOATS = (dt.float32, dt.float16, dt.bfloat16)
INTS = (dt.int32, dt.int64)
REQUIRED = object()
# SPEC §11.3: rtol = atol of a float result against the reference (magnitudes about 1, short reductions)
TOLERANCE = {dt.float32: 1e-5, dt.float16: 2.0 ** -9, dt.bfloat16: 2.0 ** -6}


def reduction_atol(t: dt.DType, depth: int) -> float:
    """The atol of a float result combining `depth` terms (Task.reduction_depth): TOLERANCE
    times sqrt(depth), the random-walk growth of rounding errors of f32 sums in any order, well
    inside SPEC §11.3's worst case n · 2^-23 · Σ|terms| for terms of magnitude about 1 (the f32
    implicit-GEMM convolutions on the H200 need it at 64 terms: 1.5e-5 off f64)."""
    return TOLERANCE[t] * math.sqrt(max(1, depth))


class OpError(TaskmapError, ValueError):
    """Bad operator use: unknown operator or attribute, or inputs whose shapes/dtypes don't fit."""


@dataclass(frozen=True)
class Attr:
    name: str
    default: object            # REQUIRED: must be given
    kind: type | tuple         # accepted Python type(s); tuple attributes take lists too
    doc: str = ""
    choices: tuple = ()


@dataclass(frozen=True)
class Example:
    """One test point: input shapes, attributes, and per-input dtype overrides (None = the
    dtype under test), so the table test can run every operator at every dtype it accepts."""
    shapes: tuple
    attrs: dict = field(default_factory=dict)
    dtypes: tuple = ()

    def types(self, t: DType) -> list[TensorType]:
        fixed = self.dtypes + (None,) * (len(self.shapes) - len(self.dtypes))
        return [TensorType(f or t, tuple(s)) for s, f in zip(self.shapes, fixed)]


@dataclass(frozen=True)
class OnnxNode:
    op_type: str
    attrs: dict
    inputs: tuple = ()         # (position, constant array or None = omitted) inserted among the data inputs
    order: tuple = ()          # the data inputs' order in the ONNX node, when it differs
    opset: int = 21
    domain: str = ""


@dataclass(frozen=True, eq=False)
class Operator:
    name: str
    family: str
    doc: str
    inputs: tuple[str, ...]                 # names; optional trailing ones end "?", a variadic one "*"
    attrs: tuple[Attr, ...]
    dtypes: tuple[DType, ...]               # accepted dtypes of input `typed` (the data input)
    infer_fn: Callable                      # (types, attrs) -> list[TensorType]
    reference_fn: Callable                  # (values, types, attrs) -> list of arrays
    task_fn: Callable                       # (types, attrs) -> Task
    examples: tuple[Example, ...]
    onnx: str | None = None                 # ONNX op type, None if ONNX has no equivalent
    onnx_fn: Callable | None = None         # (types, attrs) -> OnnxNode
    sample_fn: Callable | None = None       # (rng, types, attrs) -> arrays in the input domain
    typed: int = 0                          # which input `dtypes` constrains (where: 1, embedding: 1)

    def fail(self, what: str) -> OpError:
        return OpError(f"{self.name}: {what}")

    def attributes(self, attrs: dict) -> dict:
        """attrs checked against the schema, with defaults filled in."""
        schema = {a.name: a for a in self.attrs}
        for k in attrs:
            if k not in schema:
                near = difflib.get_close_matches(k, schema, n=1)
                hint = f"; did you mean {near[0]!r}?" if near else \
                    f"; it takes {', '.join(schema) or 'no attributes'}"
                raise self.fail(f"unknown attribute {k!r}{hint}")
        out = {}
        for a in self.attrs:
            v = attrs.get(a.name, a.default)
            if v is REQUIRED:
                raise self.fail(f"attribute {a.name!r} is required ({a.doc})")
            if isinstance(v, list):
                v = tuple(v)
            ok = v is None and a.default is None or isinstance(v, a.kind) and not (
                isinstance(v, bool) and a.kind in (int, float, (int, float)))
            if not ok or (a.choices and v not in a.choices):
                want = " or ".join(repr(c) for c in a.choices) if a.choices else _kind_name(a.kind)
                raise self.fail(f"attribute {a.name!r} must be {want}, got {v!r}")
            out[a.name] = v
        return out

    def input_names(self, n: int) -> list[str]:
        """The names of n given inputs (a variadic input x* gives x0, x1, ...)."""
        if self.inputs[-1].endswith("*"):
            return [f"{self.inputs[-1][:-1]}{k}" for k in range(n)]
        return [nm.rstrip("?") for nm in self.inputs[:n]]

    def check_types(self, types) -> list[TensorType]:
        required = [n for n in self.inputs if not n.endswith("?")]
        most = 1 << 30 if self.inputs[-1].endswith("*") else len(self.inputs)
        if not len(required) <= len(types) <= most:
            n = str(len(required)) if len(required) == most else \
                f"{len(required)} or more" if most > len(self.inputs) else f"{len(required)} to {most}"
            raise self.fail(f"expected {n} inputs ({', '.join(self.inputs)}), got {len(types)}")
        out = []
        for name, t in zip(self.input_names(len(types)), types):
            if not isinstance(t, TensorType):
                raise self.fail(f"input {name} must be a TensorType such as f32[4, 5], got {t!r}")
            if not all(isinstance(s, (int, np.integer)) and s >= 1 for s in t.shape):
                raise self.fail(f"input {name} needs positive int dimensions, got {list(t.shape)}")
            out.append(TensorType(t.dtype, tuple(int(s) for s in t.shape)))
        if out[self.typed].dtype not in self.dtypes:
            raise self.fail(f"input {self.input_names(len(out))[self.typed]} has dtype {out[self.typed].dtype.short}; "
                            f"expected {', '.join(d.short for d in self.dtypes)}")
        return out

    def same_dtype(self, types, count: int | None = None):
        """The first `count` inputs (default: all) share the first one's dtype, else an OpError."""
        names = self.input_names(len(types))
        for nm, t in list(zip(names, types))[1:count]:
            if t.dtype != types[0].dtype:
                raise self.fail(f"input {nm} has dtype {t.dtype.short}, {names[0]} has {types[0].dtype.short}; "
                                "they must match")

    def infer(self, types, **attrs) -> list[TensorType]:
        return self.infer_fn(self.check_types(types), self.attributes(attrs))

    def task(self, types, **attrs) -> Task:
        types, attrs = self.check_types(types), self.attributes(attrs)
        self.infer_fn(types, attrs)
        return self.task_fn(types, attrs)

    def reference(self, *arrays, **attrs) -> tuple[np.ndarray, ...]:
        types = [TensorType(array_dtype(a), np.shape(a)) for a in arrays]
        types, attrs = self.check_types(types), self.attributes(attrs)
        outs = self.infer_fn(types, attrs)
        values = [values_of(np.asarray(a), t.dtype) for a, t in zip(arrays, types)]
        with np.errstate(all="ignore"):
            results = self.reference_fn(values, types, attrs)
        for r, o in zip(results, outs):
            if np.shape(r) != o.shape:          # a bug in the reference, not in the caller
                raise AssertionError(f"{self.name}: reference gave shape {list(np.shape(r))}, inferred {list(o.shape)}")
        return tuple(to_storage(r, o.dtype) for r, o in zip(results, outs))

    def onnx_node(self, types, **attrs) -> OnnxNode | None:
        if self.onnx_fn is None:
            return None
        return self.onnx_fn(self.check_types(types), self.attributes(attrs))

    def sample(self, rng: np.random.Generator, types, **attrs) -> list[np.ndarray]:
        """Random input storage arrays in the operator's domain (e.g. in-range indices), of
        the types' shapes (0-d arrays for 0-d types, where NumPy would give scalars)."""
        types, attrs = self.check_types(types), self.attributes(attrs)
        arrays = self.sample_fn(rng, types, attrs) if self.sample_fn is not None else [random_array(rng, t) for t in types]
        return [np.asarray(a) for a in arrays]

    @property
    def is_anchor(self) -> bool:
        """Reduces (so is not injective) at its first example: matmul, conv, reductions, norms."""
        e = self.examples[0]
        return not self.task(e.types(self.dtypes[0]), **e.attrs).is_injective


def _kind_name(kind) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join({int: "an int", float: "a number", bool: "a bool", str: "a string",
                        tuple: "a list", DType: "a dtype"}.get(k, k.__name__) for k in kinds)


OPERATORS: dict[str, Operator] = {}


def register(op: Operator) -> Operator:
    if op.name in OPERATORS:
        raise ValueError(f"operator {op.name!r} registered twice")
    OPERATORS[op.name] = op
    return op


def get(name: str) -> Operator:
    try:
        return OPERATORS[name]
    except KeyError:
        near = difflib.get_close_matches(name, OPERATORS, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise OpError(f"unknown operator {name!r}{hint}") from None


# ---------------------------------------------------------------- arrays and values

def array_dtype(a) -> DType:
    a = np.asarray(a)
    return dt.bfloat16 if a.dtype == np.uint16 else dt.from_numpy(a.dtype)


def values_of(a: np.ndarray, t: DType) -> np.ndarray:
    """Storage -> reference values: floats as float64, others unchanged."""
    if t is dt.bfloat16:
        return dt.from_bf16_bits(a).astype(np.float64)
    return a.astype(np.float64) if t.is_float else a


def to_storage(x, t: DType) -> np.ndarray:
    """Reference values -> storage of t, rounded once (floats), saturating (float -> int); a
    C-contiguous array of x's shape, 0-d included (NumPy's ufuncs give a 0-d operand back as a
    scalar and np.ascontiguousarray makes it 1-d: neither may reach a caller)."""
    x = np.asarray(x)
    if t is dt.bfloat16:
        return np.asarray(dt.to_bf16_bits(dt.round_to_odd_f32(x.astype(np.float64))), order="C")
    if t.is_integer and x.dtype.kind == "f":          # truncate, saturate, NaN -> 0 (SPEC §2.4)
        x = np.asarray(semantics.float_to_int(x, t))
    return x.astype(t.storage, order="C")


def uniform_sample(low: float, high: float, away_from_zero: bool = False):
    """An Operator.sample_fn: floats uniform in [low, high) (either sign when away_from_zero:
    magnitudes in [low, high)), other dtypes as random_array."""
    def sample(rng, types, attrs):
        out = []
        for t in types:
            if not t.dtype.is_float:
                out.append(random_array(rng, t))
                continue
            v = rng.uniform(low, high, t.shape)
            out.append(to_storage(v * rng.choice([-1, 1], t.shape) if away_from_zero else v, t.dtype))
        return out
    return sample


def random_array(rng: np.random.Generator, t: TensorType, low=-3.0, high=3.0) -> np.ndarray:
    if t.dtype.is_float:
        return to_storage(rng.uniform(low, high, t.shape), t.dtype)
    if t.dtype is dt.boolean:
        return rng.random(t.shape) < 0.5
    lo, hi = (0, 10) if t.dtype.kind == "uint" else (-10, 10)
    return rng.integers(lo, hi, t.shape).astype(t.dtype.storage)
