"""Scaled dot-product attention: its plan (one launch of `attention_kernel`) and two templates.

f16/bf16 run on tensor cores, f32 on the SIMT path of the same kernel. The space is warps
per block (16 query rows each) and keys per K/V tile; a point's resources are estimated at
head dimension 128 (the widest the issue's benchmarks use). A plan for wider heads halves
the key tile until its shared memory fits the opt-in limit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from taskmap.spec import dtypes as dt

from . import attention_kernel
from .plan import Launch, Plan, Tensor, View
from .space import SM90, Resources, product, register_estimate
from .template import Template

RESOURCE_HEAD_DIM = 128


@dataclass(frozen=True)
class AttentionPoint:
    warps: int = 4           # block_m = 16 · warps query rows per block
    block_n: int = 64        # keys per K/V tile


def _resources(dtype):
    def resources(p: AttentionPoint) -> Resources | None:
        if p.block_n % 16:
            return None
        d = RESOURCE_HEAD_DIM
        shared = attention_kernel.shared_bytes(dtype, d, d, p.warps, p.block_n)
        words = p.block_n // 2 + d // 2          # scores, output accumulator (f32, per lane)
        if dtype.nbytes == 2:
            words += d // 4 + p.block_n // 2     # Q and P (hi, lo) fragments, two 16-bit elements a word
        else:
            words += p.block_n // 4              # the K values of one step
        return Resources(32 * p.warps, shared, register_estimate(words))
    return resources


CANDIDATES = tuple(product(AttentionPoint, warps=(2, 4, 8), block_n=(16, 32, 64, 128)))


def _mask_kind(types):
    """(dtype, full dims) of the optional mask, left-padded to 4-D; None without one."""
    if len(types) < 4:
        return None, None
    m = types[3]
    shape = (1,) * (4 - len(m.shape)) + tuple(m.shape)
    scores = types[0].shape[:3] + (types[1].shape[2],)
    return (m.dtype, tuple(n > 1 or s == 1 for n, s in zip(shape, scores))), shape


def attention_plan(op, types, attrs, point: AttentionPoint) -> Plan:
    (y_type,) = op.infer(types, **attrs)
    q, k, v = types[:3]
    (B, H, S, D), (G, T), E = q.shape, k.shape[1:3], v.shape[3]
    block_n = point.block_n
    while block_n > 16 and attention_kernel.shared_bytes(q.dtype, D, E, point.warps, block_n) > SM90.shared_opt_in:
        block_n //= 2
    mask, mask_shape = _mask_kind(types)
    kernel = attention_kernel.make_kernel(q.dtype, D, E, point.warps, block_n, bool(attrs["is_causal"]), mask)
    scale = attrs["scale"] if attrs["scale"] is not None else 1.0 / math.sqrt(D)
    inputs = [Tensor("q", q.shape, q.dtype), Tensor("k", k.shape, k.dtype), Tensor("v", v.shape, v.dtype)]
    if mask is not None:
        inputs.append(Tensor("mask", types[3].shape, types[3].dtype))
        mask_arg = View("mask", mask_shape)
    else:
        mask_arg = View("q", (1, 1, 1, 1))       # a parameter the kernel never reads
    args = (B, H, G, S, T, float(scale) * attention_kernel.LOG2E, View("q", (B * H * S, D)),
            View("k", (B * G * T, D)), View("v", (B * G * T, E)), mask_arg, View("y", (B * H * S, E)))
    return Plan(tuple(inputs), (Tensor("y", y_type.shape, y_type.dtype),), (), (Launch(kernel, args),))


def _dtype_is(*dtypes):
    return lambda types, attrs: types[0].dtype in dtypes


DEFAULT = AttentionPoint()
TC_TEMPLATE = Template("attention_tc", ("attention",), _dtype_is(dt.float16, dt.bfloat16), CANDIDATES, DEFAULT,
                       _resources(dt.float16), attention_plan)
SIMT_TEMPLATE = Template("attention_simt", ("attention",), _dtype_is(dt.float32), CANDIDATES, DEFAULT,
                         _resources(dt.float32), attention_plan)
TEMPLATES: tuple[Template, ...] = (TC_TEMPLATE, SIMT_TEMPLATE)
