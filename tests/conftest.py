"""Shared pytest set-up: `gpu` tests skip with a one-line reason when no CUDA device/pycuda."""
from __future__ import annotations

import pytest


def _gpu_reason() -> str | None:
    try:
        import gpu
    except Exception as e:          # the gpu package itself failed to import
        return f"gpu package unavailable: {e}"
    available = getattr(gpu, "available", None)
    if available is None:
        return "gpu runtime not built yet"
    ok = available()
    return None if ok else f"no CUDA GPU: {getattr(gpu, 'unavailable_reason', lambda: 'pycuda or device missing')()}"


def pytest_collection_modifyitems(config, items):
    gpu_items = [i for i in items if "gpu" in i.keywords]
    if not gpu_items:
        return
    reason = _gpu_reason()
    if reason:
        skip = pytest.mark.skip(reason=reason)
        for item in gpu_items:
            item.add_marker(skip)
