"""CUDA backend: the kernel IR emitted as CUDA C, compiled with nvcc, run through pycuda.

Importing this package never needs pycuda or a GPU; `available()` says whether kernels can
run here and `unavailable_reason()` why not. `cuda_source(k)` needs neither.
"""
from .build import CompileError
from .emit import Emitted, cuda_source, emit_kernel
from taskmap.spec.errors import LaunchError
from . import graph
from .runtime import CompiledKernel, KernelFault, Unavailable, available, compile, launch, unavailable_reason
from .timing import time_kernel


__all__ = ["CompileError", "CompiledKernel", "Emitted", "KernelFault", "LaunchError", "Unavailable", "available",
           "compile", "cuda_source", "graph", "emit_kernel", "launch", "time_kernel", "unavailable_reason"]
