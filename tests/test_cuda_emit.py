"""The CUDA C emitter without a compiler or GPU: DSL line mapping, unrolling, shared-memory
placement, vectorized copies, name hygiene, and the shared memory a launch requests."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

from taskmap import gpu
from taskmap.gpu.emit import emit_kernel
from taskmap.gpu.passes.place_shared import STATIC_SHARED_LIMIT
from taskmap.spec import binding
from taskmap.spec import ir
from taskmap.spec import dtypes as dt
from taskmap.lang import bf16, f16, f32, i32, kernel, shared_tensor, syncthreads, threadIdx


@kernel(grid=1, block=64)
def scaled(n: i32, a: f32[64], b: f32[64]):
    acc = 0.0
    for k in range(4, unroll=True):
        acc = acc + a[threadIdx.x] * 0.5                # MARK: accumulate
    for k in range(n, unroll=2):
        acc = acc * 2.0
    b[threadIdx.x] = acc                                # MARK: store


def _line_of(marker: str) -> int:
    with open(__file__) as f:
        return next(i for i, text in enumerate(f, 1) if f"MARK: {marker}" in text and "_line_of" not in text)


def _c_line(source: str, needle: str) -> int:
    """1-based line number of the first emitted line containing needle."""
    return next(i + 1 for i, text in enumerate(source.splitlines()) if needle in text)


def test_line_directives_point_at_the_dsl_statement():
    src = gpu.cuda_source(scaled)
    lines = src.splitlines()
    store = _c_line(src, "b[(int)threadIdx.x] =")
    directive = next(lines[i] for i in range(store - 2, 0, -1) if lines[i].startswith("#line"))
    assert directive == f'#line {_line_of("store")} "{__file__}"'


def test_without_directives_the_line_table_maps_back():
    em = emit_kernel(scaled, line_directives=False)
    assert "#line" not in em.source
    store, acc = _c_line(em.source, "b[(int)threadIdx.x] ="), _c_line(em.source, "acc = acc + ")
    assert (em.loc_of_line(store).file, em.loc_of_line(store).line) == (__file__, _line_of("store"))
    assert em.loc_of_line(acc).line == _line_of("accumulate")


def test_unroll_hints_become_pragmas_and_no_fma_is_introduced():
    src = emit_kernel(scaled, line_directives=False, prelude=False).source
    lines = [line.strip() for line in src.splitlines()]
    loops = [i for i, line in enumerate(lines) if line.startswith("for (")]
    assert [lines[i - 1] for i in loops] == ["#pragma unroll", "#pragma unroll 2"]
    assert "fma" not in src                     # a*b + c stays a multiply and an add (SPEC §2.3)
    assert re.search(r"acc_?\w* = acc\w* \+ \(a\[.*\] \* 0\.5f\);", src)


def _shared_kernel(elems: int):
    @kernel(grid=1, block=32)
    def k(n: i32, a: f32[n]):
        fixed = shared_tensor(f32, [elems])
        sized = shared_tensor(f16, [n, 3])
        fixed[threadIdx.x] = a[threadIdx.x]
        sized[threadIdx.x, 0] = f16(a[threadIdx.x])
        syncthreads()
        a[threadIdx.x] = fixed[31 - threadIdx.x] + f32(sized[31 - threadIdx.x, 0])
    return k


def test_shared_tensors_are_static_unless_sized_by_parameters_or_too_big():
    small = emit_kernel(_shared_kernel(256), prelude=False)
    assert "__shared__ __align__(16) float fixed[256];" in small.source
    assert [b.name for b in small.dynamic_shared] == ["sized"]
    big = emit_kernel(_shared_kernel(STATIC_SHARED_LIMIT // 4 + 1), prelude=False)
    assert [b.name for b in big.dynamic_shared] == ["fixed", "sized"]
    assert "__shared__ __align__(16) float fixed" not in big.source
    # bytes the runtime requests = each buffer rounded up to 16 bytes, in declaration order
    want = math.ceil((STATIC_SHARED_LIMIT + 4) / 16) * 16 + math.ceil(7 * 3 * 2 / 16) * 16
    assert big.dynamic_shared_bytes(binding.bind(big.kernel, (7, np.zeros(7, np.float32))).shapes) == want


def test_contiguous_unrolled_copies_become_16_byte_accesses():
    from taskmap.gpu.bench import copy_f32
    src = emit_kernel(copy_f32, prelude=False).source
    assert "*(uint4*)(b + (int64_t)base) = *(const uint4*)(a + (int64_t)base);" in src
    assert src.count("uint4") == 2            # the tail loop (not unrolled) stays scalar

    @kernel(grid=1, block=32)
    def strided(a: f32[4, 32], b: f32[4, 32]):
        for v in range(4, unroll=True):
            b[v, threadIdx.x] = a[v, threadIdx.x]
    assert "uint4" not in emit_kernel(strided, prelude=False).source


def test_identifiers_that_are_c_keywords_or_cuda_names_are_renamed():
    @kernel(grid=1, block=32)
    def k(half: f32[32]):
        double = half[threadIdx.x]
        half[threadIdx.x] = double * 2.0
    src = emit_kernel(k, prelude=False).source
    assert "float* __restrict__ half_" in src and "float double_ = half_[(int)threadIdx.x];" in src


def test_import_needs_no_pycuda_and_says_why_nothing_runs():
    reason = gpu.unavailable_reason()
    assert gpu.available() is (reason is None)
    if reason is not None:
        assert "\n" not in reason
        assert reason.startswith("no CUDA device") or reason.startswith("pycuda not installed") and \
            "pip install -e '.[gpu]'" in reason


def test_constants_spell_their_exact_value():
    from taskmap.gpu.emit_expr import const
    from taskmap.spec import dtypes as dt
    assert const(-2**31, dt.int32) == "(-2147483647 - 1)"
    assert const(0.1, dt.float32) == "0.1f" and np.float32(0.1) == np.float32(float("0.1"))
    assert const(float("inf"), dt.float32) == f"__int_as_float({0x7f800000})"
    literal = re.fullmatch(r"tm_f16\((.*)f\)", const(0.1, dt.float16)).group(1)
    assert np.float32(literal) == np.float16(0.1)      # the f16 value itself, exact in f32


BF16_LITERAL = 1 + 2**-8 + 2**-30     # rounds to 1.0078125 once; to 1.0 through f32 first


@kernel(grid=1, block=32)
def bf16_literal(a: bf16[32]):
    a[threadIdx.x] = a[threadIdx.x] * BF16_LITERAL


def test_bf16_literals_round_once_as_in_the_interpreter():
    from taskmap import refimpl
    x = np.full(32, dt.to_bf16_bits(np.float32(1.0)), np.uint16)
    refimpl.interpret(bf16_literal, x)
    assert dt.from_bf16_bits(x)[0] == 1.0078125             # SPEC §2.4: one rounding to nearest even
    assert "1.0078125f" in gpu.cuda_source(bf16_literal)
