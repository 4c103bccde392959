"""`taskmap bench`: the interpreter suite end to end, the report formats, the no-GPU path."""
from __future__ import annotations

import importlib.util
import os

import pytest

from taskmap.conformance import bench, cli

BENCH_CONFTEST = os.path.join(os.path.dirname(__file__), "bench", "conftest.py")


def test_interp_suite_times_every_example_and_writes_markdown(tmp_path, capsys):
    md = tmp_path / "perf.md"
    assert cli.main(["bench", "--suite", "interp", "--markdown", str(md)]) == 0
    text = md.read_text()
    for kernel in ("vector_add", "transpose", "reduce_sum", "matmul_simt", "matmul_tc"):
        assert f"| {kernel} " in text
    assert "| kernel " in text and "NumPy reference()" in text and "ratio = baseline time / our time" in text
    assert "ratio" in capsys.readouterr().out
    assert "WRONG" not in text and text.count("| checked ") == 5


def test_rows_report_the_ratio_of_baseline_to_ours():
    row = bench.Row("k", "n=1", ours_us=2.0, baseline="torch", baseline_us=3.0, throughput="1 GB/s")
    assert row.ratio == 1.5
    header, _, line = bench.table([row], "github").splitlines()
    assert [c.strip() for c in header.strip("|").split("|")] == list(bench.HEADERS)
    assert [c.strip() for c in line.strip("|").split("|")] == ["k", "n=1", "2.0", "torch", "3.0", "1 GB/s", "1.5", "checked"]


def test_kernels_suite_without_gpu_says_so_in_one_line(monkeypatch, capsys):
    monkeypatch.setattr(bench, "cuda_unavailable", lambda: "no CUDA GPU: none here")
    assert cli.main(["bench"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "needs a CUDA GPU (no CUDA GPU: none here)" in err


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is not None, reason="matplotlib is installed here")
def test_plot_without_matplotlib_is_a_clear_message(tmp_path):
    row = bench.Row("k", "n=1", 2.0, "torch", 3.0, "1 GB/s")
    assert "matplotlib is not installed" in bench.plot([row], str(tmp_path / "p.png"), "t")


def test_benchmark_machine_info_records_the_gpu_or_its_absence(monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_conftest", BENCH_CONFTEST)
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    monkeypatch.setattr(conftest, "cuda_unavailable", lambda: "no CUDA GPU: none here")
    info = {}
    conftest.pytest_benchmark_update_machine_info(None, info)
    assert info == {"gpu": "none (no CUDA GPU: none here)"}


def test_a_wrong_result_is_flagged_and_fails_the_run(monkeypatch, capsys):
    from taskmap import refimpl
    monkeypatch.setattr(refimpl, "interpret", lambda k, *args: None)     # writes nothing
    assert cli.main(["bench", "--suite", "interp"]) == 1
    out, err = capsys.readouterr()
    assert "WRONG: output c differs from reference()" in out
    assert "vector_add n=1000: wrong result: output c differs from reference()" in err


def test_every_ops_bench_item_has_a_plan_and_a_checked_type():
    """`taskmap bench --suite ops` needs a GPU to run, but its items are plain data: each must
    name a registry operator whose shapes infer and schedule here."""
    from taskmap.conformance.bench_ops import bench_items
    from taskmap.refimpl.schedules import schedule
    from taskmap.spec import dtypes as dt
    from taskmap.spec.ops import get
    items = bench_items()
    assert {i.op for i in items} >= {"matmul", "softmax", "layer_norm", "rms_norm", "add", "conv2d", "attention"}
    for item in items:
        t = dt.by_name(item.dtype)
        types = [t[s] for s in item.shapes]
        get(item.op).infer(types, **item.attrs)
        assert schedule(item.op, types, item.attrs, item.point).launches, item.label


def test_models_suite_is_left_out_with_its_reason_never_estimated(tmp_path, monkeypatch, capsys):
    from taskmap.conformance import backends, bench_models, bench_ops
    from taskmap.frontends import compiler
    if "cuda" in compiler.BACKENDS:
        pytest.skip("taskmap.compile has a cuda backend")
    row = bench.Row("k", "n=1", 2.0, "torch", 3.0, "1 GB/s")
    monkeypatch.setattr(bench, "cuda_unavailable", lambda: None)
    monkeypatch.setattr(backends, "cuda_unavailable", lambda: None)
    monkeypatch.setattr(bench, "gpu_header", lambda: ["GPU: stand-in"])
    monkeypatch.setattr(bench, "gpu_rows", lambda: [row])
    monkeypatch.setattr(bench_ops, "ops_rows", lambda: [row])
    md = tmp_path / "perf.md"
    assert cli.main(["bench", "--suite", "models"]) == 1
    assert "models suite left out: taskmap.compile(model, backend='cuda') does not exist yet" in capsys.readouterr().err
    assert cli.main(["bench", "--suite", "all", "--markdown", str(md)]) == 0
    assert "models suite left out" in capsys.readouterr().err
    text = md.read_text()
    assert text.count("| k ") == 2 and "models suite left out: taskmap.compile" in text
    assert [i.builder for i in bench_models.ITEMS] == ["resnet50", "mobilenet_v2", "inception_v3", "bert_base",
                                                       "gpt2_small"]


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is not None, reason="matplotlib is installed here")
def test_plot_without_matplotlib_is_refused_before_measuring(tmp_path, capsys):
    assert cli.main(["bench", "--suite", "interp", "--plot", str(tmp_path / "p.png")]) == 2
    assert "--plot needs matplotlib" in capsys.readouterr().err


def test_conv_geomean_takes_the_conv_rows_against_cudnn_only():
    from taskmap.conformance.bench import Row
    from taskmap.conformance.bench_ops import CONV_BASELINE, CONV_LABEL, conv_geomean
    rows = [Row(f"{CONV_LABEL} 3x3/1 batch 16 [k]", "s", 10.0, CONV_BASELINE, 5.0, "", ""),
            Row(f"{CONV_LABEL} 1x1/1 batch 1 [k]", "s", 10.0, CONV_BASELINE, 40.0, "", ""),
            Row("matmul f16 [k]", "s", 10.0, "torch.mm (cuBLAS)", 1.0, "", "")]
    assert abs(conv_geomean(rows) - 2.0 ** 0.5) < 1e-12          # sqrt(0.5 · 4)
    assert conv_geomean(rows[2:]) is None
