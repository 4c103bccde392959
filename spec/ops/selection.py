"""Selection by position and by value: trilu (a triangle of the last two dimensions), scatter_nd
(index tuples overwrite or combine slices of the data) and top_k (the k largest or smallest
elements along an axis, with their positions).

trilu and scatter_nd are injective: each output element is an input element, a zero, or (scatter_nd with a
reduction) an element-wise combination of input elements, so the generic injective schedule
runs them and fusion can inline them. Semantics follow ONNX (Trilu-14, ScatterND-18).

trilu keeps y[..., i, j] = x[..., i, j] where j - i >= k (upper) or j - i <= k (lower), zero
elsewhere. scatter_nd writes updates[j] at data position indices[j] (an index tuple of the
first q dimensions, negative entries counted from the end) for j in row-major order, so a
later tuple wins over an earlier duplicate; with reduction add/mul/max/min it combines instead,
in the same order (f16/bf16 computing in f32 and rounding once, SPEC §11.1). Its definition
is one select per index tuple for every output element, so the number of index tuples is
capped at MAX_SCATTER_TUPLES (a KV-cache update or a one-hot fix-up has a handful); more are
refused by name rather than compiled into kernels that grow with them.

top_k is an anchor (it reduces): values and indices (i64) of the k first elements along `axis`
in the order largest-first (largest=1) or smallest-first, ties broken by the lower position
(ONNX TopK-11 with sorted=1; sorted=0 allows any order, so the sorted result serves it too).
NaN orders above every number (last when smallest-first), NaNs among themselves by position.
Its definition ranks each element by counting the elements before it in that order (a sum
nested in the sum that picks the element of rank r): the meaning, not a schedule
(refimpl/schedules/topk.py selects k times per row).
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from .. import dtypes as dt
from .. import ir
from .compute import Task, TensorInput, cast, cmp, compute, compute_type, maximum, minimum, reduce, select
from .elementwise import ALL_TYPES
from .movement import fill_value, wrapped_index, i64
from .reduce import normalize_axes
from .registry import (FLOATS, INTS, REQUIRED, Attr, Example, OnnxNode, Operator, TensorType, get, random_array,
                       register)

MAX_SCATTER_TUPLES = 64
REDUCTIONS = ("none", "add", "mul", "max", "min")


def _selection(name, inputs, attrs, infer, ref, task, examples, onnx, onnx_fn, sample=None, dtypes=ALL_TYPES,
               doc=""):
    register(Operator(name, "selection", doc, inputs, attrs, dtypes, infer, ref, task, examples, onnx, onnx_fn,
                      sample))


# ---------------------------------------------------------------- trilu

def _trilu_infer(types, attrs):
    if len(types[0].shape) < 2:
        raise get("trilu").fail(f"input x must have rank 2 or more (a matrix per batch), got {list(types[0].shape)}")
    return [types[0]]


def _trilu_task(types, attrs):
    x = TensorInput("x", types[0].shape, types[0].dtype)
    k, upper = attrs["k"], attrs["upper"]

    def body(*i):
        above = i[-1] - i[-2]                      # j - i: the diagonal the element is on
        keep = cmp(">=", above, k) if upper else cmp("<=", above, k)
        return select(keep, x[i], fill_value(x.dtype, 0))
    return Task("trilu", (x,), (compute("y", x.shape, body),), ("y",), attrs=tuple(attrs.items()))


_selection("trilu", ("x",), (Attr("upper", 1, int, "1: the upper triangle, 0: the lower", (0, 1)),
                             Attr("k", 0, int, "the diagonal offset (positive: above the main diagonal)")),
           _trilu_infer,
           lambda v, types, a: [(np.triu if a["upper"] else np.tril)(v[0], a["k"])], _trilu_task,
           (Example(((4, 5),)), Example(((2, 3, 3),), {"upper": 0, "k": -1}), Example(((1, 3, 7),), {"k": 2}),
            Example(((5, 1),), {"upper": 0, "k": 1})),
           "Trilu", lambda t, a: OnnxNode("Trilu", {"upper": a["upper"]}, inputs=((1, i64(a["k"])),), opset=14),
           doc="x with everything outside the upper/lower triangle (offset k) of its last two dims zeroed")


# ---------------------------------------------------------------- scatter_nd

def _scatter_check(types, attrs) -> int:
    """The index depth q, after checking the inputs' dtypes and shapes against each other."""
    op, (data, ind, upd) = get("scatter_nd"), types
    if ind.dtype is not dt.int64:
        raise op.fail(f"input indices must be i64 (as ONNX's ScatterND), got {ind.dtype.short}")
    if upd.dtype != data.dtype:
        raise op.fail(f"input updates has dtype {upd.dtype.short}, data has {data.dtype.short}; they must match")
    q = ind.shape[-1]
    if q > len(data.shape):
        raise op.fail(f"indices[..., {q}] index {q} dimensions but data{list(data.shape)} has {len(data.shape)}")
    want = ind.shape[:-1] + data.shape[q:]
    if upd.shape != want:
        raise op.fail(f"input updates must have shape {list(want)} (indices' leading dimensions, then data's "
                      f"after the first {q}), got {list(upd.shape)}")
    tuples = math.prod(ind.shape[:-1])
    if tuples > MAX_SCATTER_TUPLES:
        raise op.fail(f"{tuples} index tuples (indices{list(ind.shape)}); at most {MAX_SCATTER_TUPLES} are "
                      "supported: the definition selects among them per element")
    if attrs["reduction"] in ("add", "mul") and data.dtype is dt.boolean:
        raise op.fail(f"reduction {attrs['reduction']!r} needs numbers, data is bool")
    return q


def _combine(reduction: str, v, u):
    return {"none": lambda: u, "add": lambda: v + u, "mul": lambda: v * u, "max": lambda: maximum(v, u),
            "min": lambda: minimum(v, u)}[reduction]()


def _scatter_task(types, attrs):
    data, ind, upd = (TensorInput(n, t.shape, t.dtype) for n, t in zip(("data", "indices", "updates"), types))
    q, reduction = _scatter_check(types, attrs), attrs["reduction"]
    work = data.dtype if reduction == "none" else compute_type(data.dtype)     # a plain overwrite stays exact

    def body(*i):
        v = cast(data[i], work)
        for j in itertools.product(*map(range, ind.shape[:-1])):               # in order: the last tuple wins
            hit = cmp("==", wrapped_index(ind[j + (0,)], data.shape[0]), cast(i[0], ind.dtype))
            for c in range(1, q):
                hit = cmp("&&", hit, cmp("==", wrapped_index(ind[j + (c,)], data.shape[c]), cast(i[c], ind.dtype)))
            v = select(hit, _combine(reduction, v, cast(upd[j + i[q:]], work)), v)
        return cast(v, data.dtype)
    y = compute("y", data.shape, body)
    return Task("scatter_nd", (data, ind, upd), (y,), ("y",), attrs=tuple(attrs.items()))


def _scatter_ref(v, types, attrs):
    data, ind, upd = v
    q = _scatter_check(types, attrs)
    out = np.array(data, copy=True)
    rows = np.asarray(ind).reshape(-1, q)
    slices = np.asarray(upd).reshape((len(rows),) + data.shape[q:])
    fn = {"none": lambda a, b: b, "add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}
    for row, u in zip(rows, slices):
        at = tuple(int(r) % n for r, n in zip(row, data.shape))
        out[at] = fn[attrs["reduction"]](out[at], u)
    return [out]


def _scatter_sample(rng, types, attrs):
    """Data and updates at random; index tuples distinct for reduction 'none' (ONNX leaves the
    order of duplicates open there), repeated where the reduction combines them; entries
    negative (counted from the end) at random."""
    data, ind, upd = types
    q, tuples = ind.shape[-1], math.prod(ind.shape[:-1])
    cells = math.prod(data.shape[:q])
    flat = rng.choice(cells, tuples, replace=attrs["reduction"] != "none" or tuples > cells)
    rows = np.stack(np.unravel_index(flat, data.shape[:q]), axis=-1)
    rows = rows - np.asarray(data.shape[:q]) * rng.integers(0, 2, rows.shape)
    return [random_array(rng, data), rows.reshape(ind.shape).astype(ind.dtype.storage), random_array(rng, upd)]


_selection("scatter_nd", ("data", "indices", "updates"),
           (Attr("reduction", "none", str, "how an update meets the value it lands on", REDUCTIONS),),
           lambda types, a: (_scatter_check(types, a), [types[0]])[1], _scatter_ref, _scatter_task,
           (Example(((4, 3), (2, 1), (2, 3)), dtypes=(None, dt.int64)),
            Example(((3, 5, 1), (1, 2), (1, 1)), {"reduction": "add"}, (None, dt.int64)),
            Example(((2, 3, 4), (2, 2, 3), (2, 2)), {"reduction": "max"}, (None, dt.int64)),
            Example(((5,), (3, 1), (3,)), {"reduction": "mul"}, (None, dt.int64)),
            Example(((3, 3), (4, 2), (4,)), {"reduction": "min"}, (None, dt.int64))),
           "ScatterND", lambda t, a: OnnxNode("ScatterND", {"reduction": a["reduction"]}, opset=18),
           _scatter_sample, FLOATS + INTS,
           doc="data with updates written (or combined) at index tuples, in order")


# ---------------------------------------------------------------- top_k

def topk_shape(types, attrs) -> tuple[int, tuple[int, ...]]:
    op, x = get("top_k"), types[0]
    (a,) = normalize_axes(op, (attrs["axis"],), len(x.shape))
    if not 1 <= attrs["k"] <= x.shape[a]:
        raise op.fail(f"k={attrs['k']} must be between 1 and x's dimension {a} of size {x.shape[a]}")
    return a, x.shape[:a] + (attrs["k"],) + x.shape[a + 1:]


def _topk_infer(types, attrs):
    shape = topk_shape(types, attrs)[1]
    return [TensorType(types[0].dtype, shape), TensorType(dt.int64, shape)]


def comes_first(largest: bool, is_float: bool, vp, vq, p, q):
    """Element p (value vp) comes before element q in top_k's order (see the module doc)."""
    strict = cmp(">" if largest else "<", vp, vq)
    same = cmp("==", vp, vq)
    if is_float:
        nan_p, nan_q = cmp("!=", vp, vp), cmp("!=", vq, vq)
        strict = cmp("||", strict, cmp("&&", nan_p, ir.Unary("not", nan_q)) if largest else
                     cmp("&&", ir.Unary("not", nan_p), nan_q))
        same = cmp("||", same, cmp("&&", nan_p, nan_q))
    return cmp("||", strict, cmp("&&", same, cmp("<", p, q)))


def _topk_task(types, attrs):
    x = TensorInput("x", types[0].shape, types[0].dtype)
    a, shape = topk_shape(types, attrs)
    n, work = x.shape[a], compute_type(x.dtype)
    value = lambda i, m: cast(x[i[:a] + (m,) + i[a + 1:]], work)
    first = lambda i, p, q: comes_first(attrs["largest"], x.dtype.is_float, value(i, p), value(i, q), p, q)
    rank = lambda i, m: reduce((n,), lambda q: select(first(i, q, m), 1, 0), "sum", prefix="q")
    indices = compute("indices", shape, lambda *i: reduce(
        (n,), lambda m: select(cmp("==", rank(i, m), i[a]), cast(m, dt.int64), cast(0, dt.int64)), "sum", dt.int64))
    values = compute("values", shape, lambda *i: x[i[:a] + (cast(indices[i], dt.int32),) + i[a + 1:]])
    return Task("top_k", (x,), (indices, values), ("values", "indices"), attrs=tuple(attrs.items()))


def _topk_ref(v, types, attrs):
    x = np.moveaxis(v[0], topk_shape(types, attrs)[0], -1)
    nan = np.isnan(x) if types[0].dtype.is_float else np.zeros(x.shape, bool)
    plain = np.where(nan, 0, x)
    position = np.broadcast_to(np.arange(x.shape[-1]), x.shape)
    keys = (position, -plain, ~nan) if attrs["largest"] else (position, plain, nan)    # last key sorts first
    top = np.lexsort(keys, axis=-1)[..., :attrs["k"]]
    a = topk_shape(types, attrs)[0]
    return [np.moveaxis(np.take_along_axis(x, top, -1), -1, a), np.moveaxis(top.astype(np.int64), -1, a)]


_selection("top_k", ("x",), (Attr("k", REQUIRED, int, "how many elements to keep"), Attr("axis", -1, int),
                             Attr("largest", 1, int, "1: the largest first, 0: the smallest first", (0, 1))),
           _topk_infer, _topk_ref, _topk_task,
           (Example(((3, 7),), {"k": 3}), Example(((5, 2, 1),), {"k": 5, "axis": 0, "largest": 0}),
            Example(((2, 9, 3),), {"k": 1, "axis": 1}), Example(((1, 6),), {"k": 6, "largest": 0})),
           "TopK", lambda t, a: OnnxNode("TopK", {"axis": a["axis"], "largest": a["largest"], "sorted": 1},
                                         inputs=((1, i64([a["k"]])),), opset=11),
           dtypes=FLOATS + INTS, doc="the k largest (or smallest) elements along axis, sorted, and their positions")
