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
`taskmap.compile(graph, backend="interp", **options)`: CPU tensors run on the interpreter
with all its checks. CUDA tensors are refused with a clear error until taskmap has a CUDA
backend for whole models. `mode` is checked against torch.compile's modes; what a mode asks
for (CUDA graphs, tuning) exists only on the GPU, so on the interpreter it changes nothing.
"""
from __future__ import annotations

import inspect
import operator
import warnings

import numpy as np
import torch
import torch.fx

from taskmap.spec.errors import TaskmapError

from .compiler import compile as compile_graph
from .torch_graph import V, storage_of, target_name, to_graph, walk

# torch.compile's modes -> what they ask of a backend (used by the GPU backend, see module doc)
MODES = {None: {}, "default": {}, "reduce-overhead": {"cuda_graphs": True},
         "max-autotune": {"cuda_graphs": True, "tune": "max"}, "max-autotune-no-cudagraphs": {"tune": "max"}}


class GraphBreakWarning(UserWarning):
    """Some ATen ops of a compiled graph are not supported by taskmap and run in eager torch."""


def compile_options(mode, options) -> dict:
    """torch.compile's `options` as keyword arguments of taskmap.compile, checked."""
    if mode not in MODES:
        raise TaskmapError(f"torch.compile(backend='taskmap'): unknown mode {mode!r}; "
                           f"use one of {', '.join(repr(m) for m in MODES if m)}")
    options = dict(options or {})
    accepted = set(inspect.signature(compile_graph).parameters) - {"model", "backend", "dims"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise TaskmapError(f"torch.compile(backend='taskmap'): unknown option(s) {', '.join(unknown)}; "
                           f"taskmap.compile takes {', '.join(sorted(accepted))}")
    return options


def check_devices(example_inputs) -> None:
    devices = sorted({str(a.device) for a in example_inputs if isinstance(a, torch.Tensor)} - {"cpu"})
    if devices:
        raise TaskmapError(f"torch.compile(backend='taskmap'): the graph has tensors on {', '.join(devices)}; "
                           "taskmap runs whole models on CPU tensors (the interpreter) only for now — its "
                           "CUDA backend for whole models is not available yet. Move the model and inputs to "
                           "the CPU, or use another backend (e.g. 'inductor') for CUDA tensors.")


def taskmap_backend(gm, example_inputs, mode=None, options=None):
    """The Dynamo backend (entry point `taskmap` of group torch_dynamo_backends)."""
    from torch._decomp import core_aten_decompositions
    from torch._functorch.aot_autograd import aot_module_simplified, make_boxed_func
    kwargs = compile_options(mode, options)
    check_devices(example_inputs)

    def compiler(aten_gm, aten_inputs):          # AOTAutograd calls compiled graphs with a boxed (list) argument
        return make_boxed_func(compile_aten(aten_gm, aten_inputs, kwargs))
    return aot_module_simplified(gm, example_inputs, fw_compiler=compiler, bw_compiler=compiler,
                                 decompositions=core_aten_decompositions())


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


def compile_aten(gm, example_inputs, options: dict):
    """An ATen FX graph (from AOTAutograd) as a callable over its flat inputs."""
    from torch.fx.passes.infra.partitioner import CapabilityBasedPartitioner
    from torch.fx.passes.operator_support import OperatorSupportBase
    kept, unsupported = supported_nodes(gm, example_inputs)
    if not unsupported:
        return TaskmapPartition(gm, options)
    warnings.warn(break_message(unsupported), GraphBreakWarning, stacklevel=2)

    class Kept(OperatorSupportBase):
        def is_node_supported(self, submodules, node) -> bool:
            return node in kept

    partitioner = CapabilityBasedPartitioner(gm, Kept(), allows_single_node_partition=True)
    split = partitioner.fuse_partitions(partitioner.propose_partitions())
    for node in split.graph.nodes:
        if node.op == "call_module":
            setattr(split, node.target, TaskmapPartition(getattr(split, node.target), options))
    split.recompile()
    return split.forward


class TaskmapPartition(torch.nn.Module):
    """One supported partition: compiled per input signature, run on the interpreter."""

    def __init__(self, gm, options: dict):
        super().__init__()
        self.gm, self.options = gm, options
        self._programs: dict = {}

    def forward(self, *args):
        key = tuple((tuple(a.shape), a.dtype) if isinstance(a, torch.Tensor) else a for a in args)
        if key not in self._programs:
            graph, outs = to_graph(self.gm, args)
            program = compile_graph(graph, backend="interp", **self.options) if graph.outputs else None
            self._programs[key] = program, graph, outs
        program, graph, outs = self._programs[key]
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        results = dict(zip(graph.outputs, program(*(storage_of(t) for t in tensors)))) if program else {}
        inputs = {v.name: t for v, t in zip(graph.inputs, tensors)}
        constants = graph.constant_arrays()
        out = tuple(_result(o, results, inputs, constants) for o in outs)
        return out if isinstance(self.gm.graph.output_node().args[0], (list, tuple)) else out[0]


def _result(o, results: dict, inputs: dict, constants: dict):
    if not isinstance(o, V):
        return o                                  # a shape value (int) or an absent output (None)
    if o.name in inputs:                          # the graph returns its input (a clone, a no-op cast)
        return inputs[o.name].clone()
    return as_tensor(results[o.name] if o.name in results else constants[o.name])


def as_tensor(a: np.ndarray):
    """A storage array (bf16 as uint16 bits) as a torch tensor that owns its memory."""
    a = np.array(a, copy=True)
    if a.dtype == np.uint16:
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)
