"""pycuda runtime: the primary context (shared with torch), compiled kernels, launches.

`launch(k, *args)` takes what `refimpl.interpret` takes (NumPy arrays are copied in, the
kernel runs, written tensors are copied back into the same arrays). `compile(k)` returns a
`CompiledKernel` whose call takes device memory without copies: pycuda DeviceAllocation or
GPUArray, torch CUDA tensors, or raw device pointers (ints).
"""
from __future__ import annotations

import atexit
import functools
import math
import threading

import numpy as np

from taskmap.spec import dtypes as dt
from taskmap.spec import ir
from taskmap.spec.cache import KernelCache

from taskmap.spec.binding import Binding, bind
from taskmap.spec.errors import LaunchError, TaskmapError

from . import tensor_map
from .build import cache_path, compile_kernel, cubin
from .cubin_params import packing_format, param_offsets
from .emit import emit_kernel

_PARAM_FORMAT = {dt.boolean: "?", dt.int8: "b", dt.int16: "h", dt.int32: "i", dt.int64: "q", dt.uint8: "B",
                 dt.uint32: "I", dt.float16: "H", dt.bfloat16: "H", dt.float32: "f", dt.float64: "d"}


def parameter_codes(kernel: ir.Kernel, tensor_maps: int) -> list[str]:
    """The struct code of each launch parameter: the TMA tensor maps first (SPEC §5.11), then
    a device pointer per tensor and the value of each scalar."""
    return [f"{tensor_map.MAP_BYTES}s"] * tensor_maps + [
        "P" if isinstance(p, ir.Buffer) else _PARAM_FORMAT[p.dtype] for p in kernel.params]


class KernelFault(RuntimeError):
    """The kernel trapped or faulted on the device (SPEC §10 checks run only in the interpreter)."""


class Unavailable(TaskmapError, RuntimeError):
    """No CUDA device can run kernels here; the message is the one-line reason."""


@functools.cache
def _driver():
    try:
        import pycuda.driver as drv
    except ImportError:
        raise Unavailable("pycuda not installed (install it with `pip install -e '.[gpu]'` in the source tree, "
                          "or `pip install pycuda`)") from None
    try:
        drv.init()
        if drv.Device.count() == 0:
            raise Unavailable("no CUDA device")
    except drv.Error as e:
        raise Unavailable(f"no CUDA device ({str(e).strip()})") from None
    ctx = drv.Device(0).retain_primary_context()     # the context torch uses too
    ctx.push()
    atexit.register(_pop, ctx)
    _current.context = ctx
    return drv, ctx


def _pop(ctx):
    try:
        ctx.pop()
    except Exception:                 # interpreter shutdown: the context may already be gone
        pass


# A context is current per thread: torch runs backward passes in autograd's own threads (where
# torch has made the primary context current already), and a caller may launch from any
# thread, so a thread with no current context pushes the primary context once.
_current = threading.local()


class _PushedInThread:
    """The primary context pushed in a thread of the caller's, popped when that thread ends:
    its thread-local data is released in the thread itself, before pycuda's per-thread
    cleanup, which aborts the process on a non-empty context stack."""

    def __init__(self, ctx):
        ctx.push()
        self.ctx = ctx

    def __del__(self):
        _pop(self.ctx)


def driver():
    """pycuda.driver with the primary context of device 0 current in this thread; raises Unavailable."""
    drv, ctx = _driver()
    if getattr(_current, "context", None) is None:
        _current.context = ctx if drv.Context.get_current() is not None else _PushedInThread(ctx)
    return drv


def unavailable_reason() -> str | None:
    try:
        driver()
        return None
    except Unavailable as e:
        return str(e)


def available() -> bool:
    return unavailable_reason() is None


@functools.cache
def device_limits() -> dict:
    drv = driver()
    d = drv.Context.get_device()
    a = drv.device_attribute
    return {
        "arch": "sm_%d%d" % d.compute_capability(),
        "name": d.name(),
        "threads": d.get_attribute(a.MAX_THREADS_PER_BLOCK),
        "block": (d.get_attribute(a.MAX_BLOCK_DIM_X), d.get_attribute(a.MAX_BLOCK_DIM_Y), d.get_attribute(a.MAX_BLOCK_DIM_Z)),
        "grid": (d.get_attribute(a.MAX_GRID_DIM_X), d.get_attribute(a.MAX_GRID_DIM_Y), d.get_attribute(a.MAX_GRID_DIM_Z)),
        "shared_optin": d.get_attribute(a.MAX_SHARED_MEMORY_PER_BLOCK_OPTIN),
        "registers": d.get_attribute(a.MAX_REGISTERS_PER_BLOCK),
    }


class CompiledKernel:
    """A kernel loaded on the device. Call it with device tensors: `ck(*args, stream=None)`."""

    def __init__(self, kernel: ir.Kernel, image: bytes | None = None):
        """`image`: the cubin of the kernel's emitted source for this device (a saved program's),
        instead of compiling it or reading the cubin cache."""
        drv = driver()
        self.kernel = kernel
        arch = device_limits()["arch"]
        if image is not None:
            self.emitted = emit_kernel(kernel)
            self.module = drv.module_from_buffer(image)
        else:
            self.emitted, image = compile_kernel(kernel, arch)
            try:
                self.module = drv.module_from_buffer(image)
            except drv.Error:                     # a damaged cache entry that still looks like ELF
                cache_path(self.emitted.source, arch).unlink(missing_ok=True)
                image = cubin(self.emitted.source, arch)
                self.module = drv.module_from_buffer(image)
        self.image = image
        self.function = self.module.get_function(self.emitted.name)
        codes = parameter_codes(kernel, len(self.emitted.tensor_maps))
        self.function.prepare(packing_format(codes, param_offsets(image, self.emitted.name)))
        self.registers = self.function.get_attribute(drv.function_attribute.NUM_REGS)
        self.static_shared = self.function.get_attribute(drv.function_attribute.SHARED_SIZE_BYTES)
        self.written = ir.written_buffers(kernel)
        # the driver's default is 48 KiB less this kernel's static shared memory, not 48 KiB
        self._dynamic_limit = self.function.get_attribute(drv.function_attribute.MAX_DYNAMIC_SHARED_SIZE_BYTES)

    def __repr__(self) -> str:
        return f"<CompiledKernel {self.emitted.name}: {self.registers} registers, {self.static_shared} B static shared>"

    def configure(self, bound: Binding) -> int:
        """Dynamic shared bytes for this launch, checked with its grid and block against the device."""
        shared = self.emitted.dynamic_shared_bytes(bound.shapes)
        self.check(bound.grid, bound.block, shared)
        if shared > self._dynamic_limit:
            drv = driver()
            self.function.set_attribute(drv.function_attribute.MAX_DYNAMIC_SHARED_SIZE_BYTES, shared)
            self._dynamic_limit = shared
        return shared

    def check(self, grid, block, shared):
        """The device's own limits (spec.binding has checked SPEC §1.1's)."""
        lim = device_limits()
        name = self.kernel.name
        bad = "invalid launch configuration"
        threads = math.prod(block)
        if threads > lim["threads"]:
            raise LaunchError(bad, f"kernel {name}: block {block} has {threads} threads, over the device limit "
                                   f"of {lim['threads']} by {threads - lim['threads']}", kernel=name)
        for axis, n, most in zip("xyz", block, lim["block"]):
            if n > most:
                raise LaunchError(bad, f"kernel {name}: block.{axis} = {n} exceeds the device limit {most} by "
                                       f"{n - most}", kernel=name)
        for axis, n, most in zip("xyz", grid, lim["grid"]):
            if n > most:
                raise LaunchError(bad, f"kernel {name}: grid.{axis} = {n} exceeds the device limit {most} by "
                                       f"{n - most}", kernel=name)
        total = shared + self.static_shared
        if total > lim["shared_optin"]:
            raise LaunchError(bad, f"kernel {name}: needs {total} bytes of shared memory per block, over the device "
                                   f"limit of {lim['shared_optin']} by {total - lim['shared_optin']}", kernel=name)
        regs = self.registers * threads
        if regs > lim["registers"]:
            raise LaunchError(bad, f"kernel {name}: {self.registers} registers x {threads} threads = {regs} registers "
                                   f"per block, over the device limit of {lim['registers']} by {regs - lim['registers']}; "
                                   "use fewer threads per block or smaller per-thread tiles", kernel=name)

    def arguments(self, bound: Binding, args) -> list:
        """The packed argument list: the TMA tensor maps (SPEC §5.11, encoded for these tensors),
        then scalar values and device pointers for tensors."""
        packed = [scalar_value(p, bound.scalars[p.name]) if isinstance(p, ir.Var) else device_pointer(bound, p, a)
                  for p, a in zip(self.kernel.params, args)]
        if not self.emitted.tensor_maps:
            return packed
        pointers = {p.name: v for p, v in zip(self.kernel.params, packed) if isinstance(p, ir.Buffer)}
        return [tensor_map.encode(b, bound.shapes[b.name], pointers[b.name], box, swizzle)
                for b, box, swizzle in self.emitted.tensor_maps] + packed

    def __call__(self, *args, stream=None):
        self.launch(bind(self.kernel, args, "CompiledKernel"), args, stream)

    def launch(self, bound: Binding, args, stream=None):
        """Run on arguments already bound (gpu.launch binds them before it allocates device memory)."""
        driver()                                  # the context current in this thread too
        packed = self.arguments(bound, args)
        shared = self.configure(bound)
        if stream is None:
            self.function.prepared_call(bound.grid, bound.block, *packed, shared_size=shared)
        else:
            self.function.prepared_async_call(bound.grid, bound.block, stream, *packed, shared_size=shared)

    def prepared(self, *args):
        """A zero-argument launcher with arguments and geometry fixed: the cheapest repeated call."""
        return self.launcher(bind(self.kernel, args, "prepared"), args)

    def launcher(self, bound: Binding, args):
        """`prepared` for arguments already bound; `bound` may be of another kernel object with
        the same emitted source (its own grid and block are used)."""
        from pycuda._pvt_struct import pack
        packed = self.arguments(bound, args)
        grid, block, shared = bound.grid, bound.block, self.configure(bound)
        fn = self.function
        arg_buf = pack(fn.arg_format, *packed)   # what prepared_async_call packs on every call

        def go(stream=None):
            fn._set_block_shape(*block)
            fn._launch_kernel(grid, block, arg_buf, shared, stream)
        go.arguments = args          # arg_buf holds their raw device pointers: they live as long as go
        return go


_compiled = KernelCache(lambda k: CompiledKernel(k))


def compile(kernel: ir.Kernel) -> CompiledKernel:  # noqa: A001 (the natural name)
    """The kernel loaded on the device, compiled once while it stays among the 64 most recently
    used (a tuner compiling hundreds of variants keeps a bounded number of modules loaded)."""
    return _compiled(kernel)


def scalar_value(p: ir.Var, v):
    return dt.half_bits(v, p.dtype) if p.dtype in (dt.float16, dt.bfloat16) else v


def device_pointer(bound: Binding, p: ir.Buffer, a) -> int:
    """Device address of a tensor argument, after checking what the argument can tell."""
    drv = driver()
    if isinstance(a, np.ndarray):
        raise TypeError(f"parameter {p.name}: NumPy arrays go through gpu.launch(); a compiled kernel takes device memory")
    if hasattr(a, "data_ptr") and hasattr(a, "is_cuda"):                 # torch tensor
        if not a.is_cuda or not a.is_contiguous():
            raise TypeError(f"parameter {p.name}: torch tensors must be contiguous CUDA tensors")
        torch_name = str(a.dtype).removeprefix("torch.")
        bound.check_tensor(p, a.shape)
        if torch_name != p.dtype.name and not (p.dtype is dt.bfloat16 and torch_name in ("bfloat16", "uint16")):
            raise bound.error("dtype mismatch", p, f"is {p.dtype.short}[...], got torch.{torch_name}")
        return a.data_ptr()
    if hasattr(a, "gpudata"):                                            # pycuda GPUArray
        bound.check_tensor(p, a.shape, a.dtype)
        return int(a.gpudata)
    if isinstance(a, (int, drv.DeviceAllocation)):                       # raw device memory: unchecked
        return int(a)
    raise TypeError(f"parameter {p.name}: expected device memory (DeviceAllocation, GPUArray, torch CUDA "
                    f"tensor or an int pointer), got {type(a).__name__}")


def _device_memory(a) -> bool:
    """Whether a tensor argument looks like device memory (device_pointer checks it on the device)."""
    return (isinstance(a, int) and not isinstance(a, bool)) or hasattr(a, "gpudata") or hasattr(a, "data_ptr") \
        or type(a).__module__.startswith("pycuda")


def launch(k: ir.Kernel, *args):
    """Run `k` on NumPy arguments like `refimpl.interpret`: copy in, run, copy written tensors back.
    The arguments are bound and checked (spec.binding) before anything touches the device."""
    bound = bind(k, args, "launch")
    for p, a in bound.tensors(args):
        if not _device_memory(a):
            bound.check_array(p, a)
    drv = driver()
    ck = compile(k)
    device_args, copies = [], []
    for p, a in zip(k.params, args):
        if not isinstance(p, ir.Buffer) or not isinstance(a, np.ndarray):
            device_args.append(a)                   # a scalar, or already device memory
            continue
        mem = drv.mem_alloc(max(1, a.nbytes))
        drv.memcpy_htod(mem, a)
        device_args.append(mem)
        if p.name in ck.written:
            copies.append((a, mem))
    ck.launch(bound, device_args)
    try:
        drv.Context.synchronize()
    except drv.Error as e:
        raise KernelFault(f"kernel {k.name} failed on the device ({str(e).strip()}): a failed `assert` (the device "
                          "printed its message) or an invalid memory access; refimpl.interpret(...) names the "
                          "exact trap. The CUDA context is unusable in this process from now on.") from None
    for a, mem in copies:
        drv.memcpy_dtoh(a, mem)
