"""The ATen op table: one converter per core ATen overload onto registry operators.

Dynamo's graphs reach the backend through AOTAutograd with `core_aten_decompositions`, so
the table covers the core ATen opset (the ~180 ops everything else decomposes into), not the
torch-level API. A converter gets the Builder, the FX node (its `meta["val"]` is the traced
result: the output dtype and, for multi-output ops, which outputs exist) and the node's
arguments with tensors as `V`s. Type promotion follows the traced output dtype: operands are
cast to it (comparisons: to torch.result_type of the operands), scalars become constants.
An argument value a converter does not implement raises Unsupported: that node runs in eager
torch (a graph break), never an approximation.
"""
from __future__ import annotations

import math
import operator

import numpy as np
import torch
import torch.fx

from taskmap.spec import dtypes as dt

from .compose import INVERSE, Composer
from .torch_graph import Builder, Unsupported, V, dtype_of

CONVERTERS: dict = {}


def converts(*names: str):
    def register(fn):
        for n in names:
            CONVERTERS[n] = fn
        return fn
    return register


def overloads(packet: str, *names: str) -> list[str]:
    """The overloads among `names` that ATen's op `packet` has ("aten.mul.Tensor", ...)."""
    have = getattr(torch.ops.aten, packet).overloads()
    return [f"aten.{packet}.{n}" for n in names if n in have]


def out_dtype(node) -> dt.DType:
    val = node.meta["val"]
    return dtype_of((val[0] if isinstance(val, (list, tuple)) else val).dtype)


def as_dtype(b: Builder, x, t: dt.DType) -> V:
    """x (a V or a Python scalar) as a value of dtype t."""
    if not isinstance(x, V):
        return b.const(np.array(x), t)
    return x if x.dtype == t else b.emit("cast", [x], {"to": t})


def operand_dtype(node) -> dt.DType:
    """The dtype torch computes a comparison in: the promotion of its operands."""
    a = [x.meta["val"] if isinstance(x, torch.fx.Node) else x for x in node.args[:2]]
    return dtype_of(torch.result_type(*a))


def need(cond: bool, what: str):
    if not cond:
        raise Unsupported(what)


def axis(d: int, rank: int) -> int:
    return d % max(rank, 1)


# ---------------------------------------------------------------- element-wise

UNARY = {"abs": "abs", "neg": "neg", "relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh", "exp": "exp",
         "log": "log", "sqrt": "sqrt", "rsqrt": "rsqrt", "reciprocal": "reciprocal", "erf": "erf",
         "floor": "floor", "ceil": "ceil", "round": "round", "sign": "sign", "sin": "sin", "cos": "cos",
         "logical_not": "logical_not", "silu": "silu", "hardswish": "hardswish", "mish": "mish"}
for _aten, _op in UNARY.items():
    converts(f"aten.{_aten}.default")(lambda b, node, x, _op=_op: b.emit(_op, [as_dtype(b, x, out_dtype(node))]))

BINARY = {"mul": "mul", "div": "div", "maximum": "max", "minimum": "min", "pow": "pow",
          "logical_and": "logical_and", "logical_or": "logical_or", "logical_xor": "logical_xor", "fmod": "mod"}
COMPARE = {"eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal", "gt": "greater", "ge": "greater_equal"}


def _binary(op: str, attrs: dict | None = None):
    def convert(b, node, x, y):
        t = operand_dtype(node) if op in COMPARE.values() else dt.boolean if op.startswith("logical_") \
            else out_dtype(node)
        return b.emit(op, [as_dtype(b, x, t), as_dtype(b, y, t)], attrs)
    return convert


for _aten, _op in BINARY.items():
    converts(*overloads(_aten, "Tensor", "Scalar", "Tensor_Tensor", "Tensor_Scalar", "Scalar_Tensor", "default"))(
        _binary(_op, {"fmod": 1} if _aten == "fmod" else None))
for _aten, _op in COMPARE.items():
    converts(*overloads(_aten, "Tensor", "Scalar"))(_binary(_op))


@converts("aten.bitwise_and.Tensor", "aten.bitwise_or.Tensor", "aten.bitwise_xor.Tensor", "aten.bitwise_not.default")
def _bitwise(b, node, *xs):
    need(all(x.dtype == dt.boolean for x in xs), "bitwise ops on integers (taskmap has them on bools only)")
    op = str(node.target).split(".")[1].replace("bitwise", "logical")
    return b.emit(op, list(xs))


@converts("aten.remainder.Tensor", "aten.remainder.Scalar")
def _remainder(b, node, x, y):
    t = out_dtype(node)
    x, y = as_dtype(b, x, t), as_dtype(b, y, t)
    if t.is_integer:
        return b.emit("mod", [x, y], {"fmod": 0})
    # Python's remainder (sign of the divisor), as torch defines it: x - floor(x / y) * y
    return b.emit("sub", [x, b.emit("mul", [b.emit("floor", [b.emit("div", [x, y])]), y])])


def _composer(b, t: dt.DType) -> Composer:
    """frontends.compose's compositions emitting into `b`, scalars of dtype t."""
    return Composer(lambda name, inputs: b.emit(name, inputs), lambda v: as_dtype(b, v, t), t)


COMPOSED = INVERSE + ("tan", "sinh", "cosh", "log1p", "expm1", "trunc")


@converts(*(f"aten.{n}.default" for n in COMPOSED))
def _composed(b, node, x):
    """The functions compose.Composer writes (inverse trigonometric and hyperbolic ones, tan, sinh,
    cosh, log1p, expm1, trunc) in the result's dtype; trunc of an integer tensor is itself."""
    t, kind = out_dtype(node), str(node.target).split(".")[1]
    x = as_dtype(b, x, t)
    if not t.is_float:
        need(kind == "trunc", f"aten.{kind} on {t.name}")
        return x
    e = _composer(b, t)
    return e.inverse(kind, x) if kind in INVERSE else getattr(e, kind)(x)


@converts("aten.isnan.default", "aten.isinf.default", "aten.isposinf.default", "aten.isneginf.default")
def _isnan_isinf(b, node, x):
    """Tested in x's own dtype (an integer is never NaN nor infinite)."""
    kind, e = str(node.target).split(".")[1], _composer(b, x.dtype)
    if kind == "isnan":
        return e.isnan(x)
    finite = not x.dtype.is_float
    return e.isinf(x, kind in ("isinf", "isposinf") and not finite, kind in ("isinf", "isneginf") and not finite)


@converts("aten.add.Tensor", "aten.add.Scalar", "aten.sub.Tensor", "aten.sub.Scalar")
def _add_sub(b, node, x, y, alpha=1):
    t = out_dtype(node)
    y = as_dtype(b, y, t)
    if alpha != 1:
        y = b.emit("mul", [y, as_dtype(b, alpha, t)])
    return b.emit("add" if "add" in str(node.target) else "sub", [as_dtype(b, x, t), y])


@converts("aten.div.Tensor_mode", "aten.div.Scalar_mode")
def _div_mode(b, node, x, y, rounding_mode=None):
    t = out_dtype(node)
    need(rounding_mode in (None, "trunc", "floor"), f"rounding_mode {rounding_mode!r}")
    q = b.emit("div", [as_dtype(b, x, t), as_dtype(b, y, t)])
    if rounding_mode == "floor":
        need(t.is_float, "floor division of integers")
        return b.emit("floor", [q])
    if rounding_mode == "trunc" and t.is_float:
        return b.emit("where", [b.emit("less", [q, as_dtype(b, 0, t)]), b.emit("ceil", [q]), b.emit("floor", [q])])
    return q


@converts("aten.where.self", "aten.where.ScalarSelf", "aten.where.ScalarOther", "aten.where.Scalar")
def _where(b, node, cond, x, y):
    t = out_dtype(node)
    return b.emit("where", [as_dtype(b, cond, dt.boolean), as_dtype(b, x, t), as_dtype(b, y, t)])


@converts("aten.clamp.default")
def _clamp(b, node, x, min=None, max=None):
    attrs = {k: float(v) for k, v in (("min", min), ("max", max)) if v is not None}
    return b.emit("clip", [as_dtype(b, x, out_dtype(node))], attrs)


@converts("aten.clamp.Tensor")
def _clamp_tensor(b, node, x, min=None, max=None):
    t = out_dtype(node)
    x = as_dtype(b, x, t)
    if min is not None:
        x = b.emit("max", [x, as_dtype(b, min, t)])
    if max is not None:
        x = b.emit("min", [x, as_dtype(b, max, t)])
    return x


@converts("aten.hardtanh.default")
def _hardtanh(b, node, x, min_val=-1.0, max_val=1.0):
    return _clamp(b, node, x, min_val, max_val)


@converts("aten.gelu.default")
def _gelu(b, node, x, approximate="none"):
    return b.emit("gelu", [x], {"approximate": approximate})


@converts("aten.leaky_relu.default")
def _leaky_relu(b, node, x, negative_slope=0.01):
    return b.emit("leaky_relu", [x], {"alpha": float(negative_slope)})


@converts("aten.hardsigmoid.default")
def _hardsigmoid(b, node, x):
    return b.emit("hardsigmoid", [x], {"alpha": 1 / 6, "beta": 0.5})


@converts("aten.elu.default")
def _elu(b, node, x, alpha=1.0, scale=1.0, input_scale=1.0):
    need(input_scale == 1, f"elu input_scale={input_scale}")
    y = b.emit("elu", [x], {"alpha": float(alpha)})
    return y if scale == 1 else b.emit("mul", [y, as_dtype(b, scale, x.dtype)])


@converts("aten.softplus.default")
def _softplus(b, node, x, beta=1, threshold=20):
    need(beta == 1 and threshold >= 20, f"softplus beta={beta}, threshold={threshold} (taskmap: beta 1, "
                                        "threshold >= 20, where log(1 + e^x) = x in f32)")
    return b.emit("softplus", [x])


@converts("aten._to_copy.default")
def _to_copy(b, node, x, dtype=None, layout=None, device=None, pin_memory=None, non_blocking=False,
             memory_format=None):
    return as_dtype(b, x, out_dtype(node))


@converts("aten.clone.default", "aten.alias.default", "aten.detach.default", "aten.lift_fresh_copy.default")
def _identity(b, node, x, memory_format=None):
    return x


# ---------------------------------------------------------------- matmul, conv, pooling

@converts("aten.mm.default", "aten.bmm.default")
def _mm(b, node, x, y):
    return b.emit("matmul", [x, y])


@converts("aten.addmm.default")
def _addmm(b, node, c, x, y, beta=1, alpha=1):
    return b.emit("gemm", [x, y, c], {"alpha": float(alpha), "beta": float(beta)})


@converts("aten.convolution.default")
def _convolution(b, node, x, w, bias, stride, padding, dilation, transposed, output_padding, groups):
    need(not transposed, "transposed convolution")
    need(len(x.shape) in (3, 4), f"{len(x.shape) - 2}-D convolution (taskmap: 1-D and 2-D)")
    one_d = len(x.shape) == 3
    if one_d:                                   # conv1d as conv2d over a height of 1
        x, w = b.emit("unsqueeze", [x], {"axes": (2,)}), b.emit("unsqueeze", [w], {"axes": (2,)})
        stride, padding, dilation = (1, *stride), (0, *padding), (1, *dilation)
    ph, pw = padding
    y = b.emit("conv2d", [x, w] + ([bias] if bias is not None else []),
               {"strides": tuple(stride), "pads": (ph, pw, ph, pw), "dilations": tuple(dilation), "group": groups})
    return b.emit("squeeze", [y], {"axes": (2,)}) if one_d else y


def _window(kernel, stride, padding):
    kernel = tuple(kernel) * (2 // len(kernel))
    stride = tuple(stride or kernel) * (2 // len(stride or kernel))
    padding = tuple(padding) * (2 // len(padding))
    return {"kernel_shape": kernel, "strides": stride, "pads": (*padding, *padding)}


@converts("aten.max_pool2d_with_indices.default")
def _max_pool(b, node, x, kernel_size, stride=(), padding=(0,), dilation=(1,), ceil_mode=False):
    need(not node_output_used(node, 1), "max_pool2d's indices (used by this graph)")
    dilation = tuple(dilation) * (2 // len(dilation))
    y = b.emit("max_pool2d", [x], {**_window(kernel_size, stride, padding), "dilations": dilation,
                                   "ceil_mode": int(ceil_mode)})
    return [y, None]


@converts("aten.avg_pool2d.default")
def _avg_pool(b, node, x, kernel_size, stride=(), padding=(0,), ceil_mode=False, count_include_pad=True,
              divisor_override=None):
    need(divisor_override is None, "avg_pool2d divisor_override")
    return b.emit("avg_pool2d", [x], {**_window(kernel_size, stride, padding), "ceil_mode": int(ceil_mode),
                                      "count_include_pad": int(count_include_pad)})


@converts("aten._adaptive_avg_pool2d.default")
def _adaptive_avg_pool(b, node, x, output_size):
    h, w = x.shape[-2:]
    oh, ow = output_size
    if (oh, ow) == (1, 1):
        return b.emit("global_avg_pool", [x])
    need(h % oh == 0 and w % ow == 0, f"adaptive pooling of {h}x{w} to {oh}x{ow} (windows of unequal size)")
    return b.emit("avg_pool2d", [x], {"kernel_shape": (h // oh, w // ow), "strides": (h // oh, w // ow)})


@converts("aten._scaled_dot_product_flash_attention_for_cpu.default")
def _sdpa_cpu(b, node, q, k, v, dropout_p=0.0, is_causal=False, attn_mask=None, scale=None):
    return _attention(b, node, q, k, v, attn_mask, dropout_p, is_causal, scale)


# On CUDA, AOTAutograd records the kernel SDPA picked at trace time: flash (f16/bf16, no mask),
# memory-efficient or cuDNN (a float `attn_bias`). Their extra outputs (logsumexp, RNG state,
# sequence bookkeeping) serve the backward; an inference graph leaves them unused.
@converts("aten._scaled_dot_product_flash_attention.default")
def _sdpa_flash(b, node, q, k, v, dropout_p=0.0, is_causal=False, return_debug_mask=False, scale=None):
    need(not return_debug_mask, "attention's debug mask")
    return _attention(b, node, q, k, v, None, dropout_p, is_causal, scale)


@converts("aten._scaled_dot_product_efficient_attention.default")
def _sdpa_efficient(b, node, q, k, v, attn_bias, compute_log_sumexp, dropout_p=0.0, is_causal=False, scale=None):
    return _attention(b, node, q, k, v, attn_bias, dropout_p, is_causal, scale)


@converts("aten._scaled_dot_product_cudnn_attention.default")
def _sdpa_cudnn(b, node, q, k, v, attn_bias, compute_log_sumexp, dropout_p=0.0, is_causal=False,
                return_debug_mask=False, scale=None):
    need(not return_debug_mask, "attention's debug mask")
    return _attention(b, node, q, k, v, attn_bias, dropout_p, is_causal, scale)


def _attention(b, node, q, k, v, attn_mask, dropout_p, is_causal, scale):
    """The fused attention operator (4-D, a bool or additive mask broadcast to the scores) for
    any SDPA variant; outputs past the first must be unused."""
    need(dropout_p == 0, f"attention dropout_p={dropout_p}")
    outputs = len(node.meta["val"])
    need(not any(node_output_used(node, i) for i in range(1, outputs)),
         "attention's logsumexp or other auxiliary outputs (used by this graph)")
    mask = [] if attn_mask is None else [attn_mask]
    y = b.emit("attention", [q, k, v] + mask, {"is_causal": int(is_causal),
                                               "scale": None if scale is None else float(scale)})
    return [y] + [None] * (outputs - 1)


def node_output_used(node, index: int) -> bool:
    """Whether output `index` of a multi-output node reaches anything (a dangling getitem does not)."""
    return any(u.target is operator.getitem and u.args[1] == index and u.users for u in node.users)


# ---------------------------------------------------------------- normalization, softmax

@converts("aten._softmax.default", "aten._log_softmax.default")
def _softmax(b, node, x, dim, half_to_float):
    need(not half_to_float, "softmax with half_to_float")
    return b.emit("log_softmax" if "log" in str(node.target) else "softmax", [x], {"axis": axis(dim, len(x.shape))})


@converts("aten.native_layer_norm.default")
def _layer_norm(b, node, x, shape, weight, bias, eps):
    need(not node_output_used(node, 1) and not node_output_used(node, 2),
         "native_layer_norm's mean and rstd (used by the backward graph)")
    if weight is None:
        weight = b.const(np.ones(shape), x.dtype)
    y = b.emit("layer_norm", [x, weight] + ([bias] if bias is not None else []),
               {"axis": len(x.shape) - len(shape), "epsilon": float(eps)})
    return [y, None, None]


@converts("aten._native_batch_norm_legit_no_training.default")
def _batch_norm(b, node, x, weight, bias, mean, var, momentum, eps):
    c = x.shape[1]
    weight = weight if weight is not None else b.const(np.ones(c), x.dtype)
    bias = bias if bias is not None else b.const(np.zeros(c), x.dtype)
    return [b.emit("batch_norm", [x, weight, bias, mean, var], {"epsilon": float(eps)}), None, None]


@converts("aten.native_group_norm.default")
def _group_norm(b, node, x, weight, bias, n, c, hw, group, eps):
    need(not node_output_used(node, 1) and not node_output_used(node, 2),
         "native_group_norm's mean and rstd (used by the backward graph)")
    weight = weight if weight is not None else b.const(np.ones(c), x.dtype)
    bias = bias if bias is not None else b.const(np.zeros(c), x.dtype)
    return [b.emit("group_norm", [x, weight, bias], {"num_groups": group, "epsilon": float(eps)}), None, None]


# ---------------------------------------------------------------- reductions

def _axes(dims, rank: int):
    return None if dims is None or len(dims) == 0 else tuple(sorted(axis(d, rank) for d in dims))


REDUCE = {"sum": "sum", "mean": "mean", "amax": "reduce_max", "amin": "reduce_min"}


def _reduce(op: str):
    def convert(b, node, x, dim=None, keepdim=False, dtype=None):
        if isinstance(dim, int):
            dim = [dim]
        x = as_dtype(b, x, out_dtype(node))
        return b.emit(op, [x], {"axes": _axes(dim, len(x.shape)), "keepdims": bool(keepdim)})
    return convert


for _aten, _op in REDUCE.items():
    converts(*overloads(_aten, "default", "dim_IntList", "dim"))(_reduce(_op))
converts("aten.prod.default", "aten.prod.dim_int")(_reduce("prod"))


@converts("aten.any.default", "aten.any.dim", "aten.any.dims", "aten.all.default", "aten.all.dim", "aten.all.dims")
def _any_all(b, node, x, dim=None, keepdim=False):
    if isinstance(dim, int):
        dim = [dim]
    op = "reduce_max" if ".any." in str(node.target) else "reduce_min"
    y = b.emit(op, [as_dtype(b, x, dt.int32)], {"axes": _axes(dim, len(x.shape)), "keepdims": bool(keepdim)})
    return as_dtype(b, y, dt.boolean)


@converts("aten.argmax.default", "aten.argmin.default")
def _arg(b, node, x, dim=None, keepdim=False):
    op = "argmax" if "argmax" in str(node.target) else "argmin"
    if dim is None:
        x, dim = b.emit("reshape", [x], {"shape": (-1,)}), 0
    return b.emit(op, [x], {"axis": axis(dim, len(x.shape)), "keepdims": bool(keepdim)})


@converts("aten.max.dim", "aten.min.dim")
def _max_min_dim(b, node, x, dim, keepdim=False):
    """(values, indices) along dim: the reduction and the arg-reduction (the first extreme's index)."""
    a, big = axis(dim, len(x.shape)), ".max." in str(node.target)
    values = b.emit("reduce_max" if big else "reduce_min", [x], {"axes": (a,), "keepdims": bool(keepdim)})
    return [values, b.emit("argmax" if big else "argmin", [x], {"axis": a, "keepdims": bool(keepdim)})]


@converts("aten.topk.default")
def _topk(b, node, x, k, dim=-1, largest=True, sorted=True):       # sorted=False allows any order
    return b.emit("top_k", [x], {"k": int(k), "axis": axis(dim, len(x.shape)), "largest": int(bool(largest))},
                  n_out=2)


@converts("aten.triu.default", "aten.tril.default")
def _trilu(b, node, x, diagonal=0):
    return b.emit("trilu", [x], {"upper": int("triu" in str(node.target)), "k": int(diagonal)})


@converts("aten.var.correction")
def _var(b, node, x, dim=None, correction=None, keepdim=False):
    axes = _axes(dim, len(x.shape))
    count = math.prod(x.shape[a] for a in (axes if axes is not None else range(len(x.shape))))
    d = b.emit("sub", [x, b.emit("mean", [x], {"axes": axes, "keepdims": True})])
    s = b.emit("sum", [b.emit("mul", [d, d])], {"axes": axes, "keepdims": bool(keepdim)})
    return b.emit("div", [s, as_dtype(b, count - (1 if correction is None else correction), x.dtype)])


# ---------------------------------------------------------------- movement

@converts("aten.view.default", "aten._unsafe_view.default", "aten.reshape.default")
def _view(b, node, x, shape):
    return b.emit("reshape", [x], {"shape": tuple(int(s) for s in shape)})


@converts("aten.permute.default")
def _permute(b, node, x, dims):
    return b.emit("transpose", [x], {"perm": tuple(axis(d, len(x.shape)) for d in dims)})


@converts("aten.t.default")
def _t(b, node, x):
    return x if len(x.shape) < 2 else b.emit("transpose", [x], {"perm": (1, 0)})


@converts("aten.expand.default")
def _expand(b, node, x, size, implicit=False):
    lead = len(size) - len(x.shape)
    shape = tuple(x.shape[k - lead] if s == -1 else s for k, s in enumerate(size))
    return b.emit("expand", [x], {"shape": shape})


@converts("aten.repeat.default")
def _repeat(b, node, x, repeats):
    """x tiled repeats[d] times along each dimension d (leading ones added): each dimension s
    becomes (1, s), is expanded to (r, s) and merged to r·s."""
    shape = (1,) * (len(repeats) - len(x.shape)) + tuple(x.shape)
    need(all(shape) and all(repeats), "aten.repeat with an empty dimension")
    y = b.emit("reshape", [x], {"shape": tuple(v for s in shape for v in (1, s))})
    y = b.emit("expand", [y], {"shape": tuple(v for r, s in zip(repeats, shape) for v in (r, s))})
    return b.emit("reshape", [y], {"shape": tuple(r * s for r, s in zip(repeats, shape))})


@converts("aten.unsqueeze.default")
def _unsqueeze(b, node, x, dim):
    return b.emit("unsqueeze", [x], {"axes": (axis(dim, len(x.shape) + 1),)})


@converts("aten.squeeze.default", "aten.squeeze.dim", "aten.squeeze.dims")
def _squeeze(b, node, x, dim=None):
    dims = range(len(x.shape)) if dim is None else [dim] if isinstance(dim, int) else dim
    axes = tuple(sorted(a for a in {axis(d, len(x.shape)) for d in dims} if x.shape[a] == 1))
    return b.emit("squeeze", [x], {"axes": axes}) if axes else x


@converts("aten.cat.default")
def _cat(b, node, xs, dim=0):
    t = out_dtype(node)
    xs = [as_dtype(b, x, t) for x in xs if math.prod(x.shape) or len(xs) == 1]   # torch skips empty parts
    return b.emit("concat", xs, {"axis": axis(dim, len(xs[0].shape))})


@converts("aten.split_with_sizes.default", "aten.split.Tensor")
def _split(b, node, x, sizes, dim=0):
    a = axis(dim, len(x.shape))
    if isinstance(sizes, int):
        n = x.shape[a]
        sizes = [min(sizes, n - s) for s in range(0, n, sizes)]
    if len(sizes) == 1:
        return [x]
    return b.emit("split", [x], {"axis": a, "split": tuple(sizes)}, n_out=len(sizes))


@converts("aten.slice.Tensor")
def _slice(b, node, x, dim=0, start=None, end=None, step=1):
    a = axis(dim, len(x.shape))
    n = x.shape[a]
    start, end = 0 if start is None else max(min(start, n), -n), n if end is None else max(min(end, n), -n)
    return b.emit("slice", [x], {"starts": (start,), "ends": (end,), "axes": (a,), "steps": (step,)})


def _bounds(n: int, start, end) -> tuple[int, int]:
    """A step-1 slice's [start, end) within 0..n, as Python clamps and wraps them."""
    wrap = lambda v, default: default if v is None else min(max(v + n if v < 0 else v, 0), n)
    begin = wrap(start, 0)
    return begin, max(begin, wrap(end, n))


@converts("aten.slice_scatter.default", "aten.select_scatter.default")
def _slice_scatter(b, node, x, src, dim=0, start=None, end=None, step=1):
    """x with x[..., start:end, ...] (select_scatter: x[..., index, ...]) replaced by src along dim:
    the parts of x before and after, and src between them, concatenated (what in-place slice
    assignment becomes once functionalized)."""
    a = axis(dim, len(x.shape))
    if "select" in str(node.target):
        start, end, src = start % x.shape[a], start % x.shape[a] + 1, b.emit("unsqueeze", [src], {"axes": (a,)})
    need(step == 1, "aten.slice_scatter with a step other than 1")
    begin, stop = _bounds(x.shape[a], start, end)
    src = as_dtype(b, src, x.dtype)
    if src.shape != x.shape[:a] + (stop - begin,) + x.shape[a + 1:]:
        src = b.emit("expand", [src], {"shape": x.shape[:a] + (stop - begin,) + x.shape[a + 1:]})
    part = lambda lo, hi: b.emit("slice", [x], {"starts": (lo,), "ends": (hi,), "axes": (a,), "steps": (1,)})
    parts = ([part(0, begin)] if begin else []) + ([src] if stop > begin else []) + \
        ([part(stop, x.shape[a])] if stop < x.shape[a] else [])
    return parts[0] if len(parts) == 1 else b.emit("concat", parts, {"axis": a})


@converts("aten.copy.default")
def _copy(b, node, x, src, non_blocking=False):
    """x's shape and dtype, src's values (broadcast)."""
    src = as_dtype(b, src, out_dtype(node))
    return src if src.shape == x.shape else b.emit("expand", [src], {"shape": x.shape})


@converts("aten.select.int")
def _select(b, node, x, dim, index):
    a = axis(dim, len(x.shape))
    index %= x.shape[a]
    y = b.emit("slice", [x], {"starts": (index,), "ends": (index + 1,), "axes": (a,)})
    return b.emit("squeeze", [y], {"axes": (a,)})


@converts("aten.index_select.default")
def _index_select(b, node, x, dim, index):
    return b.emit("gather", [x, index], {"axis": axis(dim, len(x.shape))})


@converts("aten.cumsum.default")
def _cumsum(b, node, x, dim, dtype=None):
    return b.emit("cumsum", [as_dtype(b, x, out_dtype(node))], {"axis": axis(dim, len(x.shape))})


@converts("aten.index.Tensor")
def _index(b, node, x, indices):
    """x[..., i0, i1, ..., ...] with integer index tensors on adjacent dimensions (None elsewhere):
    those dimensions flattened into one and gathered at the linear index Σ i_j · stride_j (each
    i_j wrapped like a negative Python index), the indices broadcast against each other."""
    first = next(k for k, t in enumerate(indices) if t is not None)
    block = list(indices[first:])
    while block and block[-1] is None:
        block.pop()
    need(all(t is not None for t in block), "aten.index with index tensors on dimensions that are not adjacent")
    need(all(not t.dtype.is_float and t.dtype != dt.boolean for t in block),
         "aten.index with a boolean mask (its result's shape depends on the values)")
    dims = x.shape[first:first + len(block)]
    linear = None
    for k, (i, d) in enumerate(zip(block, dims)):
        i = as_dtype(b, i, dt.int64)
        i = b.emit("where", [b.emit("less", [i, as_dtype(b, 0, dt.int64)]),
                             b.emit("add", [i, as_dtype(b, d, dt.int64)]), i])
        term = b.emit("mul", [i, as_dtype(b, math.prod(dims[k + 1:]), dt.int64)]) if k + 1 < len(dims) else i
        linear = term if linear is None else b.emit("add", [linear, term])
    flat = x.shape[:first] + (math.prod(dims),) + x.shape[first + len(block):]
    if flat != x.shape:
        x = b.emit("reshape", [x], {"shape": flat})
    return b.emit("gather", [x, linear], {"axis": first})


@converts("aten.gather.default")
def _gather(b, node, x, dim, index, sparse_grad=False):
    return b.emit("gather_elements", [x, index], {"axis": axis(dim, len(x.shape))})


@converts("aten.embedding.default")
def _embedding(b, node, weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    return b.emit("embedding", [indices, weight])


@converts("aten.constant_pad_nd.default")
def _pad(b, node, x, pad, value=0):
    rank = len(x.shape)
    begins, ends = [0] * rank, [0] * rank
    for k in range(len(pad) // 2):              # torch lists (begin, end) pairs from the last dimension
        begins[rank - 1 - k], ends[rank - 1 - k] = pad[2 * k], pad[2 * k + 1]
    return b.emit("pad", [x], {"pads": (*begins, *ends), "value": float(value)})


@converts("aten.flip.default")
def _flip(b, node, x, dims):
    axes = tuple(axis(d, len(x.shape)) for d in dims)
    return b.emit("slice", [x], {"starts": (-1,) * len(axes), "ends": (-(2 ** 62),) * len(axes),
                                 "axes": axes, "steps": (-1,) * len(axes)})


# ---------------------------------------------------------------- factories (constants)

def _full_of(b, node, value):
    val = node.meta["val"]
    return b.const(np.full(tuple(int(s) for s in val.shape), value), dtype_of(val.dtype))


# Their dtype/device/layout keywords are read from the traced result (meta["val"]) instead.

@converts("aten.full.default", "aten.full_like.default")
def _full(b, node, size_or_x, fill_value, **placement):
    return _full_of(b, node, fill_value)


@converts("aten.scalar_tensor.default")
def _scalar_tensor(b, node, value, **placement):
    return _full_of(b, node, value)


@converts("aten.arange.start_step", "aten.arange.default", "aten.arange.start")
def _arange(b, node, *bounds, **placement):
    return b.const(np.arange(*bounds), out_dtype(node))
