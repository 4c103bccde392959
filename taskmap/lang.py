"""The kernel DSL (SPEC.md §8): every name a kernel may use, in one import.

    from taskmap.lang import kernel, i32, f32, spatial, repeat, threadIdx, shared_tensor, syncthreads
"""
from .spec.lang import *            # noqa: F401,F403 — this module is the public face of spec.lang
from .spec.lang import __all__      # noqa: F401
