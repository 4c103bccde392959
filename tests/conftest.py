"""Shared pytest set-up: `gpu` tests skip with a one-line reason when no CUDA device/pycuda."""
from __future__ import annotations

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
