"""`taskmap.compile(model)`: an ONNX model (ModelProto or path) as a callable compiled program.

    prog = taskmap.compile("model.onnx", backend="interp")
    (y,) = prog(x)                 # NumPy arrays, positional in the model's input order
    prog.kernels                   # the kernels of the program (at the default dims)

The model is imported (frontends.onnx_import), run through the graph pipeline
(spec.graph.passes.PIPELINE) and, per binding of its symbolic dimensions, specialized to static
shapes, put through the pipeline again (static shapes let more fold and simplify) and built into
an interpreter executable (refimpl.graph_exec). A call binds the symbols from its inputs'
shapes and reuses the executable of an earlier call with the same binding. Symbols default to
1 for `.kernels` unless `dims` says otherwise. A model whose shape computations depend on its
symbolic dimensions (Shape -> Gather -> Concat -> Reshape, as PyTorch exports with dynamic
axes write them) cannot be imported symbolically; it is imported once per binding instead.
"""
from __future__ import annotations

from typing import Callable

from taskmap.refimpl.graph_exec import Executable, build
from taskmap.spec.errors import TaskmapError
from taskmap.spec.graph import Graph, GraphError, Value
from taskmap.spec.graph.passes import PIPELINE, infer_shapes, run

from .onnx_import import UnsupportedModel, load, model_inputs, read_model

BACKENDS = ("interp",)


class CompiledModel:
    """`specialize(dims)` gives the static graph of one binding of the inputs' symbols."""

    def __init__(self, name: str, inputs: list[Value], specialize: Callable[[dict], Graph], dims: dict[str, int]):
        self.name, self.inputs, self.specialize = name, tuple(inputs), specialize
        symbols = dict.fromkeys(d for v in self.inputs for d in v.type.shape if isinstance(d, str))
        self.dims = {s: dims.get(s, 1) for s in symbols}
        self._executables: dict[tuple, Executable] = {}
        self.executable(self.dims)                 # every error (a missing schedule) now, not at the first call

    def executable(self, dims: dict[str, int]) -> Executable:
        key = tuple(sorted(dims.items()))
        if key not in self._executables:
            self._executables[key] = build(self.specialize(dims))
        return self._executables[key]

    @property
    def kernels(self):
        return self.executable(self.dims).kernels

    @property
    def memory(self):
        return self.executable(self.dims).memory

    def describe(self) -> str:
        return self.executable(self.dims).describe()

    def _bind(self, inputs) -> dict[str, int]:
        if len(inputs) != len(self.inputs):
            raise GraphError(f"{self.name} takes {len(self.inputs)} inputs "
                             f"({', '.join(v.name for v in self.inputs)}), got {len(inputs)}")
        dims: dict[str, int] = {}
        for v, a in zip(self.inputs, inputs):
            shape = getattr(a, "shape", ())
            if len(shape) != len(v.type.shape):
                raise GraphError(f"{self.name}: input {v.name} must have rank {len(v.type.shape)}, "
                                 f"got shape {list(shape)}")
            for d, n in zip(v.type.shape, shape):
                if isinstance(d, str) and dims.setdefault(d, int(n)) != n:
                    raise GraphError(f"{self.name}: dimension {d} is {dims[d]} in one input and {n} in "
                                     f"input {v.name}")
        return dims

    def __call__(self, *inputs):
        return self.executable(self._bind(inputs))(*inputs)


def compile(model, backend: str = "interp", fusion: bool = False, dims: dict[str, int] | None = None) -> CompiledModel:
    """A compiled program of an ONNX ModelProto or .onnx path, or of a verified Graph (see the
    module docstring)."""
    if backend not in BACKENDS:
        raise TaskmapError(f"backend {backend!r} is not available for whole models yet; use backend='interp'")
    if fusion:
        raise TaskmapError("fusion=True: post-scheduling fusion is not implemented yet; pass fusion=False")
    dims = dims or {}
    if isinstance(model, Graph):
        graph = model
    else:
        proto = read_model(model)
        try:
            graph = load(proto)
        except UnsupportedModel as symbolic_error:
            inputs = model_inputs(proto)
            if not any(isinstance(d, str) for v in inputs for d in v.type.shape):
                raise
            try:
                return CompiledModel(proto.graph.name or "model", inputs,
                                     lambda d: run(PIPELINE, load(proto, dims=d)), dims)
            except UnsupportedModel:
                raise symbolic_error from None
    graph = run(PIPELINE, graph)
    return CompiledModel(graph.name, graph.inputs, lambda d: run(PIPELINE, infer_shapes(graph, d)), dims)
