"""2-D convolution (ONNX Conv on NCHW): strides, pads, dilations, groups (depthwise when
group == channels), optional bias.

x: (N, C, H, W); w: (O, C / group, KH, KW); bias: (O,). pads are ONNX's
(top, left, bottom, right). Output H' = (H + top + bottom - dilation (KH - 1) - 1) // stride + 1.
Definition: y[n, o, i, j] = Reduce(sum over (c, p, q), x_padded[n, g C/group + c,
i stride + p dilation - top, j stride + q dilation - left] * w[o, c, p, q]) (+ bias[o]), with
g = o // (O / group) and x_padded = 0 outside x (a select, so nothing is read outside).
f32 accumulation for f16/bf16, one rounding at the end. x and w are not injective (anchor).
"""
from __future__ import annotations

import numpy as np

from .compute import Task, TensorInput, cast, cmp, compute, compute_type, reduce, select
from .registry import FLOATS, Attr, Example, OnnxNode, Operator, TensorType, get, register


WINDOW_ATTRS = (Attr("strides", (1, 1), tuple, "(sh, sw)"), Attr("pads", (0, 0, 0, 0), tuple, "(top, left, bottom, right)"),
                Attr("dilations", (1, 1), tuple, "(dh, dw)"))


def check_window(op: Operator, attrs, kernel, size, ceil_mode: bool = False) -> tuple[int, int]:
    """Output spatial size of a 2-D window op; OpError naming the bad attribute or dimension."""
    for name, n in (("strides", 2), ("pads", 4), ("dilations", 2)):
        v = attrs[name]
        if len(v) != n or not all(isinstance(e, int) for e in v):
            raise op.fail(f"attribute {name!r} must be {n} ints, got {list(v)}")
        if min(v) < (0 if name == "pads" else 1):
            raise op.fail(f"attribute {name!r} must be {'non-negative' if name == 'pads' else 'positive'}, got {list(v)}")
    out = []
    for d, axis in enumerate("HW"):
        pad = attrs["pads"][d] + attrs["pads"][d + 2]
        span = attrs["dilations"][d] * (kernel[d] - 1) + 1
        if span > size[d] + pad:
            raise op.fail(f"window {span} (kernel {kernel[d]}, dilation {attrs['dilations'][d]}) is larger than "
                          f"the padded input {axis}: {size[d]} + {pad}")
        s = attrs["strides"][d]
        n = (size[d] + pad - span + (s - 1 if ceil_mode else 0)) // s + 1
        if ceil_mode and (n - 1) * s >= size[d] + attrs["pads"][d]:
            n -= 1                  # the last window would start in the end padding
        out.append(n)
    return tuple(out)


def padded_load(x: TensorInput, n, c, h, w, fill):
    """x[n, c, h, w] where 0 <= h < H and 0 <= w < W, else fill (never read outside)."""
    inside = cmp("&&", cmp("&&", cmp("<=", 0, h), cmp("<", h, x.shape[2])),
                 cmp("&&", cmp("<=", 0, w), cmp("<", w, x.shape[3])))
    return inside, select(inside, x[n, c, h, w], fill)


def _conv_dims(types, attrs):
    op = get("conv2d")
    x, w = types[:2]
    for nm, t in zip("xw", (x, w)):
        if len(t.shape) != 4:
            raise op.fail(f"input {nm} must be 4-D ({'N, C, H, W' if nm == 'x' else 'O, C/group, KH, KW'}), "
                          f"got {list(t.shape)}")
    op.same_dtype(types)
    g = attrs["group"]
    (n, c, h, wd), (o, cg, kh, kw) = x.shape, w.shape
    if g < 1 or c % g or o % g:
        raise op.fail(f"group {g} must divide the input channels x[:, {c}] and the output channels w[{o}, ...]")
    if cg != c // g:
        raise op.fail(f"input w has {cg} channels per group (w[:, {cg}]) but x has {c} / group {g} = {c // g}")
    if len(types) > 2 and types[2].shape != (o,):
        raise op.fail(f"input bias must have shape [{o}] (one per output channel), got {list(types[2].shape)}")
    return (n, o) + check_window(op, attrs, (kh, kw), (h, wd))


def _conv_task(types, attrs):
    x, w, *bias = (TensorInput(nm, t.shape, t.dtype) for nm, t in zip(("x", "w", "bias"), types))
    out = _conv_dims(types, attrs)
    (sh, sw), (pt, pl), (dh, dw) = attrs["strides"], attrs["pads"][:2], attrs["dilations"]
    o_per_g, (_, cg, kh, kw) = w.shape[0] // attrs["group"], w.shape
    acc = compute_type(x.dtype)

    def body(n, o, i, j):
        def term(c, p, q):
            _, v = padded_load(x, n, o / o_per_g * cg + c, i * sh + p * dh - pt, j * sw + q * dw - pl, 0.0)
            return cast(v, acc) * cast(w[o, c, p, q], acc)
        y = reduce((cg, kh, kw), term, "sum")
        return y + cast(bias[0][o], acc) if bias else y
    return Task("conv2d", (x, w, *bias), (compute("y", out, body, x.dtype),), ("y",), attrs=tuple(attrs.items()))


def _conv_ref(values, types, attrs):
    x, w, *bias = values
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    g, (sh, sw), (pt, pl, pb, pr), (dh, dw) = attrs["group"], attrs["strides"], attrs["pads"], attrs["dilations"]
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    _, _, oh, ow = _conv_dims(types, attrs)
    y = np.zeros((n, o, oh, ow))
    for p in range(kh):
        for q in range(kw):
            patch = xp[:, :, p * dh: p * dh + sh * (oh - 1) + 1: sh, q * dw: q * dw + sw * (ow - 1) + 1: sw]
            pg = patch.reshape(n, g, cg, oh, ow)
            wg = w[:, :, p, q].reshape(g, o // g, cg)
            y += np.einsum("ngchw,goc->ngohw", pg, wg).reshape(n, o, oh, ow)
    return [y + bias[0].reshape(1, o, 1, 1) if bias else y]


def _conv_onnx(types, attrs):
    return OnnxNode("Conv", {"strides": list(attrs["strides"]), "pads": list(attrs["pads"]),
                             "dilations": list(attrs["dilations"]), "group": attrs["group"]}, opset=11)


register(Operator("conv2d", "conv", "2-D convolution, NCHW, (O, C/group, KH, KW) weights", ("x", "w", "bias?"),
                  WINDOW_ATTRS + (Attr("group", 1, int, "channel groups (C: depthwise)"),), FLOATS,
                  lambda types, a: [TensorType(types[0].dtype, _conv_dims(types, a))], _conv_ref, _conv_task,
                  (Example(((1, 3, 7, 6), (4, 3, 3, 3), (4,))),
                   Example(((2, 4, 5, 5), (4, 2, 3, 2)), {"strides": (2, 1), "pads": (1, 0, 1, 1), "group": 2}),
                   Example(((1, 3, 9, 8), (3, 1, 3, 3), (3,)), {"group": 3, "pads": (1, 1, 1, 1), "dilations": (2, 1)}),
                   Example(((1, 1, 1, 1), (2, 1, 1, 1))),
                   Example(((1, 5, 6, 7), (2, 5, 1, 1)), {"strides": (3, 2)})),
                  "Conv", _conv_onnx))
