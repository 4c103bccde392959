"""taskmap: a deep-learning kernel compiler built on task mappings.

    from taskmap.lang import kernel, f32, i32, spatial, repeat, threadIdx   # the DSL
    taskmap.interpret(k, *args)     # the NumPy interpreter (the executable spec)
    taskmap.empty(shape, dtype)     # an array whose elements count as uninitialized
    taskmap.KernelTrap, taskmap.Trace
    taskmap.LaunchError             # arguments that do not fit the kernel (every backend)
    taskmap.gpu.cuda_source(k) / compile(k) / launch(k, *args)   # the CUDA backend
    taskmap.compile(model, backend="interp")   # an ONNX model as a callable program (frontends); "cuda" too
    taskmap.load(path)              # a program saved with prog.save(path)

The subpackages `taskmap.spec` (language), `taskmap.refimpl` (interpreter), `taskmap.gpu`
(CUDA) and `taskmap.conformance` (suite and CLI) live in the top-level folders of the
source tree (docs/ARCHITECTURE.md). Names are resolved on first use, so importing
`taskmap.spec` alone does not load the interpreter or the CUDA backend.
"""
import importlib

_FROM_REFIMPL = ("interpret", "empty", "KernelTrap", "Trace")
_SUBPACKAGES = ("lang", "spec", "refimpl", "gpu", "frontends", "conformance", "examples")

__all__ = [*_FROM_REFIMPL, "LaunchError", *_SUBPACKAGES, "compile", "load", "__version__"]


def __getattr__(name: str):
    if name in _FROM_REFIMPL:
        return getattr(importlib.import_module(".refimpl", __name__), name)
    if name == "LaunchError":
        return importlib.import_module(".spec.errors", __name__).LaunchError
    if name == "compile":
        return importlib.import_module(".frontends.compiler", __name__).compile
    if name == "load":
        return importlib.import_module(".frontends.saved", __name__).load
    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version
        try:
            return version("taskmap")
        except PackageNotFoundError:      # a source tree that was never installed
            return "0+unknown"
    raise AttributeError(f"module 'taskmap' has no attribute {name!r}")
