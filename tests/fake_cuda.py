"""A CPU stand-in for the CUDA driver under gpu.executable, so the program's own logic (arena
placement and reuse, argument packing, input/output binding, pass-through copies, CUDA-graph
capture and replay) runs here without a GPU: device memory is one NumPy byte array, a kernel
launch is `refimpl.interpret` on views of it at the launch's pointers, a captured stream records
the launches and a replay re-issues them. What it cannot check (nvcc's code, the device's
timing) the gpu-marked tests do on the GPU.

    with fake_device(monkeypatch) as memory:
        prog = DeviceProgram(build(graph))
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from taskmap.gpu import executable
from taskmap.refimpl import interpret
from taskmap.spec import ir

ALIGN = 256


class Memory:
    def __init__(self, size: int = 1 << 24):
        self.bytes = np.zeros(size, np.uint8)
        self.next = ALIGN                     # address 0 stays invalid

    def alloc(self, n: int) -> int:
        at = self.next
        self.next += -(-n // ALIGN) * ALIGN
        assert self.next <= self.bytes.size, "fake device memory exhausted"
        self.bytes[at:at + n] = 0xFF          # garbage, so a missed write shows
        return at

    def view(self, ptr: int, shape, dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        n = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        assert ALIGN <= ptr and ptr + n <= self.next, f"access outside allocations at {ptr} (+{n})"
        return self.bytes[ptr:ptr + n].view(dtype).reshape(shape)


class Stream:
    def __init__(self):
        self.handle, self.recording = 1, None


def _issue(stream, work):
    if stream is not None and getattr(stream, "recording", None) is not None:
        stream.recording.append(work)
    else:
        work()


class Driver:
    class Error(Exception):
        pass

    class Context:
        @staticmethod
        def synchronize():
            pass

    def __init__(self, memory: Memory):
        self.memory = memory
        self.Stream = Stream

    def mem_alloc(self, n: int) -> int:
        return self.memory.alloc(n)

    def memcpy_htod(self, dst: int, a: np.ndarray):
        self.memory.view(int(dst), (a.nbytes,), np.uint8)[:] = np.ascontiguousarray(a).reshape(-1).view(np.uint8)

    def memcpy_dtoh(self, a: np.ndarray, src: int):
        a.reshape(-1).view(np.uint8)[:] = self.memory.view(int(src), (a.nbytes,), np.uint8)

    def memcpy_dtod_async(self, dst: int, src: int, n: int, stream=None):
        m = self.memory
        _issue(stream, lambda: m.view(dst, (n,), np.uint8).__setitem__(slice(None), m.view(src, (n,), np.uint8).copy()))


class Kernel:
    """A 'loaded' kernel: launches interpret the launch's own kernel on views of fake memory."""

    def __init__(self, kernel: ir.Kernel, image=None, memory: Memory = None):
        from taskmap.gpu.emit import emit_kernel
        self.kernel, self.emitted, self.image, self.memory = kernel, emit_kernel(kernel), image or b"\x7fELF", memory

    def launcher(self, bound, args):
        def go(stream=None):
            arrays = [self.memory.view(a, bound.shapes[p.name], p.dtype.storage) if isinstance(p, ir.Buffer) else a
                      for p, a in zip(bound.kernel.params, args)]
            _issue(stream, lambda: interpret(bound.kernel, *arrays))
        return go


class Graph:
    def __init__(self):
        self.work = []
        self.closed = False

    def replay(self, stream=None):
        for w in self.work:
            w()

    def close(self):
        self.closed = True


@contextmanager
def _capture(stream):
    g = Graph()
    stream.recording = g.work
    try:
        yield g
    finally:
        stream.recording = None


class DeviceArray:
    """A caller's device buffer, as `__cuda_array_interface__` describes one."""

    def __init__(self, memory: Memory, array: np.ndarray | None = None, shape=None, dtype=None):
        shape, dtype = (array.shape, array.dtype) if array is not None else (tuple(shape), np.dtype(dtype))
        self.memory, self.shape, self.dtype = memory, tuple(shape), np.dtype(dtype)
        self.ptr = memory.alloc(max(1, int(np.prod(shape, dtype=np.int64)) * self.dtype.itemsize))
        if array is not None:
            self.memory.view(self.ptr, shape, dtype)[...] = array

    @property
    def __cuda_array_interface__(self):
        return {"shape": self.shape, "typestr": self.dtype.str, "data": (self.ptr, False), "strides": None,
                "version": 3}

    def get(self) -> np.ndarray:
        return self.memory.view(self.ptr, self.shape, self.dtype).copy()


@contextmanager
def fake_device(monkeypatch):
    memory = Memory()
    drv = Driver(memory)
    monkeypatch.setattr(executable, "driver", lambda: drv)
    monkeypatch.setattr(executable, "device_limits", lambda: {"arch": "sm_90"})
    monkeypatch.setattr(executable, "compile_ahead", lambda sources, arch, progress=None: 0)
    monkeypatch.setattr(executable, "CompiledKernel", lambda k, image=None: Kernel(k, image, memory))
    monkeypatch.setattr(executable, "capture", _capture)
    yield memory
