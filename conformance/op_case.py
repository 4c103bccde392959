"""The `op` case kind: one registry operator (taskmap.spec.ops) through its schedule.

The operator's plan (taskmap.refimpl.schedules.schedule at the template's default point)
runs on the interpreter with every check on, or on the GPU (gpu.launch, imported only for
cuda runs); its outputs start uninitialized, so an element the plan never writes fails.
They are compared with the operator's NumPy reference (float64, rounded once), or with ONNX
Runtime (`reference: onnxruntime`). Schema and default tolerances: conformance/README.md.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from taskmap.spec import dtypes as dt
from taskmap.spec.lang import TensorType
from taskmap.spec.ops import OpError, get
from taskmap.spec.ops.registry import TOLERANCE, Operator, reduction_atol

from . import arrays
from .backends import BACKENDS
from .cases import Case, CaseInfo, CaseKind, Outcome, register
from .kernel_args import check_memory_limit, check_seed
from .schema import CaseError, Where, YList, YMap, check_keys, get as get_key

REFERENCES = ("numpy", "onnxruntime")
INPUT_KEYS = {"shape", "dtype", "init", "range", "scale", "value", "seed"}
SAMPLE = "sample"                   # the operator's own input sampler (in-range indices, positive logs...)
TOLERANCE_KEYS = {"rtol", "atol"}

# |got - want| <= atol + rtol |want| per output dtype; atol grows with sqrt(reduction depth)
# (the kernels sum in f32 in their own order, the reference in float64). Integers and bool
# are exact. f16 / bf16: one rounding, which an f32 intermediate can move by an ulp.
DEFAULT_TOLERANCE = TOLERANCE           # SPEC §11.3, kept with the operators (gpu.tuning checks with it too)


@dataclass(frozen=True)
class InputSpec:
    shape: tuple[int, ...]
    dtype: dt.DType
    init: str                        # SAMPLE or an arrays.INITS generator
    spec: arrays.TensorSpec | None   # for an arrays.INITS generator


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float


@dataclass
class OpCase(Case):
    op: Operator | None = None
    attrs: dict | None = None
    inputs: tuple[InputSpec, ...] = ()
    seed: int = 0
    reference: str = "numpy"
    tolerance: dict | None = None    # DType -> Tolerance, overriding DEFAULT_TOLERANCE

    @property
    def types(self) -> list[TensorType]:
        return [TensorType(i.dtype, i.shape) for i in self.inputs]

    def run(self, backend: str) -> Outcome:
        start = time.perf_counter()
        try:
            reason = BACKENDS[backend].unavailable()
            if reason:
                return Outcome("skipped", reason)
            plan = self._plan()
            inputs = self.make_inputs()
            want = self._expected(inputs)
            if isinstance(want, str):
                return Outcome("skipped", want)
            outputs, launch = _outputs_and_launcher(plan, backend)
            start = time.perf_counter()
            try:
                from taskmap.refimpl.schedules import run
                run(plan, *inputs, *outputs, launch=launch)
            except Exception as e:  # noqa: BLE001 — a trap or launch error of the plan is a wrong answer
                return Outcome("failed", f"{self._what(plan)}: {type(e).__name__}: {e}",
                               seconds=time.perf_counter() - start)
            seconds = time.perf_counter() - start
            return self._compare(plan, inputs, outputs, want, seconds)
        except CaseError as e:
            return Outcome("error", str(e), seconds=time.perf_counter() - start)

    def _plan(self):
        from taskmap.refimpl.schedules import schedule
        try:
            return schedule(self.op.name, self.types, self.attrs)
        except (OpError, ValueError) as e:
            raise self.where.error(f"operator {self.op.name} cannot be scheduled for these inputs: {e}") from None

    def make_inputs(self) -> list[np.ndarray]:
        """The input storage arrays: the operator's sampler for `sample` inputs, seeded by the
        case's seed; the kernel-case generators for the others."""
        rng = np.random.default_rng(self.seed)
        sampled = self.op.sample(rng, self.types, **self.attrs)
        return [s if i.init == SAMPLE else arrays.make_tensor(i.spec, None) for s, i in zip(sampled, self.inputs)]

    def _expected(self, inputs) -> list[np.ndarray] | str:
        """The reference outputs (storage arrays), or why the reference cannot run here."""
        if self.reference == "numpy":
            return list(self.op.reference(*inputs, **self.attrs))
        try:
            from taskmap.frontends.onnx_models import NoOrtKernel, onnxruntime_outputs, operator_model
            import onnxruntime  # noqa: F401
        except ImportError as e:
            return f"reference onnxruntime: not installed ({e}); pip install onnx onnxruntime"
        if any(i.dtype is dt.bfloat16 for i in self.inputs):
            return "reference onnxruntime: NumPy has no bf16 arrays to feed it"
        try:
            model = operator_model(self.op.name, self.types, self.attrs)
        except ValueError as e:
            raise self.where.error(f"reference onnxruntime: {e}") from None
        try:
            return onnxruntime_outputs(model, {f"in{k}": a for k, a in enumerate(inputs)})
        except NoOrtKernel as e:
            return f"reference onnxruntime: no CPU kernel ({e})"

    def _compare(self, plan, inputs, outputs, want, seconds: float) -> Outcome:
        problems, max_abs, max_rel = [], 0.0, 0.0
        depth = self.op.task(self.types, **self.attrs).reduction_depth
        for t, got, w in zip(plan.outputs, outputs, want, strict=True):
            got = np.asarray(got)
            if np.shape(w) != got.shape:
                problems.append(f"{t.name}: reference shape {list(np.shape(w))}, plan output {list(got.shape)}")
                continue
            expected = arrays.as_values(np.asarray(w).astype(t.dtype.storage), t.dtype)
            exact = not t.dtype.is_float
            tol = self.tolerance_for(t.dtype, depth)
            result = arrays.compare(t.name, got, expected, t.dtype, exact, tol.rtol, tol.atol)
            max_abs, max_rel = max(max_abs, result.max_abs), max(max_rel, result.max_rel)
            if not result.ok:
                problems.append(result.message)
        message = f"{self._what(plan)}: " + "; ".join(problems) if problems else ""
        return Outcome("failed" if problems else "passed", message, max_abs, max_rel, seconds)

    def tolerance_for(self, t: dt.DType, depth: int) -> Tolerance:
        if t in (self.tolerance or {}):
            return self.tolerance[t]
        if t not in DEFAULT_TOLERANCE:
            return Tolerance(0.0, 0.0)
        return Tolerance(DEFAULT_TOLERANCE[t], reduction_atol(t, depth))

    def _what(self, plan) -> str:
        shapes = " ".join(f"{i.dtype.short}{list(i.shape)}" for i in self.inputs)
        return f"{self.op.name} {shapes} {self.attrs} via {', '.join(k.name for k in plan.kernels)}"


def _outputs_and_launcher(plan, backend: str):
    if backend == "interp":
        from taskmap.refimpl import empty, interpret
        return [empty(t.shape, t.dtype) for t in plan.outputs], interpret
    from taskmap import gpu
    return [arrays.garbage(t.shape, t.dtype) for t in plan.outputs], gpu.launch


# ---------------------------------------------------------------- building from YAML

def build(m: YMap, info: CaseInfo) -> OpCase:
    name = get_key(m, "op", "str")
    try:
        op = get(name)
    except OpError as e:
        raise m.at("op").error(str(e)) from None
    attrs = get_key(m, "attrs", "map", None) or {}
    default_dtype = _dtype(m, "dtype", op.dtypes[op.typed].short)
    inputs = _inputs(m, default_dtype, check_seed(m, "case"))
    types = [TensorType(i.dtype, i.shape) for i in inputs]
    try:
        checked_attrs = op.attributes(_dtype_attrs(op, attrs))
    except OpError as e:
        raise m.at("attrs").error(str(e)) from None
    try:
        outs = op.infer(types, **checked_attrs)
    except OpError as e:
        raise m.at("inputs").error(str(e)) from None
    _check_memory(m, types + list(outs))
    reference = get_key(m, "reference", "str", "numpy")
    if reference not in REFERENCES:
        raise m.at("reference").error(f"unknown reference {reference!r}; expected one of {', '.join(REFERENCES)}")
    if reference == "onnxruntime" and op.onnx_fn is None:
        raise m.at("reference").error(f"operator {op.name} has no ONNX equivalent; use reference: numpy")
    return OpCase(info, backends=info.allowed_backends(("interp", "cuda"), ""), op=op, attrs=checked_attrs,
                  inputs=inputs, seed=check_seed(m, "case"), reference=reference, tolerance=_tolerances(m))


def _dtype_attrs(op: Operator, attrs: YMap | dict) -> dict:
    """Attributes as the registry takes them: a dtype attribute (cast's `to`) named by a string."""
    kinds = {a.name: a.kind for a in op.attrs}
    out = dict(attrs)
    for k, v in attrs.items():
        if kinds.get(k) is dt.DType and isinstance(v, str):
            try:
                out[k] = dt.by_name(v)
            except ValueError as e:
                raise attrs.at(k).error(str(e)) from None
    return out


def _dtype(m: YMap, key: str, default: str) -> dt.DType:
    try:
        return dt.by_name(get_key(m, key, "str", default))
    except ValueError as e:
        raise m.at(key).error(str(e)) from None


def _inputs(m: YMap, default_dtype: dt.DType, seed: int) -> tuple[InputSpec, ...]:
    entries = get_key(m, "inputs", "list")
    if not entries:
        raise m.at("inputs").error("`inputs:` must list at least one input (a shape, or a mapping with "
                                   + ", ".join(sorted(INPUT_KEYS)) + ")")
    out = []
    for k, entry in enumerate(entries):
        where = entries.at(k)
        if isinstance(entry, YList):
            shape, dtype, init, spec = check_shape(entry, where), default_dtype, SAMPLE, None
        elif isinstance(entry, YMap):
            what = f"input {k}"
            check_keys(entry, INPUT_KEYS, what)
            shape = check_shape(get_key(entry, "shape", "list", what=what), entry.at("shape"))
            dtype = _dtype(entry, "dtype", default_dtype.short)
            init = get_key(entry, "init", "str", SAMPLE, what=what)
            if init != SAMPLE and init not in arrays.INITS or init == "empty":
                raise entry.at("init").error(f"unknown init {init!r} for an operator input; expected "
                                             f"{SAMPLE} (the operator's sampler, the default) or one of "
                                             + ", ".join(i for i in arrays.INITS if i != "empty"))
            spec = None if init == SAMPLE else tensor_spec(entry, init, shape, dtype, seed * 1000 + k, what)
        else:
            raise where.error(f"input {k} must be a shape ([3, 5]) or a mapping with "
                              + ", ".join(sorted(INPUT_KEYS)))
        out.append(InputSpec(shape, dtype, init, spec))
    return tuple(out)


def check_shape(v: YList, where: Where) -> tuple[int, ...]:
    for i, d in enumerate(v):
        if not isinstance(d, int) or isinstance(d, bool) or d < 1:
            raise v.at(i).error(f"shape extents must be integers, 1 or more, got {d!r}")
    return tuple(v)


def tensor_spec(m: YMap, init: str, shape, dtype: dt.DType, seed: int, what: str) -> arrays.TensorSpec:
    low = high = None
    if "range" in m:
        r = m["range"]
        if not (isinstance(r, YList) and len(r) == 2 and all(isinstance(x, (int, float)) and
                                                              not isinstance(x, bool) and math.isfinite(x) for x in r)):
            raise m.at("range").error("`range:` must be [low, high], two finite numbers")
        if not r[0] < r[1]:
            raise m.at("range").error(f"`range:` [{r[0]}, {r[1]}] is empty: values are drawn from [low, high), "
                                      "so low must be below high")
        low, high = r
    if init == "full":
        value = get_key(m, "value", "number", what=what)
        if dtype.is_integer and not dtype.accepts(value):
            raise m.at("value").error(f"`value:` {value!r} is not a value of {dtype.short}")
    else:
        value = get_key(m, "value", "number", 0, what=what)
    own_seed = check_seed(m, what) if "seed" in m else seed
    return arrays.TensorSpec(init, shape, dtype, own_seed, low, high, value, get_key(m, "scale", "number", 1, what=what))


def _tolerances(m: YMap) -> dict:
    """`tolerance: {f16: 0.01, bf16: {rtol: 0.05, atol: 0.1}}` -> {DType: Tolerance}."""
    table = get_key(m, "tolerance", "map", None)
    if table is None:
        return {}
    out = {}
    for name, v in table.items():
        try:
            t = dt.by_name(str(name))
        except ValueError as e:
            raise table.at(name).error(f"tolerance: {e}") from None
        if not t.is_float:
            raise table.at(name).error(f"tolerance: {t.short} outputs are compared exactly")
        if isinstance(v, YMap):
            check_keys(v, TOLERANCE_KEYS, f"tolerance {name}")
            rtol, atol = (get_key(v, k, "number", DEFAULT_TOLERANCE[t], what=f"tolerance {name}") for k in ("rtol", "atol"))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            rtol = atol = v
        else:
            raise table.at(name).error(f"tolerance {name}: a number (rtol = atol) or a mapping with rtol, atol")
        if not all(math.isfinite(x) and x >= 0 for x in (rtol, atol)):
            raise table.at(name).error(f"tolerance {name}: rtol and atol must be finite, 0 or more")
        out[t] = Tolerance(float(rtol), float(atol))
    return out


def _check_memory(m: YMap, types) -> None:
    limit = check_memory_limit(m)
    total = sum(math.prod(t.shape) * t.dtype.storage.itemsize for t in types)
    if total > limit * 2**20:
        raise m.at("inputs").error(f"the inputs and outputs take {total / 2**20:.1f} MiB, over memory_limit_mib "
                                   f"{limit}; smaller shapes, or raise memory_limit_mib")


register(CaseKind("op", frozenset({"op", "attrs", "inputs", "dtype", "seed", "reference", "tolerance",
                                   "memory_limit_mib"}), ("interp", "cuda"), build))
