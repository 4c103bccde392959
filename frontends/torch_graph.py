"""An FX graph of core ATen ops -> a taskmap Graph at concrete shapes (the torch.compile frontend).

    graph = to_graph(gm, args)        # args: the call's tensors (and SymInt values as ints)

Each FX node is converted by its entry in `torch_ops.CONVERTERS` (keyed by the ATen overload,
e.g. "aten.addmm.default") onto registry operators. Values are `V`s: a graph value's name and
its concrete TensorType; shape arithmetic (sym_size, SymInt +, *, //) is done on Python ints,
so a graph traced with symbolic sizes converts at the sizes of the call. Each emitted node is
typed at once through the operator's `infer`, so a dtype or attribute the registry does not
accept, or an operator the interpreter has no schedule for, fails at that FX node (an `Unsupported` naming it), which is what lets the backend
mark the node for eager torch (torch_backend.supported_nodes) instead of failing the graph.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np
import torch
import torch.fx

from taskmap.refimpl.graph_exec import has_schedule
from taskmap.spec import dtypes as dt
from taskmap.spec.graph import Constant, Graph, Node, Value, format_type, verify
from taskmap.spec.lang import TensorType
from taskmap.spec.ops import OpError, get
from taskmap.spec.ops.registry import to_storage


class Unsupported(Exception):
    """One FX node that the op table cannot map (its op, a dtype, an argument value)."""


@dataclass(frozen=True)
class V:
    """A tensor of the graph being built: its value name and concrete type."""
    name: str
    type: TensorType

    @property
    def shape(self) -> tuple[int, ...]:
        return self.type.shape

    @property
    def dtype(self) -> dt.DType:
        return self.type.dtype


def torch_dtypes() -> dict:
    return {torch.float32: dt.float32, torch.float16: dt.float16, torch.bfloat16: dt.bfloat16,
            torch.int64: dt.int64, torch.int32: dt.int32, torch.int8: dt.int8, torch.bool: dt.boolean}


def dtype_of(torch_dtype) -> dt.DType:
    t = torch_dtypes().get(torch_dtype)
    if t is None:
        raise Unsupported(f"dtype {torch_dtype} (taskmap has {', '.join(str(k) for k in torch_dtypes())})")
    return t


def storage_of(tensor) -> np.ndarray:
    """A CPU torch tensor as a taskmap storage array (bf16 as uint16 bits), contiguous."""
    t = tensor.detach().contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(np.uint16)
    return t.numpy()


class Builder:
    def __init__(self, name: str):
        self.name = name
        self.inputs: list[Value] = []
        self.nodes: list[Node] = []
        self.constants: list[Constant] = []
        self._count = 0
        self._taken: set[str] = set()          # the FX names of inputs (a partition's may be `add_8`)

    def fresh(self, base: str) -> str:
        while True:
            self._count += 1
            name = f"{base}_{self._count}"
            if name not in self._taken:
                self._taken.add(name)
                return name

    def input(self, name: str, t: TensorType) -> V:
        self._taken.add(name)
        self.inputs.append(Value(name, t))
        return V(name, t)

    def const(self, array, t: dt.DType) -> V:
        """A constant of reference values `array` stored as dtype t."""
        return self.stored(to_storage(np.asarray(array, np.float64 if t.is_float else None), t))

    def stored(self, storage: np.ndarray, name: str | None = None) -> V:
        """A constant holding a storage array as it is (a torch tensor's, from storage_of)."""
        c = Constant.of(name or self.fresh("const"), storage)
        self._taken.add(c.name)
        self.constants.append(c)
        return V(c.name, c.type)

    def emit(self, op: str, inputs, attrs: dict | None = None, n_out: int = 1):
        """A registry node on V inputs; its V output (a list when n_out > 1), typed by `infer`."""
        attrs = attrs or {}
        in_types = [i.type for i in inputs]
        try:
            types = get(op).infer(in_types, **attrs)
        except OpError as e:
            raise Unsupported(str(e)) from None
        if not has_schedule(op, in_types, attrs):
            raise Unsupported(f"{op} on {', '.join(format_type(t) for t in in_types)} has no schedule yet")
        outs = [V(self.fresh(op), t) for t in types[:n_out]]
        self.nodes.append(Node.make(outs[0].name, op, [i.name for i in inputs],
                                    [Value(o.name, o.type) for o in outs], attrs))
        return outs if n_out > 1 else outs[0]

    def graph(self, outputs: list[str]) -> Graph:
        return verify(Graph(self.name, tuple(self.inputs), tuple(outputs), tuple(self.nodes), tuple(self.constants)))


@dataclass(frozen=True)
class Opaque:
    """A value taskmap cannot hold (a float64 tensor, a non-tensor object): a node reading it stays in torch."""
    why: str


def _opaque_arg(a):
    if isinstance(a, Opaque):
        return a
    if isinstance(a, (list, tuple)):
        return next((o for o in map(_opaque_arg, a) if o is not None), None)
    return None


SYM_OPS = {operator.add: operator.add, operator.sub: operator.sub, operator.mul: operator.mul,
           operator.floordiv: operator.floordiv, operator.neg: operator.neg}


def target_name(target) -> str:
    """'aten.addmm.default' for an OpOverload, the Python name otherwise."""
    return str(target) if hasattr(target, "_schema") else getattr(target, "__name__", str(target))


def convert_node(b: Builder, node, args, kwargs):
    """The converted value of one call_function FX node (a V, a list of Vs, an int)."""
    from .torch_ops import CONVERTERS
    opaque = _opaque_arg([args, list(kwargs.values())])
    if opaque is not None and node.target is not operator.getitem:
        raise Unsupported(opaque.why)
    if node.target is operator.getitem:
        return args[0][args[1]]
    if node.target in SYM_OPS:
        if any(isinstance(a, V) for a in args):
            raise Unsupported(f"{target_name(node.target)} on tensors")
        return SYM_OPS[node.target](*args)
    fn = CONVERTERS.get(target_name(node.target))
    if fn is None:
        raise Unsupported("no converter in taskmap's ATen op table (frontends/torch_ops.py)")
    return fn(b, node, *args, **kwargs)


def map_args(a, env):
    if isinstance(a, torch.fx.Node):
        return env[a]
    if isinstance(a, (list, tuple)):
        return type(a)(map_args(x, env) for x in a)
    return a


def walk(gm, args, on_error=None, frozen=frozenset()):
    """(Builder, env): every node of gm converted, placeholders bound to `args` (tensors become
    graph inputs, ints stay ints; the tensors at the positions in `frozen` become constants of
    their values). With on_error(node, Unsupported), a node that fails becomes a fresh graph
    input of its traced type and the walk goes on (to find every unsupported node)."""
    b, env = Builder("torch_graph"), {}
    args = iter(enumerate(args))
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            k, a = next(args)
            env[node] = _guarded(lambda: frozen_input(b, node.name, a)) if k in frozen else \
                tensor_input(b, node.name, a)
        elif node.op == "get_attr":
            t = getattr(gm, node.target)
            env[node] = Opaque(f"the graph attribute {node.target}") if not isinstance(t, torch.Tensor) else \
                _guarded(lambda: frozen_input(b, node.name, t))
        elif node.op == "call_function":
            try:
                env[node] = convert_node(b, node, map_args(node.args, env), map_args(node.kwargs, env))
            except Unsupported as e:
                if on_error is None:
                    raise Unsupported(f"node {node.name} ({target_name(node.target)}): {e}") from None
                on_error(node, e)
                env[node] = traced_as_input(b, node)
        elif node.op == "output":
            env[node] = map_args(node.args[0], env)
        else:
            raise Unsupported(f"FX node {node.name}: op {node.op!r} (a core ATen graph has only call_function)")
    return b, env


def _guarded(make):
    try:
        return make()
    except Unsupported as e:
        return Opaque(str(e))


def tensor_input(b: Builder, name: str, a):
    """A graph input for tensor `a` (an Opaque one if taskmap has no such dtype); ints stay ints."""
    if not isinstance(a, torch.Tensor):
        return a
    return _guarded(lambda: b.input(name, TensorType(dtype_of(a.dtype), tuple(int(s) for s in a.shape))))


def frozen_input(b: Builder, name: str, t) -> V:
    """A tensor as a constant of the graph (a weight: uploaded once with the program); its
    values are read now, from the device if it is on one (outside the fake mode AOTAutograd
    may be tracing in: a graph's lifted constants are real tensors)."""
    from torch._subclasses.fake_tensor import unset_fake_temporarily
    dtype_of(t.dtype)
    with unset_fake_temporarily():
        return b.stored(storage_of(t.detach().cpu()), b.fresh(name))


def traced_as_input(b: Builder, node):
    """A node that stays in torch, seen by the nodes after it as inputs of its traced types."""
    val = node.meta.get("val")
    one = lambda v: tensor_input(b, b.fresh(node.name), v) if isinstance(v, (torch.Tensor, int)) else \
        Opaque(f"the result of {node.name}")
    return [one(v) for v in val] if isinstance(val, (list, tuple)) else one(val)


def to_graph(gm, args, frozen=frozenset()) -> tuple[Graph, list]:
    """The graph of gm at the shapes of `args` (the tensors at positions `frozen` as constants),
    and gm's outputs as graph value names (V) or Python ints (shape values)."""
    b, env = walk(gm, args, frozen=frozen)
    (out_node,) = [n for n in gm.graph.nodes if n.op == "output"]
    outs = list(env[out_node]) if isinstance(env[out_node], (list, tuple)) else [env[out_node]]
    names = list(dict.fromkeys(o.name for o in outs if isinstance(o, V) and o.name not in
                               {v.name for v in b.inputs}))
    return b.graph(names or []), outs
