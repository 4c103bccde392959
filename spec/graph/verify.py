"""The graph verifier: `verify(graph)` returns the graph or raises one `GraphError` naming the
node (or value) at fault and saying how to fix it.

Rules: value names are unique (inputs, constants, node outputs); every node input is defined
before the node (so the graph is acyclic and in topological order); every graph output is
defined; every node's operator exists, its attributes fit the operator's schema and its output
types are what the operator's `infer` gives for its input types.

Symbolic dimensions are checked by evaluating the graph's types under two bindings of the
input symbols to distinct probe sizes (`probe_bindings`): a declared dimension must be what
`infer` computes under both. A symbol that no graph input carries (e.g. ONNX's unk__0) is
bound to the first size it meets and must then stay consistent.
"""
from __future__ import annotations

from ..errors import TaskmapError
from ..lang import TensorType
from ..ops import OpError, get
from .ir import Graph, Node, format_type

PROBES = ((1009, 1013, 1019, 1021, 1031, 1033, 1039, 1049), (1051, 1061, 1063, 1069, 1087, 1091, 1093, 1097))


class GraphError(TaskmapError, ValueError):
    """A graph that breaks a rule of the graph IR (or cannot be built from a model)."""


def input_symbols(g: Graph) -> list[str]:
    seen: list[str] = []
    for v in g.inputs:
        seen += [d for d in v.type.shape if isinstance(d, str) and d not in seen]
    return seen


def probe_bindings(g: Graph) -> list[dict[str, int]]:
    """Two bindings of the input symbols to distinct sizes (one empty binding if none)."""
    names = input_symbols(g)
    if len(names) > len(PROBES[0]):
        raise GraphError(f"graph {g.name}: more than {len(PROBES[0])} symbolic dimensions ({', '.join(names)})")
    if not names:
        return [{}]
    return [dict(zip(names, p)) for p in PROBES]


def bind(t: TensorType, binding: dict[str, int]) -> TensorType:
    return TensorType(t.dtype, tuple(binding.get(d, d) if isinstance(d, str) else d for d in t.shape))


def node_error(g: Graph, n: Node, what: str) -> GraphError:
    return GraphError(f"graph {g.name}: node {n.name} ({n.op}): {what}")


def infer_node(g: Graph, n: Node, types: list[TensorType]) -> list[TensorType]:
    """The operator's output types for concrete input types, as a GraphError naming the node."""
    try:
        return get(n.op).infer(types, **n.attributes)
    except OpError as e:
        raise node_error(g, n, str(e)) from None


def _check_names(g: Graph) -> None:
    defined: set[str] = set()
    node_names: set[str] = set()

    def define(name: str, where: str):
        if not name:
            raise GraphError(f"graph {g.name}: {where} has an empty value name")
        if name in defined:
            raise GraphError(f"graph {g.name}: value {name!r} is defined twice (again by {where}); "
                             "every value needs a unique name")
        defined.add(name)

    for v in g.inputs:
        define(v.name, "a graph input")
    for c in g.constants:
        define(c.name, "a constant")
    for n in g.nodes:
        if n.name in node_names:
            raise GraphError(f"graph {g.name}: two nodes are named {n.name!r}; node names must be unique")
        node_names.add(n.name)
        try:
            get(n.op)
        except OpError as e:
            raise node_error(g, n, str(e)) from None
        for i in n.inputs:
            if i not in defined:
                raise node_error(g, n, f"input {i!r} is not defined before the node (undefined, or the nodes "
                                       "are not in topological order)")
        if not n.outputs:
            raise node_error(g, n, "the node has no outputs")
        for v in n.outputs:
            define(v.name, f"node {n.name}")
    for o in g.outputs:
        if o not in defined:
            raise GraphError(f"graph {g.name}: output {o!r} is not defined by any input, constant or node")
    if not g.outputs:
        raise GraphError(f"graph {g.name}: the graph has no outputs")


def _matches(declared: TensorType | None, actual: TensorType, binding: dict[str, int]) -> bool:
    if declared is None:
        return True
    if declared.dtype != actual.dtype or len(declared.shape) != len(actual.shape):
        return False
    for d, a in zip(declared.shape, actual.shape):
        if isinstance(d, str):
            d = binding.setdefault(d, a)
        if d != a:
            return False
    return True


def evaluate_types(g: Graph, binding: dict[str, int], typed: bool = True) -> dict[str, TensorType]:
    """Every value's concrete type under `binding` of the input symbols, each node checked
    against its declared output types (free symbols are added to `binding` as met). With
    typed=False an output without a declared type (None) is accepted: infer_shapes fills it."""
    env = {v.name: bind(v.type, binding) for v in g.inputs}
    env.update((c.name, c.type) for c in g.constants)
    for n in g.nodes:
        got = infer_node(g, n, [env[i] for i in n.inputs])
        if len(got) != len(n.outputs):
            raise node_error(g, n, f"declares {len(n.outputs)} outputs; the operator gives {len(got)}")
        for v, t in zip(n.outputs, got):
            if v.type is None and typed:
                raise node_error(g, n, f"output {v.name} has no type; run passes.infer_shapes to derive it")
            if not _matches(v.type, t, binding):
                where = f" with {', '.join(f'{k}={s}' for k, s in binding.items())}" if binding else ""
                raise node_error(g, n, f"output {v.name} is declared {format_type(v.type)} but the operator "
                                       f"gives {format_type(t)}{where}; fix the declared type (or re-infer it "
                                       "with passes.infer_shapes)")
            env[v.name] = t
    return env


def verify(g: Graph) -> Graph:
    _check_names(g)
    for binding in probe_bindings(g):
        evaluate_types(g, dict(binding))
    return g
