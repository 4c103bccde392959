"""CUDA graphs through a small ctypes binding of libcuda (this pycuda build has no graph API).

    stream = drv.Stream()
    with gpu.graph.capture(stream) as g:
        launcher(stream)            # launches issued on `stream` are recorded, not run
    g.replay(stream)                # runs the whole recorded sequence with one call (any stream,
                                    # a CUstream int, or None: the default stream)
"""
from __future__ import annotations

import ctypes
import functools
from contextlib import contextmanager

_CAPTURE_THREAD_LOCAL = 1      # CU_STREAM_CAPTURE_MODE_THREAD_LOCAL


class GraphError(RuntimeError):
    pass


@functools.cache
def _libcuda():
    lib = ctypes.CDLL("libcuda.so.1")
    p, vp = ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)
    for name, args in {
        "cuStreamBeginCapture_v2": (p, ctypes.c_int),
        "cuStreamEndCapture": (p, vp),
        "cuGraphInstantiateWithFlags": (vp, p, ctypes.c_ulonglong),
        "cuGraphLaunch": (p, p),
        "cuGraphExecDestroy": (p,),
        "cuGraphDestroy": (p,),
        "cuGetErrorString": (ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)),
    }.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, ctypes.c_int
    return lib


def _check(result: int, what: str):
    if result != 0:
        msg = ctypes.c_char_p()
        _libcuda().cuGetErrorString(result, ctypes.byref(msg))
        raise GraphError(f"{what} failed: CUDA error {result} ({(msg.value or b'?').decode()})")


def _handle(stream) -> int:
    """A pycuda Stream's handle, or a raw CUstream (an int: torch's `stream.cuda_stream`); None
    is the legacy default stream (0)."""
    if stream is None:
        return 0
    handle = stream if isinstance(stream, int) and not isinstance(stream, bool) else getattr(stream, "handle", None)
    if not isinstance(handle, int):
        raise GraphError(f"expected a pycuda.driver.Stream, a CUstream handle (int) or None, got {type(stream).__name__}")
    return handle


class Graph:
    """An instantiated CUDA graph: `replay(stream)` launches everything it recorded."""

    def __init__(self):
        self.graph = ctypes.c_void_p()
        self.exec = ctypes.c_void_p()

    def replay(self, stream=None):
        """Launch the recorded work on `stream` (a pycuda Stream, a CUstream int, None: the default stream)."""
        if not self.exec:
            raise GraphError("the graph was not captured (or capture failed)")
        _check(_libcuda().cuGraphLaunch(self.exec, _handle(stream)), "cuGraphLaunch")

    def close(self):
        lib = _libcuda()
        if self.exec:
            lib.cuGraphExecDestroy(self.exec)
            self.exec = ctypes.c_void_p()
        if self.graph:
            lib.cuGraphDestroy(self.graph)
            self.graph = ctypes.c_void_p()

    def __del__(self):
        try:
            self.close()
        except Exception:      # interpreter shutdown: libcuda may already be unloaded
            pass


@contextmanager
def capture(stream):
    """Record the launches issued on `stream` inside the block into a replayable Graph."""
    lib, h, g = _libcuda(), _handle(stream), Graph()
    if not h:
        raise GraphError("graph capture needs a non-default stream: pass a pycuda.driver.Stream()")
    _check(lib.cuStreamBeginCapture_v2(h, _CAPTURE_THREAD_LOCAL), "cuStreamBeginCapture_v2")
    try:
        yield g
    finally:
        _check(lib.cuStreamEndCapture(h, ctypes.byref(g.graph)), "cuStreamEndCapture")
    _check(lib.cuGraphInstantiateWithFlags(ctypes.byref(g.exec), g.graph, 0), "cuGraphInstantiateWithFlags")
