"""infer_shapes: every node output's type derived from the graph inputs' through the operators' `infer`.

Symbolic dimensions survive: the graph's types are evaluated under two probe bindings of the
input symbols (verify.probe_bindings); an output dimension equal under both is static, one
that follows a symbol under both is that symbol, and any other (a product such as N*4) gets
a fresh symbol named after the value. With `dims` ({"N": 8}) the inputs' symbols are bound
first, which specializes the whole graph to static shapes. Declared types are kept where they
agree (and are an error where they don't, naming the node).
"""
from __future__ import annotations

from ...lang import TensorType
from ..ir import Graph, Node, Value
from ..verify import bind, evaluate_types, probe_bindings


def _dim(value: str, k: int, sizes: list[int], bindings: list[dict[str, int]], declared) -> int | str:
    if len(set(sizes)) == 1:
        return sizes[0]
    for name in ([declared] if isinstance(declared, str) else []) + list(bindings[0]):
        if all(b.get(name) == s for b, s in zip(bindings, sizes)):
            return name
    return f"{value}.{k}"


def infer_shapes(g: Graph, dims: dict[str, int] | None = None) -> Graph:
    """Node output types re-derived from the input types (symbolic dims kept; `dims` binds them)."""
    if dims:
        g = g.replace(inputs=[Value(v.name, bind(v.type, dims)) for v in g.inputs])
    bindings = [dict(b) for b in probe_bindings(g)]
    envs = [evaluate_types(g, b, typed=False) for b in bindings]
    nodes = []
    for n in g.nodes:
        outs = []
        for v in n.outputs:
            got = [env[v.name] for env in envs]
            declared = v.type.shape if v.type is not None else (None,) * len(got[0].shape)
            shape = tuple(_dim(v.name, k, [t.shape[k] for t in got], bindings, declared[k])
                          for k in range(len(got[0].shape)))
            outs.append(Value(v.name, TensorType(got[0].dtype, shape)))
        nodes.append(Node(n.name, n.op, n.inputs, tuple(outs), n.attrs))
    return g.replace(nodes=nodes)
