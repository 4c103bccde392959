"""taskmap: a deep-learning kernel compiler built on task mappings.

    from taskmap.lang import kernel, f32, i32, spatial, repeat, threadIdx   # the DSL
    taskmap.interpret(k, *args)     # the NumPy interpreter (the executable spec)
    taskmap.empty(shape, dtype)     # an array whose elements count as uninitialized
    taskmap.KernelTrap, taskmap.Trace
    taskmap.gpu.cuda_source(k) / compile(k) / launch(k, *args)   # the CUDA backend

The subpackages `taskmap.spec` (language), `taskmap.refimpl` (interpreter), `taskmap.gpu`
(CUDA) and `taskmap.conformance` (suite and CLI) live in the top-level folders of the
source tree (docs/ARCHITECTURE.md).
"""
from importlib.metadata import PackageNotFoundError, version as _version

from .refimpl import KernelTrap, Trace, empty, interpret

try:
    __version__ = _version("taskmap")
except PackageNotFoundError:          # run from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["interpret", "empty", "KernelTrap", "Trace", "__version__"]
