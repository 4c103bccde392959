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

import numpy as np

from taskmap.spec import dtypes as dt
from taskmap.spec import ir
from taskmap.spec.cache import KernelCache

from . import host
from .build import cache_path, compile_kernel, cubin
from .host import LaunchError

_PARAM_FORMAT = {dt.boolean: "?", dt.int8: "b", dt.int16: "h", dt.int32: "i", dt.int64: "q", dt.uint8: "B",
                 dt.uint32: "I", dt.float16: "H", dt.bfloat16: "H", dt.float32: "f", dt.float64: "d"}


class KernelFault(RuntimeError):
    """The kernel trapped or faulted on the device (SPEC §10 checks run only in the interpreter)."""


class Unavailable(RuntimeError):
    """No CUDA device can run kernels here; the message is the one-line reason."""


@functools.cache
def _driver():
    try:
        import pycuda.driver as drv
    except ImportError:
        raise Unavailable("pycuda not installed") from None
    try:
        drv.init()
        if drv.Device.count() == 0:
            raise Unavailable("no CUDA device")
    except drv.Error as e:
        raise Unavailable(f"no CUDA device ({str(e).strip()})") from None
    ctx = drv.Device(0).retain_primary_context()     # the context torch uses too
    ctx.push()
    atexit.register(_pop, ctx)
    return drv


def _pop(ctx):
    try:
        ctx.pop()
    except Exception:                 # interpreter shutdown: the context may already be gone
        pass


def driver():
    """pycuda.driver with the primary context of device 0 current; raises Unavailable."""
    return _driver()


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

    def __init__(self, kernel: ir.Kernel):
        drv = driver()
        self.kernel = kernel
        arch = device_limits()["arch"]
        self.emitted, image = compile_kernel(kernel, arch)
        try:
            self.module = drv.module_from_buffer(image)
        except drv.Error:                     # a damaged cache entry that still looks like ELF
            cache_path(self.emitted.source, arch).unlink(missing_ok=True)
            self.module = drv.module_from_buffer(cubin(self.emitted.source, arch))
        self.function = self.module.get_function(self.emitted.name)
        self.function.prepare("".join("P" if isinstance(p, ir.Buffer) else _PARAM_FORMAT[p.dtype] for p in kernel.params))
        self.registers = self.function.get_attribute(drv.function_attribute.NUM_REGS)
        self.static_shared = self.function.get_attribute(drv.function_attribute.SHARED_SIZE_BYTES)
        self.written = ir.written_buffers(kernel)
        # the driver's default is 48 KiB less this kernel's static shared memory, not 48 KiB
        self._dynamic_limit = self.function.get_attribute(drv.function_attribute.MAX_DYNAMIC_SHARED_SIZE_BYTES)

    def __repr__(self) -> str:
        return f"<CompiledKernel {self.emitted.name}: {self.registers} registers, {self.static_shared} B static shared>"

    def configure(self, env: dict) -> tuple[tuple, tuple, int]:
        """(grid, block, dynamic shared bytes) for these scalar arguments, checked against the device."""
        k = self.kernel
        grid, block = host.dims(k.grid, env), host.dims(k.block, env)
        shared = host.dynamic_shared_bytes(self.emitted.dynamic_shared, env)
        self.check(grid, block, shared)
        if shared > self._dynamic_limit:
            drv = driver()
            self.function.set_attribute(drv.function_attribute.MAX_DYNAMIC_SHARED_SIZE_BYTES, shared)
            self._dynamic_limit = shared
        return grid, block, shared

    def check(self, grid, block, shared):
        lim = device_limits()
        name = self.kernel.name
        bad = "invalid launch configuration"
        if min(grid + block) < 1:
            raise LaunchError(bad, f"kernel {name}: grid {grid} and block {block} extents must be >= 1 (SPEC §1.1)")
        threads = math.prod(block)
        if threads > lim["threads"]:
            raise LaunchError(bad, f"kernel {name}: block {block} has {threads} threads, over the device limit "
                                   f"of {lim['threads']} by {threads - lim['threads']}")
        for axis, n, most in zip("xyz", block, lim["block"]):
            if n > most:
                raise LaunchError(bad, f"kernel {name}: block.{axis} = {n} exceeds the device limit {most} by {n - most}")
        for axis, n, most in zip("xyz", grid, lim["grid"]):
            if n > most:
                raise LaunchError(bad, f"kernel {name}: grid.{axis} = {n} exceeds the device limit {most} by {n - most}")
        total = shared + self.static_shared
        if total > lim["shared_optin"]:
            raise LaunchError(bad, f"kernel {name}: needs {total} bytes of shared memory per block, over the device "
                                   f"limit of {lim['shared_optin']} by {total - lim['shared_optin']}")
        regs = self.registers * threads
        if regs > lim["registers"]:
            raise LaunchError(bad, f"kernel {name}: {self.registers} registers x {threads} threads = {regs} registers "
                                   f"per block, over the device limit of {lim['registers']} by {regs - lim['registers']}; "
                                   "use fewer threads per block or smaller per-thread tiles")

    def arguments(self, args) -> tuple[dict, list]:
        """Scalar environment and the packed argument list (device pointers for tensors)."""
        k = self.kernel
        env = scalar_env(k, args)
        packed = []
        for p, a in zip(k.params, args):
            if isinstance(p, ir.Var):
                packed.append(scalar_value(p, env[p.name]))
            else:
                packed.append(device_pointer(p, a, host.shape(p, env)))
        return env, packed

    def __call__(self, *args, stream=None):
        env, packed = self.arguments(args)
        grid, block, shared = self.configure(env)
        if stream is None:
            self.function.prepared_call(grid, block, *packed, shared_size=shared)
        else:
            self.function.prepared_async_call(grid, block, stream, *packed, shared_size=shared)

    def prepared(self, *args):
        """A zero-argument launcher with arguments and geometry fixed: the cheapest repeated call."""
        from pycuda._pvt_struct import pack
        env, packed = self.arguments(args)
        grid, block, shared = self.configure(env)
        fn = self.function
        arg_buf = pack(fn.arg_format, *packed)   # what prepared_async_call packs on every call

        def go(stream=None):
            fn._set_block_shape(*block)
            fn._launch_kernel(grid, block, arg_buf, shared, stream)
        return go


_compiled = KernelCache(lambda k: CompiledKernel(k))


def compile(kernel: ir.Kernel) -> CompiledKernel:  # noqa: A001 (the natural name)
    """The kernel loaded on the device, compiled once while it stays among the 64 most recently
    used (a tuner compiling hundreds of variants keeps a bounded number of modules loaded)."""
    return _compiled(kernel)


def scalar_env(k: ir.Kernel, args) -> dict:
    """Scalar arguments by name, checked as `refimpl.interpret` checks them (SPEC §3.4)."""
    if len(args) != len(k.params):
        names = ", ".join(p.name for p in k.params)
        raise LaunchError("shape mismatch", f"kernel {k.name}({names}) takes {len(k.params)} arguments, got {len(args)}")
    env = {}
    for p, a in zip(k.params, args):
        if isinstance(p, ir.Var):
            env[p.name] = _scalar(k, p, a)
    return env


def _scalar(k: ir.Kernel, p: ir.Var, a):
    t = p.dtype
    if not t.accepts(a):
        raise LaunchError("dtype mismatch", f"kernel {k.name}: parameter {p.name}: expected a {t.short} scalar, "
                                            f"got {type(a).__name__} {a!r}")
    return bool(a) if t is dt.boolean else int(a) if t.is_integer else float(a)


def scalar_value(p: ir.Var, v):
    return dt.half_bits(v, p.dtype) if p.dtype in (dt.float16, dt.bfloat16) else v


def check_tensor(p: ir.Buffer, got_shape, got_dtype, expected_shape):
    if got_dtype is not None and np.dtype(got_dtype) != p.dtype.storage:
        hint = " (bf16 tensors are uint16 arrays of bit patterns)" if p.dtype is dt.bfloat16 else ""
        raise LaunchError("dtype mismatch", f"parameter {p.name} is {p.dtype.short}[...]: expected an array of "
                                            f"{p.dtype.storage}{hint}, got {np.dtype(got_dtype)}")
    if got_shape is not None and tuple(got_shape) != tuple(expected_shape):
        raise LaunchError("shape mismatch", f"parameter {p.name} expects shape {tuple(expected_shape)}, got {tuple(got_shape)}")


def device_pointer(p: ir.Buffer, a, shape) -> int:
    """Device address of a tensor argument, after checking what the argument can tell."""
    drv = driver()
    if isinstance(a, np.ndarray):
        raise TypeError(f"parameter {p.name}: NumPy arrays go through gpu.launch(); a compiled kernel takes device memory")
    if hasattr(a, "data_ptr") and hasattr(a, "is_cuda"):                 # torch tensor
        if not a.is_cuda or not a.is_contiguous():
            raise TypeError(f"parameter {p.name}: torch tensors must be contiguous CUDA tensors")
        torch_name = str(a.dtype).removeprefix("torch.")
        check_tensor(p, a.shape, None, shape)
        if torch_name != p.dtype.name and not (p.dtype is dt.bfloat16 and torch_name in ("bfloat16", "uint16")):
            raise LaunchError("dtype mismatch", f"parameter {p.name} is {p.dtype.short}[...], got torch.{torch_name}")
        return a.data_ptr()
    if hasattr(a, "gpudata"):                                            # pycuda GPUArray
        check_tensor(p, a.shape, a.dtype, shape)
        return int(a.gpudata)
    if isinstance(a, (int, drv.DeviceAllocation)):                       # raw device memory: unchecked
        return int(a)
    raise TypeError(f"parameter {p.name}: expected device memory (DeviceAllocation, GPUArray, torch CUDA "
                    f"tensor or an int pointer), got {type(a).__name__}")


def launch(k: ir.Kernel, *args):
    """Run `k` on NumPy arguments like `refimpl.interpret`: copy in, run, copy written tensors back."""
    drv = driver()
    ck = compile(k)
    env = scalar_env(k, args)
    device_args, copies = [], []
    for p, a in zip(k.params, args):
        if isinstance(p, ir.Var):
            device_args.append(a)
            continue
        if not isinstance(a, np.ndarray):
            device_args.append(a)                   # already device memory
            continue
        check_tensor(p, a.shape, a.dtype, host.shape(p, env))
        if not a.flags.c_contiguous:
            raise LaunchError("shape mismatch", f"parameter {p.name}: arrays must be C-contiguous")
        mem = drv.mem_alloc(max(1, a.nbytes))
        drv.memcpy_htod(mem, a)
        device_args.append(mem)
        if p.name in ck.written:
            copies.append((a, mem))
    ck(*device_args)
    try:
        drv.Context.synchronize()
    except drv.Error as e:
        raise KernelFault(f"kernel {k.name} failed on the device ({str(e).strip()}): a failed `assert` (the device "
                          "printed its message) or an invalid memory access; refimpl.interpret(...) names the "
                          "exact trap. The CUDA context is unusable in this process from now on.") from None
    for a, mem in copies:
        drv.memcpy_dtoh(a, mem)
