"""The `kernel` case kind: launch one DSL kernel and check one assertion (.wast style).

    assert_return   outputs equal NumPy expressions of the inputs (within SPEC.md §2.5)
    assert_trap     the interpreter traps with this kind / phrase, at this place
    assert_invalid  the verifier (or the DSL parser) rejects the kernel with this phrase

A problem with the case itself (a kernel file that does not import, arguments that cannot be
made, an expected value that does not evaluate) is the case's `error`, with the YAML line it
comes from; `failed` is kept for wrong answers of the code under test. Schema: conformance/README.md.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from taskmap.spec import dtypes as dt
from taskmap.spec import ir
from taskmap.spec.errors import DSLError, VerifyError

from . import arrays
from .backends import BACKENDS
from .cases import Case, CaseInfo, CaseKind, Outcome, register
from .invalid_check import InvalidExpectation, parse_invalid
from .kernel_args import (Launch, check_arg, check_memory_limit, check_seed, check_sizes, make_launch)
from .kernelref import KernelRef, parse_ref
from .schema import CaseError, Where, YMap, check_keys, get, one_of, ymap
from .trap_check import TrapExpectation, parse_trap

ASSERTIONS = ("assert_return", "assert_trap", "assert_invalid")
OUTPUT_KEYS = {"value", "exact", "rtol", "atol", "depth"}


@dataclass(frozen=True)
class Expected:
    name: str
    text: str             # NumPy expression of the inputs and sizes
    exact: bool | None    # None: exact for integer/bool outputs, tolerance for floats
    rtol: float | None
    atol: float | None
    depth: int            # reduction depth: multiplies the default rtol (SPEC.md §2.5)
    where: Where          # the output's line in the case file


@dataclass
class KernelCase(Case):
    ref: KernelRef | None = None
    sizes: YMap | None = None
    args: YMap | None = None
    seed: int = 0
    memory_limit_mib: int = 0
    assertion: str = ""
    expected: tuple[Expected, ...] = ()
    trap: TrapExpectation | None = None
    invalid: InvalidExpectation | None = None

    def run(self, backend: str) -> Outcome:
        start = time.perf_counter()
        try:
            if self.assertion == "assert_invalid":        # static: needs no backend
                status, message = self._check_invalid()
                return Outcome(status, message, seconds=time.perf_counter() - start)
            reason = BACKENDS[backend].unavailable()
            if reason:
                return Outcome("skipped", reason)
            kernel = self.load_kernel()
            launch = self.arguments(kernel, backend)
            start = time.perf_counter()
            try:
                BACKENDS[backend].launch(kernel, *launch.args)
                error = None
            except Exception as e:  # noqa: BLE001 — judged below
                error = e
            seconds = time.perf_counter() - start
            if self.assertion == "assert_trap":
                return Outcome(*self.trap.check(error, kernel.name), seconds=seconds)
            if error is not None:
                return Outcome("failed", f"unexpected {type(error).__name__}: {error}", seconds=seconds)
            return self._check_outputs(kernel, launch, seconds)
        except CaseError as e:
            return Outcome("error", str(e), seconds=time.perf_counter() - start)

    def load_kernel(self) -> ir.Kernel:
        return load_kernel(self.ref)

    def arguments(self, kernel: ir.Kernel, backend: str = "interp") -> Launch:
        """The arguments of one run on `backend`, generated as the case says."""
        make_empty = interp_empty if backend == "interp" else arrays.garbage
        return make_launch(kernel, self.sizes, self.args, self.seed, self.memory_limit_mib, self.where, make_empty)


    def _check_invalid(self) -> tuple[str, str]:
        try:
            obj = self.ref.load()
        except (DSLError, VerifyError) as e:       # a module (or factory) rejected at import
            return self.invalid.judge(e)
        except Exception as e:  # noqa: BLE001
            raise _load_error(self.ref, e) from None
        if self.invalid.stage == "verify" and not isinstance(obj, ir.Kernel):
            raise self.ref.where.error(f"{self.ref.text} is {_describe(obj)}, not a kernel: stage verify "
                                       "needs a kernel built with @kernel(..., verify=False)")
        if self.invalid.stage == "dsl" and not isinstance(obj, ir.Kernel) and not callable(obj):
            raise self.ref.where.error(f"{self.ref.text} is {_describe(obj)}: stage dsl needs a plain "
                                       "function for taskmap.lang.kernel()(fn) to reject")
        return self.invalid.check(obj)

    # ------------------------------------------------------------ assert_return
    def _check_outputs(self, kernel: ir.Kernel, launch: Launch, seconds: float) -> Outcome:
        problems, max_abs, max_rel = [], 0.0, 0.0
        by_name = {p.name: a for p, a in zip(kernel.params, launch.args)}
        for exp in self.expected:
            if exp.name not in launch.tensors:
                raise exp.where.error(f"assert_return names {exp.name!r}, which is not a tensor parameter "
                                      f"of kernel {kernel.name} ({', '.join(launch.tensors) or 'none'})")
            if kernel.directions[exp.name] == "in":
                raise exp.where.error(f"assert_return names {exp.name!r}, which kernel {kernel.name} never writes "
                                      f"(an input, SPEC §6.1); its outputs: "
                                      f"{', '.join(b.name for b in kernel.outputs) or 'none'}")
            spec, _ = launch.tensors[exp.name]
            try:
                want = arrays.evaluate(exp.text, launch.namespace)
            except ValueError as e:
                raise exp.where.error(f"{exp.name}: {e}") from None
            try:
                np.broadcast_to(np.asarray(want), spec.shape)
            except ValueError:
                raise exp.where.error(f"{exp.name}: the expected value has shape {np.shape(want)}, which does "
                                      f"not broadcast to the output's shape {spec.shape}") from None
            exact = exp.exact if exp.exact is not None else not spec.dtype.is_float
            base = arrays.RTOL_BASE.get(spec.dtype, 0.0) * exp.depth
            rtol = exp.rtol if exp.rtol is not None else base
            atol = exp.atol if exp.atol is not None else base
            result = arrays.compare(exp.name, by_name[exp.name], want, spec.dtype, exact, rtol, atol)
            max_abs, max_rel = max(max_abs, result.max_abs), max(max_rel, result.max_rel)
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


def load_kernel(ref: KernelRef) -> ir.Kernel:
    """The kernel `kernel:` names; CaseError (at that key) when it cannot be had."""
    try:
        obj = ref.load()
    except Exception as e:  # noqa: BLE001 — whatever importing user code raises
        raise _load_error(ref, e) from None
    if not isinstance(obj, ir.Kernel):
        raise ref.where.error(f"{ref.text} is {_describe(obj)}, not a kernel: name a function "
                              "decorated with @kernel(...), or a factory call that returns one")
    return obj


def _load_error(ref: KernelRef, e: Exception) -> CaseError:
    if isinstance(e, SyntaxError):
        detail = f"SyntaxError: {e.msg} ({e.filename}:{e.lineno})"
    else:
        detail = f"{type(e).__name__}: {e}"
    return ref.where.error(f"cannot load kernel {ref.text}: {detail}")


def interp_empty(shape, dtype: dt.DType):
    from taskmap import refimpl
    return refimpl.empty(shape, dtype)


def _describe(obj) -> str:
    if isinstance(obj, type(np)):
        return "a module"
    if callable(obj) and hasattr(obj, "__code__"):
        return "a plain function (decorate it with @kernel(...))"
    return f"a {type(obj).__name__}"


# ---------------------------------------------------------------- building from YAML

def build(m: YMap, info: CaseInfo) -> KernelCase:
    assertion = one_of(m, ASSERTIONS, "a kernel case")
    ref = parse_ref(get(m, "kernel", "str"), info.base_dir, m.at("kernel"))
    sizes = get(m, "sizes", "map", None) or ymap({}, m.where, {})
    check_sizes(sizes)
    args = get(m, "args", "map", None) or ymap({}, m.where, {})
    for name, spec in args.items():
        check_arg(args, name, spec)
    case = KernelCase(info, ref=ref, sizes=sizes, args=args, seed=check_seed(m, "case"),
                      memory_limit_mib=check_memory_limit(m), assertion=assertion)
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


def _parse_return(m: YMap) -> tuple[Expected, ...]:
    outputs = get(m, "assert_return", "map")
    if not outputs:
        raise m.at("assert_return").error("`assert_return:` must name at least one output")
    case_exact = get(m, "exact", "bool", None)
    case_rtol, case_atol, case_depth = _tolerances(m, None, None, 1, "case")
    out = []
    for name, spec in outputs.items():
        if isinstance(spec, str):
            spec_map = ymap({"value": spec}, outputs.at(name), {"value": outputs.at(name)})
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
        rtol, atol, depth = _tolerances(spec_map, case_rtol, case_atol, case_depth, f"output {name!r}")
        out.append(Expected(name, text, get(spec_map, "exact", "bool", case_exact), rtol, atol, depth,
                            spec_map.at("value")))
    return tuple(out)


def _tolerances(m: YMap, rtol, atol, depth, what: str):
    """(rtol, atol, depth) of `m`, defaulting to the given ones."""
    rtol, atol = get(m, "rtol", "number", rtol, what=what), get(m, "atol", "number", atol, what=what)
    for key, v in (("rtol", rtol), ("atol", atol)):
        if key in m and not (math.isfinite(v) and v >= 0):
            raise m.at(key).error(f"`{key}:` must be a finite number, 0 or more, got {v}")
    depth = get(m, "depth", "int", depth, what=what)
    if "depth" in m and depth < 1:
        raise m.at("depth").error(f"`depth:` is a reduction length, 1 or more, got {depth}")
    return rtol, atol, depth


register(CaseKind("kernel", frozenset({"kernel", "sizes", "args", "seed", "memory_limit_mib", "exact", "rtol",
                                       "atol", "depth", *ASSERTIONS}), ("interp", "cuda"), build,
                  frozenset(ASSERTIONS)))
