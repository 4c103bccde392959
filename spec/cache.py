"""`KernelCache`: what a backend built for a kernel (an interpreter program, a loaded CUDA
module), kept for the most recently used kernels so that a tuner compiling hundreds of
variants holds a bounded amount."""
from __future__ import annotations

from typing import Callable


class KernelCache:
    """`cache(kernel)` returns `build(kernel)`, built once per kernel object while it stays among
    the `size` most recently used. Keyed by id(): kernels are immutable but their equality
    ignores locations, and hashing a whole IR tree per launch costs more than the launch. Each
    entry holds its kernel, so an id is never reused while cached."""

    def __init__(self, build: Callable, size: int = 64):
        self.build = build
        self.size = size
        self._entries: dict[int, tuple] = {}      # insertion order = least recently used first

    def __call__(self, kernel):
        hit = self._entries.pop(id(kernel), None)
        if hit is None or hit[0] is not kernel:
            hit = (kernel, self.build(kernel))
        self._entries[id(kernel)] = hit
        while len(self._entries) > self.size:
            del self._entries[next(iter(self._entries))]
        return hit[1]

    def __len__(self) -> int:
        return len(self._entries)
