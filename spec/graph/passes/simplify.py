"""simplify: identity operators removed, reshape chains and transpose chains collapsed.

- an operator that returns its input unchanged (a reshape-family op or expand to the same
  shape, a transpose by the identity permutation, a cast to the same dtype) is dropped and its
  users read the input;
- a reshape-family op (reshape, flatten, squeeze, unsqueeze) of another one becomes one
  reshape of the first one's input, when the result has at most one symbolic dimension (it is
  then written as -1, which the element count determines);
- transpose(transpose(x, p), q) becomes transpose(x, p∘q).
Nodes that become unused stay for dead_code to remove.
"""
from __future__ import annotations

from ..ir import Graph, Node

RESHAPES = ("reshape", "flatten", "squeeze", "unsqueeze")


def _perm(n: Node, rank: int) -> tuple[int, ...]:
    p = n.attributes.get("perm")
    return tuple(range(rank))[::-1] if p is None else tuple(p)


def _is_identity(n: Node, types) -> bool:
    x, y = types[n.inputs[0]], n.outputs[0].type
    if n.op in RESHAPES + ("expand",):
        return x.shape == y.shape
    if n.op == "transpose":
        return _perm(n, len(x.shape)) == tuple(range(len(x.shape)))
    return n.op == "cast" and x.dtype == y.dtype


def _collapse(n: Node, producer: Node | None, types) -> Node | None:
    """n rewritten to skip its producer (a chain of two), or None."""
    if producer is None or len(producer.outputs) != 1:
        return None
    if n.op in RESHAPES and producer.op in RESHAPES:
        shape = n.outputs[0].type.shape
        if sum(isinstance(d, str) for d in shape) > 1:
            return None
        target = tuple(-1 if isinstance(d, str) else d for d in shape)
        return Node.make(n.name, "reshape", producer.inputs[:1], n.outputs, {"shape": target})
    if n.op == "transpose" and producer.op == "transpose":
        rank = len(types[n.inputs[0]].shape)
        p, q = _perm(producer, rank), _perm(n, rank)
        return Node.make(n.name, "transpose", producer.inputs, n.outputs, {"perm": tuple(p[j] for j in q)})
    return None


def simplify(g: Graph) -> Graph:
    """Identity ops dropped, reshape/transpose chains collapsed."""
    types = g.types()
    rename: dict[str, str] = {}
    made: dict[str, Node] = {}
    nodes = []
    for n in g.nodes:
        n = Node(n.name, n.op, tuple(rename.get(i, i) for i in n.inputs), n.outputs, n.attrs)
        n = _collapse(n, made.get(n.inputs[0]) if n.inputs else None, types) or n
        if n.op in RESHAPES + ("expand", "transpose", "cast") and _is_identity(n, types):
            rename[n.outputs[0].name] = n.inputs[0]
            continue
        made.update((v.name, n) for v in n.outputs)
        nodes.append(n)
    return g.replace(nodes=nodes, outputs=[rename.get(o, o) for o in g.outputs])
