"""Reductions: sum, mean, prod, max, min over any set of axes; argmax, argmin over one axis;
cumsum (running sums along one axis, ONNX CumSum-14: exclusive, reverse).

Attributes follow ONNX (ReduceSum & co., opset 18: axes=None reduces every axis; keepdims
keeps reduced dimensions as size 1; ArgMax/ArgMin: axis, keepdims, select_last_index).
Definition: y[i] = Reduce(op, over the reduced axes, x at i with the reduced dimensions
replaced by the reduction variables); mean divides the sum by the element count. The input is
not injective (the operator is an anchor). Numerics: f16/bf16 accumulate in f32 and round
once to the output; f32 accumulates in f32 (in an order the schedule chooses); integers in
their own type (wrapping). max/min ignore NaN (fmax/fmin, SPEC §2.3); argmax/argmin return
the first (select_last_index=1: the last) position of the extreme value, as i64.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes as dt
from .. import ir
from .compute import Task, TensorInput, cast, cmp, compute, compute_type, reduce, select
from .registry import (FLOATS, INTS, REQUIRED, Attr, Example, OnnxNode, Operator, TensorType, get, register,
                       uniform_sample)

EXAMPLES = (Example(((5, 7),), {"axes": (1,)}), Example(((3, 1, 4),), {"axes": (0, 2), "keepdims": True}),
            Example(((6,),), {}), Example(((2, 3, 5),), {"axes": (-1,), "keepdims": False}),
            Example(((1, 9),), {"axes": (0,)}), Example(((4, 2, 3),), {"axes": (1, -1)}))
ARG_EXAMPLES = (Example(((5, 7),), {"axis": 1}), Example(((3, 1, 4),), {"axis": 0, "keepdims": False}),
                Example(((6,),), {"select_last_index": 1}), Example(((2, 3, 5),), {"axis": -1}),
                Example(((1, 9),), {"axis": 1, "select_last_index": 1}))


def normalize_axes(op: Operator, axes, rank: int, what: str = "x") -> tuple[int, ...]:
    """Axes in [0, rank), sorted; OpError for one out of range or given twice."""
    out = []
    for a in axes:
        if not -rank <= a < rank:
            raise op.fail(f"axis {a} is out of range for input {what} of rank {rank}")
        if a % rank in out:
            raise op.fail(f"axis {a} given twice")
        out.append(a % rank)
    return tuple(sorted(out))


def _reduced(op, types, attrs):
    x = types[0]
    axes = tuple(range(len(x.shape))) if attrs["axes"] is None else normalize_axes(op, attrs["axes"], len(x.shape))
    keep = bool(attrs["keepdims"])
    shape = tuple(1 if d in axes else s for d, s in enumerate(x.shape) if keep or d not in axes)
    return axes, keep, shape


def _index(x_rank: int, axes, keep: bool, out_axes, red_axes):
    """x's index at output index `out_axes` and reduction variables `red_axes`."""
    it, rt, idx = iter(out_axes), iter(red_axes), []
    for d in range(x_rank):
        if d in axes:
            idx.append(next(rt))
            if keep:
                next(it)
        else:
            idx.append(next(it))
    return tuple(idx)


def reduce_op(name, kind, onnx, ref, dtypes, doc, sample=None):
    def infer(types, attrs):
        return [TensorType(types[0].dtype, _reduced(get(name), types, attrs)[2])]

    def task(types, attrs):
        axes, keep, shape = _reduced(get(name), types, attrs)
        x = TensorInput("x", types[0].shape, types[0].dtype)
        acc = compute_type(x.dtype)
        extents = tuple(x.shape[a] for a in axes)

        def body(*i):
            r = reduce(extents, lambda *r: cast(x[_index(len(x.shape), axes, keep, i, r)], acc),
                       "sum" if kind == "mean" else kind, acc)
            return ir.binary("/", r, float(np.prod(extents))) if kind == "mean" else r
        return Task(name, (x,), (compute("y", shape, body, x.dtype),), ("y",), attrs=tuple(attrs.items()))

    def onnx_node(types, attrs):
        axes = () if attrs["axes"] is None else ((1, np.array(attrs["axes"], np.int64)),)
        return OnnxNode(onnx, {"keepdims": int(attrs["keepdims"])}, axes, opset=18)

    def reference(values, types, attrs):
        axes, keep, _ = _reduced(get(name), types, attrs)
        return [ref(values[0], axis=axes, keepdims=keep)]

    register(Operator(name, "reduce", doc, ("x",),
                      (Attr("axes", None, tuple, "axes to reduce (None: all)"),
                       Attr("keepdims", True, (bool, int), "keep reduced dimensions as size 1")),
                      dtypes, infer, reference, task, EXAMPLES, onnx, onnx_node, sample))


reduce_op("sum", "sum", "ReduceSum", np.sum, FLOATS + INTS, "sum over axes")
reduce_op("mean", "mean", "ReduceMean", np.mean, FLOATS, "sum over axes / element count")
reduce_op("prod", "prod", "ReduceProd", np.prod, FLOATS + INTS, "product over axes",
          sample=uniform_sample(0.5, 1.5, True))
reduce_op("reduce_max", "max", "ReduceMax", np.max, FLOATS + INTS, "largest element over axes")
reduce_op("reduce_min", "min", "ReduceMin", np.min, FLOATS + INTS, "smallest element over axes")


def _arg_shape(op, types, attrs):
    x = types[0]
    (axis,) = normalize_axes(op, (attrs["axis"],), len(x.shape))
    shape = tuple(1 if d == axis else s for d, s in enumerate(x.shape) if attrs["keepdims"] or d != axis)
    return axis, shape


def arg_op(name, kind, onnx, pick):
    def infer(types, attrs):
        return [TensorType(dt.int64, _arg_shape(get(name), types, attrs)[1])]

    def task(types, attrs):
        axis, shape = _arg_shape(get(name), types, attrs)
        x = TensorInput("x", types[0].shape, types[0].dtype)
        n, last, keep = x.shape[axis], attrs["select_last_index"], bool(attrs["keepdims"])

        def body(*i):
            at = lambda r: x[_index(len(x.shape), (axis,), keep, i, (n - 1 - r if last else r,))]
            r = reduce((n,), lambda r: cast(at(r), compute_type(x.dtype)), kind)
            return ir.const(n - 1, dt.int64) - r if last else r
        return Task(name, (x,), (compute("y", shape, body, dt.int64),), ("y",), attrs=tuple(attrs.items()))

    def reference(values, types, attrs):
        axis, _ = _arg_shape(get(name), types, attrs)
        x = values[0]
        r = x.shape[axis] - 1 - pick(np.flip(x, axis), axis) if attrs["select_last_index"] else pick(x, axis)
        return [np.expand_dims(r, axis) if attrs["keepdims"] else r]

    register(Operator(name, "reduce", f"position of the {kind[3:]}imum along axis (i64)", ("x",),
                      (Attr("axis", 0, int), Attr("keepdims", True, (bool, int)),
                       Attr("select_last_index", 0, int, "1: the last extreme position", (0, 1))),
                      FLOATS + INTS, infer, reference, task, ARG_EXAMPLES, onnx,
                      lambda types, a: OnnxNode(onnx, {"axis": a["axis"], "keepdims": int(a["keepdims"]),
                                                       "select_last_index": a["select_last_index"]}, opset=13)))


arg_op("argmax", "argmax", "ArgMax", np.argmax)
arg_op("argmin", "argmin", "ArgMin", np.argmin)


# ---------------------------------------------------------------- cumsum (ONNX CumSum-14)

def _cumsum_axis(types, attrs) -> int:
    (axis,) = normalize_axes(get("cumsum"), (attrs["axis"],), max(1, len(types[0].shape)))
    return axis


def _cumsum_infer(types, attrs):
    _cumsum_axis(types, attrs)               # an axis out of range is an OpError
    return [types[0]]


def _cumsum_task(types, attrs):
    """y[i] = Σ over k of x[i with the axis at k], for k up to i's position on the axis (exclusive:
    before it; reverse: from the end), in the compute type, rounded once to x's dtype."""
    axis, x = _cumsum_axis(types, attrs), TensorInput("x", types[0].shape, types[0].dtype)
    acc, n = compute_type(x.dtype), x.shape[axis]
    keep = {(0, 0): "<=", (1, 0): "<", (0, 1): ">=", (1, 1): ">"}[attrs["exclusive"], attrs["reverse"]]

    def body(*i):
        at = lambda k: x[i[:axis] + (k,) + i[axis + 1:]]
        total = reduce((n,), lambda k: select(cmp(keep, k, i[axis]), cast(at(k), acc), ir.const(0, acc)), "sum", acc)
        return cast(total, x.dtype)
    return Task("cumsum", (x,), (compute("y", x.shape, body),), ("y",), attrs=tuple(attrs.items()))


def _cumsum_ref(values, types, attrs):
    axis, x = _cumsum_axis(types, attrs), values[0]
    flip = (lambda a: np.flip(a, axis)) if attrs["reverse"] else (lambda a: a)
    y = np.cumsum(flip(x), axis=axis)
    if attrs["exclusive"]:
        y = y - flip(x)                  # exact for the integers; f64 for the floats, rounded once after
    return [flip(y)]


register(Operator("cumsum", "reduce", "running sum along axis (exclusive: of the elements before; reverse: "
                  "from the end)", ("x",),
                  (Attr("axis", REQUIRED, int, "the axis summed along (negative: from the end)"),
                   Attr("exclusive", 0, int, "1: each sum leaves out its own element", (0, 1)),
                   Attr("reverse", 0, int, "1: sum from the end of the axis", (0, 1))),
                  FLOATS + INTS, _cumsum_infer, _cumsum_ref, _cumsum_task,
                  (Example(((5, 7),), {"axis": 1}), Example(((3, 1, 4),), {"axis": 0, "exclusive": 1}),
                   Example(((6,),), {"axis": 0, "reverse": 1}),
                   Example(((2, 3, 5),), {"axis": -1, "exclusive": 1, "reverse": 1}),
                   Example(((40, 3),), {"axis": 0}), Example(((2, 70),), {"axis": 1, "reverse": 1})),
                  "CumSum", lambda types, a: OnnxNode("CumSum", {"exclusive": a["exclusive"], "reverse": a["reverse"]},
                                                      inputs=((1, np.array(a["axis"], np.int64)),), opset=14)))
