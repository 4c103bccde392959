"""conv2d as an implicit GEMM (the convolutions the window template leaves): per group, the
GEMM of M = N·OH·OW output positions by O/group output channels over K = C/group·KH·KW
window elements, its A operand (the input patches) gathered from x while staging into shared
memory — no patch matrix in global memory — and bias + product, rounded once, stored
straight into the NCHW output.

- f16/bf16 on tensor cores (`conv_tc`): two injective transposes first put x in NHWC and w in
  [O, KH, KW, C/group] (channels-last operands for 16-byte copies; the operator stays NCHW).
- f32 on CUDA cores (`conv_simt`), reading x and w as given.
"""
from __future__ import annotations

from dataclasses import dataclass

from taskmap.spec import dtypes as dt
from taskmap.spec import ir

from . import conv_simt, conv_tc
from .conv_shape import conv_shape
from .injective import injective_kernel
from .matmul import SIMT_OPTIONS, SimtPoint, TcPoint, simt_resources, tc_resources
from .plan import Launch, Plan, Tensor, View
from .space import product
from .template import Template
from .window import small_convolution


@dataclass(frozen=True)
class ConvTcPoint:
    tile: tuple[int, int, int] = (128, 128, 32)      # bm (output positions), bn (output channels), bk
    warps: tuple[int, int] = (2, 2)
    stages: int = 3


@dataclass(frozen=True)
class ConvSimtPoint:
    warps: tuple[int, int] = (8, 1)
    lanes: tuple[int, int] = (2, 16)
    micro: tuple[int, int] = (4, 4)
    repeats: tuple[int, int] = (2, 2)
    bk: int = 8


def conv_tc_resources(p: ConvTcPoint):
    """matmul_tc's: the same tiles, fragments and stages (B staged [bn, bk], the same size)."""
    return tc_resources(TcPoint(p.tile, p.warps, p.stages))


def conv_simt_resources(p: ConvSimtPoint):
    """matmul_simt's: the same tiles, fragments and double buffers."""
    return simt_resources(SimtPoint(p.warps, p.lanes, p.micro, p.repeats, p.bk))


CONV_TC_CANDIDATES = tuple(product(ConvTcPoint, tile=((64, 64, 32), (128, 64, 32), (64, 128, 32), (128, 128, 32),
                                                      (128, 128, 64), (256, 128, 32), (128, 256, 32)),
                                   warps=((2, 2), (2, 4), (4, 2)), stages=(2, 3, 4)))
CONV_SIMT_CANDIDATES = tuple(product(ConvSimtPoint, **SIMT_OPTIONS))


def _global(name, shape, dtype) -> ir.Buffer:
    return ir.Buffer(name, dtype, tuple(ir.const(s) for s in shape), "global")


def _permuted(name, src, order, dtype) -> ir.Kernel:
    """dst = src permuted so that dst's axis d is src's axis order[d]."""
    shape = tuple(src.shape[a] for a in order)
    axes = tuple(ir.Var(f"i{d}", dt.int32) for d in range(len(shape)))
    index = tuple(axes[order.index(a)] for a in range(len(shape)))
    return injective_kernel(name, _global("dst", shape, dtype), axes, ir.Load(_global("src", src.shape, dtype), index))


def _operands(op, types, attrs):
    (y_type,) = op.infer(types, **attrs)
    xt, bias = types[0].dtype, len(types) > 2
    inputs = (Tensor("x", types[0].shape, xt), Tensor("w", types[1].shape, xt)) + \
        ((Tensor("bias", (types[1].shape[0],), xt),) if bias else ())
    # without a bias the kernel's one-element b parameter is a view it never reads
    return conv_shape(types, attrs, y_type.shape), inputs, Tensor("y", y_type.shape, xt), \
        "bias" if bias else View("w", (1,))


def implicit_tc_plan(op, types, attrs, point: ConvTcPoint) -> Plan:
    s, inputs, y, b = _operands(op, types, attrs)
    xt, (O, cg, KH, KW) = types[0].dtype, types[1].shape
    x_nhwc = Tensor("x_nhwc", (s.batch, s.height, s.width, s.channels), xt)
    w_ohwc = Tensor("w_ohwc", (O, KH, KW, cg), xt)
    bm, bn, bk = point.tile
    main = conv_tc.make_kernel(s, xt, bm, bn, bk, point.warps, point.stages, bias=len(types) > 2)
    launches = (Launch(_permuted("conv2d_x_to_nhwc", types[0], (0, 2, 3, 1), xt), ("x", x_nhwc.name)),
                Launch(_permuted("conv2d_w_to_ohwc", types[1], (0, 2, 3, 1), xt), ("w", w_ohwc.name)),
                Launch(main, (x_nhwc.name, View(w_ohwc.name, (O, s.gemm[2])), b, "y")))
    return Plan(inputs, (y,), (x_nhwc, w_ohwc), launches)


def implicit_simt_plan(op, types, attrs, point: ConvSimtPoint) -> Plan:
    s, inputs, y, b = _operands(op, types, attrs)
    main = conv_simt.make_kernel(s, point.warps, point.lanes, point.micro, point.repeats, point.bk,
                                 bias=len(types) > 2)
    return Plan(inputs, (y,), (), (Launch(main, ("x", View("w", (s.out_channels, s.gemm[2])), b, "y")),))


def _large(dtypes):
    return lambda types, attrs: types[0].dtype in dtypes and not small_convolution(types, attrs)


CONV_SIMT_TEMPLATE = Template("conv2d_implicit_simt", ("conv2d",), _large((dt.float32,)), CONV_SIMT_CANDIDATES,
                              ConvSimtPoint(), conv_simt_resources, implicit_simt_plan)
CONV_TC_TEMPLATE = Template("conv2d_implicit_tc", ("conv2d",), _large((dt.float16, dt.bfloat16)), CONV_TC_CANDIDATES,
                            ConvTcPoint(), conv_tc_resources, implicit_tc_plan)
