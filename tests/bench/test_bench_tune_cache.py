"""The tuner's cached lookup (issue 10: < 10 ms): `tune_report` answering from the disk cache
for a point `taskmap tune` stored, in a temporary TASKMAP_CACHE. CPU only.

    python -m pytest tests/bench/test_bench_tune_cache.py --benchmark-only
"""
from __future__ import annotations

from taskmap.lang import f16
from taskmap.refimpl.schedules import template_for, tune_report
from taskmap.refimpl.schedules.matmul import WgmmaPoint
from taskmap.refimpl.schedules.tune_cache import cache_key, store


def test_a_cached_lookup(benchmark, tmp_path, monkeypatch):
    monkeypatch.setenv("TASKMAP_CACHE", str(tmp_path))
    types = [f16[4096, 4096], f16[4096, 4096]]
    store(cache_key("matmul", types, {}, template_for("matmul", types, {}), "sm_90"), WgmmaPoint(), 3.96e-4)
    report = benchmark(tune_report, "matmul", types, {}, "default")
    assert report.cached and report.point == WgmmaPoint()
