"""Python the DSL rejects (SPEC.md §8): plain functions, so this module imports; each case
decorates one with `kernel(fn)` and expects the DSLError phrase it names. Cases:
conformance/cases/invalid.yaml (stage: dsl).
"""
from __future__ import annotations

from taskmap.lang import f32, i32, threadIdx


def early_return(n: i32, a: f32[n]):
    if threadIdx.x >= n:
        return
    a[threadIdx.x] = 0.0


def loop_break(n: i32, a: f32[n]):
    for i in range(n):
        if i > 4:
            break
        a[i] = 0.0


def undefined_name(n: i32, a: f32[n]):
    a[threadIdx.x] = scale * 2.0  # noqa: F821 — the point of the case


def int_true_division(n: i32, a: f32[n]):
    half = n / 2
    a[half] = 0.0


def slice_index(n: i32, a: f32[n]):
    a[0:4] = 0.0


def tuple_unpacking(n: i32, a: f32[n]):
    i = threadIdx.x
    x, y = a[i], a[i + 1]
    a[i] = x + y


def missing_annotation(n, a: f32[n]):
    a[0] = 0.0


def list_comprehension(n: i32, a: f32[n]):
    a[0] = sum([a[k] for k in range(4)])
