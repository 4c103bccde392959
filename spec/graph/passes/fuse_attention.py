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

A constant mask that is 0 where key j ≤ query i and at most -10⁴ where j > i (the additive
causal mask GPT-2 style models carry, at any broadcast over batch and heads) becomes
is_causal=1 with no mask: the masked terms are exp(-10⁴ + (s − max)) = 0 in f32 unless a
row's scores spread by more than 9 900, past where the mask itself would stop masking. The
kernel then skips the tiles above the diagonal and reads no mask.

The fused node computes the same function with one rounding at the end instead of one per
operator (SPEC §11.2), so results move within the operators' tolerances. Unused producers
(the transpose of k) stay for dead_code.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...lang import TensorType
from ...ops.registry import FLOATS, values_of
from ..ir import Graph, Node, Value

SWAP_LAST = (0, 1, 3, 2)
CAUSAL_MASKED = -1.0e4          # a causal mask's entries above the diagonal are at most this


def _is_causal_mask(values: np.ndarray) -> bool:
    """values (4-D, float64) is 0 on and below the diagonal of its last two axes and at most
    CAUSAL_MASKED above it, in every broadcast copy."""
    above = np.triu(np.ones(values.shape[-2:], bool), 1)
    return bool((values[..., ~above] == 0).all() and (values[..., above] <= CAUSAL_MASKED).all())


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
    scores: tuple                      # the scores' shape [B, H, S, T]


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
        m = _Match(chain + found, mm.inputs[0], mm.inputs[1], pv.inputs[1], scale, mask, mm.outputs[0].type.shape)
        return m if self.fits(m) else None

    def fits(self, m: _Match) -> bool:
        """The attention operator's shapes and dtypes, and every step of the chain keeping the
        scores' shape (a scale or mask must not broadcast them to more dimensions)."""
        q, kt, v = self.types[m.q], self.types[m.kt], self.types[m.v]
        if not all(len(t.shape) == 4 for t in (q, kt, v)) or q.dtype not in FLOATS or \
                not q.dtype == kt.dtype == v.dtype:
            return False
        scores = m.scores
        if any(n.outputs[0].type.shape != scores for n in m.nodes[1:]):
            return False
        (b, h, _, d), (kb, kh, kd, t), (vb, vh, vt, _) = q.shape, kt.shape, v.shape
        if (b, h, d) != (kb, kh, kd) or (b, h, t) != (vb, vh, vt):
            return False
        if m.mask is None:
            return True
        mask = self.types[m.mask]
        return mask.dtype == q.dtype and _broadcasts(mask.shape, scores)

    def causal(self, m: _Match) -> bool:
        """Whether the mask is a constant additive causal mask over the whole [S, T] of the
        scores (_is_causal_mask)."""
        a = self.arrays.get(m.mask)
        if a is None or a.ndim < 2 or a.shape[-2:] != tuple(m.scores[-2:]):
            return False
        return _is_causal_mask(values_of(a, self.types[m.mask].dtype).reshape((1,) * (4 - a.ndim) + a.shape))

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
        causal = m.mask is not None and reader.causal(m)
        inputs = (m.q, k_name, m.v) + ((m.mask,) if m.mask is not None and not causal else ())
        attention = Node.make(f"{n.name}.attention", "attention", inputs, n.outputs,
                              {"is_causal": int(causal), "scale": m.scale})
        replaced[id(n)] = new + [attention]             # in the final matmul's place: every input exists
        dropped.update(id(x) for x in m.nodes[1:])
    if not replaced:
        return g
    return g.replace(nodes=[x for n in g.nodes if id(n) not in dropped for x in replaced.get(id(n), [n])])
