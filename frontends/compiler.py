"""`taskmap.compile(model)`: an ONNX model (ModelProto or path) as a callable compiled program.

    prog = taskmap.compile("model.onnx", backend="interp")
    (y,) = prog(x)                 # NumPy arrays, positional in the model's input order
    prog.kernels                   # the kernels of the program (at the default dims)

The model is imported (frontends.onnx_import), run through the graph pipeline
(spec.graph.passes.PIPELINE) and, per binding of its symbolic dimensions, specialized to static
shapes, put through the pipeline again (static shapes let more fold and simplify) and built into
an interpreter executable (refimpl.graph_exec). A call binds the symbols from its inputs'
shapes and reuses the executable of an earlier call with the same binding. Symbols default to
1 for `.kernels` unless `dims` says otherwise.
"""
from __future__ import annotations

from taskmap.refimpl.graph_exec import Executable, build
from taskmap.spec.errors import TaskmapError
from taskmap.spec.graph import Graph, GraphError
from taskmap.spec.graph.passes import PIPELINE, infer_shapes, run
from taskmap.spec.graph.verify import input_symbols

from .onnx_import import load

BACKENDS = ("interp",)


class CompiledModel:
    def __init__(self, graph: Graph, dims: dict[str, int]):
        self.graph = graph
        self.dims = {s: dims.get(s, 1) for s in input_symbols(graph)}
        self._executables: dict[tuple, Executable] = {}
        self.executable(self.dims)                 # every error (a missing schedule) now, not at the first call

    def executable(self, dims: dict[str, int]) -> Executable:
        key = tuple(sorted(dims.items()))
        if key not in self._executables:
            self._executables[key] = build(run(PIPELINE, infer_shapes(self.graph, dims)))
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
        if len(inputs) != len(self.graph.inputs):
            raise GraphError(f"{self.graph.name} takes {len(self.graph.inputs)} inputs "
                             f"({', '.join(v.name for v in self.graph.inputs)}), got {len(inputs)}")
        dims: dict[str, int] = {}
        for v, a in zip(self.graph.inputs, inputs):
            shape = getattr(a, "shape", ())
            if len(shape) != len(v.type.shape):
                raise GraphError(f"{self.graph.name}: input {v.name} must have rank {len(v.type.shape)}, "
                                 f"got shape {list(shape)}")
            for d, n in zip(v.type.shape, shape):
                if isinstance(d, str) and dims.setdefault(d, int(n)) != n:
                    raise GraphError(f"{self.graph.name}: dimension {d} is {dims[d]} in one input and {n} in "
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
    graph = model if isinstance(model, Graph) else load(model)
    return CompiledModel(run(PIPELINE, graph), dims or {})
