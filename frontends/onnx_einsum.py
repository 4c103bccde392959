"""ONNX Einsum lowered onto existing graph operators: transpose, reshape, slice, sum, expand and
batch_matmul — no kernel of its own, so fusion and the matmul templates apply as to any graph.

    lower(imp, node, "bij,bjk->bik", ["a", "b"])      # emits the nodes, aliases the output

The equation is parsed as ONNX (numpy) reads it: explicit (`->`) or implicit output (the
ellipsis dimensions, then the letters used once, alphabetically), `...` broadcast from the
right. Each operand first loses its repeated letters (a diagonal: the two axes moved last,
merged and sliced with step n + 1) and the letters no later operand nor the output uses (summed
out). Operands are then contracted left to right, two at a time, as one batch matmul: letters
in both and still needed are batch dimensions, letters in both and no longer needed are the
contraction, the rest are the rows of one side or the columns of the other. Size-1 dimensions
broadcast against their partner (expanded). Finally the result is transposed to the output
order. Shapes must be static (they decide the reshapes).
"""
from __future__ import annotations

import math
import string
from dataclasses import dataclass

from .onnx_import import ConvertError, Importer, OnnxNode


@dataclass
class Operand:
    name: str                     # the graph value
    letters: list[str]            # one per dimension
    shape: list[int]


def parse(equation: str, ranks: list[int]) -> tuple[list[list[str]], list[str]]:
    """(letters of each operand, letters of the output), `...` expanded into fresh letters."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ranks):
        raise ConvertError(f"equation {equation!r} has {len(terms)} operands, the node {len(ranks)} inputs")
    for t in terms + [rhs]:
        bad = set(t.replace("...", "")) - set(string.ascii_letters)
        if bad or t.replace("...", "").count(".") or t.count("...") > 1:
            raise ConvertError(f"equation {equation!r}: term {t!r} is not letters with at most one '...'")
    ellipsis = max((r - len(t.replace("...", "")) for t, r in zip(terms, ranks) if "..." in t), default=0)
    fresh = [chr(0x3b1 + k) for k in range(ellipsis)]           # Greek letters: never in an equation

    def expand(term: str, rank: int | None) -> list[str]:
        if "..." not in term:
            if rank is not None and len(term) != rank:
                raise ConvertError(f"equation {equation!r}: term {term!r} has {len(term)} letters for rank {rank}")
            return list(term)
        head, tail = term.split("...")
        n = ellipsis if rank is None else rank - len(head) - len(tail)
        if n < 0:
            raise ConvertError(f"equation {equation!r}: term {term!r} has more letters than rank {rank}")
        return list(head) + fresh[ellipsis - n:] + list(tail)

    operands = [expand(t, r) for t, r in zip(terms, ranks)]
    if arrow:
        out = expand(rhs, None)
    else:
        counts = [c for letters in operands for c in letters if c not in fresh]
        out = fresh + sorted(c for c in set(counts) if counts.count(c) == 1)
    missing = [c for c in out if not any(c in o for o in operands)]
    if missing or len(set(out)) != len(out):
        raise ConvertError(f"equation {equation!r}: the output names {'a letter twice' if not missing else missing}")
    return operands, out


class Lowering:
    def __init__(self, imp: Importer, node: OnnxNode):
        self.imp, self.node = imp, node

    def emit(self, op: str, x: Operand, attrs: dict, letters: list[str], shape: list[int],
             other: str | None = None) -> Operand:
        (name,) = self.imp.emit(self.node, op, [x.name] + ([other] if other else []), attrs)
        return Operand(name, letters, shape)

    def permute(self, x: Operand, perm: list[int]) -> Operand:
        if perm == list(range(len(perm))):
            return x
        return self.emit("transpose", x, {"perm": tuple(perm)}, [x.letters[p] for p in perm], [x.shape[p] for p in perm])

    def transpose(self, x: Operand, letters: list[str]) -> Operand:
        return self.permute(x, [x.letters.index(c) for c in letters])

    def reshape(self, x: Operand, shape: list[int], letters: list[str]) -> Operand:
        if shape == x.shape:
            return Operand(x.name, letters, shape)
        return self.emit("reshape", x, {"shape": tuple(shape)}, letters, shape)

    def diagonal(self, x: Operand) -> Operand:
        """x without repeated letters: each pair of axes sharing one kept as its diagonal."""
        while len(set(x.letters)) < len(x.letters):
            c = next(c for c in x.letters if x.letters.count(c) > 1)
            a, b = [k for k, d in enumerate(x.letters) if d == c][:2]
            n = x.shape[a]
            if x.shape[b] != n:
                raise ConvertError(f"the diagonal of {c!r} joins dimensions of sizes {n} and {x.shape[b]}")
            rest = [k for k in range(len(x.letters)) if k not in (a, b)]
            moved = self.permute(x, rest + [a, b])
            letters, sizes = moved.letters[:-2] + [c], moved.shape[:-2]
            flat = self.reshape(moved, sizes + [n * n], letters)
            x = self.emit("slice", flat, {"starts": (0,), "ends": (n * n,), "axes": (len(rest),), "steps": (n + 1,)},
                          letters, sizes + [n])
        return x

    def sum_out(self, x: Operand, needed: set[str]) -> Operand:
        axes = tuple(k for k, c in enumerate(x.letters) if c not in needed)
        if not axes:
            return x
        keep = [k for k in range(len(x.letters)) if k not in axes]
        return self.emit("sum", x, {"axes": axes, "keepdims": False}, [x.letters[k] for k in keep],
                         [x.shape[k] for k in keep])

    def broadcast(self, x: Operand, sizes: dict[str, int]) -> Operand:
        shape = [sizes[c] for c in x.letters]
        return x if shape == x.shape else self.emit("expand", x, {"shape": tuple(shape)}, x.letters, shape)

    def contract(self, a: Operand, b: Operand, needed: set[str]) -> Operand:
        both = [c for c in a.letters if c in b.letters]
        batch = [c for c in both if c in needed]
        inner = [c for c in both if c not in needed]
        rows = [c for c in a.letters if c not in b.letters]
        cols = [c for c in b.letters if c not in a.letters]
        sizes = {c: max(n, dict(zip(b.letters, b.shape)).get(c, 1)) for c, n in zip(a.letters, a.shape)}
        sizes.update((c, n) for c, n in zip(b.letters, b.shape) if c not in sizes)
        a, b = self.broadcast(a, sizes), self.broadcast(b, sizes)
        size = lambda letters: math.prod(sizes[c] for c in letters)
        a3 = self.reshape(self.transpose(a, batch + rows + inner), [size(batch), size(rows), size(inner)], [])
        b3 = self.reshape(self.transpose(b, batch + inner + cols), [size(batch), size(inner), size(cols)], [])
        y = self.emit("batch_matmul", a3, {}, [], [size(batch), size(rows), size(cols)], other=b3.name)
        letters = batch + rows + cols
        return self.reshape(y, [sizes[c] for c in letters], letters)


def lower(imp: Importer, node: OnnxNode, equation: str, shapes: list[tuple[int, ...]]) -> None:
    """Emit the nodes computing the Einsum `node` and alias its output to the result."""
    letters, out = parse(equation, [len(s) for s in shapes])
    low = Lowering(imp, node)
    operands = [Operand(n, ls, list(s)) for n, ls, s in zip(node.inputs, letters, shapes)]

    def needed_after(k: int) -> set[str]:
        return set(out).union(*(o.letters for o in operands[k + 1:]))

    acc = low.sum_out(low.diagonal(operands[0]), needed_after(0))
    for k in range(1, len(operands)):
        nxt = low.sum_out(low.diagonal(operands[k]), needed_after(k) | set(acc.letters))
        acc = low.contract(acc, nxt, needed_after(k))       # keeps only needed letters: the rest were summed
    imp.alias(node.outputs[0], low.transpose(acc, out).name)
