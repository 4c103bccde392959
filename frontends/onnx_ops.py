"""The ONNX operator table: one converter per ONNX op type onto registry operators.

A converter emits registry nodes for one ONNX node (most are one node with renamed
attributes; some are short decompositions such as ReduceL2 = sqrt(sum(x * x)) or PRelu =
where(x < 0, x * slope, x); Identity and Dropout are aliases; Constant, Shape, Size, Range and
ConstantOfShape become constants). An ONNX type is supported when the registry has every
operator its converter emits (`supported`), so the table grows as operator families land.
An attribute a converter does not handle must be absent or at the value it assumes, else the
node is reported, never silently approximated.
"""
from __future__ import annotations

import math

import numpy as np

from taskmap.spec import dtypes as dt
from taskmap.spec.ops import OPERATORS
from taskmap.spec.ops.registry import to_storage

from .compose import NEEDS as COMPOSE_NEEDS
from .compose import Composer
from .onnx_einsum import lower as lower_einsum
from .onnx_import import Converter, ConvertError, Importer, OnnxNode, array_of, dtype_of

CONVERTERS: dict[str, Converter] = {}
NEEDS: dict[str, tuple[str, ...]] = {}


def converts(*onnx_types: str, needs: tuple[str, ...] = ()):
    def register(fn: Converter) -> Converter:
        for t in onnx_types:
            CONVERTERS[t] = fn
            NEEDS[t] = needs
        return fn
    return register


def supported(op_type: str) -> bool:
    return op_type in CONVERTERS and all(n in OPERATORS for n in NEEDS[op_type])


def supported_ops() -> list[str]:
    """The ONNX op types the frontend maps with the operators registered now."""
    return sorted(t for t in CONVERTERS if supported(t))


# ---------------------------------------------------------------- helpers

def outputs(imp: Importer, node: OnnxNode, n: int = 1) -> list[str]:
    """The first n outputs; a later one that something reads cannot be produced."""
    for extra in node.outputs[n:]:
        if extra and extra in imp.used:
            raise ConvertError(f"output {extra!r} (optional output {node.outputs.index(extra)}) is not supported")
    return node.outputs[:n]


def data(node: OnnxNode) -> list[str]:
    """The node's inputs without trailing omitted ones."""
    ins = list(node.inputs)
    while ins and not ins[-1]:
        ins.pop()
    return ins


def typed(imp: Importer, name: str):
    t = imp.type_of(name)
    if t is None:
        raise ConvertError(f"the type of {name!r} is unknown after ONNX shape inference")
    return t


def static_shape(imp: Importer, name: str) -> tuple[int, ...]:
    t = typed(imp, name)
    if not all(isinstance(d, int) for d in t.shape):
        raise ConvertError(f"needs the static shape of {name!r}, which is {list(t.shape)}")
    return t.shape


def scalar(imp: Importer, value, like: str) -> str:
    """A constant scalar in the dtype of value `like`."""
    return imp.add_constant(to_storage(np.array(value, np.float64), typed(imp, like).dtype))


def ints(a) -> tuple[int, ...]:
    return tuple(int(v) for v in np.asarray(a).reshape(-1))


def direct(onnx_type: str, op: str, attrs: tuple[str, ...] = (), rename: dict | None = None,
           ignore: tuple[str, ...] = (), **required):
    rename = rename or {}

    @converts(onnx_type, needs=(op,))
    def convert(imp: Importer, node: OnnxNode):
        node.only(*attrs, *ignore, **required)
        a = {rename.get(k, k): node.attrs[k] for k in attrs if k in node.attrs}
        imp.emit(node, op, data(node), a, outputs(imp, node))


# ---------------------------------------------------------------- element-wise

for _onnx, _op in (("Relu", "relu"), ("Sigmoid", "sigmoid"), ("Tanh", "tanh"), ("Exp", "exp"), ("Log", "log"),
                   ("Sqrt", "sqrt"), ("Abs", "abs"), ("Neg", "neg"), ("Erf", "erf"), ("Reciprocal", "reciprocal"),
                   ("Floor", "floor"), ("Ceil", "ceil"), ("Round", "round"), ("Sign", "sign"),
                   ("Softplus", "softplus"), ("Mish", "mish"), ("HardSwish", "hardswish"), ("Sin", "sin"),
                   ("Cos", "cos"), ("Not", "logical_not"), ("Add", "add"), ("Sub", "sub"), ("Mul", "mul"),
                   ("Div", "div"), ("Equal", "equal"), ("Less", "less"), ("LessOrEqual", "less_equal"),
                   ("Greater", "greater"), ("GreaterOrEqual", "greater_equal"), ("And", "logical_and"),
                   ("Or", "logical_or"), ("Xor", "logical_xor"), ("Where", "where"), ("MatMul", "matmul"),
                   ("GlobalAveragePool", "global_avg_pool"), ("GlobalMaxPool", "global_max_pool")):
    direct(_onnx, _op)
direct("LeakyRelu", "leaky_relu", ("alpha",))
direct("HardSigmoid", "hardsigmoid", ("alpha", "beta"))
direct("Elu", "elu", ("alpha",))
direct("Selu", "selu", ("alpha", "gamma"))
direct("Gelu", "gelu", ("approximate",))
direct("Mod", "mod", ("fmod",))


@converts("Pow", needs=("pow", "cast"))
def _pow(imp, node):
    a, b = node.inputs
    if typed(imp, b).dtype != typed(imp, a).dtype:
        (b,) = imp.emit(node, "cast", [b], {"to": typed(imp, a).dtype})
    imp.emit(node, "pow", [a, b], outputs=node.outputs)


@converts("Cast", needs=("cast",))
def _cast(imp, node):
    node.only("to", "saturate")
    imp.emit(node, "cast", node.inputs, {"to": dtype_of(node.attrs["to"])}, node.outputs)


@converts("CastLike", needs=("cast",))
def _cast_like(imp, node):
    node.only("saturate")
    imp.emit(node, "cast", node.inputs[:1], {"to": typed(imp, node.inputs[1]).dtype}, node.outputs)


@converts("Clip", needs=("clip",))
def _clip(imp, node):
    node.only()
    t = typed(imp, node.inputs[0]).dtype
    a = {}
    for k, key in ((1, "min"), (2, "max")):
        if node.input(k):
            v = imp.constant(node.input(k), key).reshape(-1)[0]
            a[key] = float(dt.from_bf16_bits(np.array(v)) if t is dt.bfloat16 else v) if t.is_float else int(v)
    imp.emit(node, "clip", node.inputs[:1], a, node.outputs)


def _chain(imp, node, op: str, names: list[str], out: list[str] | None):
    acc = names[0]
    for k, b in enumerate(names[1:], 2):
        (acc,) = imp.emit(node, op, [acc, b], outputs=out if k == len(names) else None)
    return acc


@converts("Max", "Min", "Sum", needs=("max", "min", "add"))
def _variadic(imp, node):
    if len(node.inputs) == 1:
        return imp.alias(node.outputs[0], node.inputs[0])
    _chain(imp, node, {"Max": "max", "Min": "min", "Sum": "add"}[node.op_type], node.inputs, node.outputs)


@converts("Mean", needs=("add", "div"))
def _mean(imp, node):
    total = _chain(imp, node, "add", node.inputs, None) if len(node.inputs) > 1 else node.inputs[0]
    imp.emit(node, "div", [total, scalar(imp, len(node.inputs), node.inputs[0])], outputs=node.outputs)


@converts("PRelu", needs=("less", "mul", "where"))
def _prelu(imp, node):
    x, slope = node.inputs
    (neg,) = imp.emit(node, "less", [x, scalar(imp, 0, x)])
    (scaled,) = imp.emit(node, "mul", [x, slope])
    imp.emit(node, "where", [neg, scaled, x], outputs=node.outputs)


@converts("Softsign", needs=("abs", "add", "div"))
def _softsign(imp, node):
    (x,) = node.inputs
    (a,) = imp.emit(node, "abs", [x])
    (d,) = imp.emit(node, "add", [a, scalar(imp, 1, x)])
    imp.emit(node, "div", [x, d], outputs=node.outputs)


@converts("ThresholdedRelu", needs=("greater", "where"))
def _thresholded_relu(imp, node):
    (x,) = node.inputs
    (big,) = imp.emit(node, "greater", [x, scalar(imp, node.attrs["alpha"], x)])
    imp.emit(node, "where", [big, x, scalar(imp, 0, x)], outputs=node.outputs)


@converts("Celu", needs=("div", "elu", "mul"))
def _celu(imp, node):
    (x,) = node.inputs
    alpha = scalar(imp, node.attrs["alpha"], x)
    (z,) = imp.emit(node, "div", [x, alpha])
    (e,) = imp.emit(node, "elu", [z], {"alpha": 1.0})
    imp.emit(node, "mul", [e, alpha], outputs=node.outputs)


def _composer(imp: Importer, node: OnnxNode, like: str) -> Composer:
    """frontends.compose's compositions emitting into this node, scalars in the dtype of `like`."""
    return Composer(lambda name, inputs: imp.emit(node, name, inputs)[0], lambda v: scalar(imp, v, like),
                    typed(imp, like).dtype)


INVERSE_TYPES = {"Atan": "atan", "Asin": "asin", "Acos": "acos", "Asinh": "asinh", "Acosh": "acosh", "Atanh": "atanh"}
UNARY_COMPOSED = {"Tan": "tan", "Sinh": "sinh", "Cosh": "cosh", "IsNaN": "isnan"}


@converts(*INVERSE_TYPES, *UNARY_COMPOSED, needs=COMPOSE_NEEDS)
def _composed(imp, node):
    """The inverse trigonometric and hyperbolic functions, tan, sinh, cosh and IsNaN (compose.Composer)."""
    (x,) = node.inputs
    e = _composer(imp, node, x)
    kind = node.op_type
    y = e.inverse(INVERSE_TYPES[kind], x) if kind in INVERSE_TYPES else getattr(e, UNARY_COMPOSED[kind])(x)
    imp.alias(node.outputs[0], y)


@converts("DepthToSpace", "SpaceToDepth", needs=("reshape", "transpose"))
def _depth_space(imp, node):
    """DepthToSpace and SpaceToDepth (modes DCR and CRD) as ONNX defines them: reshape, transpose,
    reshape."""
    node.only("blocksize", "mode")
    (x,) = node.inputs
    b, (n, c, h, w) = node.attrs["blocksize"], static_shape(imp, x)
    mode = node.attrs.get("mode", "DCR")            # SpaceToDepth has none (OnnxNode decodes strings)
    if node.op_type == "SpaceToDepth":
        perm = (0, 3, 5, 1, 2, 4) if mode == "DCR" else (0, 1, 3, 5, 2, 4)
        steps = ((n, c, h // b, b, w // b, b), perm, (n, c * b * b, h // b, w // b))
    elif mode == "DCR":
        steps = ((n, b, b, c // (b * b), h, w), (0, 3, 4, 1, 5, 2), (n, c // (b * b), h * b, w * b))
    else:
        steps = ((n, c // (b * b), b, b, h, w), (0, 1, 4, 2, 5, 3), (n, c // (b * b), h * b, w * b))
    split, perm, shape = steps
    (y,) = imp.emit(node, "reshape", [x], {"shape": split})
    (y,) = imp.emit(node, "transpose", [y], {"perm": perm})
    imp.emit(node, "reshape", [y], {"shape": shape}, outputs=node.outputs)


@converts("OneHot", needs=("cast", "less", "add", "where", "unsqueeze", "equal"))
def _one_hot(imp, node):
    """values[1] where the (wrapped) index equals the position along the new axis, else
    values[0]; depth and values constant. An index outside [-depth, depth) matches nothing."""
    node.only("axis")
    indices = node.inputs[0]
    (depth,) = ints(imp.constant(node.inputs[1], "depth"))
    values = imp.constant(node.inputs[2], "values").reshape(-1)
    rank = len(static_shape(imp, indices)) + 1
    axis = node.attrs.get("axis", -1) % rank
    i = indices
    if typed(imp, i).dtype is not dt.int64:
        (i,) = imp.emit(node, "cast", [i], {"to": dt.int64})       # float indices truncate, as ONNX's
    zero, size = (imp.add_constant(np.array(v, np.int64)) for v in (0, depth))
    (negative,) = imp.emit(node, "less", [i, zero])
    (wrapped,) = imp.emit(node, "where", [negative, imp.emit(node, "add", [i, size])[0], i])
    (wrapped,) = imp.emit(node, "unsqueeze", [wrapped], {"axes": (axis,)})
    positions = imp.add_constant(np.arange(depth, dtype=np.int64).reshape((depth,) + (1,) * (rank - 1 - axis)))
    (hit,) = imp.emit(node, "equal", [wrapped, positions])
    off, on = (imp.add_constant(np.array(v).astype(values.dtype)) for v in values[:2])
    imp.emit(node, "where", [hit, on, off], outputs=node.outputs)


@converts("EyeLike")
def _eye_like(imp, node):
    """A constant: the output depends on the input's (static) shape and dtype alone."""
    node.only("dtype", "k")
    (x,) = node.inputs
    rows, cols = static_shape(imp, x)
    t = dtype_of(node.attrs["dtype"]) if "dtype" in node.attrs else typed(imp, x).dtype
    imp.alias(node.outputs[0], imp.add_constant(to_storage(np.eye(rows, cols, node.attrs.get("k", 0)), t)))


@converts("LpNormalization", needs=("abs", "mul", "sum", "sqrt", "div", "equal", "where"))
def _lp_normalization(imp, node):
    """x / ||x||_p along axis (p 1 or 2), as ONNX's reference computes it (0 where the norm is 0)."""
    node.only("axis", "p")
    (x,) = node.inputs
    p, axis = node.attrs.get("p", 2), node.attrs.get("axis", -1)
    if p not in (1, 2):
        raise ConvertError(f"p={p}: LpNormalization takes p 1 or 2")
    (terms,) = imp.emit(node, "abs", [x]) if p == 1 else imp.emit(node, "mul", [x, x])
    (norm,) = imp.emit(node, "sum", [terms], {"axes": (axis,), "keepdims": True})
    if p == 2:
        (norm,) = imp.emit(node, "sqrt", [norm])
    (zero,) = imp.emit(node, "equal", [norm, scalar(imp, 0, x)])
    (q,) = imp.emit(node, "div", [x, norm])
    imp.emit(node, "where", [zero, scalar(imp, 0, x), q], outputs=node.outputs)


@converts("MeanVarianceNormalization", needs=("mean", "sub", "mul", "sqrt", "div"))
def _mean_variance_normalization(imp, node):
    """(x - mean) / sqrt(mean((x - mean)^2)) over `axes` (default 0, 2, 3)."""
    node.only("axes")
    (x,) = node.inputs
    axes = tuple(node.attrs.get("axes", (0, 2, 3)))
    (m,) = imp.emit(node, "mean", [x], {"axes": axes, "keepdims": True})
    (d,) = imp.emit(node, "sub", [x, m])
    (v,) = imp.emit(node, "mean", [imp.emit(node, "mul", [d, d])[0]], {"axes": axes, "keepdims": True})
    imp.emit(node, "div", [d, imp.emit(node, "sqrt", [v])[0]], outputs=node.outputs)


@converts("IsInf", needs=COMPOSE_NEEDS)
def _isinf(imp, node):
    node.only("detect_negative", "detect_positive")
    (x,) = node.inputs
    y = _composer(imp, node, x).isinf(x, bool(node.attrs.get("detect_positive", 1)),
                                      bool(node.attrs.get("detect_negative", 1)))
    imp.alias(node.outputs[0], y)


@converts("Shrink", needs=("less", "greater", "add", "sub", "where"))
def _shrink(imp, node):
    """x + bias below -lambd, x - bias above lambd, 0 between."""
    node.only("bias", "lambd")
    (x,) = node.inputs
    bias, lambd = node.attrs.get("bias", 0.0), node.attrs.get("lambd", 0.5)
    e = _composer(imp, node, x)
    low, high = e.op("less", x, e.c(-lambd)), e.op("greater", x, e.c(lambd))
    outer = e.op("where", high, e.op("sub", x, e.c(bias)), e.c(0))
    imp.emit(node, "where", [low, e.op("add", x, e.c(bias)), outer], outputs=node.outputs)


@converts("Swish", needs=("mul", "sigmoid"))
def _swish(imp, node):
    node.only("alpha")
    (x,) = node.inputs
    alpha = node.attrs.get("alpha", 1.0)
    (z,) = imp.emit(node, "mul", [x, scalar(imp, alpha, x)]) if alpha != 1.0 else (x,)
    (s,) = imp.emit(node, "sigmoid", [z])
    imp.emit(node, "mul", [x, s], outputs=node.outputs)


@converts("Identity", "Dropout")
def _identity(imp, node):
    if node.op_type == "Dropout":
        if node.input(2) and bool(imp.constant(node.input(2), "training_mode").reshape(-1)[0]):
            raise ConvertError("training_mode=True is not supported (inference only)")
        outputs(imp, node)
    imp.alias(node.outputs[0], node.inputs[0])


# ---------------------------------------------------------------- constants

@converts("Constant")
def _constant(imp, node):
    (key, value), = node.given.items()
    if key == "value":
        imp.add_constant(array_of(node.proto.attribute[0].t), node.outputs[0])
    elif key in ("value_float", "value_floats"):
        imp.add_constant(np.array(value, np.float32), node.outputs[0])
    elif key in ("value_int", "value_ints"):
        imp.add_constant(np.array(value, np.int64), node.outputs[0])
    else:
        raise ConvertError(f"a Constant given by {key!r} is not supported")


@converts("Shape", "Size")
def _shape(imp, node):
    shape = static_shape(imp, node.inputs[0])
    if node.op_type == "Size":
        return imp.add_constant(np.array(math.prod(shape), np.int64), node.outputs[0])
    start, end = node.attrs.get("start", 0), node.attrs.get("end")
    imp.add_constant(np.array(shape[start:end], np.int64), node.outputs[0])


@converts("ConstantOfShape")
def _constant_of_shape(imp, node):
    value = array_of(node.proto.attribute[0].t) if node.proto.attribute else np.zeros(1, np.float32)
    imp.add_constant(np.full(ints(imp.constant(node.inputs[0], "shape")), value.reshape(-1)[0], value.dtype),
                     node.outputs[0])


@converts("Range")
def _range(imp, node):
    start, limit, delta = (imp.constant(i, w) for i, w in zip(node.inputs, ("start", "limit", "delta")))
    imp.add_constant(np.arange(start.item(), limit.item(), delta.item()).astype(start.dtype), node.outputs[0])


# ---------------------------------------------------------------- reductions and norms

def _axes(imp, node):
    """(axes, identity): the reduced axes (None: all) and whether the node is a no-op."""
    if "axes" in node.attrs:
        axes = tuple(node.attrs["axes"])
    elif node.input(1):
        axes = ints(imp.constant(node.input(1), "axes"))
    else:
        axes = ()
    if not axes:
        return None, bool(node.attrs.get("noop_with_empty_axes", 0))
    return axes, False


def _reduce(imp, node, op: str, x: str, keepdims=None, out=None) -> str:
    axes, _ = _axes(imp, node)
    keep = node.attrs.get("keepdims", 1) if keepdims is None else keepdims
    return imp.emit(node, op, [x], {"axes": axes, "keepdims": bool(keep)}, outputs=out)[0]


_REDUCE = {"ReduceSum": ("sum",), "ReduceMean": ("mean",), "ReduceProd": ("prod",), "ReduceMax": ("reduce_max",),
           "ReduceMin": ("reduce_min",), "ReduceL1": ("abs", "sum"), "ReduceL2": ("mul", "sum", "sqrt"),
           "ReduceSumSquare": ("mul", "sum"), "ReduceLogSum": ("sum", "log"),
           "ReduceLogSumExp": ("reduce_max", "sub", "exp", "sum", "log", "add")}


@converts(*_REDUCE, needs=("sum", "mean", "prod", "reduce_max", "reduce_min", "abs", "mul", "sqrt", "log", "sub",
                           "exp", "add"))
def _reduction(imp, node):
    node.only("keepdims", "noop_with_empty_axes", "axes")
    x, (out,) = node.inputs[0], node.outputs[:1]
    if _axes(imp, node)[1]:
        return imp.alias(out, x)
    kind = node.op_type
    if kind in ("ReduceL1", "ReduceL2", "ReduceSumSquare"):
        (x,) = imp.emit(node, "abs", [x]) if kind == "ReduceL1" else imp.emit(node, "mul", [x, x])
        if kind != "ReduceL2":
            return _reduce(imp, node, "sum", x, out=[out])
        return imp.emit(node, "sqrt", [_reduce(imp, node, "sum", x)], outputs=[out])
    if kind == "ReduceLogSum":
        return imp.emit(node, "log", [_reduce(imp, node, "sum", x)], outputs=[out])
    if kind == "ReduceLogSumExp":          # log(sum(exp(x - m))) + m, m = max: no overflow
        m = _reduce(imp, node, "reduce_max", x, keepdims=1)
        (shifted,) = imp.emit(node, "sub", [x, m])
        (e,) = imp.emit(node, "exp", [shifted])
        (lg,) = imp.emit(node, "log", [_reduce(imp, node, "sum", e)])
        top = m if node.attrs.get("keepdims", 1) else _reduce(imp, node, "reduce_max", x)
        return imp.emit(node, "add", [lg, top], outputs=[out])
    _reduce(imp, node, _REDUCE[kind][0], x, out=[out])


direct("ArgMax", "argmax", ("axis", "keepdims", "select_last_index"))
direct("ArgMin", "argmin", ("axis", "keepdims", "select_last_index"))
direct("Softmax", "softmax", ("axis",))
direct("LogSoftmax", "log_softmax", ("axis",))
direct("LayerNormalization", "layer_norm", ("axis", "epsilon"), stash_type=1)
direct("RMSNormalization", "rms_norm", ("axis", "epsilon"), stash_type=1)
direct("BatchNormalization", "batch_norm", ("epsilon",), ignore=("momentum",), training_mode=0)


@converts("GroupNormalization", needs=("group_norm",))
def _group_norm(imp, node):
    node.only("num_groups", "epsilon", stash_type=1)
    x, scale, bias = node.inputs
    groups = node.attrs["num_groups"]
    if node.opset < 21:                    # opsets 18-20: scale and bias per group, not per channel
        c = static_shape(imp, x)[1]
        scale, bias = (imp.add_constant(np.repeat(imp.constant(v, "scale/bias (per group before opset 21)"),
                                                  c // groups)) for v in (scale, bias))
    imp.emit(node, "group_norm", [x, scale, bias], {"num_groups": groups, "epsilon": node.attrs["epsilon"]},
             outputs(imp, node))


@converts("InstanceNormalization", needs=("group_norm",))
def _instance_norm(imp, node):
    node.only("epsilon")
    c = static_shape(imp, node.inputs[0])[1]
    imp.emit(node, "group_norm", node.inputs, {"num_groups": c, "epsilon": node.attrs["epsilon"]}, node.outputs)


# ---------------------------------------------------------------- matmul, conv, pooling

@converts("Gemm", needs=("gemm",))
def _gemm(imp, node):
    node.only("alpha", "beta", "transA", "transB")
    a = {"alpha": node.attrs["alpha"], "beta": node.attrs["beta"], "trans_a": node.attrs["transA"],
         "trans_b": node.attrs["transB"]}
    imp.emit(node, "gemm", data(node), a, node.outputs)


def _pads(imp, node, kernel: tuple[int, int]) -> tuple[int, ...]:
    """Explicit (top, left, bottom, right) pads, from `pads` or auto_pad (which needs static H, W)."""
    auto = node.attrs.get("auto_pad", "NOTSET")
    if auto == "NOTSET":
        return tuple(node.attrs.get("pads", (0, 0, 0, 0)))
    if auto == "VALID":
        return (0, 0, 0, 0)
    size = static_shape(imp, node.inputs[0])[2:]
    strides, dil = node.attrs.get("strides", (1, 1)), node.attrs.get("dilations", (1, 1))
    total = [max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0) for n, s, k, d in zip(size, strides, kernel, dil)]
    small = [t // 2 for t in total]
    big = [t - s for t, s in zip(total, small)]
    return tuple(small + big) if auto == "SAME_UPPER" else tuple(big + small)


def _two_d(imp, node):
    if len(typed(imp, node.inputs[0]).shape) != 4:
        raise ConvertError(f"only 2-D (NCHW) is supported, input has rank {len(typed(imp, node.inputs[0]).shape)}")


@converts("Conv", needs=("conv2d",))
def _conv(imp, node):
    node.only("strides", "pads", "dilations", "group", "auto_pad", "kernel_shape")
    _two_d(imp, node)
    kernel = static_shape(imp, node.inputs[1])[2:]
    a = {"strides": tuple(node.attrs.get("strides", (1, 1))), "dilations": tuple(node.attrs.get("dilations", (1, 1))),
         "pads": _pads(imp, node, kernel), "group": node.attrs["group"]}
    imp.emit(node, "conv2d", data(node), a, node.outputs)


@converts("MaxPool", "AveragePool", needs=("max_pool2d", "avg_pool2d"))
def _pool(imp, node):
    avg = node.op_type == "AveragePool"
    node.only("kernel_shape", "strides", "pads", "dilations", "ceil_mode", "auto_pad",
              *(("count_include_pad",) if avg else ()), storage_order=0)
    _two_d(imp, node)
    kernel = tuple(node.attrs["kernel_shape"])
    a = {"kernel_shape": kernel, "strides": tuple(node.attrs.get("strides", (1, 1))),
         "dilations": tuple(node.attrs.get("dilations", (1, 1))), "pads": _pads(imp, node, kernel),
         "ceil_mode": node.attrs["ceil_mode"]}
    if avg:
        a["count_include_pad"] = node.attrs["count_include_pad"]
    imp.emit(node, "avg_pool2d" if avg else "max_pool2d", node.inputs, a, outputs(imp, node))


# ---------------------------------------------------------------- data movement

direct("Flatten", "flatten", ("axis",))
direct("Transpose", "transpose", ("perm",))
direct("Concat", "concat", ("axis",))
direct("Gather", "gather", ("axis",))
direct("GatherElements", "gather_elements", ("axis",))
direct("ScatterND", "scatter_nd", ("reduction",))


@converts("Trilu", needs=("trilu",))
def _trilu(imp, node):
    a = {"upper": node.attrs["upper"]}
    if node.input(1):
        a["k"] = int(imp.constant(node.input(1), "k").reshape(-1)[0])
    imp.emit(node, "trilu", node.inputs[:1], a, node.outputs)


@converts("TopK", needs=("top_k",))
def _top_k(imp, node):
    node.only("axis", "largest", "sorted")            # sorted=0 allows any order: the sorted one serves
    (k,) = ints(imp.constant(node.inputs[1], "K"))
    imp.emit(node, "top_k", node.inputs[:1], {"k": k, "axis": node.attrs["axis"], "largest": node.attrs["largest"]},
             node.outputs, n_out=2)


@converts("CumSum", needs=("cumsum",))
def _cumsum(imp, node):
    node.only("exclusive", "reverse")
    (axis,) = ints(imp.constant(node.inputs[1], "axis"))
    imp.emit(node, "cumsum", node.inputs[:1], {"axis": axis, "exclusive": node.attrs.get("exclusive", 0),
                                               "reverse": node.attrs.get("reverse", 0)}, node.outputs)


@converts("Einsum", needs=("transpose", "reshape", "slice", "sum", "expand", "batch_matmul"))
def _einsum(imp, node):
    node.only("equation")
    lower_einsum(imp, node, node.attrs["equation"], [static_shape(imp, x) for x in node.inputs])


@converts("Reshape", needs=("reshape",))
def _reshape(imp, node):
    shape = ints(imp.constant(node.inputs[1], "shape"))
    if node.attrs.get("allowzero", 0) and 0 in shape:
        raise ConvertError("allowzero=1 with a 0 in the shape (a zero-sized tensor) is not supported")
    imp.emit(node, "reshape", node.inputs[:1], {"shape": shape}, node.outputs)


@converts("Squeeze", "Unsqueeze", needs=("squeeze", "unsqueeze"))
def _squeeze(imp, node):
    axes = node.attrs.get("axes")
    if node.input(1):
        axes = ints(imp.constant(node.input(1), "axes"))
    op = node.op_type.lower()
    imp.emit(node, op, node.inputs[:1], {"axes": None if axes is None else tuple(axes)}, node.outputs)


@converts("Expand", needs=("expand",))
def _expand(imp, node):
    imp.emit(node, "expand", node.inputs[:1], {"shape": ints(imp.constant(node.inputs[1], "shape"))}, node.outputs)


@converts("Split", needs=("split",))
def _split(imp, node):
    node.only("axis", "num_outputs", "split")
    a = {"axis": node.attrs["axis"]}
    if node.input(1):
        a["split"] = ints(imp.constant(node.input(1), "split"))
    elif "split" in node.attrs:
        a["split"] = tuple(node.attrs["split"])
    else:
        a["num_outputs"] = node.attrs.get("num_outputs", len(node.outputs))
    imp.emit(node, "split", node.inputs[:1], a, node.outputs)


@converts("Slice", needs=("slice",))
def _slice(imp, node):
    names = ("starts", "ends", "axes", "steps")
    a = {k: ints(imp.constant(node.input(i), k)) for i, k in enumerate(names, 1) if node.input(i)}
    imp.emit(node, "slice", node.inputs[:1], a, node.outputs)


@converts("Pad", needs=("pad",))
def _pad(imp, node):
    node.only("mode")
    if node.attrs["mode"] not in ("constant", "reflect", "edge"):
        raise ConvertError(f"mode {node.attrs['mode']!r} is not supported (constant, reflect, edge)")
    rank = len(typed(imp, node.inputs[0]).shape)
    pads = ints(imp.constant(node.inputs[1], "pads"))
    if node.input(3):                       # opset 18 axes: pads of the named axes only
        axes = [a % rank for a in ints(imp.constant(node.input(3), "axes"))]
        full = [0] * (2 * rank)
        for k, ax in enumerate(axes):
            full[ax], full[rank + ax] = pads[k], pads[len(axes) + k]
        pads = tuple(full)
    a = {"pads": pads, "mode": node.attrs["mode"]}
    if node.input(2):
        v = imp.constant(node.input(2), "constant_value").reshape(-1)[0]
        a["value"] = v.item() if v.dtype != np.uint16 else float(dt.from_bf16_bits(np.array(v)))
    imp.emit(node, "pad", node.inputs[:1], a, node.outputs)


@converts("Resize", needs=("resize",))
def _resize(imp, node):
    node.only("mode", "coordinate_transformation_mode", "nearest_mode", "cubic_coeff_a", "extrapolation_value",
              antialias=0, exclude_outside=0, keep_aspect_ratio_policy="stretch")
    if node.attrs["mode"] == "cubic":
        raise ConvertError("mode 'cubic' is not supported (nearest, linear)")
    a = {k: node.attrs[k] for k in ("mode", "coordinate_transformation_mode", "nearest_mode")}
    if node.input(3):
        a["sizes"] = ints(imp.constant(node.input(3), "sizes"))
    elif node.input(2):
        a["scales"] = tuple(float(s) for s in imp.constant(node.input(2), "scales").reshape(-1))
    else:
        raise ConvertError("needs scales or sizes")
    imp.emit(node, "resize", node.inputs[:1], a, node.outputs)


@converts("Tile", needs=("reshape", "expand"))
def _tile(imp, node):
    shape = static_shape(imp, node.inputs[0])
    reps = ints(imp.constant(node.inputs[1], "repeats"))
    (spread,) = imp.emit(node, "reshape", node.inputs[:1], {"shape": tuple(v for s in shape for v in (1, s))})
    (big,) = imp.emit(node, "expand", [spread], {"shape": tuple(v for r, s in zip(reps, shape) for v in (r, s))})
    imp.emit(node, "reshape", [big], {"shape": tuple(r * s for r, s in zip(reps, shape))}, outputs=node.outputs)


# ---------------------------------------------------------------- attention

@converts("Attention", needs=("attention", "reshape", "transpose"))
def _attention(imp, node):
    node.only("is_causal", "scale", "softmax_precision", "q_num_heads", "kv_num_heads", softcap=0.0,
              qk_matmul_output_mode=0)
    rank = len(typed(imp, node.inputs[0]).shape)
    if rank not in (3, 4):
        raise ConvertError(f"q must be 3-D (batch, sequence, heads · head dim) or 4-D (batch, heads, sequence, "
                           f"head dim), it has rank {rank}")
    if node.input(4) or node.input(5):
        raise ConvertError("past_key / past_value (a KV cache) are not supported")
    if node.input(6):
        raise ConvertError("input nonpad_kv_seqlen (padded key/value sequences) is not supported")
    a = {"is_causal": node.attrs["is_causal"]}
    if "scale" in node.given:
        a["scale"] = node.given["scale"]
    q, k, v = node.inputs[:3]
    mask = node.inputs[3:4] if node.input(3) else []
    if rank == 4:
        imp.emit(node, "attention", [q, k, v, *mask], a, outputs(imp, node))
        return
    if "q_num_heads" not in node.given or "kv_num_heads" not in node.given:
        raise ConvertError("3-D inputs need the q_num_heads and kv_num_heads attributes")
    # [B, S, heads · d] -> [B, heads, S, d], attention, and back to [B, S, heads · e]
    heads = {q: node.given["q_num_heads"], k: node.given["kv_num_heads"], v: node.given["kv_num_heads"]}
    split = {}
    for x in dict.fromkeys((q, k, v)):
        (grouped,) = imp.emit(node, "reshape", [x], {"shape": (0, 0, heads[x], -1)})
        (split[x],) = imp.emit(node, "transpose", [grouped], {"perm": (0, 2, 1, 3)})
    (y,) = imp.emit(node, "attention", [split[q], split[k], split[v], *mask], a)
    (merged,) = imp.emit(node, "transpose", [y], {"perm": (0, 2, 1, 3)})
    imp.emit(node, "reshape", [merged], {"shape": (0, 0, -1)}, outputs(imp, node))
