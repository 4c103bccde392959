"""half_precision(dtype): an f32 graph computing in f16 or bf16, its interface unchanged.

Every f32 constant is stored in `dtype` (values beyond its finite range saturate to its
largest magnitude, as for attention masks' -3.4e38: -inf would make a fully masked row NaN),
every f32 graph input is cast to `dtype` where it enters and every f32 output cast back to
f32 where it leaves, and `cast` nodes to f32 cast to `dtype` instead; node output types are
re-derived (infer_shapes). The operators accumulate f16/bf16 in f32 (SPEC §11.1), so what
changes is the storage of activations and weights: what tensor cores and memory bandwidth
reward. Integer and bool values are left alone. The caller passes and receives f32 arrays.
"""
from __future__ import annotations

import numpy as np

from ... import dtypes as dt
from ...lang import TensorType
from ...ops.registry import to_storage, values_of
from ..ir import Constant, Graph, Node, Value
from .infer_shapes import infer_shapes

FINITE_MAX = {dt.float16: 65504.0, dt.bfloat16: 3.3895313892515355e38}


def _stored(c: Constant, t: dt.DType) -> Constant:
    if c.type.dtype is not dt.float32:
        return c
    values = values_of(c.array, dt.float32).astype(np.float64)
    finite = np.isfinite(values)
    values[finite] = np.clip(values[finite], -FINITE_MAX[t], FINITE_MAX[t])
    return Constant.of(c.name, to_storage(values, t))


def half_precision(t: dt.DType):
    """The pass computing in `t` (dt.float16 or dt.bfloat16)."""
    if t not in FINITE_MAX:
        raise ValueError(f"half_precision: {t.short} is not a half-precision float (f16 or bf16)")

    def run(g: Graph) -> Graph:
        types = g.types()
        # the f32 interface values' names inside: an input's cast, an output's producer's value
        inner = {v: f"{v}.{t.short}" for v in [i.name for i in g.inputs] + list(g.outputs)
                 if types[v] is not None and types[v].dtype is dt.float32}
        entry = [Node.make(f"{v.name}.to_{t.short}", "cast", (v.name,), (Value(inner[v.name], None),), {"to": t})
                 for v in g.inputs if v.name in inner]
        nodes = []
        for n in g.nodes:
            attrs = n.attributes
            if n.op == "cast" and attrs["to"] is dt.float32:
                attrs["to"] = t
            outputs = [Value(inner.get(v.name, v.name), None) for v in n.outputs]
            nodes.append(Node.make(n.name, n.op, (inner.get(i, i) for i in n.inputs), outputs, attrs))
        exit_ = [Node.make(f"{o}.to_f32", "cast", (inner[o],), (Value(o, TensorType(dt.float32, types[o].shape)),),
                           {"to": dt.float32}) for o in g.outputs if o in inner]
        out = g.replace(constants=[_stored(c, t) for c in g.constants], nodes=entry + nodes + exit_)
        return infer_shapes(out)
    return run
