"""Running the suite: `-n 2` (pytest-xdist) gives the serial run's results in its order, JUnit
XML, the `slow` tag, terminal progress, and one GPU per worker."""
from __future__ import annotations

import io
import json
import os
import xml.etree.ElementTree as ET

import pytest

from taskmap.conformance import cli, parallel, runner
from taskmap.conformance.cases import Outcome

CASES = """\
kind: op
cases:
  - name: "{op}-{dtype}"
    each: {op: [relu, softmax], dtype: [f32, bf16]}
    op: "{op}"
    dtype: "{dtype}"
    inputs: [[3, 7]]
  - name: add-bcast
    op: add
    inputs: [[2, 1, 5], [4, 1]]
  - name: big
    tags: [slow]
    op: relu
    inputs: [[5]]
"""


def results(path, *flags) -> tuple[int, dict]:
    rc = cli.main(["conform", str(path), "--backend", "interp", "--json", str(path) + ".json", *flags])
    with open(str(path) + ".json", encoding="utf-8") as f:
        return rc, json.load(f)


def same(data: dict) -> list:
    return [(c["id"], c["backend"], c["status"], c["max_abs"], c["max_rel"], c["message"])
            for c in data["cases"]]


def test_parallel_run_matches_the_serial_one(tmp_path, capsys):
    pytest.importorskip("xdist")
    path = tmp_path / "c.yaml"
    path.write_text(CASES)
    serial_rc, serial = results(path)
    parallel_rc, merged = results(path, "-n", "2", "--junit", str(tmp_path / "j.xml"))
    assert serial_rc == parallel_rc == 0
    assert same(merged) == same(serial) and len(serial["cases"]) == 5       # the slow case is left out
    assert merged["summary"] == {"passed": 5, "failed": 0, "skipped": 0}
    out = capsys.readouterr().out
    assert "workers: 2" in out and "[5/5] " in out
    suite = ET.parse(tmp_path / "j.xml").getroot()
    assert suite.get("tests") == "5" and [t.get("name") for t in suite] == [c["id"] for c in serial["cases"]]


def test_slow_cases_run_with_slow_or_k_slow(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(CASES)
    assert [c["id"] for c in results(path, "-k", "slow")[1]["cases"]] == ["c/big"]
    assert len(results(path, "--slow", "-k", "c/")[1]["cases"]) == 6


def test_junit_reports_failures_and_errors(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("kind: op\ncases:\n  - name: bad\n    op: relu\n    inputs: [[0]]\n")
    assert cli.main(["conform", str(path), "--backend", "interp", "--junit", str(tmp_path / "j.xml")]) == 1
    [case] = ET.parse(tmp_path / "j.xml").getroot()
    assert case.find("error").get("message").startswith(f"{path}:5: shape extents")


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_terminal_progress_rewrites_one_line_and_keeps_failures():
    from taskmap.conformance.cases import Case, CaseInfo
    from taskmap.conformance.schema import Where
    cases = [Case(CaseInfo(f"c/{i}", Where("c.yaml", 1), ".", ("interp",), False, ())) for i in range(3)]
    out = Tty()
    progress = runner.Progress(out, 3)
    for case, status in zip(cases, ("passed", "failed", "passed")):
        progress.start(case, "interp")
        progress.finish(case, "interp", Outcome(status))
    assert out.getvalue() == ("\r\033[K[1/3] c/0 interp ... ok" "\r\033[K[2/3] c/1 interp ... FAILED\n"
                              "\r\033[K[3/3] c/2 interp ... ok\n")


def test_one_gpu_per_worker(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    assert parallel.worker_count("auto", ("interp", "cuda")) == (2, ["2", "5"])
    assert parallel.worker_count("3", ("interp",)) == (3, [])
    monkeypatch.setenv(parallel.GPUS_ENV, "2,5")
    parallel.pin_gpu("gw1")
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "5"


def test_bad_worker_counts_are_usage_errors(capsys):
    with pytest.raises(SystemExit):
        cli.main(["conform", "-n", "0"])
    assert "expected a number of workers (1 or more) or auto, got '0'" in capsys.readouterr().err
