"""The `kernel` case kind: launch one DSL kernel and check one assertion (.wast style).

    assert_return   outputs equal NumPy expressions of the inputs (within SPEC.md §2.5)
    assert_trap     the interpreter traps with this kind / phrase, at this place
    assert_invalid  the verifier (or the DSL parser) rejects the kernel with this phrase

Schema: conformance/README.md.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from taskmap.spec import dtypes as dt
from taskmap.spec import ir

from taskmap.gpu import host
from taskmap.gpu.host import LaunchError

from . import arrays
from .backends import BACKENDS
from .cases import Case, CaseInfo, CaseKind, Outcome, register
from .invalid_check import InvalidExpectation, parse_invalid
from .kernelref import KernelRef, parse_ref
from .schema import CaseError, YMap, check_keys, get, one_of, ymap
from .trap_check import TrapExpectation, parse_trap

ASSERTIONS = ("assert_return", "assert_trap", "assert_invalid")
TENSOR_KEYS = {"init", "seed", "range", "value", "scale", "shape", "dtype"}
OUTPUT_KEYS = {"value", "exact", "rtol", "atol", "depth"}


@dataclass(frozen=True)
class Expected:
    name: str
    text: str             # NumPy expression of the inputs and sizes
    exact: bool | None    # None: exact for integer/bool outputs, tolerance for floats
    rtol: float | None
    atol: float | None
    depth: int            # reduction depth: multiplies the default rtol (SPEC.md §2.5)


@dataclass(frozen=True)
class Launch:
    """The arguments of one run, and what the expected-value expressions see."""
    args: list                   # in parameter order
    tensors: dict                # name -> (TensorSpec, its values before the launch)
    namespace: dict              # sizes, scalars and input values, by name


@dataclass
class KernelCase(Case):
    ref: KernelRef | None = None
    sizes: dict | None = None
    args: YMap | None = None
    seed: int = 0
    assertion: str = ""
    expected: tuple[Expected, ...] = ()
    trap: TrapExpectation | None = None
    invalid: InvalidExpectation | None = None

    def run(self, backend: str) -> Outcome:
        if self.assertion == "assert_invalid":           # static: needs no backend
            start = time.perf_counter()
            status, message = self.invalid.check(self.ref.load)
            return Outcome(status, message, seconds=time.perf_counter() - start)
        reason = BACKENDS[backend].unavailable()
        if reason:
            return Outcome("skipped", reason)
        try:
            kernel = self.ref.load()
        except Exception as e:  # noqa: BLE001 — a kernel that fails to build fails its case
            return Outcome("failed", f"cannot build kernel {self.ref.text}: {type(e).__name__}: {e}")
        try:
            launch = self.arguments(kernel, backend)
        except (CaseError, ValueError) as e:
            return Outcome("failed", str(e))
        start = time.perf_counter()
        try:
            BACKENDS[backend].launch(kernel, *launch.args)
            error = None
        except Exception as e:  # noqa: BLE001 — judged below
            error = e
        seconds = time.perf_counter() - start
        if self.assertion == "assert_trap":
            status, message = self.trap.check(error, kernel.name)
            return Outcome(status, message, seconds=seconds)
        if error is not None:
            return Outcome("failed", f"unexpected {type(error).__name__}: {error}", seconds=seconds)
        return self._check_outputs(kernel, launch, seconds)

    # ------------------------------------------------------------ arguments
    def arguments(self, kernel: ir.Kernel, backend: str = "interp") -> Launch:
        """The arguments of one run on `backend`, generated as the case says."""
        params = {p.name: p for p in kernel.params}
        for name in self.args:
            if name not in params:
                raise self.args.at(name).error(f"`args:` names {name!r}, which is not a parameter of "
                                               f"kernel {kernel.name} ({', '.join(params)})")
        scalars: dict = {}
        for p in kernel.params:
            if isinstance(p, ir.Var):
                scalars[p.name] = self._scalar(p)
        namespace = dict(self.sizes) | scalars
        args, tensors = [], {}
        for i, p in enumerate(kernel.params):
            if isinstance(p, ir.Var):
                args.append(scalars[p.name])
                continue
            spec = self._tensor_spec(p, scalars, i)
            make_empty = _interp_empty if backend == "interp" else arrays.garbage
            array = arrays.make_tensor(spec, make_empty)
            args.append(array)
            tensors[p.name] = (spec, arrays.as_values(array, spec.dtype))
        namespace |= {n: v for n, (_, v) in tensors.items()}
        return Launch(args, tensors, namespace)

    def _scalar(self, p: ir.Var):
        where = self.args.at(p.name) if p.name in self.args else self.where
        if p.name in self.args:
            raw = self.args[p.name]
            value = arrays.evaluate(raw, self.sizes) if isinstance(raw, str) else raw
        elif p.name in self.sizes:
            value = self.sizes[p.name]
        else:
            raise where.error(f"scalar parameter {p.name!r} has no value: add it to `sizes:` or `args:`")
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
            raise where.error(f"scalar parameter {p.name!r} must be a number, got {value!r}")
        return float(value) if p.dtype.is_float else int(value)

    def _tensor_spec(self, p: ir.Buffer, scalars: dict, index: int) -> arrays.TensorSpec:
        raw = self.args.get(p.name, "random")
        where = self.args.at(p.name) if p.name in self.args else self.where
        if isinstance(raw, str):
            raw = {"init": raw}
        init = raw.get("init", "random")
        if "shape" in raw:
            shape = tuple(int(arrays.evaluate(d, self.sizes | scalars)) if isinstance(d, str) else d
                          for d in raw["shape"])
        else:
            try:
                shape = host.shape(p, scalars)
            except LaunchError as e:
                raise where.error(f"cannot compute the shape of {p.name}: {e}; give `shape:` explicitly") from None
        dtype = dt.by_name(raw["dtype"]) if "dtype" in raw else p.dtype
        low, high = raw.get("range", (None, None))
        return arrays.TensorSpec(init, shape, dtype, raw.get("seed", self.seed * 1000 + index),
                                 low, high, raw.get("value", 0.0), raw.get("scale", 1.0))

    # ------------------------------------------------------------ assertions
    def _check_outputs(self, kernel: ir.Kernel, launch: Launch, seconds: float) -> Outcome:
        problems, max_abs, max_rel = [], 0.0, 0.0
        by_name = {p.name: a for p, a in zip(kernel.params, launch.args)}
        for exp in self.expected:
            if exp.name not in launch.tensors:
                problems.append(f"assert_return names {exp.name!r}, which is not a tensor parameter "
                                f"of kernel {kernel.name}")
                continue
            spec, _ = launch.tensors[exp.name]
            try:
                want = arrays.evaluate(exp.text, launch.namespace)
            except ValueError as e:
                problems.append(f"{exp.name}: {e}")
                continue
            exact = exp.exact if exp.exact is not None else not spec.dtype.is_float
            base = arrays.RTOL_BASE.get(spec.dtype, 0.0) * exp.depth
            rtol = exp.rtol if exp.rtol is not None else base
            atol = exp.atol if exp.atol is not None else base
            result = arrays.compare(exp.name, by_name[exp.name], want, spec.dtype, exact, rtol, atol)
            max_abs, max_rel = max(max_abs, result.max_abs_err), max(max_rel, result.max_rel_err)
            if not result.ok:
                problems.append(result.message)
        checked = {e.name for e in self.expected}
        for name, (spec, before) in launch.tensors.items():
            if name in checked or spec.init == "empty":
                continue
            result = arrays.compare(name, by_name[name], before, spec.dtype, True, 0.0, 0.0)
            if not result.ok:
                problems.append(f"input {name} was modified by the kernel ({result.message})")
        return Outcome("failed" if problems else "passed", "; ".join(problems), max_abs, max_rel, seconds)


def _interp_empty(shape, dtype: dt.DType):
    from taskmap import refimpl
    return refimpl.empty(shape, dtype)


# ---------------------------------------------------------------- building from YAML

def build(m: YMap, info: CaseInfo) -> KernelCase:
    assertion = one_of(m, ASSERTIONS, "a kernel case")
    ref = parse_ref(get(m, "kernel", "str"), info.base_dir, m.at("kernel"))
    sizes = get(m, "sizes", "map", {})
    for k, v in sizes.items():
        if not isinstance(v, int) or isinstance(v, bool):
            raise sizes.at(k).error(f"size {k!r} must be an integer, got {v!r}")
    args = get(m, "args", "map", None) or ymap({}, m.where, {})
    for name, spec in args.items():
        _check_arg(args, name, spec)
    case = KernelCase(info, ref=ref, sizes=dict(sizes), args=args, seed=get(m, "seed", "int", 0),
                      assertion=assertion)
    if assertion == "assert_return":
        case.backends = info.allowed_backends(("interp", "cuda"), "")
        case.expected = _parse_return(m)
    elif assertion == "assert_trap":
        case.backends = info.allowed_backends(("interp",), "traps are checked by the interpreter only")
        case.trap = parse_trap(get(m, "assert_trap", "map"))
    else:
        case.backends = info.allowed_backends(("interp",), "static checks run once, in the interp column")
        case.invalid = parse_invalid(get(m, "assert_invalid", "map"))
    return case


def _check_arg(args: YMap, name, spec) -> None:
    where = args.at(name)
    if isinstance(spec, str) and spec in arrays.INITS:
        return
    if isinstance(spec, (int, float, str)) and not isinstance(spec, bool):
        if isinstance(spec, str):
            try:
                arrays.check_expression(spec)
            except ValueError as e:
                raise where.error(str(e)) from None
        return
    if not isinstance(spec, YMap):
        raise where.error(f"argument {name!r} must be a number or expression (scalar), an init name "
                          f"({', '.join(arrays.INITS)}) or a mapping with {', '.join(sorted(TENSOR_KEYS))}")
    check_keys(spec, TENSOR_KEYS, f"argument {name!r}")
    init = get(spec, "init", "str", "random", what=f"argument {name!r}")
    if init not in arrays.INITS:
        raise spec.at("init").error(f"unknown init {init!r}; expected one of {', '.join(arrays.INITS)}")
    get(spec, "seed", "int", 0)
    get(spec, "value", "number", 0)
    get(spec, "scale", "number", 1)
    if "range" in spec:
        r = spec["range"]
        if not (isinstance(r, list) and len(r) == 2 and all(isinstance(x, (int, float)) for x in r)):
            raise spec.at("range").error("`range:` must be [low, high]")
    if "shape" in spec:
        shape = get(spec, "shape", "list")
        if not all(isinstance(d, (int, str)) and not isinstance(d, bool) for d in shape):
            raise spec.at("shape").error("`shape:` must list integers or size expressions")
    if "dtype" in spec:
        try:
            dt.by_name(get(spec, "dtype", "str"))
        except ValueError as e:
            raise spec.at("dtype").error(str(e)) from None


def _parse_return(m: YMap) -> tuple[Expected, ...]:
    outputs = get(m, "assert_return", "map")
    if not outputs:
        raise m.at("assert_return").error("`assert_return:` must name at least one output")
    case_exact = get(m, "exact", "bool", None)
    case_rtol, case_atol = get(m, "rtol", "number", None), get(m, "atol", "number", None)
    case_depth = get(m, "depth", "int", 1)
    out = []
    for name, spec in outputs.items():
        if isinstance(spec, str):
            spec_map = ymap({"value": spec}, outputs.at(name), {})
        elif isinstance(spec, YMap):
            spec_map = spec
            check_keys(spec_map, OUTPUT_KEYS, f"output {name!r}")
        else:
            raise outputs.at(name).error(f"output {name!r} must be an expression string or a mapping "
                                         f"with {', '.join(sorted(OUTPUT_KEYS))}")
        text = get(spec_map, "value", "str", what=f"output {name!r}")
        try:
            arrays.check_expression(text)
        except ValueError as e:
            raise spec_map.at("value").error(str(e)) from None
        out.append(Expected(name, text, get(spec_map, "exact", "bool", case_exact),
                            get(spec_map, "rtol", "number", case_rtol), get(spec_map, "atol", "number", case_atol),
                            get(spec_map, "depth", "int", case_depth)))
    return tuple(out)


register(CaseKind("kernel", frozenset({"kernel", "sizes", "args", "seed", "exact", "rtol", "atol", "depth",
                                       *ASSERTIONS}), ("interp", "cuda"), build, frozenset(ASSERTIONS)))
