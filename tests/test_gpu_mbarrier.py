"""mbarriers and TMA copies on the GPU (SPEC.md §5.9–§5.11) agree with the interpreter and with
NumPy: many blocks of one bulk copy each, a two-stage pipeline over many phases (the parity
flips 32 times per stage), a barrier of 64 arrivals, TMA tensor boxes with host-encoded tensor
maps, zero fill outside the tensor and clipped stores. The planted bugs of
conformance/cases/mbarrier.yaml are the interpreter's; here only correct kernels run."""
from __future__ import annotations

import numpy as np
import pytest

from taskmap.conformance.kernels import mbarriers as kernels
from tests.gpu_compare import run_both

pytestmark = pytest.mark.gpu


def test_bulk_copy_per_block_many_blocks():
    n = 256 * 96
    a = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    on_gpu, on_ref = run_both(kernels.bulk_scale, n, a, np.zeros(n, np.float32))
    np.testing.assert_array_equal(on_gpu[2], 2 * a)
    np.testing.assert_array_equal(on_ref[2], 2 * a)


def test_two_stage_pipeline_flips_parity():
    k = 64
    a = np.random.default_rng(1).integers(-8, 8, (k, 256)).astype(np.float32)
    on_gpu, on_ref = run_both(kernels.bulk_pipeline_sum, k, a, np.zeros(256, np.float32))
    expected = a.astype(np.float64).sum(axis=0)
    np.testing.assert_array_equal(on_gpu[2], expected)
    np.testing.assert_array_equal(on_ref[2], expected)


def test_full_and_empty_barriers_order_a_pipeline_without_syncthreads():
    k = 64
    a = np.random.default_rng(2).integers(-8, 8, (k, 256)).astype(np.float32)
    on_gpu, on_ref = run_both(kernels.full_empty_pipeline_sum, k, a, np.zeros(256, np.float32))
    expected = a.astype(np.float64).sum(axis=0)
    np.testing.assert_array_equal(on_gpu[2], expected)
    np.testing.assert_array_equal(on_ref[2], expected)


def test_arrival_barrier_two_phases():
    on_gpu, on_ref = run_both(kernels.arrive_count_barrier, 64, np.zeros(64, np.int32))
    np.testing.assert_array_equal(on_gpu[1], np.arange(64))
    np.testing.assert_array_equal(on_ref[1], np.arange(64))


@pytest.mark.parametrize("m, n", [(32, 16), (333, 100), (1000, 36)])
def test_tma_tiles_with_ragged_edges(m, n):
    """Boxes past the bottom and right edges: the load fills zeros, the store clips."""
    a = np.random.default_rng(m).standard_normal((m, n)).astype(np.float32)
    on_gpu, on_ref = run_both(kernels.tma_tile_copy, m, n, a, np.zeros_like(a), np.zeros_like(a))
    for got in (on_gpu, on_ref):
        np.testing.assert_array_equal(got[3], a + 1)
        np.testing.assert_array_equal(got[4], a)


@pytest.mark.parametrize("mode", [32, 64, 128])
def test_tma_swizzled_tiles_round_trip(mode):
    """The copy engine swizzles as the tile's layout says: element reads see a, tma_store unswizzles."""
    m, n = 40, 68
    a = np.random.default_rng(mode).standard_normal((m, n)).astype(np.float32)
    on_gpu, on_ref = run_both(kernels.tma_swizzled_copy(mode), m, n, a, np.zeros_like(a), np.zeros_like(a))
    for got in (on_gpu, on_ref):
        np.testing.assert_array_equal(got[3], a + 1)
        np.testing.assert_array_equal(got[4], a)


@pytest.mark.parametrize("n", [4, 20, 40])
def test_tma_box_outside_the_tensor_reads_zero(n):
    a = np.random.default_rng(n).standard_normal((n, n)).astype(np.float32)
    expected = np.pad(a, ((8, 32), (16, 16)))[0:32, n + 8:n + 24]
    on_gpu, on_ref = run_both(kernels.tma_zero_fill, n, a, np.full((32, 16), 7, np.float32))
    np.testing.assert_array_equal(on_gpu[2], expected)
    np.testing.assert_array_equal(on_ref[2], expected)
