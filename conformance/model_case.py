"""The `model` case kind: a whole model through `taskmap.compile`, against an independent reference.

    kind: model
    cases:
      - name: resnet50
        model: resnet50                                   # frontends.onnx_models builder (cuda runs it)
        reduced: {model: resnet, args: {blocks: [1, 1], width: 4, image: 8, classes: 3}}   # interp runs this
        inputs: {x: {init: random, range: [-2, 2]}}
        tolerance: {rtol: 1.0e-3, atol: 1.0e-4}

The source is a model builder (`model:`, frontends.onnx_models.BUILDERS, called with `args:`),
an ONNX file (`onnx:`, binary .onnx or onnx's text syntax .onnxtxt, relative to the YAML file),
or a torch module from config (`torch:`, frontends.torch_models.BUILDERS, exported to ONNX;
skipped without torch). The interpreter runs the `reduced:` variant when there is one, the GPU
the model itself. Reference: ONNX Runtime's CPU provider (`onnxruntime`, the default), the torch
module itself (`torch`), or the imported graph evaluated through the operators' NumPy
references (`numpy`, spec.graph.reference). Schema: conformance/README.md.
"""
from __future__ import annotations

import inspect
import os
import time
from dataclasses import dataclass

import numpy as np

from taskmap.spec import dtypes as dt

from . import arrays
from .backends import BACKENDS
from .cases import Case, CaseInfo, CaseKind, Outcome, register
from .kernel_args import check_seed
from .op_case import check_shape, tensor_spec
from .schema import CaseError, Where, YMap, check_keys, get as get_key, one_of, ymap

SOURCES = ("model", "onnx", "torch")
REFERENCES = ("onnxruntime", "torch", "numpy")
INPUT_KEYS = {"shape", "dtype", "init", "range", "scale", "value", "seed"}
REDUCED_KEYS = {*SOURCES, "args", "inputs", "tolerance"}
DEFAULT_TOLERANCE = (1e-4, 1e-5)          # (rtol, atol): f32 models, reordered f32 sums over a few layers
ONNX_SUFFIXES = (".onnx", ".onnxtxt")


@dataclass(frozen=True)
class Variant:
    """One model to build and check: the case's own, or its reduced one."""
    source: str                        # one of SOURCES
    name: str                          # builder name or ONNX file path
    args: dict
    inputs: dict                       # input name -> YMap spec (validated keys)
    rtol: float
    atol: float
    where: Where

    def describe(self) -> str:
        if self.source == "onnx":
            return os.path.basename(self.name)
        args = ", ".join(f"{k}={v}" for k, v in self.args.items())
        return f"{self.source} {self.name}({args})"


@dataclass
class ModelCase(Case):
    full: Variant | None = None
    reduced: Variant | None = None
    reference: str = "onnxruntime"
    seed: int = 0

    def run(self, backend: str) -> Outcome:
        start = time.perf_counter()
        variant = self.reduced if backend == "interp" and self.reduced else self.full
        try:
            reason = BACKENDS[backend].unavailable() or _compile_unavailable(backend)
            if reason:
                return Outcome("skipped", reason)
            built = _build_model(variant, self.seed)
            if isinstance(built, str):
                return Outcome("skipped", built)
            model, module = built
            inputs = self._inputs(variant, model)
            want = self._expected(model, module, inputs)
            if isinstance(want, str):
                return Outcome("skipped", want)
            start = time.perf_counter()
            try:
                import taskmap
                got = taskmap.compile(model, backend=backend)(*inputs.values())
            except Exception as e:  # noqa: BLE001 — a model we cannot compile or run is a wrong answer
                return Outcome("failed", f"{variant.describe()}: {type(e).__name__}: {e}",
                               seconds=time.perf_counter() - start)
            return _compare(variant, got, want, time.perf_counter() - start)
        except CaseError as e:
            return Outcome("error", str(e), seconds=time.perf_counter() - start)

    def _inputs(self, v: Variant, model) -> dict[str, np.ndarray]:
        from taskmap.frontends.onnx_import import model_inputs
        declared = {x.name: x.type for x in model_inputs(model)}
        unknown = sorted(set(v.inputs) - set(declared))
        if unknown:
            raise v.where.error(f"inputs: {', '.join(unknown)} not inputs of {v.describe()} "
                                f"(its inputs: {', '.join(declared)})")
        out = {}
        for k, (name, t) in enumerate(declared.items()):
            out[name] = arrays.make_tensor(_input_spec(v, name, t, self.seed * 1000 + k), None)
        return out

    def _expected(self, model, module, inputs: dict) -> list[np.ndarray] | str:
        if self.reference == "torch":
            return _torch_outputs(module, inputs)
        if self.reference == "numpy":
            from taskmap.frontends.onnx_import import load
            from taskmap.spec.graph.reference import run_reference
            return run_reference(load(model), *inputs.values())
        try:
            import onnxruntime  # noqa: F401
        except ImportError as e:
            return f"reference onnxruntime: not installed ({e}); pip install onnxruntime"
        from taskmap.frontends.onnx_models import onnxruntime_outputs
        return onnxruntime_outputs(model, inputs)


def _compile_unavailable(backend: str) -> str | None:
    from taskmap.frontends.compiler import BACKENDS as COMPILE_BACKENDS
    if backend not in COMPILE_BACKENDS:
        return (f"taskmap.compile(model, backend={backend!r}) does not exist yet (whole-model {backend} "
                f"executables, issue 11); compile backends today: {', '.join(COMPILE_BACKENDS)}")
    return None


def _build_model(v: Variant, seed: int):
    """(ONNX ModelProto, torch module or None), or why the model cannot be built here."""
    if v.source == "model":
        from taskmap.frontends.onnx_models import BUILDERS
        return BUILDERS[v.name](**v.args), None
    if v.source == "onnx":
        return _read_onnx(v), None
    from taskmap.frontends import torch_models
    reason = torch_models.unavailable(v.name)
    if reason:
        return reason
    module = torch_models.build(v.name, v.args, seed)
    specs = {name: _input_spec(v, name, None, seed * 1000 + k) for k, name in enumerate(v.inputs)}
    example = {name: arrays.make_tensor(s, None) for name, s in specs.items()}
    return torch_models.to_onnx(module, example), module


def _read_onnx(v: Variant):
    import onnx
    try:
        if v.name.endswith(".onnxtxt"):
            with open(v.name, encoding="utf-8") as f:
                model = onnx.parser.parse_model(f.read())
        else:
            model = onnx.load(v.name)
        return onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except (OSError, onnx.parser.ParseError, onnx.shape_inference.InferenceError) as e:
        raise v.where.error(f"onnx: {v.name}: {type(e).__name__}: {e}") from None


def _input_spec(v: Variant, name: str, declared, seed: int) -> arrays.TensorSpec:
    """A model input's generator: the case's `inputs:` entry over the model's declared type."""
    m = v.inputs.get(name)
    where = m.where if m is not None else v.where
    if m is not None and "shape" in m:
        shape = check_shape(m["shape"], m.at("shape"))
    elif declared is not None and all(isinstance(d, int) for d in declared.shape):
        shape = tuple(declared.shape)
    else:
        what = f"symbolic dimensions {list(declared.shape)}" if declared is not None else "no declared shape"
        raise where.error(f"input {name} has {what}; give `inputs: {{{name}: {{shape: [...]}}}}`")
    dtype = declared.dtype if declared is not None else dt.float32
    if m is not None and "dtype" in m:
        try:
            given = dt.by_name(get_key(m, "dtype", "str", what=f"input {name}"))
        except ValueError as e:
            raise m.at("dtype").error(str(e)) from None
        if declared is not None and given is not declared.dtype:
            raise m.at("dtype").error(f"input {name} is {declared.dtype.short} in the model, not {given.short}")
        dtype = given
    spec = m if m is not None else ymap({}, where, {})
    init = get_key(spec, "init", "str", "random", what=f"input {name}")
    if dtype.is_integer and init in ("random", "randint") and "range" not in spec:
        raise where.error(f"input {name} is {dtype.short} (indices, token ids): give its `range: [low, high]` "
                          f"so every value is in bounds")
    return tensor_spec(spec, init, shape, dtype, seed, f"input {name}")


def _torch_outputs(module, inputs: dict) -> list[np.ndarray]:
    from taskmap.frontends import torch_models
    return torch_models.run(module, inputs)


def _compare(v: Variant, got, want, seconds: float) -> Outcome:
    if len(got) != len(want):
        return Outcome("failed", f"{v.describe()}: {len(got)} outputs, the reference has {len(want)}", seconds=seconds)
    problems, max_abs, max_rel = [], 0.0, 0.0
    for k, (g, w) in enumerate(zip(got, want)):
        g, w = np.asarray(g), np.asarray(w)
        if g.shape != w.shape:
            problems.append(f"output {k}: shape {list(g.shape)}, reference {list(w.shape)}")
            continue
        t = dt.from_numpy(g.dtype)
        result = arrays.compare(f"output {k}", g, w, t, not t.is_float, v.rtol, v.atol)
        max_abs, max_rel = max(max_abs, result.max_abs), max(max_rel, result.max_rel)
        if not result.ok:
            problems.append(result.message)
    message = f"{v.describe()}: " + "; ".join(problems) if problems else ""
    return Outcome("failed" if problems else "passed", message, max_abs, max_rel, seconds)


# ---------------------------------------------------------------- building from YAML

def build(m: YMap, info: CaseInfo) -> ModelCase:
    full = _variant(m, m, info, None)
    reduced = None
    if "reduced" in m:
        r = get_key(m, "reduced", "map")
        check_keys(r, REDUCED_KEYS, "`reduced:`")
        reduced = _variant(r, m, info, full)
    default_reference = "torch" if full.source == "torch" else "onnxruntime"
    reference = get_key(m, "reference", "str", default_reference)
    if reference not in REFERENCES:
        raise m.at("reference").error(f"unknown reference {reference!r}; expected one of {', '.join(REFERENCES)}")
    if reference == "torch" and full.source != "torch":
        raise m.at("reference").error("reference torch needs a `torch:` model; use onnxruntime or numpy")
    return ModelCase(info, backends=info.allowed_backends(("interp", "cuda"), ""), full=full, reduced=reduced,
                     reference=reference, seed=check_seed(m, "case"))


def _variant(m: YMap, case: YMap, info: CaseInfo, base: Variant | None) -> Variant:
    """The case's model (base None) or its `reduced:` one, which inherits what it leaves out."""
    if base is None or any(s in m for s in SOURCES):
        source = one_of(m, SOURCES, "a model case" if base is None else "`reduced:`")
        name = _source_name(m, source, info)
        args = dict(get_key(m, "args", "map", None) or {})
    else:
        source, name = base.source, base.name
        args = {**base.args, **(get_key(m, "args", "map", None) or {})}
    if source == "model":
        _check_args(m, name, args)
    inputs = _inputs(m) if "inputs" in m else (base.inputs if base else {})
    rtol, atol = _tolerance(m) if "tolerance" in m else ((base.rtol, base.atol) if base else DEFAULT_TOLERANCE)
    if source == "torch" and not inputs:
        raise m.where.error("a `torch:` model needs `inputs:` with each input's shape (and dtype): the module "
                            "is exported to ONNX on them")
    return Variant(source, name, args, inputs, rtol, atol, m.where)


def _source_name(m: YMap, source: str, info: CaseInfo) -> str:
    name = get_key(m, source, "str")
    if source == "model":
        from taskmap.frontends.onnx_models import BUILDERS
        if name not in BUILDERS:
            raise m.at(source).error(f"unknown model builder {name!r}; known: {', '.join(sorted(BUILDERS))}")
    elif source == "torch":
        from taskmap.frontends.torch_models import BUILDERS
        if name not in BUILDERS:
            raise m.at(source).error(f"unknown torch model {name!r}; known: {', '.join(sorted(BUILDERS))}")
    else:
        path = os.path.join(info.base_dir, name)
        if not name.endswith(ONNX_SUFFIXES):
            raise m.at(source).error(f"onnx: {name!r} must be a {' or '.join(ONNX_SUFFIXES)} file")
        if not os.path.isfile(path):
            raise m.at(source).error(f"onnx: {name}: no such file (paths are relative to the case file)")
        return path
    return name


def _check_args(m: YMap, name: str, args: dict) -> None:
    from taskmap.frontends.onnx_models import BUILDERS
    try:
        inspect.signature(BUILDERS[name]).bind(**args)
    except TypeError as e:
        params = ", ".join(inspect.signature(BUILDERS[name]).parameters)
        raise m.at("args" if "args" in m else "model").error(f"args of {name}: {e} (it takes {params})") from None


def _inputs(m: YMap) -> dict:
    entries = get_key(m, "inputs", "map")
    for name, spec in entries.items():
        if not isinstance(spec, YMap):
            raise entries.at(name).error(f"input {name}: a mapping with " + ", ".join(sorted(INPUT_KEYS)))
        check_keys(spec, INPUT_KEYS, f"input {name}")
        init = get_key(spec, "init", "str", "random", what=f"input {name}")
        if init not in arrays.INITS or init == "empty":
            raise spec.at("init").error(f"unknown init {init!r} for a model input; expected one of "
                                        + ", ".join(i for i in arrays.INITS if i != "empty"))
    return dict(entries)


def _tolerance(m: YMap) -> tuple[float, float]:
    t = get_key(m, "tolerance", "map")
    check_keys(t, {"rtol", "atol"}, "`tolerance:`")
    out = []
    for key, default in zip(("rtol", "atol"), DEFAULT_TOLERANCE):
        v = get_key(t, key, "number", default, what="`tolerance:`")
        if not (np.isfinite(v) and v >= 0):
            raise t.at(key).error(f"`{key}:` must be finite, 0 or more, got {v}")
        out.append(float(v))
    return out[0], out[1]


register(CaseKind("model", frozenset({*SOURCES, "args", "reduced", "inputs", "reference", "tolerance", "seed"}),
                  ("interp", "cuda"), build, alternatives=frozenset(SOURCES)))
