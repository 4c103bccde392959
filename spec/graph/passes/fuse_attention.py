"""fuse_attention: softmax(q kᵀ · c + mask) v written out as operators becomes one attention node.

The pattern exports produce (BERT and GPT-2 style, frontends/onnx_models.py; transformers'
eager attention) is, over 4-D (batch, heads, sequence, head dim) values:

    s = matmul(q, kt)                 kt: [B, H, D, T], often transpose(k-ish, ...)
    s = div(s, c) | mul(s, c) | mul(c, s)       optional; c a constant of one element
    s = add(s, mask) | add(mask, s)             optional; mask of q's dtype broadcasting to s
    p = softmax(s, axis=-1)
    y = matmul(p, v)

It becomes y = attention(q, k, v[, mask], scale=1/c or c) with k = kt with its last two axes
swapped: transpose(x, perm ∘ swap) when kt is itself transpose(x, perm) (the identity
permutation gives x itself), else a new transpose of kt. Only values the chain alone reads
are folded in (each intermediate has one reader and is no graph output), the shapes must be
the attention operator's (q, k with the same batch and heads, k, v with the same length,
symbolic dimensions compared by name) and the dtypes one float type. The scale must come
before the mask (softmax(s·c + mask) is the operator; softmax((s + mask)·c) is not).

The fused node computes the same function with one rounding at the end instead of one per
operator (SPEC §11.2), so results move within the operators' tolerances. Unused producers
(the transpose of k) stay for dead_code.
"""
from __future__ import annotations

from dataclasses import dataclass

from ...lang import TensorType
from ...ops.registry import FLOATS, values_of
from ..ir import Graph, Node, Value

SWAP_LAST = (0, 1, 3, 2)


def _broadcasts(mask_shape, scores_shape) -> bool:
    if len(mask_shape) > 4:
        return False
    padded = (1,) * (4 - len(mask_shape)) + tuple(mask_shape)
    return all(m == 1 or m == s for m, s in zip(padded, scores_shape))


@dataclass
class _Match:
    nodes: list[Node]                  # the chain, the final matmul first
    q: str
    kt: str
    v: str
    scale: float
    mask: str | None


class _Reader:
    """Pattern reading over one graph: each step returns None where the pattern breaks."""

    def __init__(self, g: Graph):
        self.g, self.producers, self.users = g, g.producers(), g.users()
        self.arrays, self.types = g.constant_arrays(), g.types()

    def only_reader(self, name: str, op: str | tuple) -> Node | None:
        """The producer of `name` when it is an `op` node whose output only the chain reads."""
        n = self.producers.get(name)
        ok = n is not None and n.op in ((op,) if isinstance(op, str) else op) and len(n.outputs) == 1 and \
            len(self.users.get(name, ())) == 1 and name not in self.g.outputs
        return n if ok else None

    def scalar(self, name: str) -> float | None:
        """The value of a one-element constant."""
        a = self.arrays.get(name)
        return None if a is None or a.size != 1 else float(values_of(a, self.types[name].dtype).reshape(-1)[0])

    def scores(self, name: str):
        """([scale node,] q·kt matmul), scale for `name` = matmul(q, kt) [· c | / c]."""
        n = self.only_reader(name, ("div", "mul", "matmul"))
        if n is None or n.op == "matmul":
            return (None, 1.0) if n is None else ([n], 1.0)
        a, b = n.inputs
        if self.scalar(b) is not None:
            c, other = self.scalar(b), a
        elif n.op == "mul" and self.scalar(a) is not None:
            c, other = self.scalar(a), b
        else:
            return None, 1.0
        mm = self.only_reader(other, "matmul")
        if mm is None or c == 0.0:
            return None, 1.0
        return [n, mm], (1.0 / c if n.op == "div" else c)

    def match(self, pv: Node) -> _Match | None:
        p = self.only_reader(pv.inputs[0], "softmax")
        if p is None or p.attributes["axis"] not in (-1, 3):
            return None
        chain, mask = [pv, p], None
        found, scale = self.scores(p.inputs[0])
        if found is None:
            add = self.only_reader(p.inputs[0], "add")
            for scores_side, mask_side in ((0, 1), (1, 0)) if add is not None else ():
                found, scale = self.scores(add.inputs[scores_side])
                if found is not None:
                    chain.append(add)
                    mask = add.inputs[mask_side]
                    break
        if found is None:
            return None
        mm = found[-1]
        m = _Match(chain + found, mm.inputs[0], mm.inputs[1], pv.inputs[1], scale, mask)
        return m if self.fits(m, mm.outputs[0].type.shape) else None

    def fits(self, m: _Match, scores) -> bool:
        """The attention operator's shapes and dtypes, and every step of the chain keeping the
        scores' shape (a scale or mask must not broadcast them to more dimensions)."""
        q, kt, v = self.types[m.q], self.types[m.kt], self.types[m.v]
        if not all(len(t.shape) == 4 for t in (q, kt, v)) or q.dtype not in FLOATS or \
                not q.dtype == kt.dtype == v.dtype:
            return False
        if any(n.outputs[0].type.shape != scores for n in m.nodes[1:]):
            return False
        (b, h, _, d), (kb, kh, kd, t), (vb, vh, vt, _) = q.shape, kt.shape, v.shape
        if (b, h, d) != (kb, kh, kd) or (b, h, t) != (vb, vh, vt):
            return False
        if m.mask is None:
            return True
        mask = self.types[m.mask]
        return mask.dtype == q.dtype and _broadcasts(mask.shape, scores)

    def key(self, m: _Match, name: str) -> tuple[str, list[Node]]:
        """The [B, H, T, D] key value, and the node computing it (none when it exists already)."""
        kt_node = self.producers.get(m.kt)
        source, order = m.kt, SWAP_LAST
        if kt_node is not None and kt_node.op == "transpose":
            perm = tuple(kt_node.attributes.get("perm") or (3, 2, 1, 0))
            source, order = kt_node.inputs[0], tuple(perm[j] for j in SWAP_LAST)
            if order == (0, 1, 2, 3):
                return source, []
        t = self.types[m.kt]
        k_type = TensorType(t.dtype, tuple(t.shape[i] for i in SWAP_LAST))
        return name, [Node.make(name, "transpose", (source,), (Value(name, k_type),), {"perm": order})]


def fuse_attention(g: Graph) -> Graph:
    """Each matmul → scale → mask add → softmax → matmul chain replaced by one attention node."""
    reader = _Reader(g)
    replaced: dict[int, list[Node]] = {}
    dropped: set[int] = set()
    for n in g.nodes:
        m = reader.match(n) if n.op == "matmul" else None
        if m is None or any(id(x) in dropped or id(x) in replaced for x in m.nodes):
            continue
        k_name, new = reader.key(m, f"{m.kt}.k")
        inputs = (m.q, k_name, m.v) + ((m.mask,) if m.mask is not None else ())
        attention = Node.make(f"{n.name}.attention", "attention", inputs, n.outputs, {"is_causal": 0, "scale": m.scale})
        replaced[id(n)] = new + [attention]             # in the final matmul's place: every input exists
        dropped.update(id(x) for x in m.nodes[1:])
    if not replaced:
        return g
    return g.replace(nodes=[x for n in g.nodes if id(n) not in dropped for x in replaced.get(id(n), [n])])
