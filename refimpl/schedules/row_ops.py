"""Plans for the row operators: reductions over any axes, softmax, log-softmax, layer and RMS norm.

A reduction over a set of axes is split into runs of adjacent axes; each run is one pass of
the row kernel over the current tensor viewed as [outer, run, inner], from the innermost
run outwards (so the positions of the runs still to do do not move). Intermediate results
are kept in the accumulation type (f32 for f16/bf16); the last pass divides (mean) and
rounds to the output dtype. One kernel when the axes are adjacent (the usual case).
"""
from __future__ import annotations

import math

from taskmap.spec import dtypes as dt

from taskmap.spec.ops.reduce import normalize_axes

from .plan import Launch, Plan, Tensor, View
from .rows import NORMS, ROW_CANDIDATES, RowPoint, make_row_kernel, row_resources, row_vec
from .template import Template

REDUCE_KIND = {"sum": "sum", "mean": "sum", "prod": "prod", "reduce_max": "max", "reduce_min": "min",
               "argmax": "argmax", "argmin": "argmin"}
GLOBAL_POOLS = {"global_max_pool": "reduce_max", "global_avg_pool": "mean"}     # over the spatial axes


def runs(axes) -> list[tuple[int, int]]:
    """Sorted axes as [first, last] runs of adjacent axes."""
    out = []
    for a in sorted(axes):
        if out and out[-1][1] == a - 1:
            out[-1] = (out[-1][0], a)
        else:
            out.append((a, a))
    return out


def _split(shape, first, last):
    return math.prod(shape[:first]), math.prod(shape[first:last + 1]), math.prod(shape[last + 1:])


def reduce_plan(op: str, x: Tensor, axes, out: Tensor, point: RowPoint, last: bool = False) -> Plan:
    """`op` (a key of REDUCE_KIND) of x over `axes` (normalized), written to `out` (any shape of
    the reduced element count)."""
    kind = REDUCE_KIND[op]
    acc = dt.float32 if x.dtype.is_float else x.dtype
    passes = runs(axes) or [(len(x.shape), len(x.shape))]       # no axes: rows of length 1
    count = math.prod(x.shape[a] for a in axes)
    shape, source, temps, launches = x.shape + (1,), x.name, [], []
    for k, (first, last_axis) in enumerate(reversed(passes)):
        outer, n, inner = _split(shape, first, last_axis)
        final = k == len(passes) - 1
        in_dtype = x.dtype if k == 0 else acc
        target = out if final else Tensor(f"pass{k}", (outer, 1, inner), acc)
        per, threads = point.layout(n)
        kernel = make_row_kernel(kind, in_dtype, target.dtype, per, threads, row_vec(n, inner, [in_dtype], point.vec),
                                 inner, divide=float(count) if final and op == "mean" else 1.0, last=last)
        unread = View(source, (1,))             # the kernel's [1] gamma and beta
        launches.append(Launch(kernel, (outer, n, View(source, (outer, n * inner)), unread, unread,
                                        View(target.name, (outer, inner)))))
        if not final:
            temps.append(target)
        shape = shape[:first] + (1,) + shape[last_axis + 1:]
        source = target.name
    return Plan((x,), (out,), tuple(temps), tuple(launches))


def norm_plan(kind: str, x: Tensor, axis: int, out: Tensor, point: RowPoint, gamma: Tensor | None = None,
              beta: Tensor | None = None, eps: float = 1e-5) -> Plan:
    """softmax / log_softmax along `axis`; layer_norm / rms_norm over the dimensions from
    `axis` on, scaled by gamma (and shifted by beta) of those dimensions' shape."""
    shape = x.shape
    if kind in ("softmax", "log_softmax"):
        outer, n, inner = _split(shape, axis, axis)
    else:
        outer, n, inner = _split(shape, axis, len(shape) - 1)
    vec = row_vec(n, inner, [x.dtype, out.dtype], point.vec)
    per, threads, held = point.norm_layout(n, vec)
    kernel = make_row_kernel(kind, x.dtype, out.dtype, per, threads, vec, inner, eps=eps, has_bias=beta is not None,
                             held=held)
    g = View(gamma.name, (n,)) if gamma is not None else View(x.name, (1,))
    b = View(beta.name, (n,)) if beta is not None else View(g.name, (1,))
    inputs = (x,) + tuple(t for t in (gamma, beta) if t is not None)
    return Plan(inputs, (out,), (), (Launch(kernel, (outer, n, View(x.name, (outer, n * inner)), g, b,
                                                     View(out.name, (outer, n * inner)))),))


def group_norm_plan(x: Tensor, groups: int, out: Tensor, point: RowPoint, gamma: Tensor, beta: Tensor,
                    eps: float) -> Plan:
    """Rows are (sample, channel group): the group's channels × spatial positions, contiguous."""
    per = x.shape[1] // groups
    outer, n = x.shape[0] * groups, per * math.prod(x.shape[2:])
    vec = row_vec(n // per, 1, [x.dtype, out.dtype], point.vec)      # a vector never spans two channels
    per_kind, threads, held = point.norm_layout(n, vec)
    kernel = make_row_kernel("group_norm", x.dtype, out.dtype, per_kind, threads, vec, 1, eps=eps,
                             groups=(groups, per), held=held)
    return Plan((x, gamma, beta), (out,), (), (Launch(kernel, (outer, n, View(x.name, (outer, n)), gamma.name,
                                                               beta.name, View(out.name, (outer, n)))),))


def _inputs(op, types) -> list[Tensor]:
    return [Tensor(name.rstrip("?"), t.shape, t.dtype) for name, t in zip(op.inputs, types)]


def _reduce_op_plan(op, types, attrs, point: RowPoint) -> Plan:
    (x,) = _inputs(op, types)
    (y,) = op.infer(types, **attrs)
    rank = len(x.shape)
    if op.name in GLOBAL_POOLS:
        return reduce_plan(GLOBAL_POOLS[op.name], x, tuple(range(2, rank)), Tensor("y", y.shape, y.dtype), point)
    if op.name in ("argmax", "argmin"):
        axes = normalize_axes(op, (attrs["axis"],), rank)
    else:
        axes = tuple(range(rank)) if attrs["axes"] is None else normalize_axes(op, attrs["axes"], rank)
    return reduce_plan(op.name, x, axes, Tensor("y", y.shape, y.dtype), point, bool(attrs.get("select_last_index")))


def _norm_op_plan(op, types, attrs, point: RowPoint) -> Plan:
    x, *affine = _inputs(op, types)
    (y,) = op.infer(types, **attrs)
    gamma, beta = (affine + [None, None])[:2]
    if op.name == "group_norm":
        return group_norm_plan(x, attrs["num_groups"], Tensor("y", y.shape, y.dtype), point, gamma, beta,
                               attrs["epsilon"])
    (axis,) = normalize_axes(op, (attrs["axis"],), len(x.shape))
    return norm_plan(op.name, x, axis, Tensor("y", y.shape, y.dtype), point, gamma, beta, attrs.get("epsilon", 1e-5))


def _any(types, attrs) -> bool:
    return True


ROW_DEFAULT = RowPoint()
REDUCE_TEMPLATE = Template("row_reduce", tuple(REDUCE_KIND) + tuple(GLOBAL_POOLS), _any, ROW_CANDIDATES, ROW_DEFAULT,
                           row_resources, _reduce_op_plan)
NORM_TEMPLATE = Template("row_norm", NORMS, _any, ROW_CANDIDATES, ROW_DEFAULT, row_resources,
                         _norm_op_plan)
