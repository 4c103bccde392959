"""docs/DSL.md says what the DSL does: its name table covers every public name of taskmap.lang,
and the statements it makes about numbers, scalar parameters, loops and collectives hold."""
from __future__ import annotations

import math
import pathlib
import re

import numpy as np
import pytest

import taskmap
from taskmap import lang
from taskmap.lang import bf16, f16, f32, i32, kernel, shfl_xor, syncthreads, syncwarp, threadIdx
from taskmap.spec.dtypes import from_bf16_bits, to_bf16_bits
from taskmap.spec.errors import VerifyError

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "DSL.md"


def test_name_table_lists_every_public_name_of_taskmap_lang():
    section = DOC.read_text().split("## 9. Every name of the DSL", 1)[1]
    table = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| names")]
    documented = {word for line in table for cell in re.findall(r"`([^`]*)`", line.split("|")[1])
                  for word in cell.split()}
    assert set(lang.__all__) - documented == set()


@kernel(block=32)
def clamp_to_infinities(n: i32, a: f32[n]):
    a[threadIdx.x] = max(-float("inf"), min(math.inf, a[threadIdx.x] * 1e30))


def test_infinities_are_written_as_float_inf():
    a = np.array([1e10, -1e10] * 16, np.float32)
    taskmap.interpret(clamp_to_infinities, 32, a)
    np.testing.assert_array_equal(a, np.array([np.inf, -np.inf] * 16, np.float32))


@kernel(block=32)
def scale16(n: i32, alpha: f16, beta: bf16, a: f16[n], b: bf16[n]):
    a[threadIdx.x] = a[threadIdx.x] * alpha
    b[threadIdx.x] = b[threadIdx.x] * beta


def test_f16_and_bf16_scalar_parameters_take_floats_rounded_once():
    a, b = np.ones(32, np.float16), to_bf16_bits(np.ones(32, np.float32))
    taskmap.interpret(scale16, 32, 0.1, 0.1, a, b)
    assert a[0] == np.float16(0.1)
    assert from_bf16_bits(b)[0] == from_bf16_bits(to_bf16_bits(np.float32([0.1])))[0]
    with pytest.raises(taskmap.LaunchError, match="scalar out of range"):
        taskmap.interpret(scale16, 32, 1e6, 0.1, a, b)


@kernel(block=32)
def thread_strided(n: i32, a: f32[n]):
    for i in range(threadIdx.x, n, 32):
        a[i] = a[i] + 1.0


def test_range_start_may_be_a_runtime_value():
    a = np.zeros(100, np.float32)
    taskmap.interpret(thread_strided, 100, a)
    np.testing.assert_array_equal(a, np.ones(100, np.float32))


def test_warp_collectives_may_sit_under_warp_uniform_branches_syncthreads_may_not():
    @kernel(block=64)
    def first_warp_swaps(n: i32, a: f32[n]):
        warp = threadIdx.x // 32
        v = a[threadIdx.x]
        if warp == 0:
            v = shfl_xor(v, 1)
            syncwarp()
        a[threadIdx.x] = v

    a = np.arange(64, dtype=np.float32)
    taskmap.interpret(first_warp_swaps, 64, a)
    want = np.arange(64, dtype=np.float32)
    want[:32] = want[:32].reshape(16, 2)[:, ::-1].ravel()
    np.testing.assert_array_equal(a, want)
    with pytest.raises(VerifyError, match="barrier in thread-dependent branch"):
        @kernel(block=64)
        def first_warp_barrier(n: i32, a: f32[n]):
            if threadIdx.x // 32 == 0:
                syncthreads()
    with pytest.raises(VerifyError, match="warp collective in thread-dependent branch"):
        @kernel(block=64)
        def half_warp_shuffle(n: i32, a: f32[n]):
            v = a[threadIdx.x]
            if threadIdx.x % 32 < 16:
                v = shfl_xor(v, 1)
            a[threadIdx.x] = v
