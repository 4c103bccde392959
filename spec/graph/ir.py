"""The graph IR: a model as immutable, typed operator nodes (issue 11).

    g = Graph("mlp", inputs=(Value("x", TensorType(f32, ("N", 16))),),
              constants=(Constant.of("w", w),),
              nodes=(Node("mm", "matmul", ("x", "w"), (Value("y", TensorType(f32, ("N", 8))),)),),
              outputs=("y",))
    verify(g); print(g)

A value is named once: a graph input, a constant (an initializer: a read-only NumPy storage
array, bf16 as uint16 bits) or a node output. Types are `taskmap.lang.TensorType`s whose
dimensions are positive ints or symbols (a `str` such as "N": a size known only when the model
runs). A node applies a registry operator (`taskmap.spec.ops`) to named values, with
attributes as a sorted tuple of (name, value) pairs so that nodes stay hashable and immutable.
Nodes are kept in topological order (the verifier checks it); passes build new graphs with
`Graph.replace` rather than editing one.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from ..lang import TensorType
from ..ops.registry import array_dtype

Dim = int | str


def is_static(t: TensorType) -> bool:
    return all(isinstance(d, int) for d in t.shape)


def symbols(t: TensorType) -> list[str]:
    return [d for d in t.shape if isinstance(d, str)]


def format_type(t: TensorType) -> str:
    return f"{t.dtype.short}[{', '.join(str(d) for d in t.shape)}]"


@dataclass(frozen=True)
class Value:
    name: str
    type: TensorType | None          # None only until passes.infer_shapes derives it


@dataclass(frozen=True, eq=False)
class Constant:
    """An initializer; `array` is read-only so a constant never changes under a graph."""
    name: str
    array: np.ndarray

    @staticmethod
    def of(name: str, array) -> "Constant":
        a = np.array(array, copy=True)
        a.setflags(write=False)
        return Constant(name, a)

    @property
    def type(self) -> TensorType:
        return TensorType(array_dtype(self.array), tuple(int(s) for s in self.array.shape))


@dataclass(frozen=True)
class Node:
    name: str
    op: str                                  # registry operator name
    inputs: tuple[str, ...]
    outputs: tuple[Value, ...]
    attrs: tuple[tuple[str, object], ...] = ()

    @staticmethod
    def make(name: str, op: str, inputs: Iterable[str], outputs: Iterable[Value], attrs: dict | None = None) -> "Node":
        pairs = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in (attrs or {}).items()))
        return Node(name, op, tuple(inputs), tuple(outputs), pairs)

    @property
    def attributes(self) -> dict:
        return dict(self.attrs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.outputs)


@dataclass(frozen=True, eq=False)
class Graph:
    name: str
    inputs: tuple[Value, ...]
    outputs: tuple[str, ...]
    nodes: tuple[Node, ...] = ()
    constants: tuple[Constant, ...] = ()

    def replace(self, **changes) -> "Graph":
        return dataclasses.replace(self, **{k: v if isinstance(v, str) else tuple(v) for k, v in changes.items()})

    def types(self) -> dict[str, TensorType]:
        """Every value's type, by name (inputs, constants, node outputs)."""
        out = {v.name: v.type for v in self.inputs}
        out.update((c.name, c.type) for c in self.constants)
        out.update((v.name, v.type) for n in self.nodes for v in n.outputs)
        return out

    def constant_arrays(self) -> dict[str, np.ndarray]:
        return {c.name: c.array for c in self.constants}

    def producers(self) -> dict[str, Node]:
        return {v.name: n for n in self.nodes for v in n.outputs}

    def users(self) -> dict[str, list[Node]]:
        out: dict[str, list[Node]] = {}
        for n in self.nodes:
            for i in n.inputs:
                out.setdefault(i, []).append(n)
        return out

    def output_types(self) -> list[TensorType]:
        types = self.types()
        return [types[o] for o in self.outputs]

    def __str__(self) -> str:
        from .printer import format_graph
        return format_graph(self)
