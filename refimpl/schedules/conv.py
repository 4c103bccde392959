"""conv2d as a GEMM on the matmul templates (the convolutions the window template leaves).

Per group g: cols[g, m, k] = x at output position m = (n, i, j) and window element
k = (c, p, q) (0 in the padding) — one injective kernel, coalesced along k — then the
batched GEMM cols[g] (M × K) @ w[g]ᵀ (w viewed [group, O/group, K], so `trans_b`) on the
SIMT or tensor-core template, accumulating in f32 into a [group, M, O/group] temporary, and an
injective epilogue that adds the bias, rounds once and writes NCHW.
"""
from __future__ import annotations

import math

from taskmap.spec import dtypes as dt
from taskmap.spec import ir

from .injective import injective_kernel
from .matmul import SIMT_CANDIDATES, TC_CANDIDATES, Gemm, SimtPoint, TcPoint, simt_plan, simt_resources, tc_plan, \
    tc_resources
from .plan import Launch, Plan, Tensor, View
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


def _large(dtypes):
    return lambda types, attrs: types[0].dtype in dtypes and not small_convolution(types, attrs)


CONV_SIMT_TEMPLATE = Template("conv2d_simt", ("conv2d",), _large((dt.float32,)), SIMT_CANDIDATES, SimtPoint(),
                              simt_resources, lambda op, types, attrs, point: conv_plan(op, types, attrs, point,
                                                                                        simt_plan))
CONV_TC_TEMPLATE = Template("conv2d_tc", ("conv2d",), _large((dt.float16, dt.bfloat16)), TC_CANDIDATES, TcPoint(),
                            tc_resources, lambda op, types, attrs, point: conv_plan(op, types, attrs, point, tc_plan))
