"""conv2d as a GEMM (the convolutions the window template leaves).

f16/bf16: implicit GEMM on tensor cores (`conv_tc`): two injective transposes put x in NHWC
and w in [O, KH, KW, C/group] (channels-last operands for 16-byte copies; the operator stays
NCHW), then one kernel gathers the input patches while staging them into shared memory and
writes bias + product, rounded once, straight into the NCHW output.

f32: im2col on the SIMT matmul template. Per group g: cols[g, m, k] = x at output position
m = (n, i, j) and window element k = (c, p, q) (0 in the padding) — one injective kernel,
coalesced along k — then the batched GEMM cols[g] (M × K) @ w[g]ᵀ (w viewed
[group, O/group, K], so `trans_b`) on the SIMT template, accumulating in f32 into a
[group, M, O/group] temporary, and an injective epilogue that adds the bias, rounds once and writes NCHW.
"""
from __future__ import annotations

from dataclasses import dataclass

from taskmap.spec import dtypes as dt
from taskmap.spec import ir

from . import conv_tc
from .injective import injective_kernel
from .matmul import SIMT_CANDIDATES, Gemm, SimtPoint, TcPoint, simt_plan, simt_resources, tc_resources
from .plan import Launch, Plan, Tensor, View
from .space import product
from .template import Template
from .window import small_convolution


def _global(name, shape, dtype) -> ir.Buffer:
    return ir.Buffer(name, dtype, tuple(ir.const(s) for s in shape), "global")


def _vars(*names):
    return tuple(ir.Var(n, dt.int32) for n in names)


def _b(op, a, b):
    return ir.binary(op, a, b)


def conv_plan(op, types, attrs, point, gemm_plan) -> Plan:
    (y_type,) = op.infer(types, **attrs)
    (N, C, H, W), (O, cg, KH, KW) = types[0].shape, types[1].shape
    OH, OW = y_type.shape[2:]
    groups, (sh, sw), (pt, pl), (dh, dw) = attrs["group"], attrs["strides"], attrs["pads"][:2], attrs["dilations"]
    M, K, Og = N * OH * OW, cg * KH * KW, O // groups
    xt = types[0].dtype
    acc = dt.float32
    # im2col
    x = _global("x", (N, C, H, W), xt)
    cols = _global("cols", (groups, M, K), xt)
    g, m, k = _vars("g", "m", "k")
    n, i, j = _b("/", m, OH * OW), _b("%", _b("/", m, OW), OH), _b("%", m, OW)
    c, p, q = _b("/", k, KH * KW), _b("%", _b("/", k, KW), KH), _b("%", k, KW)
    h = _b("-", _b("+", _b("*", i, sh), _b("*", p, dh)), pt)
    w_ = _b("-", _b("+", _b("*", j, sw), _b("*", q, dw)), pl)
    inside = _b("&&", _b("&&", _b("<=", 0, h), _b("<", h, H)), _b("&&", _b("<=", 0, w_), _b("<", w_, W)))
    value = ir.Select(inside, ir.Load(x, (n, _b("+", _b("*", g, cg), c), h, w_)), ir.const(0.0, xt))
    im2col = injective_kernel("conv2d_im2col", cols, (g, m, k), value)
    # the GEMM: cols[g] @ w[g]^T into an f32 [group, M, Og] temporary
    problem = Gemm(M, Og, K, (groups,), (groups,), (groups,), trans_b=True, dtype=xt, out=acc)
    gemm = gemm_plan(problem, point, names=("cols", "w", None, "prod"))
    # epilogue: bias, one rounding, NCHW
    prod = _global("prod", (groups, M, Og), acc)
    y = _global("y", y_type.shape, xt)
    n2, o, i2, j2 = _vars("n", "o", "i", "j")
    total = ir.Load(prod, (_b("/", o, Og), _b("+", _b("*", _b("+", _b("*", n2, OH), i2), OW), j2), _b("%", o, Og)))
    inputs = [Tensor("x", types[0].shape, xt), Tensor("w", types[1].shape, xt)]
    args = ("prod",)
    if len(types) > 2:
        bias = _global("bias", (O,), xt)
        total = _b("+", total, ir.Cast(ir.Load(bias, (o,)), acc) if xt != acc else ir.Load(bias, (o,)))
        inputs.append(Tensor("bias", (O,), xt))
        args += ("bias",)
    epilogue = injective_kernel("conv2d_epilogue", y, (n2, o, i2, j2), total if xt == acc else ir.Cast(total, xt))
    temps = (Tensor("cols", (groups, M, K), xt), Tensor("prod", (groups, M, Og), acc)) + gemm.temps
    launches = (Launch(im2col, ("x", "cols")),) + gemm.launches + (Launch(epilogue, args + ("y",)),)
    return Plan(tuple(inputs), (Tensor("y", y_type.shape, xt),), temps, launches)


def conv_shape(types, attrs, y_shape) -> conv_tc.ConvShape:
    """The sizes and window attributes of a conv2d at these input types (y_shape: its output's)."""
    (N, C, H, W), (O, _, KH, KW) = types[0].shape, types[1].shape
    return conv_tc.ConvShape(N, C, H, W, O, (KH, KW), tuple(y_shape[2:]), tuple(attrs["strides"]),
                             tuple(attrs["pads"][:2]), tuple(attrs["dilations"]), attrs["group"])


@dataclass(frozen=True)
class ConvTcPoint:
    tile: tuple[int, int, int] = (128, 128, 32)      # bm (output positions), bn (output channels), bk
    warps: tuple[int, int] = (2, 2)
    stages: int = 3


def conv_tc_resources(p: ConvTcPoint):
    """matmul_tc's: the same tiles, fragments and stages (B staged [bn, bk], the same size)."""
    return tc_resources(TcPoint(p.tile, p.warps, p.stages))


CONV_TC_CANDIDATES = tuple(product(ConvTcPoint, tile=((64, 64, 32), (128, 64, 32), (64, 128, 32), (128, 128, 32),
                                                      (128, 128, 64), (256, 128, 32), (128, 256, 32)),
                                   warps=((2, 2), (2, 4), (4, 2)), stages=(2, 3, 4)))


def _channels_last(name, src, order, dtype) -> ir.Kernel:
    """dst = src permuted so that dst's axis d is src's axis order[d]."""
    shape = tuple(src.shape[a] for a in order)
    axes = _vars(*(f"i{d}" for d in range(len(shape))))
    index = tuple(axes[order.index(a)] for a in range(len(shape)))
    return injective_kernel(name, _global("dst", shape, dtype), axes, ir.Load(_global("src", src.shape, dtype), index))


def implicit_tc_plan(op, types, attrs, point: ConvTcPoint) -> Plan:
    (y_type,) = op.infer(types, **attrs)
    s = conv_shape(types, attrs, y_type.shape)
    xt, (O, cg, KH, KW) = types[0].dtype, types[1].shape
    x_nhwc = Tensor("x_nhwc", (s.batch, s.height, s.width, s.channels), xt)
    w_ohwc = Tensor("w_ohwc", (O, KH, KW, cg), xt)
    bm, bn, bk = point.tile
    main = conv_tc.make_kernel(s, xt, bm, bn, bk, point.warps, point.stages, bias=len(types) > 2)
    inputs = (Tensor("x", types[0].shape, xt), Tensor("w", types[1].shape, xt)) + \
        ((Tensor("bias", (O,), xt),) if len(types) > 2 else ())
    launches = (Launch(_channels_last("conv2d_x_to_nhwc", types[0], (0, 2, 3, 1), xt), ("x", x_nhwc.name)),
                Launch(_channels_last("conv2d_w_to_ohwc", types[1], (0, 2, 3, 1), xt), ("w", w_ohwc.name)),
                Launch(main, (x_nhwc.name, View(w_ohwc.name, (O, s.gemm[2])),
                              "bias" if len(types) > 2 else View("w", (1,)), "y")))
    return Plan(inputs, (Tensor("y", y_type.shape, xt),), (x_nhwc, w_ohwc), launches)


def _large(dtypes):
    return lambda types, attrs: types[0].dtype in dtypes and not small_convolution(types, attrs)


CONV_SIMT_TEMPLATE = Template("conv2d_simt", ("conv2d",), _large((dt.float32,)), SIMT_CANDIDATES, SimtPoint(),
                              simt_resources, lambda op, types, attrs, point: conv_plan(op, types, attrs, point,
                                                                                        simt_plan))
CONV_TC_TEMPLATE = Template("conv2d_implicit_tc", ("conv2d",), _large((dt.float16, dt.bfloat16)), CONV_TC_CANDIDATES,
                            ConvTcPoint(), conv_tc_resources, implicit_tc_plan)
