"""A Graph as JSON-able data and back (what saved programs store: frontends.saved).

    data, arrays = to_data(graph)        # arrays: constant digest -> its storage array
    graph = from_data(data, arrays)      # verified

Types are [dtype name, shape] (a dimension an int or a symbol). Attribute values are ints,
strs, bools, None and finite floats as JSON has them; tuples as {"tuple": [...]}, DTypes as
{"dtype": name}, non-finite floats as {"float": "inf"}. Constants are referred to by the digest
of their dtype, shape and bytes, so graphs that share weights (one program's specializations)
store them once.
"""
from __future__ import annotations

import hashlib
import math

import numpy as np

from .. import dtypes as dt
from ..lang import TensorType
from .ir import Constant, Graph, Node, Value
from .verify import GraphError, verify


def constant_digest(a: np.ndarray) -> str:
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:32]


def to_data(g: Graph) -> tuple[dict, dict[str, np.ndarray]]:
    arrays = {constant_digest(c.array): c.array for c in g.constants}
    data = {
        "name": g.name,
        "inputs": [[v.name, *type_data(v.type, v.name)] for v in g.inputs],
        "outputs": list(g.outputs),
        "constants": [[c.name, constant_digest(c.array)] for c in g.constants],
        "nodes": [{"name": n.name, "op": n.op, "inputs": list(n.inputs),
                   "outputs": [[v.name, *type_data(v.type, v.name)] for v in n.outputs],
                   "attrs": {k: _value(v, f"node {n.name} attribute {k}") for k, v in n.attrs}} for n in g.nodes],
    }
    return data, arrays


def from_data(data: dict, arrays: dict[str, np.ndarray]) -> Graph:
    """The graph `to_data` wrote; GraphError for data that is not one (a missing constant, an
    unknown dtype, a graph the verifier rejects)."""
    try:
        constants = []
        for name, digest in data["constants"]:
            if digest not in arrays:
                raise GraphError(f"constant {name}: its array {digest} is missing")
            constants.append(Constant.of(name, arrays[digest]))
        g = Graph(data["name"], tuple(Value(n, type_from_data(t, s)) for n, t, s in data["inputs"]), tuple(data["outputs"]),
                  tuple(Node.make(n["name"], n["op"], n["inputs"], [Value(v, type_from_data(t, s)) for v, t, s in n["outputs"]],
                                  {k: _decode(v) for k, v in n["attrs"].items()}) for n in data["nodes"]),
                  tuple(constants))
    except (KeyError, TypeError, ValueError) as e:
        raise GraphError(f"not a saved graph ({type(e).__name__}: {e})") from None
    return verify(g)


def type_data(t: TensorType | None, name: str) -> list:
    """[dtype name, shape] of value `name`'s type."""
    if t is None:
        raise GraphError(f"value {name} has no type yet; run passes.infer_shapes before saving")
    return [t.dtype.name, list(t.shape)]


def type_from_data(dtype: str, shape) -> TensorType:
    return TensorType(dt.by_name(dtype), tuple(d if isinstance(d, str) else int(d) for d in shape))


def _value(v, what: str):
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else {"float": repr(v)}
    if isinstance(v, tuple):
        return {"tuple": [_value(x, what) for x in v]}
    if isinstance(v, dt.DType):
        return {"dtype": v.name}
    raise GraphError(f"{what}: a {type(v).__name__} value cannot be saved (ints, floats, strs, bools, None, "
                     "tuples and dtypes can)")


def _decode(v):
    if isinstance(v, dict):
        (tag, x), = v.items()
        return {"tuple": lambda: tuple(_decode(y) for y in x), "dtype": lambda: dt.by_name(x),
                "float": lambda: float(x)}[tag]()
    return v
