"""A compiled graph on the GPU: one arena, constants uploaded once, every kernel compiled up
front, a launch list with its arguments packed ahead, replayed as one CUDA graph.

    prog = DeviceProgram(graph_exec.build(graph))    # a refimpl Executable, on the GPU
    outputs = prog(*arrays)                          # NumPy in, NumPy out
    prog.run(inputs, outputs, stream=None)           # the caller's device buffers, no copies

Memory: the memory plan's buffers (every materialized intermediate and plan temporary) at their
offsets in one allocation of `memory.peak` bytes, reused by liveness as the plan says; the
constants in a second allocation, uploaded once. Graph inputs and outputs are the caller's
buffers (`run`) or the program's own (`__call__`: a staging buffer per input, the outputs at
their arena offsets). An output that no step writes (an input or a constant passed through, an
output listed twice) is copied on the device after the kernels.

Launch list: per kernel launch of every step, the loaded kernel with its grid, block, dynamic
shared bytes and packed argument buffer. Pointers of graph inputs and outputs are filled in per
binding of buffers; the whole list is captured as one CUDA graph per binding and replayed (the
GRAPHS most recent bindings are kept: a caller that reuses its buffers, as torch's caching
allocator does, replays without capturing again).

One program has one arena: its calls must not run concurrently on different streams.
"""
from __future__ import annotations

import math
import statistics
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import numpy as np

from taskmap.refimpl.graph_exec import Executable, checked_inputs
from taskmap.refimpl.schedules import View
from taskmap.spec.binding import bind
from taskmap.spec.graph import GraphError, format_type
from taskmap.spec.graph.memory import ALIGN, format_bytes
from taskmap.spec.lang import TensorType

from .build import compile_ahead
from .emit import emit_kernel
from .graph import capture
from .runtime import CompiledKernel, KernelFault, device_limits, driver

GRAPHS = 8


@dataclass(frozen=True)
class Place:
    """Where a value lives: `region` "input" / "output" (position `index` among the graph's,
    its pointer given per binding), or "fixed" (`index` is its device address)."""
    region: str
    index: int


@dataclass(frozen=True)
class LaunchEntry:
    step: str
    kernel: CompiledKernel
    bound: object                       # spec.binding.Binding of the launch's own kernel
    args: tuple                         # per parameter: a Place (a buffer) or a Python scalar


class DeviceProgram:
    """`executable` on the GPU; `progress(line)` hears the compile progress. `images` maps a
    kernel's code digest to its cubin (a saved program's), so loading compiles nothing."""

    def __init__(self, executable: Executable, progress: Callable[[str], None] | None = None,
                 images: dict[str, bytes] | None = None):
        drv = driver()
        self.executable = exe = executable
        g = exe.graph
        self.arch = device_limits()["arch"]
        self.loaded = _load(exe.kernels, self.arch, progress, images or {})
        self.arena = drv.mem_alloc(max(1, exe.memory.peak))
        types, offsets = g.types(), dict(exe.memory.offsets)
        produced = {v for s in exe.steps for v in s.outputs}
        self._constants, const_at = _upload_constants(drv, g)
        self.places: dict[str, Place] = {v.name: Place("input", k) for k, v in enumerate(g.inputs)}
        self.places.update((c, Place("fixed", int(self._constants) + at)) for c, at in const_at.items())
        self.places.update((name, Place("fixed", int(self.arena) + at)) for name, at in offsets.items())
        self.copies = []                # (from, to Place, bytes): outputs no step writes
        for k, o in enumerate(g.outputs):
            if o in produced and self.places[o].region == "fixed":
                self.places[o] = Place("output", k)
            else:
                self.copies.append((self.places[o], Place("output", k), _nbytes(types[o])))
        self.launches = tuple(self._entry(step, launch) for step in exe.steps for launch in step.plan.launches)
        self._staging = [drv.mem_alloc(max(1, _nbytes(v.type))) for v in g.inputs]
        staging, own_outputs = tuple(int(m) for m in self._staging), []
        for k, o in enumerate(g.outputs):       # an output no step writes: where its value already is
            src = next((src for src, dst, _ in self.copies if dst.index == k), None)
            own_outputs.append(int(self.arena) + offsets[o] if src is None else
                               self._pointer(src, staging, own_outputs))
        self.own = (staging, tuple(own_outputs))
        self._stream = drv.Stream()
        self._graphs: OrderedDict[tuple, object] = OrderedDict()

    # -- what the program is
    @property
    def graph(self):
        return self.executable.graph

    @property
    def steps(self):
        return self.executable.steps

    @property
    def memory(self):
        return self.executable.memory

    @property
    def kernels(self):
        return self.executable.kernels

    @property
    def images(self) -> dict[str, bytes]:
        """Code digest (Emitted.code_digest) -> cubin, for every distinct kernel of the program."""
        return {ck.emitted.code_digest: ck.image for ck in self.loaded.values()}

    def code_digest(self, kernel) -> str:
        """The code digest of one of the program's kernels (what `images` is keyed by)."""
        return self.loaded[id(kernel)].emitted.code_digest

    @property
    def sources(self) -> dict[str, str]:
        """Code digest -> CUDA source, for every distinct kernel of the program."""
        return {ck.emitted.code_digest: ck.emitted.source for ck in self.loaded.values()}

    def output_types(self) -> list[TensorType]:
        return self.graph.output_types()

    def describe(self) -> str:
        distinct = len({id(ck) for ck in self.loaded.values()})
        return (self.executable.describe() + f"\ncuda: {len(self.launches)} launches of {distinct} distinct kernels "
                f"for {self.arch}, replayed as one CUDA graph; constants {format_bytes(self._constants_bytes)} on the device")

    # -- running
    def __call__(self, *inputs, graph: bool = True) -> list[np.ndarray]:
        """NumPy inputs (the model's input order) -> NumPy outputs, through the program's own
        buffers; `graph=False` issues the launches one by one instead of replaying."""
        drv = driver()
        arrays = checked_inputs(self.graph, inputs)
        for a, mem in zip(arrays, self._staging):
            if a.nbytes:
                drv.memcpy_htod(mem, a)
        self._run(self.own, None, graph)
        outs = [np.empty(t.shape, t.dtype.storage) for t in self.output_types()]
        try:
            drv.Context.synchronize()
            for a, ptr in zip(outs, self.own[1]):
                if a.nbytes:
                    drv.memcpy_dtoh(a, ptr)
        except drv.Error as e:
            raise _fault(self.graph.name, e) from None
        return outs

    def run(self, inputs, outputs, stream=None, graph: bool = True):
        """Run on the caller's device buffers without copies: `inputs` in the model's input
        order, `outputs` preallocated (shapes and dtypes: `output_types()`), each a C-contiguous
        device array (a torch CUDA tensor or any object with `__cuda_array_interface__`).
        Asynchronous on `stream` (a pycuda Stream, a CUstream int such as torch's
        `torch.cuda.current_stream().cuda_stream`, or None: the default stream); returns `outputs`."""
        driver()                                  # the context current in this thread too (autograd's)
        g = self.graph
        if len(inputs) != len(g.inputs) or len(outputs) != len(g.outputs):
            raise GraphError(f"{g.name}.run takes {len(g.inputs)} inputs ({', '.join(v.name for v in g.inputs)}) and "
                             f"{len(g.outputs)} outputs ({', '.join(g.outputs)}), got {len(inputs)} and {len(outputs)}")
        ins = [device_buffer(a, v.type, f"{g.name}: input {v.name}", False) for v, a in zip(g.inputs, inputs)]
        outs = [device_buffer(a, t, f"{g.name}: output {o}", True) for o, t, a in zip(g.outputs, g.output_types(), outputs)]
        _check_no_overlap(g, ins, outs)
        self._run((tuple(p for p, _ in ins), tuple(p for p, _ in outs)), stream, graph)
        return outputs

    def replay(self, stream=None) -> None:
        """Replay the program on its own buffers (the inputs of the last NumPy call), outputs
        left on the device: what a benchmark times."""
        self._graph(self.own).replay(stream)

    def _run(self, binding, stream, graph: bool):
        if graph:
            self._graph(binding).replay(stream)
            return
        if isinstance(stream, int):
            raise GraphError("launches one by one (graph=False) take a pycuda Stream or None; a CUstream int "
                             "serves CUDA-graph replay only")
        self._issue(binding, stream)

    def _graph(self, binding):
        g = self._graphs.pop(binding, None)
        if g is None:
            launchers = self._launchers(binding)        # packed (and kernel attributes set) before capturing
            with capture(self._stream) as g:
                self._issue(binding, self._stream, launchers)
        self._graphs[binding] = g
        while len(self._graphs) > GRAPHS:
            self._graphs.popitem(last=False)[1].close()
        return g

    def _issue(self, binding, stream, launchers=None):
        drv = driver()
        for go in launchers or self._launchers(binding):
            go(stream)
        for src, dst, nbytes in self.copies:
            a, b = self._pointer(src, *binding), self._pointer(dst, *binding)
            if a != b and nbytes:
                drv.memcpy_dtod_async(b, a, nbytes, stream)

    def _launchers(self, binding):
        return [e.kernel.launcher(e.bound, [self._pointer(a, *binding) if isinstance(a, Place) else a
                                            for a in e.args]) for e in self.launches]

    @staticmethod
    def _pointer(place: Place, inputs, outputs) -> int:
        if place.region == "fixed":
            return place.index
        return (inputs if place.region == "input" else outputs)[place.index]

    def profile(self, *inputs, repeat: int = 20, warmup: int = 3) -> tuple[list[dict], float]:
        """Per launch: step, kernel, grid, block and the median device time (µs, CUDA events
        around each launch, launches one by one); and the median time of the whole program's
        CUDA-graph replay (µs), on `inputs` (NumPy)."""
        drv = driver()
        self(*inputs)                                          # uploads the inputs, checks they run
        launchers, stream = self._launchers(self.own), self._stream
        times = [[] for _ in launchers]
        for r in range(warmup + repeat):
            events = [drv.Event() for _ in range(len(launchers) + 1)]
            events[0].record(stream)
            for go, end in zip(launchers, events[1:]):
                go(stream)
                end.record(stream)
            events[-1].synchronize()
            if r >= warmup:
                for k in range(len(launchers)):
                    times[k].append(events[k].time_till(events[k + 1]) * 1e3)
        rows = [{"step": e.step, "kernel": e.kernel.emitted.name, "grid": e.bound.grid, "block": e.bound.block,
                 "us": statistics.median(t)} for e, t in zip(self.launches, times)]
        from .timing import time_kernel
        graph = self._graph(self.own)
        whole = time_kernel(lambda s: graph.replay(s), repeat=repeat, warmup=warmup, stream=stream)
        return rows, whole["median_us"]

    # -- building
    def _entry(self, step, launch) -> LaunchEntry:
        k = launch.kernel
        args = tuple(self.places[a] if isinstance(a, str) else self.places[a.name] if isinstance(a, View) else a
                     for a in launch.args)
        bound = bind(k, tuple(0 if isinstance(a, Place) else a for a in args), f"step {step.name}")
        plan = step.plan
        shapes = {t.name: tuple(t.shape) for t in plan.inputs + plan.outputs + plan.temps}
        for p, a in zip(k.params, launch.args):          # what the interpreter's binding checks per launch
            if isinstance(a, (str, View)):
                want = tuple(a.shape) if isinstance(a, View) else shapes[a]
                if bound.shapes[p.name] != want:
                    raise GraphError(f"step {step.name}: kernel {k.name} parameter {p.name} is "
                                     f"{bound.shapes[p.name]} for these arguments, its buffer {a} is {want}")
        return LaunchEntry(step.name, self.loaded[id(k)], bound, args)

    @property
    def _constants_bytes(self) -> int:
        return sum(c.array.nbytes for c in self.graph.constants)


def _load(kernels, arch: str, progress, images: dict[str, bytes]) -> dict[int, CompiledKernel]:
    """id(kernel) -> its loaded kernel, one module per distinct code; the codes neither in
    `images` (code digest -> cubin) nor in the cubin cache compiled first, in a process pool."""
    unique = {id(k): k for k in kernels}
    # equal kernels (a model's repeated layers) emitted once; they share one module below anyway
    by_ir = {k: emit_kernel(k) for k in dict.fromkeys(unique.values())}
    emitted = {i: by_ir[k] for i, k in unique.items()}
    distinct = {e.code_digest: e for e in emitted.values()}
    missing = {e.source for d, e in distinct.items() if d not in images}
    compiled = compile_ahead(missing, arch, progress)
    if progress is not None:
        progress(f"{len(unique)} kernels, {len(distinct)} distinct: {compiled} compiled, {len(missing) - compiled} "
                 f"from the cubin cache, {len(distinct) - len(missing)} from the saved program")
    by_code: dict[str, CompiledKernel] = {}
    out = {}
    for i, k in unique.items():
        d = emitted[i].code_digest
        if d not in by_code:
            by_code[d] = CompiledKernel(k, images.get(d))
        out[i] = by_code[d]
    return out


def _upload_constants(drv, g):
    """One allocation holding every constant at an ALIGN-ed offset; (allocation, name -> offset)."""
    at, size = {}, 0
    for c in g.constants:
        at[c.name] = size
        size += -(-max(1, c.array.nbytes) // ALIGN) * ALIGN
    mem = drv.mem_alloc(max(1, size))
    for c in g.constants:
        if c.array.nbytes:
            drv.memcpy_htod(int(mem) + at[c.name], np.ascontiguousarray(c.array))
    return mem, at


def _nbytes(t: TensorType) -> int:
    return math.prod(t.shape) * t.dtype.bits // 8


def device_buffer(a, t: TensorType, what: str, written: bool) -> tuple[int, int]:
    """(device address, bytes) of a caller's device array for a value of type `t`, after
    checking its dtype, shape and layout: a torch CUDA tensor, or any object with
    `__cuda_array_interface__` (CuPy, Numba, pycuda GPUArray)."""
    want = format_type(t)
    if isinstance(a, np.ndarray):
        raise GraphError(f"{what}: a NumPy array; run() takes device arrays (torch CUDA tensors, "
                         "__cuda_array_interface__), call the program itself with NumPy arrays")
    if hasattr(a, "data_ptr") and hasattr(a, "is_cuda"):                 # torch: bf16 and requires_grad too
        name = str(a.dtype).removeprefix("torch.")
        if not a.is_cuda:
            raise GraphError(f"{what}: a CPU torch tensor; move it to the GPU (.cuda()) or pass NumPy arrays")
        if name != t.dtype.name or tuple(a.shape) != tuple(t.shape):
            raise GraphError(f"{what} must be {want}, got torch.{name}{list(a.shape)}")
        if not a.is_contiguous():
            raise GraphError(f"{what}: a strided torch tensor; pass .contiguous()")
        if a.device.index not in (None, 0):
            raise GraphError(f"{what}: on cuda:{a.device.index}; the program runs on cuda:0")
        return a.data_ptr(), _nbytes(t)
    face = getattr(a, "__cuda_array_interface__", None)
    if face is None:
        raise GraphError(f"{what}: expected a device array (a torch CUDA tensor or an object with "
                         f"__cuda_array_interface__), got {type(a).__name__}")
    dtype, shape = np.dtype(face["typestr"]), tuple(face["shape"])
    if dtype != t.dtype.storage or shape != tuple(t.shape):
        raise GraphError(f"{what} must be {want} (NumPy {t.dtype.storage}), got {dtype}{list(shape)}")
    strides = face.get("strides")
    if strides is not None and tuple(strides) != _c_strides(shape, dtype.itemsize):
        raise GraphError(f"{what}: strides {tuple(strides)} are not C-contiguous; pass a contiguous copy")
    ptr, readonly = face["data"]
    if written and readonly:
        raise GraphError(f"{what}: a read-only device array; outputs are written")
    return int(ptr), _nbytes(t)


def _c_strides(shape, itemsize: int) -> tuple:
    out, step = [], itemsize
    for n in reversed(shape):
        out.append(step)
        step *= n
    return tuple(reversed(out))


def _check_no_overlap(g, ins, outs) -> None:
    """An output sharing memory with an input or another output would be overwritten while read."""
    named = [(f"input {v.name}", p, n) for v, (p, n) in zip(g.inputs, ins)] + \
            [(f"output {o}", p, n) for o, (p, n) in zip(g.outputs, outs)]
    for i, (a, pa, na) in enumerate(named):
        for b, pb, nb in named[i + 1:]:
            if "output" in (a.split()[0], b.split()[0]) and na and nb and pa < pb + nb and pb < pa + na:
                raise GraphError(f"{g.name}: {a} and {b} share device memory; outputs need buffers of their own")


def _fault(name: str, e) -> KernelFault:
    return KernelFault(f"program {name} failed on the device ({str(e).strip()}): a failed `assert` (the device "
                       "printed its message) or an invalid memory access; compile it with backend='interp' to "
                       "find the trap. The CUDA context is unusable in this process from now on.")

