"""Tensor parameter directions (SPEC.md §6.1): declared ones run like inferred ones, and the
verifier rejects writing a tensor declared In (§9.2) — built with verify=False so this module
imports. The plain functions at the end are DSL the parser rejects. Cases:
conformance/cases/directions.yaml.
"""
from __future__ import annotations

from taskmap.lang import In, InOut, Out, atomic_add, blockIdx, f32, i32, kernel, threadIdx


@kernel(grid=lambda n: (n + 63) // 64, block=64)
def axpy(n: i32, alpha: f32, x: In[f32[n]], y: InOut[f32[n]], norm: Out[f32[n]]):
    """y = alpha * x + y (read and written), norm = |x| (written only)."""
    i = blockIdx.x * 64 + threadIdx.x
    if i < n:
        y[i] = alpha * x[i] + y[i]
        norm[i] = abs(x[i])


@kernel(grid=1, block=32, verify=False)
def store_to_input(a: In[f32[32]], b: f32[32]):
    b[threadIdx.x] = a[threadIdx.x]
    a[threadIdx.x] = 0.0


@kernel(grid=1, block=32, verify=False)
def atomic_into_input(a: f32[32], total: In[f32[1]]):
    atomic_add(total[0], a[threadIdx.x])


def direction_on_a_scalar(n: Out[i32], a: f32[32]):
    a[threadIdx.x] = 0.0
