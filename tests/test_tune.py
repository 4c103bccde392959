"""The tuner without a GPU: a fake `measure` (a deterministic time per point, from a hash of
the point) and a `check` comparing the small problem's plan on the interpreter with NumPy."""
from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from taskmap.lang import f32
from taskmap.refimpl.schedules import points, run, schedule, template_for, tune, tune_report, tuned_plan
from taskmap.refimpl.schedules import tune_cache
from taskmap.spec.ops import get

TYPES = [f32[40, 24], f32[24, 36]]


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TASKMAP_CACHE", str(tmp_path))
    return tmp_path


def fake_seconds(point) -> float:
    return int(hashlib.sha256(repr(point).encode()).hexdigest()[:8], 16) * 1e-12


@functools.cache
def quick_plans() -> dict:
    return {p: schedule("matmul", TYPES, {}, p) for p in points(template_for("matmul", TYPES), "quick")}


class Counting:
    """A fake measure of the quick level's plans, recording the points it timed."""
    def __init__(self):
        self.seen = []

    def __call__(self, plan):
        point = next(p for p, q in quick_plans().items() if q == plan)
        self.seen.append(point)
        return fake_seconds(point)


def template():
    return template_for("matmul", TYPES)


def test_the_fastest_point_of_the_search_wins():
    measure = Counting()
    point = tune("matmul", TYPES, {}, "quick", measure=measure)
    tried = points(template(), "quick")
    assert measure.seen == list(tried)
    assert point == min(tried, key=fake_seconds)


@pytest.mark.parametrize("level, count", [("quick", 6), ("default", 24), ("full", None)])
def test_levels_visit_their_number_of_points(level, count):
    t = template()
    tried = points(t, level)
    assert tried[0] == t.default and len(set(tried)) == len(tried) and set(tried) <= set(t.space)
    assert len(tried) == (count or len(t.space))
    assert points(t, level) == tried            # the same sample every time
    assert set(points(t, "quick")) <= set(tried)


def test_an_unknown_level_is_refused():
    with pytest.raises(ValueError, match="unknown tuning level 'fast'"):
        points(template(), "fast")


def test_a_wrong_result_never_wins():
    t = template()
    fastest = min(points(t, "quick"), key=fake_seconds)

    def check(plan):                              # the interpreter vs NumPy on the small problem
        inputs = get("matmul").sample(np.random.default_rng(0), [i.dtype[i.shape] for i in plan.inputs])
        out = np.empty(plan.outputs[0].shape, np.float32)
        run(plan, *inputs, out)
        if plan == schedule("matmul", [i.dtype[i.shape] for i in plan.inputs], {}, fastest):
            out[0, 0] += 1                        # the fastest candidate computes a wrong result
        return None if np.allclose(out, inputs[0] @ inputs[1], rtol=1e-5, atol=1e-5) else "wrong result"

    report = tune_report("matmul", TYPES, {}, "quick", measure=Counting(), check=check)
    assert report.point != fastest and report.rejected == {fastest: "wrong result"}
    assert report.point == min((p for p in points(t, "quick") if p != fastest), key=fake_seconds)


def test_a_failing_candidate_is_rejected_not_fatal():
    t = template()

    def measure(plan):
        if plan != schedule("matmul", TYPES, {}, t.default):
            raise RuntimeError("launch failed")
        return 1.0
    report = tune_report("matmul", TYPES, {}, "quick", measure=measure)
    assert report.point == t.default and len(report.rejected) == 5
    with pytest.raises(ValueError, match="every candidate failed"):
        tune_report("matmul", TYPES, {}, "quick", measure=lambda plan: 1 / 0, use_cache=False)


def test_the_cache_hits_then_schedule_uses_the_tuned_point():
    first = tune_report("matmul", TYPES, {}, "quick", measure=Counting())
    assert not first.cached and first.seconds == fake_seconds(first.point)
    measure = Counting()
    again = tune_report("matmul", TYPES, {}, "quick", measure=measure)
    assert again.cached and again.point == first.point and measure.seen == []
    assert schedule("matmul", TYPES, {}, point="tuned") == schedule("matmul", TYPES, {}, first.point)
    assert tuned_plan("matmul", TYPES, {}) == schedule("matmul", TYPES, {}, first.point)
    start = time.perf_counter()
    for _ in range(10):
        tune("matmul", TYPES, {})
    assert (time.perf_counter() - start) / 10 < 0.010


def test_a_tuned_build_schedules_each_node_at_its_cached_point():
    """graph_exec.build(tuned=True), what taskmap.compile(tuned=True) and torch.compile's
    max-autotune use; the tuned point must differ from the default for this to tell."""
    from taskmap.refimpl.graph_exec import build
    from taskmap.spec.graph import Graph, Node, Value
    from taskmap.spec.graph.passes import infer_shapes
    point = tune("matmul", TYPES, {}, "quick", measure=Counting())
    assert point != template_for("matmul", TYPES).default
    g = infer_shapes(Graph("g", (Value("a", TYPES[0]), Value("b", TYPES[1])), ("y",),
                           (Node.make("mm", "matmul", ["a", "b"], [Value("y", None)]),), ()))
    assert build(g, tuned=True).steps[0].plan == schedule("matmul", TYPES, {}, point)
    assert build(g).steps[0].plan == schedule("matmul", TYPES, {})


def test_without_an_entry_tuned_is_the_default_and_tune_needs_a_measure():
    assert schedule("matmul", TYPES, {}, point="tuned") == schedule("matmul", TYPES, {})
    with pytest.raises(ValueError, match="no cached point for this key and no measure"):
        tune("matmul", TYPES, {})


def test_other_shapes_dtypes_or_attrs_miss():
    tune("matmul", TYPES, {}, "quick", measure=Counting())
    assert tune_cache.cached_point("matmul", [f32[40, 24], f32[24, 37]], {}, template()) is None
    key = tune_cache.cache_key("matmul", TYPES, {}, template(), "sm_90")
    assert tune_cache.lookup_key({**key, "arch": "sm_80"}, template()) is None
    assert tune_cache.lookup_key({**key, "version": "0.0.0"}, template()) is None


@pytest.mark.parametrize("content", ["{not json", "", '{"key": {"operator": "softmax"}, "point": "x"}',
                                     "[1, 2]", "OTHER_POINT"])
def test_a_corrupt_or_foreign_entry_is_ignored_and_retuned(content):
    key = tune_cache.cache_key("matmul", TYPES, {}, template(), "sm_90")
    path = tune_cache.entry_path(key)
    path.parent.mkdir(parents=True)
    if content == "OTHER_POINT":                 # a point that is not in the space
        content = json.dumps({"key": key, "point": "TcPoint(tile=(1, 1, 1))", "seconds": 0})
    path.write_text(content)
    assert schedule("matmul", TYPES, {}, point="tuned") == schedule("matmul", TYPES, {})
    measure = Counting()
    report = tune_report("matmul", TYPES, {}, "quick", measure=measure)
    assert not report.cached and len(measure.seen) == 6
    assert json.loads(path.read_text())["point"] == repr(report.point)


CONCURRENT = """
import hashlib, sys
from taskmap.lang import f32
from taskmap.refimpl.schedules import tune
def measure(plan):
    return int(hashlib.sha256(repr(plan.kernels).encode()).hexdigest()[:8], 16) * 1e-12
print(repr(tune("matmul", [f32[40, 24], f32[24, 36]], {}, "quick", measure=measure)))
"""


def test_two_processes_tuning_one_key_both_end_with_a_valid_entry(cache):
    env = {**os.environ, "TASKMAP_CACHE": str(cache)}
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [p.communicate(timeout=300)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert results[0] == results[1]
    assert repr(tune("matmul", TYPES, {})) == results[0]
    assert [f.suffix for f in (cache / "tuned").iterdir()] == [".json"]     # no temporary left behind


def test_small_types_cap_dimensions_and_keep_matching_ones_matching():
    from taskmap.refimpl.schedules.tune import small_types
    a, b = small_types("matmul", [f32[4096, 4100], f32[4100, 4096]])
    assert a.shape == (72 + 4096 % 8, 72 + 4100 % 8) and b.shape == a.shape[::-1]


def test_taskmap_tune_without_a_gpu_says_why(capsys):
    from taskmap import gpu
    from taskmap.conformance.cli import main
    if gpu.available():
        pytest.skip("a GPU is available")
    assert main(["tune", "matmul", "--shapes", "64x64,64x64", "--level", "quick"]) == 2
    assert "taskmap tune: no GPU to tune on" in capsys.readouterr().err


@pytest.fixture
def cpu_tuning(monkeypatch):
    """gpu.tuning with the interpreter for its launches (check) and a fake clock (measure)."""
    from taskmap.gpu import tuning
    from taskmap.refimpl import interpret
    monkeypatch.setattr(tuning, "device_limits", lambda: {"arch": "sm_90"})
    monkeypatch.setattr(tuning, "compile_ahead", lambda sources, arch, progress=None: len(sources))
    monkeypatch.setattr(tuning, "launch", interpret)
    timed = []
    monkeypatch.setattr(tuning, "measure", lambda plan: timed.append(plan) or fake_seconds(plan.kernels[0].name))
    return tuning, timed


def test_tune_graph_tunes_each_distinct_anchor_once_then_finds_the_cache(cpu_tuning):
    from taskmap.refimpl.graph_exec import build
    from taskmap.spec.graph import Graph, Node, Value
    from taskmap.spec.graph.passes import infer_shapes
    tuning, timed = cpu_tuning
    nodes = (Node.make("mm1", "matmul", ["a", "b"], [Value("y", None)]), Node.make("r", "relu", ["y"], [Value("z", None)]),
             Node.make("mm2", "matmul", ["z", "c"], [Value("w", None)]))         # mm2: the same problem as mm1
    g = infer_shapes(Graph("g", (Value("a", TYPES[0]), Value("b", TYPES[1]), Value("c", f32[36, 36])), ("w",), nodes, ()))
    reports = tuning.tune_graph(g, "quick")
    assert len(reports) == 2 and not any(r.cached for r in reports)         # (40x24)@(24x36) and (40x36)@(36x36)
    assert all(not r.rejected for r in reports) and len(timed) == 2 * len(points(template_for("matmul", TYPES), "quick"))
    assert [r.cached for r in tuning.tune_graph(g, "quick")] == [True, True]
    exe = build(g, tuned=True)
    assert exe.steps[0].plan == schedule("matmul", TYPES, {}, reports[0].point)


def test_the_gpu_check_reports_a_plan_that_computes_something_else(cpu_tuning):
    tuning, _ = cpu_tuning
    plan = schedule("gemm", TYPES, {})
    assert tuning.checker("gemm", {})(plan) is None
    problem = tuning.checker("gemm", {"alpha": 2.0})(plan)
    assert problem is not None and "vs the reference" in problem


def test_compile_tunes_on_the_gpu_only_and_names_the_choices():
    import taskmap
    from taskmap.spec.errors import TaskmapError
    from taskmap.spec.graph import Graph, Node, Value
    from taskmap.spec.graph.passes import infer_shapes
    g = infer_shapes(Graph("g", (Value("a", TYPES[0]), Value("b", TYPES[1])), ("y",),
                           (Node.make("mm", "matmul", ["a", "b"], [Value("y", None)]),), ()))
    with pytest.raises(TaskmapError, match="tune='default' measures on the GPU .*use tune='cached'"):
        taskmap.compile(g, tune="default")
    with pytest.raises(TaskmapError, match="tune='fast': use one of None, 'cached', 'quick'"):
        taskmap.compile(g, tune="fast")
    point = tune("matmul", TYPES, {}, "quick", measure=Counting())
    assert taskmap.compile(g, tune="cached").executable({}).steps[0].plan == schedule("matmul", TYPES, {}, point)
