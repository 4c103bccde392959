"""Shared pytest set-up: `gpu` tests skip with a one-line reason when no CUDA device/pycuda;
under pytest-xdist (README's `-n 2`) GPU benchmarks run one at a time across the workers."""
from __future__ import annotations

import fcntl
import os

import pytest

from taskmap.conformance.backends import cuda_unavailable


def pytest_collection_modifyitems(config, items):
    gpu_items = [i for i in items if "gpu" in i.keywords]
    if not gpu_items:
        return
    reason = cuda_unavailable()
    if reason:
        skip = pytest.mark.skip(reason=reason)
        for item in gpu_items:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _one_gpu_benchmark_at_a_time(request, tmp_path_factory):
    """Two workers timing kernels on one GPU would skew each other's benchmark ratios, so a
    `gpu` benchmark holds a lock file in the run's shared temporary directory while it runs.
    Other GPU tests run side by side: their nvcc compiles are most of a GPU run's time."""
    if ("gpu" not in request.keywords or "benchmark" not in request.fixturenames
            or "PYTEST_XDIST_WORKER" not in os.environ):
        yield
        return
    with open(tmp_path_factory.getbasetemp().parent / "gpu.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
