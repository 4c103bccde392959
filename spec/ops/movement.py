"""Data movement: reshape, flatten, squeeze, unsqueeze, transpose, expand, concat, split, slice,
gather, gather_elements, pad, resize (nearest/linear), embedding.

Every operator here is injective (no reduction): each output element is one input element (or
a constant, or for resize linear an f32 blend of 2^k of them, k = the resized dimensions). The
definitions are pure index arithmetic on i32 axes (i64 where a flat index can pass 2^31); the
reshape family and transpose also give inverse maps (they are bijections). Values are copied
exactly (bit-exact for every dtype); resize linear blends in f32 and rounds once. Attribute
semantics follow ONNX: reshape's 0 copies the input dimension and -1 is inferred; slice clamps
starts/ends to the dimension and allows negative steps; gather/gather_elements accept negative
indices (counted from the end); pad's pads are (begin_0, ..., begin_r-1, end_0, ..., end_r-1),
negative values crop; resize takes sizes or scales with ONNX's coordinate transformations.
Zero-sized results (an empty slice, a split part of size 0) are rejected: operators have no
zero-sized tensors.
"""
from __future__ import annotations

import math

import numpy as np

from .. import dtypes as dt
from .. import ir
from .compute import (Task, TensorInput, call, cast, cmp, compute, inverse_map, maximum, minimum, select)
from .elementwise import ALL_TYPES, broadcast_load, broadcast_shape
from .reduce import normalize_axes
from .registry import (FLOATS, REQUIRED, Attr, Example, OnnxNode, Operator, TensorType, get, random_array,
                       register, to_storage)

INDEX_TYPES = (dt.int32, dt.int64)
i64 = lambda v: np.array(v, np.int64)


def _movement(name, inputs, attrs, infer, ref, task, examples, onnx=None, onnx_fn=None, sample=None,
              dtypes=ALL_TYPES, doc="", typed=0):
    register(Operator(name, "movement", doc, inputs, attrs, dtypes, infer, ref, task, examples, onnx, onnx_fn,
                      sample, typed))


# ---------------------------------------------------------------- reshape family

def _flat(idx, shape):
    wide = dt.int64 if math.prod(shape) >= 2 ** 31 else dt.int32
    f = ir.const(0, wide)
    for i, s in zip(idx, shape):
        f = f * ir.const(s, wide) + cast(i, wide)
    return f


def _unflat(f, shape):
    out, stride = [], 1
    for s in reversed(shape):
        out.append(ir.binary("%", ir.binary("/", f, ir.const(stride, f.dtype)), ir.const(s, f.dtype)) if s > 1
                   else ir.const(0))
        stride *= s
    return tuple(cast(e, dt.int32) for e in reversed(out))


def reshape_task(name, types, out_shape, attrs=()) -> Task:
    """y = x reshaped (row-major), with its inverse map: the reshape the other way."""
    x = TensorInput("x", types[0].shape, types[0].dtype)
    y = compute("y", out_shape, lambda *i: x[_unflat(_flat(i, out_shape), x.shape)])
    inv = inverse_map(x, lambda *j: _unflat(_flat(j, x.shape), out_shape))
    return Task(name, (x,), (y,), ("y",), (("x", inv),), tuple(attrs))


def _reshape_shape(types, attrs):
    op, x = get("reshape"), types[0]
    want = list(attrs["shape"])
    if want.count(-1) > 1:
        raise op.fail(f"shape {want} has more than one -1")
    for d, s in enumerate(want):
        if s == 0:
            if d >= len(x.shape):
                raise op.fail(f"shape {want}: 0 at position {d} copies a dimension x does not have (rank {len(x.shape)})")
            want[d] = x.shape[d]
        elif s < -1:
            raise op.fail(f"shape {want}: dimension {s} is negative")
    known = math.prod(s for s in want if s != -1)
    total = math.prod(x.shape)
    if -1 in want and total % known == 0:
        want[want.index(-1)] = total // known
    if math.prod(want) != total:
        raise op.fail(f"cannot reshape x{list(x.shape)} ({total} elements) to {list(attrs['shape'])}")
    return tuple(want)


def _shape_of(fn):
    return lambda types, attrs: [TensorType(types[0].dtype, fn(types, attrs))]


def _reshaper(name, shape_fn, onnx, onnx_fn, attrs, examples, doc):
    _movement(name, ("x",), attrs, _shape_of(shape_fn),
              lambda v, types, a: [v[0].reshape(shape_fn(types, a))],
              lambda types, a: reshape_task(name, types, shape_fn(types, a), a.items()), examples, onnx, onnx_fn, doc=doc)


_reshaper("reshape", _reshape_shape, "Reshape", lambda t, a: OnnxNode("Reshape", {}, ((1, i64(a["shape"])),), opset=14),
          (Attr("shape", REQUIRED, tuple, "new shape; 0 copies, -1 infers"),),
          (Example(((2, 3, 4),), {"shape": (4, -1)}), Example(((6,),), {"shape": (1, 3, 2)}),
           Example(((3, 1, 5),), {"shape": (0, 5)}), Example(((1,),), {"shape": (1, 1)})), "row-major reshape")


def _flatten_shape(types, attrs):
    x = types[0]
    a = attrs["axis"]
    if not -len(x.shape) <= a <= len(x.shape):
        raise get("flatten").fail(f"axis {a} is out of range for input x of rank {len(x.shape)}")
    a = a + len(x.shape) if a < 0 else a
    return math.prod(x.shape[:a]), math.prod(x.shape[a:])


_reshaper("flatten", _flatten_shape, "Flatten", lambda t, a: OnnxNode("Flatten", {"axis": a["axis"]}, opset=13),
          (Attr("axis", 1, int, "dims before it form the rows"),),
          (Example(((2, 3, 4),)), Example(((5,),), {"axis": 0}), Example(((2, 1, 3),), {"axis": -1})),
          "2-D (prod(dims < axis), prod(dims >= axis))")


def _squeeze_shape(types, attrs):
    op, x = get("squeeze"), types[0]
    axes = tuple(d for d, s in enumerate(x.shape) if s == 1) if attrs["axes"] is None else \
        normalize_axes(op, attrs["axes"], len(x.shape))
    for d in axes:
        if x.shape[d] != 1:
            raise op.fail(f"dimension {d} of x has size {x.shape[d]}, not 1")
    out = tuple(s for d, s in enumerate(x.shape) if d not in axes)
    if not out:
        raise op.fail(f"squeezing x{list(x.shape)} would leave rank 0, which operators do not support")
    return out


_reshaper("squeeze", _squeeze_shape, "Squeeze",
          lambda t, a: OnnxNode("Squeeze", {}, () if a["axes"] is None else ((1, i64(a["axes"])),), opset=13),
          (Attr("axes", None, tuple, "size-1 dims to drop (None: all)"),),
          (Example(((1, 3, 1, 2),)), Example(((2, 1, 4),), {"axes": (1,)}), Example(((1, 5),), {"axes": (-2,)})),
          "drop size-1 dimensions")


def _unsqueeze_shape(types, attrs):
    x = types[0]
    axes = normalize_axes(get("unsqueeze"), attrs["axes"], len(x.shape) + len(attrs["axes"]))
    it = iter(x.shape)
    return tuple(1 if d in axes else next(it) for d in range(len(x.shape) + len(axes)))


_reshaper("unsqueeze", _unsqueeze_shape, "Unsqueeze", lambda t, a: OnnxNode("Unsqueeze", {}, ((1, i64(a["axes"])),), opset=13),
          (Attr("axes", REQUIRED, tuple, "positions of the new size-1 dims in the output"),),
          (Example(((3, 2),), {"axes": (0,)}), Example(((4,),), {"axes": (0, -1)}), Example(((2, 5),), {"axes": (1,)}),
           Example(((1, 3),), {"axes": (2,)})),
          "insert size-1 dimensions")


# ---------------------------------------------------------------- transpose, expand

def _perm(types, attrs):
    r = len(types[0].shape)
    p = tuple(range(r))[::-1] if attrs["perm"] is None else tuple(attrs["perm"])
    if sorted(p) != list(range(r)):
        raise get("transpose").fail(f"perm {list(p)} is not a permutation of 0..{r - 1} (x has rank {r})")
    return p


def _transpose_task(types, attrs):
    x = TensorInput("x", types[0].shape, types[0].dtype)
    p = _perm(types, attrs)
    inv = [p.index(d) for d in range(len(p))]
    y = compute("y", tuple(x.shape[d] for d in p), lambda *i: x[tuple(i[inv[d]] for d in range(len(p)))])
    return Task("transpose", (x,), (y,), ("y",), (("x", inverse_map(x, lambda *j: tuple(j[d] for d in p))),))


_movement("transpose", ("x",), (Attr("perm", None, tuple, "output dim d is input dim perm[d] (None: reverse)"),),
          lambda types, a: [TensorType(types[0].dtype, tuple(types[0].shape[d] for d in _perm(types, a)))],
          lambda v, types, a: [np.transpose(v[0], _perm(types, a))], _transpose_task,
          (Example(((2, 3),)), Example(((2, 3, 4),), {"perm": (1, 2, 0)}), Example(((1, 5, 1, 3),), {"perm": (3, 1, 0, 2)})),
          "Transpose", lambda t, a: OnnxNode("Transpose", {} if a["perm"] is None else {"perm": list(a["perm"])}, opset=13),
          doc="permute dimensions")


def _expand_shape(types, attrs):
    op = get("expand")
    return broadcast_shape(op, ("x", "shape"), [types[0], TensorType(types[0].dtype, tuple(attrs["shape"]))])


def _expand_task(types, attrs):
    x = TensorInput("x", types[0].shape, types[0].dtype)
    shape = _expand_shape(types, attrs)
    inv = (("x", inverse_map(x, lambda *j: j)),) if shape == x.shape else ()
    return Task("expand", (x,), (compute("y", shape, lambda *i: broadcast_load(x, i)),), ("y",), inv)


_movement("expand", ("x",), (Attr("shape", REQUIRED, tuple, "broadcast with this shape (NumPy rules)"),),
          _shape_of(_expand_shape), lambda v, types, a: [np.broadcast_to(v[0], _expand_shape(types, a))], _expand_task,
          (Example(((3, 1),), {"shape": (2, 3, 4)}), Example(((4,),), {"shape": (1,)}), Example(((1, 5),), {"shape": (3, 1)})),
          "Expand", lambda t, a: OnnxNode("Expand", {}, ((1, i64(a["shape"])),), opset=13), doc="NumPy broadcast")


# ---------------------------------------------------------------- concat, split, slice

def _concat_shape(types, attrs):
    op = get("concat")
    x0 = types[0]
    (a,) = normalize_axes(op, (attrs["axis"],), len(x0.shape), "x0")
    op.same_dtype(types)
    for k, t in enumerate(types[1:], 1):
        if len(t.shape) != len(x0.shape) or any(s != s0 for d, (s, s0) in enumerate(zip(t.shape, x0.shape)) if d != a):
            raise op.fail(f"input x{k}{list(t.shape)} does not match x0{list(x0.shape)} outside axis {a}")
    return a, x0.shape[:a] + (sum(t.shape[a] for t in types),) + x0.shape[a + 1:]


def _concat_task(types, attrs):
    xs = [TensorInput(f"x{k}", t.shape, t.dtype) for k, t in enumerate(types)]
    a, shape = _concat_shape(types, attrs)
    starts = np.cumsum([0] + [x.shape[a] for x in xs]).tolist()

    def body(*i):
        at = lambda k: xs[k][tuple(i[d] - starts[k] if d == a else i[d] for d in range(len(i)))]
        v = at(len(xs) - 1)
        for k in range(len(xs) - 2, -1, -1):
            v = select(cmp("<", i[a], starts[k + 1]), at(k), v)
        return v
    return Task("concat", tuple(xs), (compute("y", shape, body),), ("y",), attrs=tuple(attrs.items()))


_movement("concat", ("x*",), (Attr("axis", 0, int),),
          lambda types, a: [TensorType(types[0].dtype, _concat_shape(types, a)[1])],
          lambda v, types, a: [np.concatenate(v, axis=a["axis"])], _concat_task,
          (Example(((2, 3), (4, 3)), {}), Example(((2, 1, 3), (2, 2, 3), (2, 1, 3)), {"axis": 1}),
           Example(((5,),), {}), Example(((1, 2), (1, 3)), {"axis": -1})),
          "Concat", lambda t, a: OnnxNode("Concat", {"axis": a["axis"]}, opset=13), doc="join along axis")


def _split_sizes(types, attrs):
    op, x = get("split"), types[0]
    (a,) = normalize_axes(op, (attrs["axis"],), len(x.shape))
    n = x.shape[a]
    if (attrs["split"] is None) == (attrs["num_outputs"] is None):
        raise op.fail("give exactly one of 'split' (part sizes) and 'num_outputs'")
    if attrs["split"] is not None:
        sizes = list(attrs["split"])
        if sum(sizes) != n or min(sizes) < 1:
            raise op.fail(f"split sizes {sizes} must be positive and sum to x's dimension {a} of size {n}")
    else:
        k = attrs["num_outputs"]
        part = -(-n // k) if k >= 1 else 0
        sizes = [min(part, n - j * part) for j in range(k)] if k >= 1 else []
        if k < 1 or min(sizes) < 1:
            raise op.fail(f"num_outputs={k} parts of x's dimension {a} of size {n} leaves an empty part")
    return a, sizes


def _split_infer(types, attrs):
    a, sizes = _split_sizes(types, attrs)
    x = types[0]
    return [TensorType(x.dtype, x.shape[:a] + (s,) + x.shape[a + 1:]) for s in sizes]


def _split_task(types, attrs):
    x = TensorInput("x", types[0].shape, types[0].dtype)
    a, sizes = _split_sizes(types, attrs)
    starts = np.cumsum([0] + sizes).tolist()
    ys = tuple(compute(f"y{k}", x.shape[:a] + (s,) + x.shape[a + 1:],
                       lambda *i, k=k: x[tuple(i[d] + starts[k] if d == a else i[d] for d in range(len(i)))])
               for k, s in enumerate(sizes))
    return Task("split", (x,), ys, tuple(y.name for y in ys), attrs=tuple(attrs.items()))


_movement("split", ("x",), (Attr("axis", 0, int), Attr("split", None, tuple, "part sizes"),
                            Attr("num_outputs", None, int, "equal parts (the last may be smaller)")),
          _split_infer, lambda v, types, a: np.split(v[0], np.cumsum(_split_sizes(types, a)[1])[:-1], _split_sizes(types, a)[0]),
          _split_task,
          (Example(((6, 2),), {"split": (1, 5)}), Example(((2, 7),), {"axis": 1, "num_outputs": 3}),
           Example(((3, 4, 1),), {"axis": -2, "num_outputs": 2}), Example(((1,),), {"num_outputs": 1})),
          "Split", lambda t, a: OnnxNode("Split", {"axis": a["axis"]} | (
              {} if a["num_outputs"] is None else {"num_outputs": a["num_outputs"]}),
              () if a["split"] is None else ((1, i64(a["split"])),), opset=18), doc="cut along axis")


def _slices(types, attrs):
    """Per input dimension: (start, step, length) after ONNX's normalization and clamping."""
    op, x = get("slice"), types[0]
    r, starts, ends = len(x.shape), attrs["starts"], attrs["ends"]
    axes = tuple(range(len(starts))) if attrs["axes"] is None else attrs["axes"]
    steps = (1,) * len(starts) if attrs["steps"] is None else attrs["steps"]
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise op.fail(f"starts, ends, axes and steps must have one entry per sliced axis, got "
                      f"{len(starts)}, {len(ends)}, {len(axes)}, {len(steps)}")
    normalize_axes(op, axes, r)
    out = [(0, 1, s) for s in x.shape]
    for s, e, a, t in zip(starts, ends, axes, steps):
        a %= r
        n = x.shape[a]
        if t == 0:
            raise op.fail(f"step for axis {a} is 0")
        s, e = s + n if s < 0 else s, e + n if e < 0 else e
        s, e = (min(max(s, 0), n), min(max(e, 0), n)) if t > 0 else (min(max(s, 0), n - 1), min(max(e, -1), n - 1))
        length = max(0, -(-(e - s) // t))
        if length == 0:
            raise op.fail(f"axis {a} is empty after slicing (start {s}, end {e}, step {t}); "
                          "zero-sized tensors are not supported")
        out[a] = (s, t, length)
    return out


def _slice_task(types, attrs):
    x = TensorInput("x", types[0].shape, types[0].dtype)
    sl = _slices(types, attrs)
    y = compute("y", tuple(n for _, _, n in sl), lambda *i: x[tuple(s + i[d] * t for d, (s, t, _) in enumerate(sl))])
    return Task("slice", (x,), (y,), ("y",), attrs=tuple(attrs.items()))


def _slice_onnx(types, attrs):
    ins = [(1, i64(attrs["starts"])), (2, i64(attrs["ends"]))]
    if attrs["axes"] is not None or attrs["steps"] is not None:
        ins.append((3, i64(attrs["axes"] if attrs["axes"] is not None else range(len(attrs["starts"])))))
    if attrs["steps"] is not None:
        ins.append((4, i64(attrs["steps"])))
    return OnnxNode("Slice", {}, tuple(ins), opset=13)


_movement("slice", ("x",), (Attr("starts", REQUIRED, tuple), Attr("ends", REQUIRED, tuple),
                            Attr("axes", None, tuple, "sliced axes (None: 0, 1, ...)"), Attr("steps", None, tuple)),
          lambda types, a: [TensorType(types[0].dtype, tuple(n for _, _, n in _slices(types, a)))],
          lambda v, types, a: [v[0][np.ix_(*(s + t * np.arange(n) for s, t, n in _slices(types, a)))]],
          _slice_task,
          (Example(((7, 5),), {"starts": (1,), "ends": (6,)}),
           Example(((7, 5),), {"starts": (-1, 0), "ends": (-1000, 10), "steps": (-2, 3)}),
           Example(((3, 4, 5),), {"starts": (1, -3), "ends": (2**31, -1), "axes": (2, 0)}),
           Example(((6,),), {"starts": (4,), "ends": (0,), "steps": (-1,)}),
           Example(((1, 4),), {"starts": (0, 3), "ends": (1, 4)})),
          "Slice", _slice_onnx, doc="ONNX Slice: clamped starts/ends, negative steps")


# ---------------------------------------------------------------- gather, gather_elements, embedding

def _index_dtype(op: Operator, t: TensorType, name: str = "indices"):
    if t.dtype not in INDEX_TYPES:
        raise op.fail(f"input {name} must be i32 or i64, got {t.dtype.short}")


def wrapped_index(idx, n: int):
    """A possibly negative index counted from the end."""
    return select(cmp("<", idx, 0), idx + n, idx)


def _gather_shape(types, attrs):
    op, (x, ind) = get("gather"), types
    _index_dtype(op, ind)
    (a,) = normalize_axes(op, (attrs["axis"],), len(x.shape))
    return a, x.shape[:a] + ind.shape + x.shape[a + 1:]


def _gather_task(types, attrs):
    x, ind = TensorInput("x", types[0].shape, types[0].dtype), TensorInput("indices", types[1].shape, types[1].dtype)
    a, shape = _gather_shape(types, attrs)
    k = len(ind.shape)
    y = compute("y", shape, lambda *i: x[i[:a] + (wrapped_index(ind[i[a:a + k]], x.shape[a]),) + i[a + k:]])
    return Task("gather", (x, ind), (y,), ("y",), attrs=tuple(attrs.items()))


def _index_sample(data: int, n_of):
    """Random data, and indices in [-n, n) for n = n_of(types, attrs) (negative ones included)."""
    def sample(rng, types, attrs):
        n = n_of(types, attrs)
        out = [random_array(rng, t) for t in types]
        out[1 - data] = rng.integers(-n, n, types[1 - data].shape).astype(types[1 - data].dtype.storage)
        return out
    return sample


_movement("gather", ("x", "indices"), (Attr("axis", 0, int),),
          lambda types, a: [TensorType(types[0].dtype, _gather_shape(types, a)[1])],
          lambda v, types, a: [np.take(v[0], v[1], axis=a["axis"])], _gather_task,
          (Example(((5, 3), (4,)), dtypes=(None, dt.int64)), Example(((2, 6, 3), (2, 2)), {"axis": 1}, (None, dt.int32)),
           Example(((4,), (1, 3)), {"axis": -1}, (None, dt.int64))),
          "Gather", lambda t, a: OnnxNode("Gather", {"axis": a["axis"]}, opset=13),
          _index_sample(0, lambda types, a: types[0].shape[a["axis"]]), doc="x indexed along axis by indices")


def _gather_elements_axis(types, attrs):
    op, (x, ind) = get("gather_elements"), types
    _index_dtype(op, ind)
    (a,) = normalize_axes(op, (attrs["axis"],), len(x.shape))
    if len(ind.shape) != len(x.shape):
        raise op.fail(f"indices{list(ind.shape)} must have x's rank {len(x.shape)}")
    for d, (s, n) in enumerate(zip(ind.shape, x.shape)):
        if d != a and s > n:
            raise op.fail(f"indices dimension {d} has size {s}, larger than x's {n}")
    return a


def _gather_elements_infer(types, attrs):
    _gather_elements_axis(types, attrs)
    return [TensorType(types[0].dtype, types[1].shape)]


def _gather_elements_task(types, attrs):
    x, ind = TensorInput("x", types[0].shape, types[0].dtype), TensorInput("indices", types[1].shape, types[1].dtype)
    a = _gather_elements_axis(types, attrs)
    y = compute("y", ind.shape, lambda *i: x[tuple(wrapped_index(ind[i], x.shape[a]) if d == a else i[d] for d in range(len(i)))])
    return Task("gather_elements", (x, ind), (y,), ("y",), attrs=tuple(attrs.items()))


def _gather_elements_ref(v, types, attrs):
    x, ind = v
    a = _gather_elements_axis(types, attrs)
    ind = np.where(ind < 0, ind + x.shape[a], ind)
    sub = x[tuple(slice(0, s) if d != a else slice(None) for d, s in enumerate(ind.shape))]
    return [np.take_along_axis(sub, ind, axis=a)]


_movement("gather_elements", ("x", "indices"), (Attr("axis", 0, int),),
          _gather_elements_infer,
          _gather_elements_ref, _gather_elements_task,
          (Example(((4, 3), (2, 3)), dtypes=(None, dt.int64)), Example(((3, 5), (2, 7)), {"axis": 1}, (None, dt.int32)),
           Example(((2, 3, 4), (2, 1, 4)), {"axis": -2}, (None, dt.int64))),
          "GatherElements", lambda t, a: OnnxNode("GatherElements", {"axis": a["axis"]}, opset=13),
          _index_sample(0, lambda types, a: types[0].shape[a["axis"]]), doc="y[i] = x[i with axis replaced by indices[i]]")


def _embedding_shape(types, attrs):
    op, (ind, w) = get("embedding"), types
    _index_dtype(op, ind)
    if len(w.shape) != 2:
        raise op.fail(f"input weight must be 2-D (vocabulary, dim), got {list(w.shape)}")
    return ind.shape + w.shape[1:]


def _embedding_task(types, attrs):
    ind, w = TensorInput("indices", types[0].shape, types[0].dtype), TensorInput("weight", types[1].shape, types[1].dtype)
    k = len(ind.shape)
    y = compute("y", _embedding_shape(types, attrs), lambda *i: w[wrapped_index(ind[i[:k]], w.shape[0]), i[k]])
    return Task("embedding", (ind, w), (y,), ("y",))


_movement("embedding", ("indices", "weight"), (),
          lambda types, a: [TensorType(types[1].dtype, _embedding_shape(types, a))],
          lambda v, types, a: [np.take(v[1], v[0], axis=0)], _embedding_task,
          (Example(((3,), (10, 4)), dtypes=(dt.int64,)), Example(((2, 5), (7, 3)), dtypes=(dt.int32,)),
           Example(((1,), (1, 1)), dtypes=(dt.int64,))),
          "Gather", lambda t, a: OnnxNode("Gather", {"axis": 0}, order=(1, 0), opset=13),
          _index_sample(1, lambda types, a: types[1].shape[0]), dtypes=FLOATS, typed=1,
          doc="weight rows at indices (a lookup table)")


# ---------------------------------------------------------------- pad

def _pad_check(types, attrs):
    op, x = get("pad"), types[0]
    r, pads = len(x.shape), attrs["pads"]
    if len(pads) != 2 * r:
        raise op.fail(f"pads needs 2 x rank = {2 * r} entries (begins, then ends), got {len(pads)}")
    shape = tuple(s + pads[d] + pads[d + r] for d, s in enumerate(x.shape))
    for d, s in enumerate(shape):
        if s < 1:
            raise op.fail(f"pads {list(pads)} leave axis {d} empty (size {x.shape[d]} -> {s})")
        if attrs["mode"] == "reflect" and max(pads[d], pads[d + r]) >= x.shape[d]:
            raise op.fail(f"reflect padding {max(pads[d], pads[d + r])} on axis {d} must be smaller than its size {x.shape[d]}")
    return shape


def _pad_task(types, attrs):
    x = TensorInput("x", types[0].shape, types[0].dtype)
    shape, mode, begin = _pad_check(types, attrs), attrs["mode"], attrs["pads"][:len(types[0].shape)]

    def body(*i):
        js = [i[d] - begin[d] for d in range(len(i))]
        if mode == "edge":
            return x[tuple(minimum(maximum(j, 0), n - 1) for j, n in zip(js, x.shape))]
        if mode == "reflect":
            js = [select(cmp("<", j, 0), ir.Unary("neg", j), j) for j in js]
            return x[tuple(select(cmp(">=", j, n), 2 * (n - 1) - j, j) for j, n in zip(js, x.shape))]
        inside = ir.const(True)
        for j, n in zip(js, x.shape):
            inside = cmp("&&", inside, cmp("&&", cmp(">=", j, 0), cmp("<", j, n)))
        return select(inside, x[tuple(js)], fill_value(x.dtype, attrs["value"]))
    return Task("pad", (x,), (compute("y", shape, body),), ("y",), attrs=tuple(attrs.items()))


def fill_value(t: dt.DType, value) -> ir.Const:
    return ir.const(bool(value) if t is dt.boolean else value if t.is_float else int(value), t)


def _pad_ref(v, types, attrs):
    x, r = v[0], len(types[0].shape)
    pads = attrs["pads"]
    crop = tuple(slice(max(0, -pads[d]), x.shape[d] - max(0, -pads[d + r])) for d in range(r))
    width = tuple((max(0, pads[d]), max(0, pads[d + r])) for d in range(r))
    x = x[crop]
    if attrs["mode"] == "constant":
        return [np.pad(x, width, constant_values=np.asarray(attrs["value"]).astype(x.dtype))]
    return [np.pad(x, width, mode=attrs["mode"])]


_movement("pad", ("x",), (Attr("pads", REQUIRED, tuple, "begins then ends; negative crops"),
                          Attr("mode", "constant", str, "", ("constant", "reflect", "edge")),
                          Attr("value", 0, (int, float), "constant mode's fill")),
          lambda types, a: [TensorType(types[0].dtype, _pad_check(types, a))], _pad_ref, _pad_task,
          (Example(((3, 4),), {"pads": (1, 0, 2, 3), "value": 1.5}), Example(((3, 4),), {"pads": (2, 1, 1, 3), "mode": "reflect"}),
           Example(((2, 1, 3),), {"pads": (0, 2, 1, 1, 0, 2), "mode": "edge"}), Example(((5, 4),), {"pads": (-1, 1, 0, -2)}),
           Example(((1,),), {"pads": (2, 0)})),
          "Pad", lambda t, a: OnnxNode("Pad", {"mode": a["mode"]}, (
              (1, i64(a["pads"])), (2, to_storage(np.array(a["value"]), t[0].dtype))), opset=18),
          doc="constant / reflect / edge padding")


# ---------------------------------------------------------------- resize

RESIZE_ATTRS = (Attr("sizes", None, tuple, "output shape"), Attr("scales", None, tuple, "per-dimension scale factors"),
                Attr("mode", "nearest", str, "", ("nearest", "linear")),
                Attr("coordinate_transformation_mode", "half_pixel", str, "",
                     ("half_pixel", "pytorch_half_pixel", "asymmetric", "align_corners")),
                Attr("nearest_mode", "round_prefer_floor", str, "", ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")))


def _resize_plan(types, attrs):
    """(output shape, per-dimension scale) of ONNX Resize."""
    op, x = get("resize"), types[0]
    if (attrs["sizes"] is None) == (attrs["scales"] is None):
        raise op.fail("give exactly one of 'sizes' and 'scales'")
    given = attrs["sizes"] if attrs["sizes"] is not None else attrs["scales"]
    if len(given) != len(x.shape):
        raise op.fail(f"{'sizes' if attrs['sizes'] is not None else 'scales'} needs one entry per dimension of "
                      f"x{list(x.shape)}, got {list(given)}")
    if attrs["sizes"] is not None:
        shape = tuple(int(s) for s in attrs["sizes"])
        scales = tuple(float(np.float32(o) / np.float32(n)) for o, n in zip(shape, x.shape))
    else:
        scales = tuple(float(np.float32(s)) for s in attrs["scales"])
        shape = tuple(int(math.floor(n * s)) for n, s in zip(x.shape, scales))
    for d, s in enumerate(shape):
        if s < 1:
            raise op.fail(f"output dimension {d} would be {s}; it must be at least 1")
    return shape, scales


def _coordinate(mode, i, n_in, n_out, scale):
    """Input coordinate of output position i (f32 expressions or NumPy f64 arrays alike)."""
    if mode == "align_corners":
        return i * 0.0 if n_out == 1 else i * ((n_in - 1) / (n_out - 1))
    if mode == "asymmetric":
        return i / scale
    x = (i + 0.5) / scale - 0.5
    return i * 0.0 if mode == "pytorch_half_pixel" and n_out == 1 else x


def _resize_task(types, attrs):
    x = TensorInput("x", types[0].shape, types[0].dtype)
    shape, scales = _resize_plan(types, attrs)
    f32 = dt.float32
    moved = [d for d in range(len(shape)) if shape[d] != x.shape[d]]
    ctm, near = attrs["coordinate_transformation_mode"], attrs["nearest_mode"]

    def coord(d, i):
        c = cast(i, f32)
        if ctm == "align_corners" and shape[d] > 1:     # as ONNX Runtime: x (n_in - 1) / (n_out - 1)
            return ir.binary("/", c * float(x.shape[d] - 1), float(shape[d] - 1))
        return _coordinate(ctm, c, x.shape[d], shape[d], scales[d])

    def clamp_index(v, n):
        return minimum(maximum(cast(v, dt.int32), 0), n - 1)

    def nearest(*i):
        idx = list(i)
        for d in moved:
            c = coord(d, i[d])
            r = {"floor": lambda: call("floor", c), "ceil": lambda: call("ceil", c),
                 "round_prefer_floor": lambda: call("ceil", c - 0.5), "round_prefer_ceil": lambda: call("floor", c + 0.5)}[near]()
            idx[d] = clamp_index(r, x.shape[d])
        return x[tuple(idx)]

    def linear(*i):
        lo, hi, frac = {}, {}, {}
        for d in moved:
            c = coord(d, i[d])
            c = select(cmp("<", c, 0.0), 0.0, select(cmp(">", c, float(x.shape[d] - 1)), float(x.shape[d] - 1), c))
            f = call("floor", c)
            lo[d], frac[d] = cast(f, dt.int32), c - f
            hi[d] = minimum(lo[d] + 1, x.shape[d] - 1)
        total = None
        for corner in range(1 << len(moved)):
            idx, w = list(i), None
            for bit, d in enumerate(moved):
                up = corner >> bit & 1
                idx[d] = hi[d] if up else lo[d]
                wd = frac[d] if up else 1.0 - frac[d]
                w = wd if w is None else w * wd
            term = cast(x[tuple(idx)], f32) * w if moved else cast(x[tuple(idx)], f32)
            total = term if total is None else total + term
        return total
    y = compute("y", shape, nearest if attrs["mode"] == "nearest" else linear, x.dtype)
    return Task("resize", (x,), (y,), ("y",), attrs=tuple(attrs.items()))


def _resize_ref(v, types, attrs):
    x = v[0]
    shape, scales = _resize_plan(types, attrs)
    ctm, near = attrs["coordinate_transformation_mode"], attrs["nearest_mode"]
    out = x
    for d in range(x.ndim):
        if shape[d] == x.shape[d]:
            continue
        c = _coordinate(ctm, np.arange(shape[d], dtype=np.float64), x.shape[d], shape[d], scales[d])
        n = x.shape[d]
        if attrs["mode"] == "nearest":
            r = {"floor": np.floor, "ceil": np.ceil, "round_prefer_floor": lambda c: np.ceil(c - 0.5),
                 "round_prefer_ceil": lambda c: np.floor(c + 0.5)}[near](c)
            out = np.take(out, np.clip(r.astype(np.int64), 0, n - 1), axis=d)
        else:
            c = np.clip(c, 0, n - 1)
            lo = np.floor(c).astype(np.int64)
            hi, f = np.minimum(lo + 1, n - 1), c - np.floor(c)
            f = f.reshape([-1 if e == d else 1 for e in range(x.ndim)])
            out = np.take(out, lo, axis=d) * (1 - f) + np.take(out, hi, axis=d) * f
    return [out]


def _resize_onnx(types, attrs):
    a = {k: attrs[k] for k in ("mode", "coordinate_transformation_mode", "nearest_mode")}
    if attrs["sizes"] is not None:
        return OnnxNode("Resize", a, ((1, None), (2, None), (3, i64(attrs["sizes"]))), opset=19)
    return OnnxNode("Resize", a, ((1, None), (2, np.array(attrs["scales"], np.float32))), opset=19)


_movement("resize", ("x",), RESIZE_ATTRS, lambda types, a: [TensorType(types[0].dtype, _resize_plan(types, a)[0])],
          _resize_ref, _resize_task,
          (Example(((1, 2, 3, 4),), {"scales": (1.0, 1.0, 2.0, 2.0)}),
           Example(((1, 1, 4, 4),), {"scales": (1.0, 1.0, 0.5, 0.5), "nearest_mode": "floor"}),
           Example(((1, 1, 3, 5),), {"sizes": (1, 1, 5, 3), "mode": "linear"}),
           Example(((2, 1, 4, 3),), {"scales": (1.0, 1.0, 2.0, 1.5), "mode": "linear",
                                     "coordinate_transformation_mode": "align_corners"}),
           Example(((1, 1, 3, 4),), {"sizes": (1, 1, 6, 8), "mode": "linear", "coordinate_transformation_mode": "asymmetric"}),
           Example(((1, 2, 5),), {"sizes": (1, 2, 8), "coordinate_transformation_mode": "pytorch_half_pixel",
                                  "nearest_mode": "round_prefer_ceil"})),
          "Resize", _resize_onnx, dtypes=FLOATS, doc="nearest / n-linear resampling (ONNX Resize)")
