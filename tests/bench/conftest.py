"""pytest-benchmark set-up: record the GPU and its driver in each saved run's machine info,
so `--benchmark-compare` never silently compares timings taken on different devices.

Regression recipe (README.md, "Benchmarks"):
    python -m pytest tests/bench --benchmark-autosave                       # baseline
    python -m pytest tests/bench --benchmark-compare --benchmark-compare-fail=median:10%
"""
from __future__ import annotations

from taskmap.conformance.backends import cuda_unavailable


def pytest_benchmark_update_machine_info(config, machine_info):
    reason = cuda_unavailable()
    if reason is not None:
        machine_info["gpu"] = f"none ({reason})"
        return
    from taskmap import gpu
    limits = gpu.runtime.device_limits()
    version = gpu.runtime.driver().get_driver_version()
    machine_info["gpu"] = f"{limits['name']} ({limits['arch']})"
    machine_info["cuda_driver"] = f"{version // 1000}.{version % 1000 // 10}"
