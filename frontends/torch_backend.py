"""`torch.compile(model, backend="taskmap")`: Dynamo graphs as ATen graphs, run by taskmap.

    model = torch.compile(model, backend="taskmap")              # registered by entry point
    model = torch.compile(model, backend="taskmap", options={"fusion": True})

Dynamo hands `taskmap_backend` an FX graph of torch-level calls; AOTAutograd
(`aot_module_simplified`) lowers it with `core_aten_decompositions` to the core ATen opset
(functional: input mutations are applied outside the graph) and gives the forward graph, and
for training the backward graph, to `compile_aten`. There every node is tried against the ATen
op table (torch_graph.walk); nodes the table cannot map stay in torch: the graph is cut into
maximal supported partitions (torch.fx's CapabilityBasedPartitioner), each run by a
`TaskmapPartition`, and one warning (`GraphBreakWarning`) names every unsupported op and why.

A partition is converted to a taskmap Graph at the shapes of each call (graphs traced with
symbolic sizes included) and compiled once per distinct input signature with
`taskmap.compile(graph, backend=..., **options)`: CPU tensors run on the interpreter with all
its checks; CUDA tensors on the GPU (backend "cuda", gpu.executable.DeviceProgram), zero-copy:
the program reads the caller's tensors and writes outputs that torch allocates, in order on
torch's current stream.

Modes: "default" issues the program's launches one by one (on a stream of the program's,
ordered after and before torch's current stream by stream waits); "reduce-overhead" replays
the program as one CUDA graph on torch's current stream, captured once per binding of
buffers (torch's caching allocator hands a loop the same addresses back, so it replays);
"max-autotune" also tunes: taskmap.compile(tune="default") tunes every anchor the tuner's cache
lacks on the GPU (gpu.tuning) and schedules each at its winner. On CPU tensors the interpreter
runs step by step whatever the mode; max-autotune there takes the cached winners (tune="cached").

Weights are frozen in inference: AOTAutograd's inference graph marks the inputs that are
parameters and buffers (static inputs); their values become constants of the program,
uploaded once with it, and the program remembers the very tensors (weak references), their
storage and version counters, so a replaced weight or an in-place update (an optimizer step,
load_state_dict) builds a program with the new values instead of running stale ones.
`options={"freeze": False}` passes them as inputs per call. Training graphs (forward and
backward) never freeze.

torch.compile refuses `mode` and `options` together, so a mode can also be named among the
options: `options={"mode": "max-autotune", "tune": "quick"}` (CUDA graphs and a quick tuning).
"""
from __future__ import annotations

import inspect
import operator
import warnings
import weakref
from dataclasses import dataclass

import numpy as np
import torch
import torch.fx

from taskmap.spec.errors import TaskmapError

from .compiler import compile as compile_graph
from .torch_graph import V, storage_of, target_name, to_graph, torch_dtypes, walk

# torch.compile's modes -> what they ask of the CUDA backend (see the module doc)
MODES = {None: {}, "default": {}, "reduce-overhead": {"cuda_graphs": True},
         "max-autotune": {"cuda_graphs": True, "tune": "default"}, "max-autotune-no-cudagraphs": {"tune": "default"}}
BACKEND_OPTIONS = {"freeze": True}          # options of this backend itself, with their defaults


@dataclass(frozen=True)
class Settings:
    compile: dict                           # keyword arguments of taskmap.compile
    cuda_graphs: bool = False
    freeze: bool = True


class GraphBreakWarning(UserWarning):
    """Some ATen ops of a compiled graph are not supported by taskmap and run in eager torch."""


def compile_options(mode, options) -> Settings:
    """torch.compile's `mode` and `options` as Settings: taskmap.compile's keyword arguments
    (checked against its signature), what the mode asks for, and this backend's own options."""
    options = dict(options or {})
    if "mode" in options:
        if mode not in (None, "default"):
            raise TaskmapError(f"torch.compile(backend='taskmap'): mode {mode!r} and options['mode'] "
                               f"{options['mode']!r} both given; name the mode once")
        mode = options.pop("mode")
    if mode not in MODES:
        raise TaskmapError(f"torch.compile(backend='taskmap'): unknown mode {mode!r}; "
                           f"use one of {', '.join(repr(m) for m in MODES if m)}")
    own = {k: options.pop(k, v) for k, v in BACKEND_OPTIONS.items()}
    accepted = set(inspect.signature(compile_graph).parameters) - {"model", "backend", "dims"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise TaskmapError(f"torch.compile(backend='taskmap'): unknown option(s) {', '.join(unknown)}; "
                           f"taskmap.compile takes {', '.join(sorted(accepted))}, this backend "
                           f"{', '.join(BACKEND_OPTIONS)}, mode")
    wants = MODES[mode]
    return Settings({"tune": wants.get("tune"), **options}, wants.get("cuda_graphs", False), **own)


def check_devices(example_inputs) -> None:
    """The graph's tensors on the CPU or on cuda:0 (where the GPU programs run), not mixed --
    but for 0-d CPU tensors among CUDA ones, which torch itself lets join them (eager code hands
    such scalars to the graph after a break) and the partition copies to the GPU."""
    tensors = [a for a in example_inputs if isinstance(a, torch.Tensor)]
    devices = sorted({str(a.device) for a in tensors})
    if devices == ["cpu", "cuda:0"]:
        devices = sorted({str(a.device) for a in tensors if a.is_cuda or a.dim() > 0})
    if devices in ([], ["cpu"], ["cuda:0"]):
        return
    raise TaskmapError(f"torch.compile(backend='taskmap'): the graph has tensors on {', '.join(devices)}; "
                       "taskmap runs CPU tensors (on the interpreter) or CUDA tensors on cuda:0, one device "
                       "per graph. Move the model and inputs to one of them, or use another backend "
                       "(e.g. 'inductor').")


def taskmap_backend(gm, example_inputs, mode=None, options=None):
    """The Dynamo backend (entry point `taskmap` of group torch_dynamo_backends)."""
    from torch._decomp import core_aten_decompositions
    from torch._functorch.aot_autograd import aot_module_simplified, make_boxed_func
    settings = compile_options(mode, options)
    check_devices(example_inputs)

    def compiler(aten_gm, aten_inputs):          # AOTAutograd calls compiled graphs with a boxed (list) argument
        return make_boxed_func(compile_aten(aten_gm, aten_inputs, settings))

    def inference_compiler(aten_gm, aten_inputs):
        frozen = static_inputs() if settings.freeze else frozenset()
        return make_boxed_func(compile_aten(aten_gm, aten_inputs, settings, frozen))
    return aot_module_simplified(gm, example_inputs, fw_compiler=compiler, bw_compiler=compiler,
                                 inference_compiler=inference_compiler, decompositions=core_aten_decompositions())


def static_inputs() -> frozenset:
    """Positions of the inference graph's inputs that are parameters or buffers, as AOTAutograd
    recorded them (the static inputs it marks for CUDA graphs), less any the graph mutates."""
    context = torch._guards.TracingContext.try_get()
    meta = getattr(context, "fw_metadata", None)
    if meta is None:
        return frozenset()
    mutated = {k for k, info in enumerate(meta.input_info) if info.mutates_data or info.mutates_metadata}
    return frozenset(meta.static_input_indices) - mutated


def hint(x):
    """A traced example as a concrete one: SymInts (and symbolic sizes) at their example values."""
    if isinstance(x, torch.SymInt):
        return x.node.hint
    if isinstance(x, torch.Tensor):
        return torch.empty(tuple(hint(s) for s in x.shape), dtype=x.dtype, device="meta")
    return x


def supported_nodes(gm, example_inputs) -> tuple[set, dict]:
    """(the FX nodes taskmap runs, {unsupported node: reason}). A getitem of an unsupported
    node stays in torch with it; it is not an unsupported op of its own."""
    unsupported: dict = {}
    walk(gm, [hint(a) for a in example_inputs], on_error=lambda node, e: unsupported.__setitem__(node, str(e)))
    kept = {n for n in gm.graph.nodes if n.op == "call_function" and n not in unsupported and not (
        n.target is operator.getitem and n.args[0] in unsupported)}
    return kept, unsupported


def break_message(unsupported: dict) -> str:
    by_op: dict[str, list[str]] = {}
    for node, reason in unsupported.items():
        by_op.setdefault(target_name(node.target), []).append(f"{node.name}: {reason}")
    lines = [f"  {op} ({len(why)} node{'s' * (len(why) > 1)}; {why[0]})" for op, why in sorted(by_op.items())]
    return (f"torch.compile(backend='taskmap'): {len(by_op)} ATen op(s) not supported by taskmap run in "
            f"eager torch (graph break):\n" + "\n".join(lines))


def compile_aten(gm, example_inputs, settings: Settings, frozen=frozenset()):
    """An ATen FX graph (from AOTAutograd) as a callable over its flat inputs; the inputs at
    positions `frozen` are weights (see the module doc)."""
    from torch.fx.passes.infra.partitioner import CapabilityBasedPartitioner
    from torch.fx.passes.operator_support import OperatorSupportBase
    kept, unsupported = supported_nodes(gm, example_inputs)
    if not unsupported:
        return TaskmapPartition(gm, settings, frozen)
    warnings.warn(break_message(unsupported), GraphBreakWarning, stacklevel=2)

    class Kept(OperatorSupportBase):
        def is_node_supported(self, submodules, node) -> bool:
            return node in kept

    partitioner = CapabilityBasedPartitioner(gm, Kept(), allows_single_node_partition=True)
    split = partitioner.fuse_partitions(partitioner.propose_partitions())
    placeholders = split.graph.find_nodes(op="placeholder")
    weights = {placeholders[k] for k in frozen}
    for node in split.graph.nodes:
        if node.op == "call_module":
            part_frozen = frozenset(k for k, a in enumerate(node.args) if a in weights)
            setattr(split, node.target, TaskmapPartition(getattr(split, node.target), settings, part_frozen))
    split.recompile()
    return split.forward


class TaskmapPartition(torch.nn.Module):
    """One supported partition: compiled per input signature (and per set of frozen weights,
    _same_weights), run on the interpreter or on the GPU."""

    def __init__(self, gm, settings: Settings, frozen=frozenset()):
        super().__init__()
        self.gm, self.settings, self.frozen = gm, settings, frozen
        self._programs: dict = {}
        self._side_stream = None                 # the GPU launches' own stream (mode "default")
        self._replayed = None                    # an event after the last CUDA-graph replay

    def forward(self, *args):
        shapes = tuple((a.device, tuple(a.shape), a.dtype) if isinstance(a, torch.Tensor) else a for a in args)
        # one device for all: the GPU of any CUDA argument (frozen weights count), else the CPU
        device = next((a.device for a in args if isinstance(a, torch.Tensor) and a.is_cuda), torch.device("cpu"))
        weights = [args[k] for k in sorted(self.frozen)]
        if not _same_weights(self._programs.get(shapes, (None,))[0], weights):   # new shapes, or new weights
            graph, outs = to_graph(self.gm, args, self.frozen)
            backend = "cuda" if device.type == "cuda" else "interp"
            options = dict(self.settings.compile)
            if backend == "interp" and options.get("tune") not in (None, "cached"):
                options["tune"] = "cached"                  # tuning measures on the GPU
            program = compile_graph(graph, backend=backend, **options) if graph.outputs else None
            self._programs[shapes] = [(weakref.ref(w), w.data_ptr(), w._version) for w in weights], program, graph, outs
        _, program, graph, outs = self._programs[shapes]
        tensors = [a for k, a in enumerate(args) if isinstance(a, torch.Tensor) and k not in self.frozen]
        if program is None:
            results = {}
        elif program.backend == "cuda":
            # a CPU tensor among CUDA ones (torch allows 0-d ones: a scalar a partition received
            # from eager code) is copied to their device, as eager torch would read it
            tensors = [t if t.is_cuda else t.to(device) for t in tensors]
            results = dict(zip(graph.outputs, self.run_cuda(program, [t.contiguous() for t in tensors], device)))
        else:
            results = {o: as_tensor(a) for o, a in zip(graph.outputs, program(*(storage_of(t) for t in tensors)))}
        inputs = {v.name: t for v, t in zip(graph.inputs, tensors)}
        constants = graph.constant_arrays()
        out = tuple(_result(o, results, inputs, constants, device) for o in outs)
        return out if isinstance(self.gm.graph.output_node().args[0], (list, tuple)) else out[0]

    def run_cuda(self, program, inputs: list, device) -> list:
        """The program on CUDA tensors on `device`, its outputs allocated there by torch, in
        order on torch's current stream (see the module doc for how each mode issues it)."""
        outputs = [torch.empty(t.shape, dtype=torch_dtype(t.dtype), device=device)
                   for t in program.output_types(*inputs)]
        current = torch.cuda.current_stream(device)
        if self.settings.cuda_graphs:
            if self._replayed is not None:       # one arena per program: never two replays at once,
                current.wait_event(self._replayed)     # even when the caller switches streams
            program.run(inputs, outputs, current.cuda_stream)
            self._replayed = torch.cuda.Event()
            self._replayed.record(current)
            return outputs
        if self._side_stream is None:
            from taskmap.gpu.runtime import driver
            self._side_stream = driver().Stream()
        side = torch.cuda.ExternalStream(self._side_stream.handle, device=device)
        side.wait_stream(current)                # the inputs are written before the program reads them
        program.run(inputs, outputs, self._side_stream, graph=False)
        current.wait_stream(side)                # and the outputs before torch reads them
        return outputs


def _same_weights(seen, weights) -> bool:
    """The very tensors a program froze, at the same storage and version: a new tensor (even at a
    recycled address), `p.data = ...` or an in-place update (optimizer, load_state_dict) is not."""
    return seen is not None and all(ref() is w and ptr == w.data_ptr() and version == w._version
                                    for (ref, ptr, version), w in zip(seen, weights))


def torch_dtype(t) -> torch.dtype:
    return {v: k for k, v in torch_dtypes().items()}[t]


def _result(o, results: dict, inputs: dict, constants: dict, device):
    if not isinstance(o, V):
        return o                                  # a shape value (int) or an absent output (None)
    if o.name in inputs:                          # the graph returns its input (a clone, a no-op cast)
        return inputs[o.name].clone()
    return results[o.name] if o.name in results else as_tensor(constants[o.name]).to(device)


def as_tensor(a: np.ndarray):
    """A storage array (bf16 as uint16 bits) as a torch tensor that owns its memory."""
    a = np.array(a, copy=True)
    if a.dtype == np.uint16:
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)
