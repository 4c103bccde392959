"""conv2d as an implicit GEMM (the convolutions the window template leaves): per group, the
GEMM of M = N·OH·OW output positions by O/group output channels over K = C/group·KH·KW
window elements, its A operand (the input patches) gathered from x while staging into shared
memory — no patch matrix in global memory — and bias + product, rounded once, stored
straight into the NCHW output.

- f16/bf16 on tensor cores (`conv_tc`): two shared-tile transposes (`conv_layout`) first put
  x in NHWC and w in [O, KH, KW, C/group] (a 1x1 layer's weights are that already), the
  channels of each group padded with zeros to a multiple of 8: channels-last operands for
  16-byte copies, while the operator stays NCHW (a producer's injective epilogue fuses into
  the x transpose as a prologue). It also takes the convolutions with 16 or more channels
  per group that the window template would unroll (1x1 layers): GEMMs tensor cores do better.
- f32 on CUDA cores (`conv_simt`), reading x and w as given.
- Split-K (either kernel) where the output tiles are too few to occupy the GPU (small images
  at batch 1, deep layers): each split sums its own range of k tiles into an f32 partial
  output (NCHW, the splits stacked along N), and an injective epilogue sums the splits in
  order, adds the bias, rounds once and writes NCHW (its plain stores are then what
  epilogue fusion rewrites).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from taskmap.spec import dtypes as dt
from taskmap.spec import ir

from . import conv_simt, conv_tc
from .conv_layout import channels_last_kernel
from .conv_shape import conv_shape
from .injective import injective_kernel
from .matmul import SIMT_OPTIONS, SimtPoint, TcPoint, simt_resources, tc_resources
from .matmul_simt import tile_shape
from .plan import Launch, Plan, Tensor, View
from .space import k_splits, product
from .template import Template
from .window import small_convolution


@dataclass(frozen=True)
class ConvTcPoint:
    tile: tuple[int, int, int] = (128, 64, 32)       # bm (output positions), bn (output channels), bk
    warps: tuple[int, int] = (2, 2)
    stages: int = 3
    split_k: int | None = None      # None: as many splits as fill the GPU (space.k_splits)


@dataclass(frozen=True)
class ConvSimtPoint:
    warps: tuple[int, int] = (8, 1)
    lanes: tuple[int, int] = (2, 16)
    micro: tuple[int, int] = (4, 4)
    repeats: tuple[int, int] = (2, 2)
    bk: int = 8
    split_k: int | None = None      # None: as many splits as fill the GPU (space.k_splits)


def conv_tc_resources(p: ConvTcPoint):
    """matmul_tc's (the same tiles, fragments and stages; B staged [bn, bk], the same size) and
    the shared tile the epilogue stages C through."""
    r = tc_resources(TcPoint(p.tile, p.warps, p.stages))
    return r and replace(r, shared_bytes=r.shared_bytes + conv_tc.out_tile_bytes(*p.tile[:2]))


def conv_simt_resources(p: ConvSimtPoint):
    """matmul_simt's: the same tiles, fragments and double buffers."""
    return simt_resources(SimtPoint(p.warps, p.lanes, p.micro, p.repeats, p.bk))


CONV_TC_CANDIDATES = tuple(product(ConvTcPoint, tile=((64, 64, 32), (128, 64, 32), (64, 128, 32), (128, 128, 32),
                                                      (128, 128, 64), (256, 128, 32), (128, 256, 32)),
                                   warps=((2, 2), (2, 4), (4, 2)), stages=(2, 3, 4), split_k=(None, 1, 4)))
CONV_SIMT_CANDIDATES = tuple(product(ConvSimtPoint, **SIMT_OPTIONS, split_k=(None, 1, 4)))


def _global(name, shape, dtype) -> ir.Buffer:
    return ir.Buffer(name, dtype, tuple(ir.const(s) for s in shape), "global")


def _split_epilogue(s, splits: int, dtype, bias: bool) -> ir.Kernel:
    """y[n, o, i, j] = Σ_split partial[split · N + n, o, i, j] (+ bias[o]), summed in split order
    and rounded once."""
    shape = (s.batch, s.out_channels) + s.out_size
    partial = _global("partial", (splits * s.batch,) + shape[1:], dt.float32)
    n, o, i, j = (ir.Var(v, dt.int32) for v in "noij")
    total = ir.Load(partial, (n, o, i, j))
    for k in range(1, splits):
        total = ir.binary("+", total, ir.Load(partial, (ir.binary("+", n, k * s.batch), o, i, j)))
    if bias:
        total = ir.binary("+", total, ir.Cast(ir.Load(_global("bias", (s.out_channels,), dtype), (o,)), dt.float32))
    y = _global("y", shape, dtype)
    return injective_kernel(f"conv2d_split_epilogue_k{splits}", y, (n, o, i, j), ir.Cast(total, dtype))


def _split_launches(s, splits: int, dtype, bias: bool, main: ir.Kernel, x, w) -> tuple[Tensor, tuple[Launch, ...]]:
    """Split-K's f32 partial output and its two launches: `main` (either kernel, made with
    `splits`) reading x and w and writing the splits' sums, without the bias, into it; then
    `_split_epilogue` summing them into y."""
    partial = Tensor("partial", (splits * s.batch, s.out_channels) + s.out_size, dt.float32)
    epilogue = _split_epilogue(s, splits, dtype, bias)
    return partial, (Launch(main, (x, w, View("w", (1,)), partial.name)),
                     Launch(epilogue, (partial.name,) + (("bias",) if bias else ()) + ("y",)))


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
    padded = -(-cg // conv_tc.VEC) * conv_tc.VEC
    s = replace(s, channels=s.groups * padded)           # the kernel's view: padded channels
    pixels, taps, K = s.height * s.width, KH * KW, s.gemm[2]
    x_nhwc = Tensor("x_nhwc", (s.batch, s.height, s.width, s.channels), xt)
    temps = [x_nhwc]
    C = types[0].shape[1]
    launches = [Launch(channels_last_kernel(s.batch, C, pixels, xt, s.groups, padded),
                       (View("x", (s.batch, C, pixels)), View(x_nhwc.name, (s.batch, pixels, s.channels))))]
    if taps == 1 and padded == cg:                       # a 1x1 kernel's OIHW weights are already [O, K]
        w_view = View("w", (O, K))
    else:
        w_ohwc = Tensor("w_ohwc", (O, KH, KW, padded), xt)
        temps.append(w_ohwc)
        launches.append(Launch(channels_last_kernel(O, cg, taps, xt, 1, padded),
                               (View("w", (O, cg, taps)), View(w_ohwc.name, (O, taps, padded)))))
        w_view = View(w_ohwc.name, (O, K))
    bm, bn, bk = point.tile
    splits, bias = k_splits(point.split_k, point.tile, *s.gemm, s.groups), len(types) > 2
    main = conv_tc.make_kernel(s, xt, bm, bn, bk, point.warps, point.stages, bias=bias and splits == 1,
                               splits=splits)
    if splits == 1:
        launches.append(Launch(main, (x_nhwc.name, w_view, b, "y")))
        return Plan(inputs, (y,), tuple(temps), tuple(launches))
    partial, split = _split_launches(s, splits, xt, bias, main, x_nhwc.name, w_view)
    return Plan(inputs, (y,), tuple(temps) + (partial,), tuple(launches) + split)


def implicit_simt_plan(op, types, attrs, point: ConvSimtPoint) -> Plan:
    s, inputs, y, b = _operands(op, types, attrs)
    bm, bn = tile_shape(point.warps, point.lanes, point.micro, point.repeats)
    splits, bias = k_splits(point.split_k, (bm, bn, point.bk), *s.gemm, s.groups), len(types) > 2
    main = conv_simt.make_kernel(s, point.warps, point.lanes, point.micro, point.repeats, point.bk,
                                 bias=bias and splits == 1, splits=splits)
    w = View("w", (s.out_channels, s.gemm[2]))
    if splits == 1:
        return Plan(inputs, (y,), (), (Launch(main, ("x", w, b, "y")),))
    partial, split = _split_launches(s, splits, dt.float32, bias, main, "x", w)
    return Plan(inputs, (y,), (partial,), split)


def _tensor_core(types, attrs):
    """f16/bf16, beyond the window template's reach or with 16 channels per group or more."""
    return types[0].dtype in (dt.float16, dt.bfloat16) and (not small_convolution(types, attrs) or
                                                             types[1].shape[1] >= 16)


def _cuda_core(types, attrs):
    """f32 beyond the window template's reach."""
    return types[0].dtype == dt.float32 and not small_convolution(types, attrs)


CONV_SIMT_TEMPLATE = Template("conv2d_implicit_simt", ("conv2d",), _cuda_core, CONV_SIMT_CANDIDATES, ConvSimtPoint(),
                              conv_simt_resources, implicit_simt_plan)
CONV_TC_TEMPLATE = Template("conv2d_implicit_tc", ("conv2d",), _tensor_core, CONV_TC_CANDIDATES, ConvTcPoint(),
                            conv_tc_resources, implicit_tc_plan)
