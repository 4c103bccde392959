"""mbarriers and TMA bulk copies on the GPU (SPEC.md §5.9, §5.10) agree with the interpreter and
with NumPy: many blocks of one bulk copy each, a two-stage pipeline over many phases (the
parity flips 32 times per stage), a barrier of 64 arrivals. The planted bugs of
conformance/cases/mbarrier.yaml are the interpreter's; here only correct kernels run."""
from __future__ import annotations

import numpy as np
import pytest

from taskmap.conformance.kernels import mbarriers as m
from tests.gpu_compare import run_both

pytestmark = pytest.mark.gpu


def test_bulk_copy_per_block_many_blocks():
    n = 256 * 96
    a = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    on_gpu, on_ref = run_both(m.bulk_scale, n, a, np.zeros(n, np.float32))
    np.testing.assert_array_equal(on_gpu[2], 2 * a)
    np.testing.assert_array_equal(on_ref[2], 2 * a)


def test_two_stage_pipeline_flips_parity():
    k = 64
    a = np.random.default_rng(1).integers(-8, 8, (k, 256)).astype(np.float32)
    on_gpu, on_ref = run_both(m.bulk_pipeline_sum, k, a, np.zeros(256, np.float32))
    expected = a.astype(np.float64).sum(axis=0)
    np.testing.assert_array_equal(on_gpu[2], expected)
    np.testing.assert_array_equal(on_ref[2], expected)


def test_arrival_barrier_two_phases():
    on_gpu, on_ref = run_both(m.arrive_count_barrier, 64, np.zeros(64, np.int32))
    np.testing.assert_array_equal(on_gpu[1], np.arange(64))
    np.testing.assert_array_equal(on_ref[1], np.arange(64))
