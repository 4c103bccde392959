"""The backends' per-kernel caches (spec.cache.KernelCache): built once per kernel object,
bounded to the most recently used, never confused by a reused id. No GPU needed: the CUDA
runtime's cache is exercised with a fake compile."""
from __future__ import annotations

from taskmap.examples.vector_add import make_vector_add
from taskmap.gpu import runtime
from taskmap.refimpl import launch
from taskmap.spec.cache import KernelCache
from taskmap.spec import dtypes as dt


class Counting:
    def __init__(self):
        self.built = []

    def __call__(self, kernel):
        self.built.append(kernel)
        return ("built", len(self.built))


def test_builds_once_per_kernel_and_evicts_the_least_recently_used():
    build = Counting()
    cache = KernelCache(build, size=2)
    a, b, c = object(), object(), object()
    assert cache(a) == ("built", 1) and cache(a) == ("built", 1)
    cache(b)
    cache(a)                       # a is now the most recently used: b goes first
    cache(c)
    assert len(cache) == 2 and build.built == [a, b, c]
    cache(a)
    assert build.built == [a, b, c]
    cache(b)                       # evicted, so built again
    assert build.built == [a, b, c, b]


def test_a_reused_id_is_never_served_another_kernels_entry():
    build = Counting()
    cache = KernelCache(build, size=1)
    cache(object())                # the object dies; CPython may reuse its id at once
    fresh = object()
    cache(fresh)
    assert build.built[-1] is fresh


def test_gpu_compile_is_bounded(monkeypatch):
    build = Counting()
    monkeypatch.setattr(runtime, "_compiled", KernelCache(lambda k: runtime.CompiledKernel(k)))
    monkeypatch.setattr(runtime, "CompiledKernel", build)
    kernels = [make_vector_add(dt.float32) for _ in range(runtime._compiled.size + 5)]
    for k in kernels:
        assert runtime.compile(k) is runtime.compile(k)
    assert build.built == kernels                 # each compiled once, while recently used
    assert len(runtime._compiled) == runtime._compiled.size
    runtime.compile(kernels[0])                   # evicted long ago: compiled again
    assert build.built[-1] is kernels[0] and len(build.built) == len(kernels) + 1


def test_interpreter_programs_are_bounded():
    kernels = [make_vector_add(dt.float32) for _ in range(launch.program_for.size + 3)]
    programs = [launch.program_for(k) for k in kernels]
    assert launch.program_for(kernels[-1]) is programs[-1]
    assert len(launch.program_for) == launch.program_for.size
    assert launch.program_for(kernels[0]) is not programs[0]
