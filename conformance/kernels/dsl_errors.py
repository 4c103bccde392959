"""Python the DSL rejects (SPEC.md §8): plain functions, so this module imports; each case
decorates one with `kernel()(fn)` and expects the DSLError phrase, line and hint it names.
Cases: conformance/cases/invalid.yaml (stage: dsl).
"""
from __future__ import annotations

from taskmap.lang import f32, i32, threadIdx


def early_return(n: i32, a: f32[32]):
    if threadIdx.x >= n:
        return
    a[threadIdx.x] = 0.0


def break_in_loop(a: f32[32]):
    for i in range(4):
        if a[i] > 0.0:
            break


def continue_in_loop(a: f32[32]):
    for i in range(4):
        continue


def list_comprehension(a: f32[32]):
    a[0] = [a[i] for i in range(4)]


def slice_of_a_tensor(a: f32[32], b: f32[32]):
    b[threadIdx.x] = a[0:4]


def true_division_of_integers(a: i32[32]):
    a[threadIdx.x] = threadIdx.x / 2


def tuple_unpacking(a: f32[32]):
    x, y = 1.0, 2.0


def nested_function(a: f32[32]):
    def helper(v):
        return v


def undefined_name(n: i32, a: f32[n]):
    a[threadIdx.x] = scale * 2.0  # noqa: F821 — the point of the case


def missing_annotation(n, a: f32[32]):
    a[0] = 0.0
