"""`taskmap.compile(model)`: an ONNX model (ModelProto or path) as a callable compiled program.

    prog = taskmap.compile("model.onnx", backend="interp")    # or backend="cuda"
    (y,) = prog(x)                 # NumPy arrays, positional in the model's input order
    prog.kernels                   # the kernels of the program (at the default dims)
    print(prog.describe())         # its fusion groups: which nodes each step's kernels compute
    prog.run([x_dev], [y_dev])     # cuda: the caller's device arrays, no copies (gpu.executable)
    prog.save("model.tmprog"); taskmap.load("model.tmprog")     # frontends.saved

The model is imported (frontends.onnx_import), run through the graph pipeline
(spec.graph.passes.PIPELINE) and, per binding of its symbolic dimensions, specialized to static
shapes, put through the pipeline again (static shapes let more fold and simplify) and built into
an executable: on the interpreter (refimpl.graph_exec), or on the GPU (gpu.executable, imported
only for backend="cuda", so the interpreter path never loads the CUDA backend). A call binds the
symbols from its inputs' shapes and reuses the executable of an earlier call with the same
binding. Symbols default to 1 for `.kernels` unless `dims` says otherwise. A model whose shape
computations depend on its symbolic dimensions (Shape -> Gather -> Concat -> Reshape, as PyTorch
exports with dynamic axes write them) cannot be imported symbolically; it is imported once per
binding instead. `fusion=True` (the default) runs post-scheduling fusion (refimpl.fusion);
`fusion=False` schedules every node alone. `tune`: None schedules every operator at its
template's default point; "cached" at the point the tuner cached for its shapes (`taskmap tune`,
refimpl.schedules.tune), the default where nothing is cached, tuning nothing; a level
("quick", "default", "full"; backend "cuda" only) first tunes on the GPU every anchor the cache
lacks (gpu.tuning.tune_graph, per binding of the symbolic dimensions), so a second compile of
the same model tunes nothing.
"""
from __future__ import annotations

import sys
from typing import Callable

from taskmap.refimpl.graph_exec import Executable, build
from taskmap.refimpl.schedules.tune import LEVELS
from taskmap.spec import dtypes as dt
from taskmap.spec.errors import TaskmapError
from taskmap.spec.graph import Graph, GraphError, Value
from taskmap.spec.graph.passes import PIPELINE, half_precision, infer_shapes, run

from .onnx_import import UnsupportedModel, load, model_inputs, read_model

BACKENDS = ("interp", "cuda")
TUNE = (None, "cached") + LEVELS
PRECISIONS = ("f16", "bf16")


class CompiledModel:
    """`specialize(dims)` gives the static graph of one binding of the inputs' symbols."""

    def __init__(self, name: str, inputs: list[Value], specialize: Callable[[dict], Graph], dims: dict[str, int],
                 backend: str = "interp", progress: Callable[[str], None] | None = None, symbolic: Graph | None = None,
                 images: dict[str, bytes] | None = None, expect: Callable[[dict, Executable], None] | None = None,
                 fusion: bool = True, tune: str | None = None):
        """`symbolic`: the graph `specialize` binds (None for a model imported once per binding);
        `images`: cubins by code digest (a loaded program's); `expect(dims, executable)`: a check
        of each binding's executable before it is loaded on the device (a loaded program's)."""
        self.name, self.inputs, self.specialize, self.symbolic = name, tuple(inputs), specialize, symbolic
        self.backend, self.progress, self.images, self.expect = backend, progress, images or {}, expect
        self.fusion, self.tune = fusion, tune
        symbols = dict.fromkeys(d for v in self.inputs for d in v.type.shape if isinstance(d, str))
        self.dims = {s: dims.get(s, 1) for s in symbols}
        self._executables: dict[tuple, Executable] = {}
        self.executable(self.dims)                 # every error (a missing schedule) now, not at the first call

    def executable(self, dims: dict[str, int]):
        """The executable of one binding: a refimpl Executable, or for cuda a gpu DeviceProgram
        (the same surface: graph, steps, memory, kernels, describe, call)."""
        key = tuple(sorted(dims.items()))
        if key not in self._executables:
            graph = self.specialize(dims)
            if self.tune in LEVELS:
                from taskmap.gpu.tuning import tune_graph
                tune_graph(graph, self.tune, self.progress)
            exe = build(graph, fusion=self.fusion, tuned=self.tune is not None)
            if self.expect is not None:
                self.expect(dims, exe)
            if self.backend == "cuda":
                from taskmap.gpu.executable import DeviceProgram
                exe = DeviceProgram(exe, self.progress, self.images)
            self._executables[key] = exe
        return self._executables[key]

    @property
    def bindings(self) -> list[dict[str, int]]:
        """The bindings of the symbolic dimensions built so far (each one executable)."""
        return [dict(key) for key in self._executables]

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

    def output_types(self, *inputs):
        """The outputs' TensorTypes for inputs of these shapes (arrays or anything with .shape)."""
        return self.executable(self._bind(inputs)).graph.output_types()

    def run(self, inputs, outputs, stream=None, graph: bool = True):
        """cuda: run on the caller's device arrays without copies (gpu.executable.DeviceProgram.run)."""
        if self.backend != "cuda":
            raise TaskmapError(f"{self.name}: run() on device arrays needs backend='cuda' (this program is "
                               f"{self.backend!r}); call the program with NumPy arrays")
        return self.executable(self._bind(tuple(inputs))).run(inputs, outputs, stream, graph)

    def profile(self, *inputs, repeat: int = 20):
        """cuda: per-launch device times and the whole CUDA-graph replay time (DeviceProgram.profile)."""
        if self.backend != "cuda":
            raise TaskmapError(f"{self.name}: profile() times GPU kernels; compile with backend='cuda'")
        return self.executable(self._bind(inputs)).profile(*inputs, repeat=repeat)

    def save(self, path) -> None:
        """The program as a file `taskmap.load` reads back without the model (frontends.saved)."""
        from .saved import save
        save(self, path)


def compile(model, backend: str = "interp", fusion: bool = True, dims: dict[str, int] | None = None,
            progress: Callable[[str], None] | None = None, tune: str | None = None,
            precision: str | None = None) -> CompiledModel:
    """A compiled program of an ONNX ModelProto or .onnx path, or of a verified Graph (see the
    module docstring). `progress(line)` hears the cuda backend's kernel compilation (default:
    stderr when it is a terminal). `precision` "f16" / "bf16": an f32 model computes in that
    dtype behind an unchanged f32 interface (spec.graph.passes.half_precision)."""
    full = _pipeline(precision)
    if backend not in BACKENDS:
        raise TaskmapError(f"backend {backend!r}: whole models run on {' or '.join(map(repr, BACKENDS))}")
    if tune not in TUNE:
        raise TaskmapError(f"tune={tune!r}: use one of {', '.join(map(repr, TUNE))}")
    if tune in LEVELS and backend != "cuda":
        raise TaskmapError(f"tune={tune!r} measures on the GPU (backend='cuda'); on {backend!r} use tune='cached' "
                           "for the points `taskmap tune` cached")
    if backend == "cuda":
        from taskmap.gpu import unavailable_reason
        reason = unavailable_reason()
        if reason:
            raise TaskmapError(f"backend='cuda': {reason}; use backend='interp' here")
    progress = progress or _terminal
    dims = dims or {}
    if isinstance(model, Graph):
        graph = model
    else:
        proto = read_model(model)
        try:
            graph = load(proto)
        except UnsupportedModel as symbolic_error:
            inputs = model_inputs(proto)
            if any(v.type is None for v in inputs) or not any(isinstance(d, str) for v in inputs for d in v.type.shape):
                raise
            try:
                return CompiledModel(proto.graph.name or "model", inputs,
                                     lambda d: run(full, load(proto, dims=d)), dims, backend, progress,
                                     fusion=fusion, tune=tune)
            except UnsupportedModel:
                raise symbolic_error from None
    graph = run(full, graph)            # once: the specialized graph is already in its precision
    return CompiledModel(graph.name, graph.inputs, lambda d: run(PIPELINE, infer_shapes(graph, d)), dims, backend,
                         progress, symbolic=graph, fusion=fusion, tune=tune)


def _pipeline(precision: str | None) -> tuple:
    if precision is None:
        return PIPELINE
    if precision not in PRECISIONS:
        raise TaskmapError(f"precision={precision!r}: use None (the model's own dtypes) or one of "
                           f"{', '.join(map(repr, PRECISIONS))}")
    return PIPELINE + (("half_precision", half_precision(dt.by_name(precision))),)


def _terminal(line: str) -> None:
    """Compile progress on a terminal only, each line rewritten in place until the summary."""
    if sys.stderr.isatty():
        sys.stderr.write(f"\r{line}" + ("\n" if not line.startswith("compiling ") else ""))
        sys.stderr.flush()
