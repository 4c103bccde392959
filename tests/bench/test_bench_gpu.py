"""GPU benchmarks (pytest-benchmark): the host-timed rounds run our kernel (synchronized);
`extra_info` holds the CUDA-event medians and the ratio against torch measured in the same
run, and each test checks its target ratio (docs/PERF.md).

    python -m pytest tests/bench/test_bench_gpu.py --benchmark-only
"""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.gpu


def _record(benchmark, measured):
    result, run = measured
    benchmark.extra_info.update(result)
    benchmark.pedantic(run, rounds=5, warmup_rounds=1)
    return result


def test_copy_bandwidth_vs_torch(benchmark):
    from taskmap.gpu import bench
    result = _record(benchmark, bench.copy_bandwidth())
    assert result["ratio"] >= 0.9, result


def test_simt_matmul_vs_cublas_sgemm(benchmark):
    from taskmap.gpu import bench
    result = _record(benchmark, bench.matmul_throughput(4096))
    assert result["ratio"] >= 0.5, result


def test_launch_overhead_prepared_and_graph(benchmark):
    from taskmap.gpu import bench
    result = _record(benchmark, bench.launch_overhead())
    assert result["graph_us"] <= 1.0, result
