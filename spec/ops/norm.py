"""Softmax, log-softmax and normalizations: layer norm, RMS norm, batch norm (inference), group norm.

Definitions (f32 throughout for f16/bf16, rounded once to the output dtype):
- softmax(x, axis): m = max over axis; e = exp(x - m); s = sum of e; y = e / s.
  log_softmax: y = (x - m) - log(s). (ONNX Softmax/LogSoftmax, opset 13.)
- layer_norm(x, scale, bias?, axis, epsilon): statistics over the dimensions from `axis` on:
  mean, then the variance as the mean of (x - mean)^2 (two passes: no cancellation);
  y = (x - mean) * rsqrt(var + epsilon) * scale + bias, scale/bias of shape x.shape[axis:]
  (ONNX LayerNormalization, opset 17).
- rms_norm(x, scale, axis, epsilon): y = x * rsqrt(mean(x^2) + epsilon) * scale
  (ONNX RMSNormalization, opset 23).
- batch_norm(x, scale, bias, mean, var, epsilon): inference with given statistics over dim 1:
  y = (x - mean) * rsqrt(var + epsilon) * scale + bias; injective (no reduction).
- group_norm(x, scale, bias, num_groups, epsilon): x of shape (N, C, ...) with C divisible by
  num_groups; layer-norm statistics per (n, group); scale/bias per channel (ONNX
  GroupNormalization, opset 21).
The reduced input x is not injective (the operators except batch_norm are anchors); scale and
bias are (loaded only in the final element-wise compute).
"""
from __future__ import annotations

import numpy as np

from .. import ir
from .compute import Task, TensorInput, call, cast, compute, compute_type, inverse_map, reduce
from .reduce import normalize_axes
from .registry import FLOATS, Attr, Example, OnnxNode, Operator, TensorType, get, random_array, register, uniform_sample

F = lambda x: cast(x, compute_type(x.dtype))


def _axis(op, types, attrs) -> int:
    return normalize_axes(op, (attrs["axis"],), len(types[0].shape))[0]


# ---------------------------------------------------------------- softmax

def _softmax_task(name: str, log: bool):
    def task(types, attrs):
        x = TensorInput("x", types[0].shape, types[0].dtype)
        a, n = _axis(get(name), types, attrs), len(x.shape)
        stat = tuple(1 if d == a else s for d, s in enumerate(x.shape))
        along = lambda i, r: tuple(r if d == a else i[d] for d in range(n))
        pin = lambda i: tuple(0 if d == a else i[d] for d in range(n))
        m = compute("m", stat, lambda *i: reduce((x.shape[a],), lambda r: F(x[along(i, r)]), "max"))
        e = compute("e", x.shape, lambda *i: call("exp", F(x[i]) - m[pin(i)]))
        s = compute("s", stat, lambda *i: reduce((x.shape[a],), lambda r: e[along(i, r)], "sum"))
        if log:
            y = compute("y", x.shape, lambda *i: F(x[i]) - m[pin(i)] - call("log", s[pin(i)]), x.dtype)
        else:
            y = compute("y", x.shape, lambda *i: ir.binary("/", e[i], s[pin(i)]), x.dtype)
        return Task(name, (x,), (m, e, s, y), ("y",), attrs=tuple(attrs.items()))
    return task


def _softmax_ref(log: bool):
    def ref(values, types, attrs):
        x, a = values[0], attrs["axis"]
        z = x - np.max(x, axis=a, keepdims=True)
        lse = np.log(np.sum(np.exp(z), axis=a, keepdims=True))
        return [z - lse if log else np.exp(z - lse)]
    return ref


def _softmax_infer(name: str):
    def infer(types, attrs):
        _axis(get(name), types, attrs)
        return [types[0]]
    return infer


SOFTMAX_EXAMPLES = (Example(((4, 10),)), Example(((3, 1, 7),), {"axis": 1}), Example(((1,),)),
                    Example(((2, 5, 3),), {"axis": 0}), Example(((2, 33),), {"axis": -1}))
for _name, _onnx, _log in (("softmax", "Softmax", False), ("log_softmax", "LogSoftmax", True)):
    register(Operator(_name, "norm", "exp(x - max) / sum(exp(x - max)) along axis" if not _log else
                      "(x - max) - log(sum(exp(x - max))) along axis", ("x",), (Attr("axis", -1, int),), FLOATS,
                      _softmax_infer(_name), _softmax_ref(_log),
                      _softmax_task(_name, _log), SOFTMAX_EXAMPLES, _onnx,
                      lambda types, a, o=_onnx: OnnxNode(o, {"axis": a["axis"]}, opset=13)))


# ---------------------------------------------------------------- layer / RMS / group norm

def _need_shape(op: Operator, name: str, t: TensorType, shape, why: str):
    if tuple(t.shape) != tuple(shape):
        raise op.fail(f"input {name} must have shape {list(shape)} ({why}), got {list(t.shape)}")


def _normalized(x: TensorInput, stat_shape, index, extents, eps, mean: bool):
    """mean (if asked) and rsqrt(var + eps) computes; index(i, r) is x's index for stats index
    i and reduction variables r; var is about the mean, or the mean square when mean=False."""
    count = float(np.prod(extents))
    out = []
    if mean:
        mu = compute("mean", stat_shape, lambda *i: ir.binary(
            "/", reduce(extents, lambda *r: F(x[index(i, r)]), "sum"), count))
        out.append(mu)
        dev = lambda i, r: F(x[index(i, r)]) - mu[i]
    else:
        dev = lambda i, r: F(x[index(i, r)])
    var = lambda *i: ir.binary("/", reduce(extents, lambda *r: dev(i, r) * dev(i, r), "sum"), count)
    out.append(compute("rstd", stat_shape, lambda *i: call("rsqrt", var(*i) + float(eps))))
    return out


def _layer_infer(name, rms: bool):
    def infer(types, attrs):
        op = get(name)
        a = _axis(op, types, attrs)
        names = op.input_names(len(types))
        op.same_dtype(types)
        for nm, t in zip(names[1:], types[1:]):
            _need_shape(op, nm, t, types[0].shape[a:], f"x's dimensions from axis {a}")
        return [types[0]]
    return infer


def _layer_task(name, rms: bool):
    def task(types, attrs):
        x = TensorInput("x", types[0].shape, types[0].dtype)
        params = [TensorInput(nm, t.shape, t.dtype) for nm, t in zip(get(name).input_names(len(types))[1:], types[1:])]
        a, n = _axis(get(name), types, attrs), len(x.shape)
        stat = x.shape[:a] + (1,) * (n - a)
        stats = _normalized(x, stat, lambda i, r: tuple(i[:a]) + tuple(r), x.shape[a:], attrs["epsilon"], not rms)
        pin = lambda i: tuple(i[:a]) + (0,) * (n - a)

        def body(*i):
            v = F(x[i]) if rms else F(x[i]) - stats[0][pin(i)]
            v = v * stats[-1][pin(i)] * F(params[0][i[a:]])
            return v + F(params[1][i[a:]]) if len(params) > 1 else v
        y = compute("y", x.shape, body, x.dtype)
        return Task(name, (x, *params), (*stats, y), ("y",), attrs=tuple(attrs.items()))
    return task


def _layer_ref(rms: bool):
    def ref(values, types, attrs):
        x, params = values[0], values[1:]
        axes = tuple(range(attrs["axis"] % x.ndim, x.ndim))
        if rms:
            y = x / np.sqrt(np.mean(x * x, axis=axes, keepdims=True) + attrs["epsilon"]) * params[0]
        else:
            mu = np.mean(x, axis=axes, keepdims=True)
            y = (x - mu) / np.sqrt(np.var(x, axis=axes, keepdims=True) + attrs["epsilon"]) * params[0]
        return [y + params[1] if len(params) > 1 else y]
    return ref


LAYER_EXAMPLES = (Example(((4, 10), (10,), (10,))), Example(((3, 1, 7), (1, 7), (1, 7)), {"axis": 1}),
                  Example(((2, 5, 3), (3,)), {"epsilon": 1e-3}), Example(((1, 33), (33,), (33,))))
RMS_EXAMPLES = (Example(((4, 10), (10,))), Example(((3, 1, 7), (1, 7)), {"axis": 1}),
                Example(((2, 5, 3), (3,)), {"epsilon": 1e-3}), Example(((1, 33), (33,))))
NORM_ATTRS = (Attr("axis", -1, int, "first normalized dimension"), Attr("epsilon", 1e-5, (int, float)))

register(Operator("layer_norm", "norm", "(x - mean) / sqrt(var + epsilon) * scale + bias over dims axis..",
                  ("x", "scale", "bias?"), NORM_ATTRS, FLOATS, _layer_infer("layer_norm", False), _layer_ref(False),
                  _layer_task("layer_norm", False), LAYER_EXAMPLES, "LayerNormalization",
                  lambda types, a: OnnxNode("LayerNormalization", dict(a), opset=17)))
register(Operator("rms_norm", "norm", "x / sqrt(mean(x^2) + epsilon) * scale over dims axis..",
                  ("x", "scale"), NORM_ATTRS, FLOATS, _layer_infer("rms_norm", True), _layer_ref(True),
                  _layer_task("rms_norm", True), RMS_EXAMPLES, "RMSNormalization",
                  lambda types, a: OnnxNode("RMSNormalization", dict(a), opset=23)))


def _channels(op: Operator, types) -> int:
    if len(types[0].shape) < 2:
        raise op.fail(f"input x must have shape (N, C, ...), got {list(types[0].shape)}")
    return types[0].shape[1]


def _group_infer(types, attrs):
    op = get("group_norm")
    c, g = _channels(op, types), attrs["num_groups"]
    if g < 1 or c % g:
        raise op.fail(f"num_groups={g} must divide the channel dimension x[:, {c}]")
    op.same_dtype(types)
    for nm, t in zip(op.inputs[1:], types[1:]):
        _need_shape(op, nm, t, (c,), "one per channel")
    return [types[0]]


def _group_task(types, attrs):
    x, scale, bias = (TensorInput(nm, t.shape, t.dtype) for nm, t in zip(("x", "scale", "bias"), types))
    g, (n, c, *sp) = attrs["num_groups"], x.shape
    per = c // g
    stats = _normalized(x, (n, g), lambda i, r: (i[0], i[1] * per + r[0], *r[1:]), (per, *sp), attrs["epsilon"], True)
    y = compute("y", x.shape, lambda *i: (F(x[i]) - stats[0][i[0], i[1] / per]) * stats[1][i[0], i[1] / per]
                * F(scale[i[1]]) + F(bias[i[1]]), x.dtype)
    return Task("group_norm", (x, scale, bias), (*stats, y), ("y",), attrs=tuple(attrs.items()))


def _group_ref(values, types, attrs):
    x, scale, bias = values
    n, c = x.shape[:2]
    xg = x.reshape(n, attrs["num_groups"], -1)
    y = (xg - xg.mean(-1, keepdims=True)) / np.sqrt(xg.var(-1, keepdims=True) + attrs["epsilon"])
    ch = (1, c) + (1,) * (x.ndim - 2)
    return [y.reshape(x.shape) * scale.reshape(ch) + bias.reshape(ch)]


register(Operator("group_norm", "norm", "layer norm per (sample, channel group), scale/bias per channel",
                  ("x", "scale", "bias"), (Attr("num_groups", 1, int), Attr("epsilon", 1e-5, (int, float))), FLOATS,
                  _group_infer, _group_ref, _group_task,
                  (Example(((2, 6, 5), (6,), (6,)), {"num_groups": 3}), Example(((1, 4, 3, 3), (4,), (4,)), {"num_groups": 2}),
                   Example(((3, 5), (5,), (5,)), {"num_groups": 5}), Example(((1, 1, 7), (1,), (1,)))),
                  "GroupNormalization", lambda types, a: OnnxNode("GroupNormalization", dict(a), opset=21)))


# ---------------------------------------------------------------- batch norm (inference)

def _batch_infer(types, attrs):
    op = get("batch_norm")
    c = _channels(op, types)
    op.same_dtype(types)
    for nm, t in zip(op.inputs[1:], types[1:]):
        _need_shape(op, nm, t, (c,), "one per channel")
    return [types[0]]


def _batch_task(types, attrs):
    x, scale, bias, mean, var = (TensorInput(nm, t.shape, t.dtype) for nm, t in zip(get("batch_norm").inputs, types))
    y = compute("y", x.shape, lambda *i: (F(x[i]) - F(mean[i[1]])) * call("rsqrt", F(var[i[1]]) + float(attrs["epsilon"]))
                * F(scale[i[1]]) + F(bias[i[1]]), x.dtype)
    return Task("batch_norm", (x, scale, bias, mean, var), (y,), ("y",),
                (("x", inverse_map(x, lambda *j: j)),), tuple(attrs.items()))


def _batch_ref(values, types, attrs):
    x, scale, bias, mean, var = values
    ch = lambda v: v.reshape((1, -1) + (1,) * (x.ndim - 2))
    return [(x - ch(mean)) / np.sqrt(ch(var) + attrs["epsilon"]) * ch(scale) + ch(bias)]


def _batch_sample(rng, types, attrs):
    x, scale, bias, mean = (random_array(rng, t) for t in types[:4])
    return [x, scale, bias, mean, uniform_sample(0.2, 2.0)(rng, types[4:], attrs)[0]]


register(Operator("batch_norm", "norm", "(x - mean) / sqrt(var + epsilon) * scale + bias per channel (dim 1)",
                  ("x", "scale", "bias", "mean", "var"), (Attr("epsilon", 1e-5, (int, float)),), FLOATS,
                  _batch_infer, _batch_ref, _batch_task,
                  (Example(((2, 3, 4, 5), (3,), (3,), (3,), (3,))), Example(((1, 5), (5,), (5,), (5,), (5,))),
                   Example(((3, 1, 7), (1,), (1,), (1,), (1,)))),
                  "BatchNormalization", lambda types, a: OnnxNode("BatchNormalization", dict(a), opset=15),
                  _batch_sample))
