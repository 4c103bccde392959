"""Kernels that never terminate, each stopped by the interpreter's step budget (SPEC.md §5.2:
"step budget exceeded" at the loop that does not end). Cases: conformance/cases/hangs.yaml.
"""
from __future__ import annotations

from taskmap.lang import f32, i32, kernel, threadIdx


@kernel(block=32)
def while_true(n: i32, a: f32[n], b: f32[n]):
    i = threadIdx.x
    if i < n:
        b[i] = a[i]
    while True:                  # bug: the DSL has no `break`, so nothing ends this loop
        pass


@kernel(block=32)
def condition_never_changes(n: i32, a: f32[n], b: f32[n]):
    total = 0.0
    k = 0
    while k < n:                 # bug: k is never incremented
        total += 1.0
    b[threadIdx.x] = total


@kernel(block=32)
def endless_range(n: i32, a: f32[n], b: f32[n]):
    total = 0.0
    for k in range(n, 2000000000):       # bug: meant range(n)
        total += 1.0
    b[threadIdx.x] = total
