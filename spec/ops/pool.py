"""2-D pooling on NCHW (ONNX MaxPool, AveragePool, GlobalMaxPool, GlobalAveragePool).

max_pool2d / avg_pool2d: kernel_shape, strides, pads (top, left, bottom, right), dilations,
ceil_mode (the output size rounds up, but a window never starts in the end padding: the ONNX
and PyTorch rule). max: the maximum over the window's positions inside x (padding never wins;
fmax, so NaN is ignored as in reduce_max). avg: the sum over the positions inside x divided by
the number of positions inside x, or, with count_include_pad=1, inside the padded input
(positions past the end padding that ceil_mode adds never count). global_*: over all of H, W;
output (N, C, 1, 1). f32 accumulation for f16/bf16, one rounding at the end. Anchors.
"""
from __future__ import annotations

import numpy as np

from .. import ir
from .compute import Task, TensorInput, cast, cmp, compute, compute_type, reduce, select
from .conv import WINDOW_ATTRS, check_window, padded_load
from .registry import FLOATS, REQUIRED, Attr, Example, OnnxNode, Operator, TensorType, get, register


def _dims(name):
    def dims(types, attrs):
        op = get(name)
        x = types[0]
        if len(x.shape) != 4:
            raise op.fail(f"input x must be 4-D (N, C, H, W), got {list(x.shape)}")
        k = attrs["kernel_shape"]
        if len(k) != 2 or min(k) < 1:
            raise op.fail(f"attribute 'kernel_shape' must be 2 positive ints, got {list(k)}")
        return x.shape[:2] + check_window(op, attrs, k, x.shape[2:], bool(attrs["ceil_mode"]))
    return dims


def _pool_task(name: str, kind: str):
    def task(types, attrs):
        x = TensorInput("x", types[0].shape, types[0].dtype)
        out = _dims(name)(types, attrs)
        (kh, kw), (sh, sw), (pt, pl), (dh, dw) = attrs["kernel_shape"], attrs["strides"], attrs["pads"][:2], attrs["dilations"]
        acc = compute_type(x.dtype)
        at = lambda n, c, i, j, p, q, fill: padded_load(x, n, c, i * sh + p * dh - pt, j * sw + q * dw - pl, fill)

        if kind == "max":
            body = lambda n, c, i, j: reduce((kh, kw), lambda p, q: cast(at(n, c, i, j, p, q, -np.inf)[1], acc), "max")
            return Task(name, (x,), (compute("y", out, body, x.dtype),), ("y",), attrs=tuple(attrs.items()))

        def counted(i, j, p, q):
            if not attrs["count_include_pad"]:
                return at(0, 0, i, j, p, q, 0.0)[0]
            h, w = i * sh + p * dh - pt, j * sw + q * dw - pl
            return cmp("&&", cmp("<", h, x.shape[2] + attrs["pads"][2]), cmp("<", w, x.shape[3] + attrs["pads"][3]))
        s = compute("s", out, lambda n, c, i, j: reduce((kh, kw), lambda p, q: cast(at(n, c, i, j, p, q, 0.0)[1], acc), "sum"))
        cnt = compute("count", out[2:], lambda i, j: reduce((kh, kw), lambda p, q: select(counted(i, j, p, q), 1.0, 0.0), "sum"))
        y = compute("y", out, lambda n, c, i, j: ir.binary("/", s[n, c, i, j], cnt[i, j]), x.dtype)
        return Task(name, (x,), (s, cnt, y), ("y",), attrs=tuple(attrs.items()))
    return task


def _windows(x, attrs, out, fill):
    """x padded with `fill` (and extended for ceil_mode), and its window view (N, C, OH, OW, KH, KW)."""
    (kh, kw), (sh, sw), (pt, pl, pb, pr), (dh, dw) = attrs["kernel_shape"], attrs["strides"], attrs["pads"], attrs["dilations"]
    oh, ow = out[2:]
    need_h, need_w = (oh - 1) * sh + dh * (kh - 1) + 1, (ow - 1) * sw + dw * (kw - 1) + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pt, max(pb, need_h - x.shape[2] - pt)), (pl, max(pr, need_w - x.shape[3] - pl))),
                constant_values=fill)
    return np.stack([np.stack([xp[:, :, p * dh: p * dh + sh * (oh - 1) + 1: sh, q * dw: q * dw + sw * (ow - 1) + 1: sw]
                               for q in range(kw)], -1) for p in range(kh)], -2)


def _pool_ref(name: str, kind: str):
    def ref(values, types, attrs):
        x = values[0]
        out = _dims(name)(types, attrs)
        if kind == "max":
            return [_windows(x, attrs, out, -np.inf).max(axis=(-2, -1))]
        total = _windows(x, attrs, out, 0.0).sum(axis=(-2, -1))
        inside = _windows(np.ones((1, 1) + x.shape[2:]), attrs, out, 0.0).sum(axis=(-2, -1))
        if attrs["count_include_pad"]:
            (pt, pl, pb, pr), (h, w) = attrs["pads"], x.shape[2:]
            padded = np.ones((1, 1, h + pt + pb, w + pl + pr))
            inside = _windows(padded, {**attrs, "pads": (0, 0, 0, 0)}, out, 0.0).sum(axis=(-2, -1))
        return [total / inside]
    return ref


def _pool_onnx(kind: str):
    def node(types, attrs):
        a = {"kernel_shape": list(attrs["kernel_shape"]), "strides": list(attrs["strides"]),
             "pads": list(attrs["pads"]), "dilations": list(attrs["dilations"]), "ceil_mode": attrs["ceil_mode"]}
        if kind == "avg":
            a["count_include_pad"] = attrs["count_include_pad"]
        return OnnxNode("MaxPool" if kind == "max" else "AveragePool", a, opset=19)
    return node


POOL_EXAMPLES = (Example(((1, 2, 7, 6),), {"kernel_shape": (3, 3)}),
                 Example(((2, 3, 5, 5),), {"kernel_shape": (2, 2), "strides": (2, 2), "ceil_mode": 1}),
                 Example(((1, 1, 6, 7),), {"kernel_shape": (3, 2), "strides": (2, 2), "pads": (1, 1, 1, 0)}),
                 Example(((1, 2, 5, 4),), {"kernel_shape": (3, 3), "strides": (2, 2), "pads": (1, 1, 1, 1),
                                           "ceil_mode": 1}),
                 Example(((1, 1, 1, 1),), {"kernel_shape": (1, 1)}))
AVG_EXAMPLES = POOL_EXAMPLES + tuple(Example(e.shapes, {**e.attrs, "count_include_pad": 1}) for e in POOL_EXAMPLES[2:4])
COMMON = (Attr("kernel_shape", REQUIRED, tuple, "(kh, kw)"), *WINDOW_ATTRS, Attr("ceil_mode", 0, int, "", (0, 1)))
for _name, _kind in (("max_pool2d", "max"), ("avg_pool2d", "avg")):
    register(Operator(_name, "pool", f"{_kind} over each window of H, W (NCHW)", ("x",),
                      COMMON + ((Attr("count_include_pad", 0, int, "1: padding counts in the divisor", (0, 1)),)
                                if _kind == "avg" else ()), FLOATS,
                      lambda types, a, n=_name: [TensorType(types[0].dtype, _dims(n)(types, a))],
                      _pool_ref(_name, _kind), _pool_task(_name, _kind), POOL_EXAMPLES if _kind == "max" else AVG_EXAMPLES,
                      "MaxPool" if _kind == "max" else "AveragePool", _pool_onnx(_kind)))


def _global_shape(name, types):
    x = types[0]
    if len(x.shape) < 3:
        raise get(name).fail(f"input x must be (N, C, spatial...), got {list(x.shape)}")
    return x.shape[:2] + (1,) * (len(x.shape) - 2)


def _global(name: str, kind: str, onnx: str):
    def task(types, attrs):
        x = TensorInput("x", types[0].shape, types[0].dtype)
        acc, sp = compute_type(x.dtype), x.shape[2:]
        r = lambda n, c: reduce(sp, lambda *s: cast(x[(n, c) + s], acc), "max" if kind == "max" else "sum")
        body = (lambda n, c, *_: r(n, c)) if kind == "max" else \
            (lambda n, c, *_: ir.binary("/", r(n, c), float(np.prod(sp))))
        return Task(name, (x,), (compute("y", _global_shape(name, types), body, x.dtype),), ("y",))
    ref = (lambda v, types, a: [v[0].max(axis=tuple(range(2, v[0].ndim)), keepdims=True)]) if kind == "max" else \
        (lambda v, types, a: [v[0].mean(axis=tuple(range(2, v[0].ndim)), keepdims=True)])
    register(Operator(name, "pool", f"{kind} over all spatial positions (N, C, ...) -> (N, C, 1, ...)", ("x",), (),
                      FLOATS, lambda types, a: [TensorType(types[0].dtype, _global_shape(name, types))], ref, task,
                      (Example(((2, 3, 5, 4),)), Example(((1, 1, 1, 1),)), Example(((1, 4, 7),))), onnx,
                      lambda types, a: OnnxNode(onnx, {}, opset=13)))


_global("global_max_pool", "max", "GlobalMaxPool")
_global("global_avg_pool", "avg", "GlobalAveragePool")
