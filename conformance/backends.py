"""The backends a case runs on: how to launch a kernel there and whether it is usable here.

Both follow the same calling convention (SPEC.md, kernel parameters): scalars as Python
numbers, tensors as C-contiguous NumPy arrays of the declared dtype, outputs written in place.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Backend:
    name: str
    launch: Callable                          # launch(kernel, *args), writes outputs in place
    unavailable: Callable[[], str | None]     # None when usable, else a one-line reason


def _interp_launch(k, *args):
    from taskmap import refimpl
    return refimpl.interpret(k, *args)


def _interp_unavailable() -> str | None:
    try:
        from taskmap import refimpl
    except Exception as e:  # an import error in the interpreter is reported, not raised
        return f"refimpl failed to import: {e}"
    return None


def _cuda_launch(k, *args):
    from taskmap import gpu
    return gpu.launch(k, *args)


def cuda_unavailable() -> str | None:
    try:
        from taskmap import gpu
    except Exception as e:
        return f"gpu package failed to import: {e}"
    reason = gpu.unavailable_reason()
    return None if reason is None else f"no CUDA GPU: {reason}"


BACKENDS = {
    "interp": Backend("interp", _interp_launch, _interp_unavailable),
    "cuda": Backend("cuda", _cuda_launch, cuda_unavailable),
}
