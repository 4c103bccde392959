"""A kernel case's `sizes:` and `args:` -> the arguments of one launch.

    check_sizes / check_arg     validate the YAML when the case is built (file:line errors)
    make_launch                 scalars, then every tensor's spec, then the memory ceiling,
                                then the arrays — so a bad value never reaches NumPy

Every problem is a schema.CaseError naming the YAML key it comes from (conformance/README.md).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from taskmap.spec import dtypes as dt
from taskmap.spec import ir, printer
from taskmap.spec.binding import shape_of
from taskmap.spec.errors import LaunchError

from . import arrays
from .schema import Where, YList, YMap, check_keys, get

TENSOR_KEYS = {"init", "seed", "range", "value", "scale", "shape", "dtype"}
DEFAULT_MEMORY_LIMIT_MIB = 1024     # the tensor arguments of one case together (`memory_limit_mib:`)


@dataclass(frozen=True)
class Launch:
    """The arguments of one run, and what the expected-value expressions see."""
    args: list                   # in parameter order
    tensors: dict                # name -> (TensorSpec, its values before the launch)
    namespace: dict              # sizes, scalars and input values, by name


# ---------------------------------------------------------------- when the case is built

def check_sizes(sizes: YMap) -> None:
    for k, v in sizes.items():
        if not isinstance(v, int) or isinstance(v, bool):
            raise sizes.at(k).error(f"size {k!r} must be an integer, got {v!r}")
        if v < 0:
            raise sizes.at(k).error(f"size {k!r} is {v}: sizes are extents (0 or more); "
                                    "give a negative scalar argument in `args:` instead")


def check_seed(m: YMap, what: str) -> int:
    seed = get(m, "seed", "int", 0, what=what)
    if seed < 0:
        raise m.at("seed").error(f"`seed:` must be 0 or more, got {seed}")
    return seed


def check_arg(args: YMap, name, spec) -> None:
    """An `args:` entry in any form a parameter can take (which one applies is known only once
    the kernel is loaded: make_launch checks that)."""
    where = args.at(name)
    if isinstance(spec, str) and spec in arrays.INITS:
        return
    if isinstance(spec, (int, float, str)) and not isinstance(spec, bool):
        if isinstance(spec, str):
            _checked_expression(spec, where)
        return
    if not isinstance(spec, YMap):
        raise where.error(f"argument {name!r} must be a number or expression (scalar), an init name "
                          f"({', '.join(arrays.INITS)}) or a mapping with {', '.join(sorted(TENSOR_KEYS))}")
    what = f"argument {name!r}"
    check_keys(spec, TENSOR_KEYS, what)
    init = get(spec, "init", "str", "random", what=what)
    if init not in arrays.INITS:
        raise spec.at("init").error(f"unknown init {init!r}; expected one of {', '.join(arrays.INITS)}")
    check_seed(spec, what)
    get(spec, "value", "number", 0, what=what)          # inf and NaN fill on purpose
    get(spec, "scale", "number", 1, what=what)
    if "range" in spec:
        r = spec["range"]
        if not (isinstance(r, YList) and len(r) == 2 and all(_is_number(x) and math.isfinite(x) for x in r)):
            raise spec.at("range").error("`range:` must be [low, high], two finite numbers")
        if not r[0] < r[1]:
            raise spec.at("range").error(f"`range:` [{r[0]}, {r[1]}] is empty: values are drawn from "
                                         "[low, high), so low must be below high")
    if "shape" in spec:
        shape = get(spec, "shape", "list", what=what)
        for i, d in enumerate(shape):
            if isinstance(d, str):
                _checked_expression(d, shape.at(i))
            elif not isinstance(d, int) or isinstance(d, bool) or d < 0:
                raise shape.at(i).error(f"`shape:` extents must be integers (0 or more) or size "
                                        f"expressions, got {d!r}")
    if "dtype" in spec:
        try:
            dt.by_name(get(spec, "dtype", "str", what=what))
        except ValueError as e:
            raise spec.at("dtype").error(str(e)) from None


def check_memory_limit(m: YMap) -> int:
    limit = get(m, "memory_limit_mib", "int", DEFAULT_MEMORY_LIMIT_MIB)
    if limit < 1:
        raise m.at("memory_limit_mib").error(f"`memory_limit_mib:` must be 1 or more, got {limit}")
    return limit


def _integral(v) -> bool:
    """An integer, or a float holding one (YAML writes `2.0`); never converts a huge int to float."""
    return isinstance(v, (int, np.integer)) or (isinstance(v, (float, np.floating)) and float(v).is_integer())


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _checked_expression(text: str, where: Where) -> None:
    try:
        arrays.check_expression(text)
    except ValueError as e:
        raise where.error(str(e)) from None


# ---------------------------------------------------------------- when the case runs

def make_launch(kernel: ir.Kernel, sizes: YMap, args: YMap, seed: int, memory_limit_mib: int,
                where: Where, make_empty) -> Launch:
    """The launch arguments; `make_empty(shape, dtype)` makes an `empty` tensor."""
    params = {p.name: p for p in kernel.params}
    for name in args:
        if name not in params:
            raise args.at(name).error(f"`args:` names {name!r}, which is not a parameter of "
                                      f"kernel {kernel.name} ({', '.join(params)})")
    scalars = {p.name: _scalar(p, sizes, args, where) for p in kernel.params if isinstance(p, ir.Var)}
    specs = {p.name: _tensor_spec(kernel, p, sizes, args, scalars, seed * 1000 + i)
             for i, p in enumerate(kernel.params) if isinstance(p, ir.Buffer)}
    _check_memory(specs, memory_limit_mib, sizes.where)
    values, tensors = {}, {}
    for name, spec in specs.items():
        try:
            values[name] = arrays.make_tensor(spec, make_empty)
        except MemoryError:
            raise sizes.where.error(f"tensor {name} {spec.shape} does not fit in this machine's memory; "
                                    "use smaller sizes") from None
        except (ValueError, OverflowError) as e:        # NumPy refusing the generator's parameters
            raise (args.at(name) if name in args else sizes.where).error(
                f"cannot generate tensor {name} ({spec.init}): {e}") from None
        tensors[name] = (spec, arrays.as_values(values[name], spec.dtype))
    namespace = dict(sizes) | scalars | {n: v for n, (_, v) in tensors.items()}
    return Launch([scalars[p.name] if isinstance(p, ir.Var) else values[p.name] for p in kernel.params],
                  tensors, namespace)


def _scalar(p: ir.Var, sizes: YMap, args: YMap, case_where: Where):
    what = f"scalar parameter {p.name!r} ({p.dtype.short})"
    if p.name in args:
        where, raw = args.at(p.name), args[p.name]
        if isinstance(raw, YMap) or raw in arrays.INITS:
            raise where.error(f"{what} takes a number or a size expression, not a tensor description "
                              f"({raw if isinstance(raw, str) else 'a mapping'})")
        value = _evaluate(raw, sizes, where) if isinstance(raw, str) else raw
    elif p.name in sizes:
        where, value = sizes.at(p.name), sizes[p.name]
    else:
        raise case_where.error(f"{what} has no value: add it to `sizes:` or `args:`")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise where.error(f"{what} must be a number, got {value!r}")
    if p.dtype.is_float:
        if not p.dtype.accepts(value):
            raise where.error(f"{what} is {value!r}, beyond the range of {p.dtype.short} (it would round to "
                              "infinity); write .inf or -.inf for an infinity")
        return float(value)
    if not _integral(value):
        raise where.error(f"{what} takes an integer, got {value!r}")
    if not p.dtype.accepts(int(value)):
        raise where.error(f"{what} is {int(value)}, outside {p.dtype.short}'s range "
                          f"[{p.dtype.min}, {p.dtype.max}]")
    return int(value)


def _tensor_spec(kernel: ir.Kernel, p: ir.Buffer, sizes: YMap, args: YMap, scalars: dict,
                 default_seed: int) -> arrays.TensorSpec:
    raw = args.get(p.name, "random")
    where = args.at(p.name) if p.name in args else sizes.where      # its shape comes from the sizes
    declared = f"{p.dtype.short}[{', '.join(printer.expr_str(s) for s in p.shape)}]"
    if not isinstance(raw, YMap) and raw not in arrays.INITS:
        fill = f"; to fill it with {raw}, write `{p.name}: {{init: full, value: {raw}}}`" if _is_number(raw) else ""
        raise where.error(f"tensor parameter {p.name!r} ({declared}) takes an init name "
                          f"({', '.join(arrays.INITS)}) or a mapping, not {raw!r}{fill}")
    spec = raw if isinstance(raw, YMap) else {"init": raw}
    if "shape" in spec:
        shape = tuple(_extent(d, sizes | scalars, spec["shape"].at(i)) for i, d in enumerate(spec["shape"]))
    else:
        try:
            shape = shape_of(kernel, p, scalars)
        except LaunchError as e:
            raise where.error(f"cannot compute the shape {declared} of {p.name}: {e}; "
                              "give `shape:` explicitly") from None
        if any(d < 0 for d in shape):
            raise where.error(f"tensor {p.name} would have shape {shape} ({declared} with "
                              f"{_listing(scalars)}): extents must be 0 or more; check `sizes:` / `args:`")
    init = spec.get("init", "random")
    dtype = dt.by_name(spec["dtype"]) if "dtype" in spec else p.dtype
    low, high = spec.get("range", (None, None))
    if low is not None and (init == "randint" or not dtype.is_float) and \
            not (_integral(low) and _integral(high)):
        raise spec.at("range").error(f"`range:` [{low}, {high}] of integer values must be two integers")
    value = spec.get("value", 0.0)
    if init == "full" and dtype.is_integer and not (_integral(value) and dtype.accepts(int(value))):
        raise spec.at("value").error(f"`value:` {value!r} is not a value of {dtype.short} (an integer in "
                                     f"[{dtype.min}, {dtype.max}])")
    return arrays.TensorSpec(init, shape, dtype, spec.get("seed", default_seed), low, high, value,
                             spec.get("scale", 1.0))


def _extent(d, namespace: dict, where: Where) -> int:
    value = _evaluate(d, namespace, where) if isinstance(d, str) else d
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise where.error(f"`shape:` extent {d!r} is {value!r}; extents must be integers, 0 or more")
    return int(value)


def _evaluate(text: str, namespace: dict, where: Where):
    try:
        return arrays.evaluate(text, namespace)
    except ValueError as e:
        raise where.error(str(e)) from None


def _check_memory(specs: dict, limit_mib: int, where: Where) -> None:
    """Refuse before NumPy allocates: a typo in a size must not try to take 400 GiB."""
    need = {name: math.prod(s.shape) * s.dtype.storage.itemsize for name, s in specs.items()}
    if sum(need.values()) > limit_mib * 2**20:
        name = max(need, key=need.get)
        raise where.error(f"the tensor arguments need {_mib(sum(need.values()))} (the largest, {name} "
                          f"{specs[name].shape} {specs[name].dtype.short}, {_mib(need[name])}), over the "
                          f"case's memory limit of {limit_mib} MiB; use smaller sizes or raise "
                          "`memory_limit_mib:`")


def _mib(nbytes: int) -> str:
    return f"{nbytes / 2**20:,.1f} MiB"


def _listing(values: dict) -> str:
    return ", ".join(f"{k} = {v}" for k, v in values.items()) or "no scalars"

