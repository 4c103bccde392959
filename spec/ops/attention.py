"""Scaled dot-product attention (torch SDPA / ONNX Attention, opset 23, 4-D inputs).

q: (B, H, S, D), k: (B, G, T, D), v: (B, G, T, E) with G dividing H (G < H: grouped-query
attention, query head h reading key/value head h // (H / G), as ONNX and torch's enable_gqa
repeat them), optional mask broadcastable to (B, H, S, T):
bool (True = attend: a padding mask) or of q's dtype (added to the scores). is_causal=1 keeps
j <= i (upper-left alignment, as torch and ONNX); scale defaults to 1 / sqrt(D).
Definition (f32 throughout, the output rounded once):
  s[b,h,i,j] = (sum_d q[b,h,i,d] k[b,g,j,d]) * scale (+ mask), -inf where masked out, g = h // (H / G);
  m = max_j s; p = exp(s - m), 0 where s = -inf; l = sum_j p; y[b,h,i,e] = (sum_j p v[b,g,j,e]) / l.
A row with every position masked out (every s = -inf) is 0, as in torch (its "safe softmax"
since 2.5) and ONNX's reference, not 0/0. q, k, v are not injective
(the operator is an anchor; schedules compute it flash-style, with an online softmax).
"""
from __future__ import annotations

import math

import numpy as np

from .. import dtypes as dt
from .. import ir
from .compute import Task, TensorInput, call, cast, cmp, compute, reduce, select
from .elementwise import broadcast_load, broadcast_shape
from .registry import FLOATS, Attr, Example, OnnxNode, Operator, TensorType, get, random_array, register, to_storage

F32 = dt.float32


def _check(types, attrs):
    op = get("attention")
    q, k, v, *mask = types
    op.same_dtype(types, 3)
    for nm, t in zip("qkv", (q, k, v)):
        if len(t.shape) != 4:
            raise op.fail(f"input {nm} must be 4-D (batch, heads, sequence, head dim), got {list(t.shape)}")
    if q.shape[0] != k.shape[0] or q.shape[1] % k.shape[1] or k.shape[:3] != v.shape[:3]:
        raise op.fail(f"batch/heads/sequence of q{list(q.shape)}, k{list(k.shape)}, v{list(v.shape)} do not match "
                      "(q, k: same batch, k's heads dividing q's; k, v: same batch, heads and length)")
    if q.shape[3] != k.shape[3]:
        raise op.fail(f"head dimensions differ: q[..., {q.shape[3]}] vs k[..., {k.shape[3]}]")
    scores = q.shape[:3] + (k.shape[2],)
    if mask:
        m = mask[0]
        if m.dtype not in (dt.boolean, q.dtype):
            raise op.fail(f"input mask must be bool or {q.dtype.short} (additive), got {m.dtype.short}")
        if broadcast_shape(op, ("mask", "scores"), [m, TensorType(m.dtype, scores)]) != scores:
            raise op.fail(f"input mask{list(m.shape)} must broadcast to the scores {list(scores)}")
    return q.shape[:3] + (v.shape[3],)


def _scale(types, attrs) -> float:
    return attrs["scale"] if attrs["scale"] is not None else 1.0 / math.sqrt(types[0].shape[3])


def _task(types, attrs):
    q, k, v, *mask = (TensorInput(nm, t.shape, t.dtype) for nm, t in zip(("q", "k", "v", "mask"), types))
    out = _check(types, attrs)
    (b, h, s_len, d), t_len = q.shape, k.shape[2]
    group = h // k.shape[1]                   # query heads per key/value head
    scale = _scale(types, attrs)

    def kv_head(hi):
        return hi if group == 1 else ir.binary("/", hi, group)

    def score(bi, hi, i, j):
        dot = reduce((d,), lambda r: cast(q[bi, hi, i, r], F32) * cast(k[bi, kv_head(hi), j, r], F32), "sum") * \
            float(scale)
        keep = cmp("<=", j, i) if attrs["is_causal"] else ir.const(True)
        if mask:
            mv = broadcast_load(mask[0], (bi, hi, i, j))
            if mask[0].dtype is dt.boolean:
                keep = cmp("&&", keep, mv)
            else:
                dot = dot + cast(mv, F32)
        return select(keep, dot, -math.inf)
    s = compute("s", (b, h, s_len, t_len), score)
    m = compute("m", (b, h, s_len), lambda bi, hi, i: reduce((t_len,), lambda j: s[bi, hi, i, j], "max"))
    p = compute("p", (b, h, s_len, t_len), lambda bi, hi, i, j: select(
        cmp("==", s[bi, hi, i, j], -math.inf), 0.0, call("exp", s[bi, hi, i, j] - m[bi, hi, i])))
    l_ = compute("l", (b, h, s_len), lambda bi, hi, i: reduce((t_len,), lambda j: p[bi, hi, i, j], "sum"))
    y = compute("y", out, lambda bi, hi, i, e: select(cmp(">", l_[bi, hi, i], 0.0), ir.binary(
        "/", reduce((t_len,), lambda j: p[bi, hi, i, j] * cast(v[bi, kv_head(hi), j, e], F32), "sum"),
        l_[bi, hi, i]), 0.0),
        q.dtype)
    return Task("attention", (q, k, v, *mask), (s, m, p, l_, y), ("y",), attrs=tuple(attrs.items()))


def _ref(values, types, attrs):
    q, k, v, *mask = values
    group = q.shape[1] // k.shape[1]
    k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
    s = q @ np.swapaxes(k, -1, -2) * _scale(types, attrs)
    keep = np.ones(s.shape, bool)
    if attrs["is_causal"]:
        keep &= np.tril(np.ones(s.shape[-2:], bool))
    if mask and types[3].dtype is dt.boolean:
        keep &= mask[0]
    elif mask:
        s = s + mask[0]
    s = np.where(keep, s, -np.inf)
    top = s.max(-1, keepdims=True)
    p = np.exp(s - np.where(top == -np.inf, 0.0, top))         # 0 where s = -inf
    total = p.sum(-1, keepdims=True)
    return [(p / np.where(total > 0, total, 1.0)) @ v]


def _sample(rng, types, attrs):
    out = [random_array(rng, t, -1.5, 1.5) for t in types[:3]]
    if len(types) > 3:
        m = types[3]
        if m.dtype is dt.boolean:
            keep = rng.random(m.shape) < 0.6
            keep[..., 0] = True                # every row keeps a position (else its output is 0)
            out.append(keep)
        else:
            out.append(to_storage(rng.uniform(-2.0, 0.0, m.shape), m.dtype))
    return out


def _onnx(types, attrs):
    return OnnxNode("Attention", {"is_causal": attrs["is_causal"], "scale": float(_scale(types, attrs))}, opset=23)


register(Operator(
    "attention", "attention", "softmax(q k^T scale + mask) v, causal and padding masks, grouped-query heads", ("q", "k", "v", "mask?"),
    (Attr("is_causal", 0, int, "1: position i attends to j <= i", (0, 1)),
     Attr("scale", None, (int, float), "score scale (None: 1 / sqrt(head dim))")),
    FLOATS, lambda types, a: [TensorType(types[0].dtype, _check(types, a))], _ref, _task,
    (Example(((1, 2, 5, 8), (1, 2, 7, 8), (1, 2, 7, 4))),
     Example(((2, 1, 6, 4), (2, 1, 6, 4), (2, 1, 6, 3)), {"is_causal": 1}),
     Example(((1, 2, 3, 8), (1, 2, 9, 8), (1, 2, 9, 8), (3, 9)), {"scale": 0.5}, (None, None, None, dt.boolean)),
     Example(((2, 2, 4, 5), (2, 2, 4, 5), (2, 2, 4, 5), (2, 1, 4, 4)), {"is_causal": 1}),
     Example(((1, 1, 1, 3), (1, 1, 1, 3), (1, 1, 1, 1))),
     Example(((2, 4, 5, 8), (2, 2, 6, 8), (2, 2, 6, 4)), {"is_causal": 1})),
    "Attention", _onnx, _sample))
