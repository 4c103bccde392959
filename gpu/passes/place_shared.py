"""Which shared tensors the CUDA kernel declares statically (`__shared__ T t[N]`) and which it
carves from the launch's dynamic shared memory (`extern __shared__`): those with a shape that
depends on parameters, or all of them when the static ones would pass the 48 KiB that CUDA
allows statically."""
from __future__ import annotations

import dataclasses
import math

from taskmap.spec import ir

STATIC_SHARED_LIMIT = 48 * 1024   # bytes of static __shared__ a kernel may declare


def place_shared(kernel: ir.Kernel) -> ir.Kernel:
    """Marks the shared tensor declarations that take dynamic shared memory."""
    shared = [n.buffer for n in ir.walk(kernel) if isinstance(n, ir.DeclareBuffer) and n.buffer.scope == "shared"]
    static = [b for b in shared if all(isinstance(s, ir.Const) for s in b.shape)]
    static_bytes = sum(math.prod(s.value for s in b.shape) * b.dtype.nbytes for b in static)
    dynamic = shared if static_bytes > STATIC_SHARED_LIMIT else [b for b in shared if b not in static]
    if not dynamic:
        return kernel
    return ir.rewrite(kernel, lambda n: dataclasses.replace(n, dynamic=True)
                      if isinstance(n, ir.DeclareBuffer) and n.buffer in dynamic else n)
