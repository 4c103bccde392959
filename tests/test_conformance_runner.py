"""The checks a case makes, driven through stand-in backends whose results the test controls
(computed with NumPy), so each failure path of the runner is exercised on purpose."""
from __future__ import annotations

import json
import os
import textwrap

import numpy as np
import pytest

from taskmap.conformance import backends, cli, loader, runner
from taskmap.conformance.loader import load_file
from taskmap.refimpl.traps import KernelTrap
from taskmap.spec import dtypes
from taskmap.spec.ir import Loc

ROOT = os.path.join(os.path.dirname(__file__), "..")
BUGS = os.path.abspath(os.path.join(ROOT, "conformance", "kernels", "bugs.py"))
INVALID = os.path.abspath(os.path.join(ROOT, "conformance", "kernels", "invalid.py"))
DSL_ERRORS = os.path.abspath(os.path.join(ROOT, "conformance", "kernels", "dsl_errors.py"))
VECTOR_ADD = os.path.abspath(os.path.join(ROOT, "examples", "vector_add.py"))


def case_file(tmp_path, body: str) -> str:
    path = tmp_path / "c.yaml"
    for name, file in (("BUGS", BUGS), ("INVALID", INVALID), ("DSL_ERRORS", DSL_ERRORS), ("VECTOR_ADD", VECTOR_ADD)):
        body = body.replace(name, file)
    path.write_text(textwrap.dedent(body))
    return str(path)


def fake(monkeypatch, launch, name="interp", unavailable=lambda: None):
    monkeypatch.setitem(backends.BACKENDS, name, backends.Backend(name, launch, unavailable))


def copy_launch(k, n, a, b):
    b[:] = a


def one_case(tmp_path, body):
    [case] = load_file(case_file(tmp_path, body))
    return case


COPY = """\
    cases:
      - name: copy
        kernel: BUGS::copy32
        sizes: {n: 32}
        args: {b: zeros}
        %s
    """


def test_correct_output_passes_with_zero_error(tmp_path, monkeypatch):
    fake(monkeypatch, copy_launch)
    out = one_case(tmp_path, COPY % 'assert_return: {b: "a"}').run("interp")
    assert (out.status, out.max_abs, out.max_rel) == ("passed", 0.0, 0.0), out.message


def test_tolerance_failure_names_worst_index(tmp_path, monkeypatch):
    def launch(k, n, a, b):
        b[:] = a
        b[5] *= 1.01
    fake(monkeypatch, launch)
    out = one_case(tmp_path, COPY % 'assert_return: {b: "a"}').run("interp")
    assert out.status == "failed"
    assert "b: max rel err 0.01 > rtol 9.54e-07 at index (5,)" in out.message
    assert out.max_rel == pytest.approx(0.01, rel=1e-3)


def test_explicit_tolerance_accepts_small_errors(tmp_path, monkeypatch):
    def launch(k, n, a, b):
        b[:] = a * (1 + 1e-4)
    fake(monkeypatch, launch)
    body = COPY % 'assert_return: {b: {value: "a", rtol: 1.0e-3}}'
    assert one_case(tmp_path, body).run("interp").status == "passed"


def test_exact_comparison_is_bitwise(tmp_path, monkeypatch):
    def launch(k, n, a, b):
        b[:] = a
        b[7] = np.nextafter(b[7], np.float32(np.inf))
    fake(monkeypatch, launch)
    out = one_case(tmp_path, COPY % 'exact: true\n        assert_return: {b: "a"}').run("interp")
    assert out.status == "failed"
    assert "1 of 32 elements differ (bit-exact comparison); first at index (7,)" in out.message


def test_modified_input_is_reported(tmp_path, monkeypatch):
    def launch(k, n, a, b):
        b[:] = a
        a[3] = 0.0
    fake(monkeypatch, launch)
    out = one_case(tmp_path, COPY % 'assert_return: {b: "a"}').run("interp")
    assert out.status == "failed" and "input a was modified by the kernel" in out.message


def test_unwritten_output_fails_on_gpu_garbage(tmp_path, monkeypatch):
    fake(monkeypatch, lambda k, n, a, b: None, name="cuda")
    body = COPY.replace("args: {b: zeros}", "args: {b: empty}") % 'assert_return: {b: "a"}'
    out = one_case(tmp_path, body).run("cuda")
    assert out.status == "failed" and "max rel err inf" in out.message


def test_unexpected_trap_fails_a_return_case(tmp_path, monkeypatch):
    def launch(k, n, a, b):
        raise KernelTrap("out of bounds global access", "a[32]", kernel="copy32")
    fake(monkeypatch, launch)
    out = one_case(tmp_path, COPY % 'assert_return: {b: "a"}').run("interp")
    assert out.status == "failed" and out.message.startswith("unexpected KernelTrap: [oob] out of bounds global access")


def test_unavailable_backend_skips_with_reason(tmp_path, monkeypatch):
    fake(monkeypatch, copy_launch, name="cuda", unavailable=lambda: "no CUDA GPU: test")
    out = one_case(tmp_path, COPY % 'assert_return: {b: "a"}').run("cuda")
    assert (out.status, out.message) == ("skipped", "no CUDA GPU: test")


def test_bf16_outputs_compare_by_value(tmp_path, monkeypatch):
    def launch(k, n, a, b, c):
        exact = dtypes.from_bf16_bits(a).astype(np.float64) + dtypes.from_bf16_bits(b)
        c[:] = dtypes.to_bf16_bits(exact.astype(np.float32))
    fake(monkeypatch, launch)
    body = """\
        cases:
          - name: add
            kernel: VECTOR_ADD::make_vector_add(bf16)
            sizes: {n: 50}
            exact: true
            assert_return: {c: "a.astype('f8') + b"}
        """
    case = one_case(tmp_path, body)
    assert case.run("interp").status == "passed"

    def off_by_one_ulp(k, n, a, b, c):
        launch(k, n, a, b, c)
        c[0] += 1
    fake(monkeypatch, off_by_one_ulp)
    out = case.run("interp")
    assert out.status == "failed" and "first at index (0,)" in out.message


TRAP = """\
    cases:
      - name: t
        kernel: BUGS::oob_global_read
        sizes: {n: 32}
        assert_trap: {kind: oob, phrase: out of bounds global access, at: "a[i + 1]", thread: [31], buffer: a}
    """


def bug_line(text: str, path: str = BUGS) -> int:
    with open(path) as f:
        return next(i for i, line in enumerate(f, 1) if text in line)


def raising(trap: KernelTrap):
    def launch(k, *args):
        raise trap
    return launch


def oob_trap(line: int, thread=(31, 0, 0), phrase="out of bounds global access", buffer="a"):
    return KernelTrap(phrase, "index 32", kernel="oob_global_read", loc=Loc(BUGS, line, 9),
                      block=(0, 0, 0), thread=thread, buffer=buffer)


def test_trap_at_the_right_place_passes(tmp_path, monkeypatch):
    fake(monkeypatch, raising(oob_trap(bug_line("a[i + 1]"))))
    out = one_case(tmp_path, TRAP).run("interp")
    assert out.status == "passed", out.message


@pytest.mark.parametrize("launch, message", [
    (lambda k, *a: None, "expected trap oob ('out of bounds global access'), none raised"),
    (raising(KernelTrap("data race on shared memory")), "wrong trap kind: expected oob, got race"),
    (raising(KernelTrap("out of bounds shared access")), "wrong trap phrase: expected 'out of bounds global access'"),
    (raising(oob_trap(bug_line("b[n - i] = a[i]"))), "expected a line containing `a[i + 1]`"),
    (raising(oob_trap(bug_line("a[i + 1]"), thread=(3, 0, 0))), "trap in thread (3, 0, 0), expected (31, 0, 0)"),
    (raising(oob_trap(bug_line("a[i + 1]"), buffer="b")), "trap on tensor 'b', expected 'a'"),
    (lambda k, *a: 1 // 0, "expected trap oob ('out of bounds global access'), got ZeroDivisionError"),
])
def test_trap_mismatches_say_why(tmp_path, monkeypatch, launch, message):
    fake(monkeypatch, launch)
    out = one_case(tmp_path, TRAP).run("interp")
    assert out.status == "failed" and message in out.message, out.message


def test_race_pairs_match_either_thread_or_the_exact_pair(tmp_path, monkeypatch):
    line = bug_line("b[i] = tile[31 - i]")
    trap = KernelTrap("data race on shared memory", kernel="race_shared_missing_barrier", loc=Loc(BUGS, line, 5), block=(0, 0, 0),
                      thread=[(0, 0, 0), (31, 0, 0)], buffer="tile")
    fake(monkeypatch, raising(trap))
    path = case_file(tmp_path, """\
        cases:
          - name: "t-{w}"
            each:
              - {w: one, t: [31]}
              - {w: pair, t: [[0], [31]]}
              - {w: reversed, t: [[31], [0]]}
            kernel: BUGS::race_shared_missing_barrier
            sizes: {n: 32}
            assert_trap: {kind: race, phrase: data race on shared memory, thread: "{t}"}
        """)
    statuses = [c.run("interp").status for c in load_file(path)]
    assert statuses == ["passed", "passed", "failed"]


@pytest.mark.parametrize("kernel, spec, message", [
    ("INVALID::zero_step", '{phrase: loop step is zero, at: "range(0, 8, 0)"}', ""),
    ("INVALID::zero_step", "{phrase: loop step is zero, line: ZERO_STEP_LINE}", ""),
    ("INVALID::zero_step", '{phrase: loop step is zero, at: "a[i] = 0.0"}', "expected a line containing `a[i] = 0.0`"),
    ("INVALID::zero_step", "{phrase: loop step is zero, line: 1}", "expected line 1"),
    ("INVALID::zero_step", "{phrase: invalid wait count}", "wrong phrase: expected 'invalid wait count'"),
    ("INVALID::zero_step", "{stage: dsl, phrase: x}", "expected a dsl error 'x', got a verify error"),
    ("BUGS::copy32", "{phrase: loop step is zero}", "expected verify error 'loop step is zero', but the kernel was accepted"),
    ("DSL_ERRORS::early_return", '{stage: dsl, phrase: "unsupported statement `Return`", at: return, hint: early}', ""),
    ("DSL_ERRORS::early_return", '{stage: dsl, phrase: "unsupported statement `Return`", hint: "a flag"}',
     "expected a hint containing 'a flag'"),
])
def test_invalid_kernels_are_checked_for_phrase_place_and_hint(tmp_path, kernel, spec, message):
    spec = spec.replace("ZERO_STEP_LINE", str(bug_line("range(0, 8, 0)", INVALID)))
    out = one_case(tmp_path, f"cases:\n  - name: v\n    kernel: {kernel}\n    assert_invalid: {spec}\n").run("interp")
    assert (out.status, message in out.message) == ("failed" if message else "passed", True), out.message


# ---------------------------------------------------------------- the CLI

def test_cli_runs_reports_and_writes_json(tmp_path, monkeypatch, capsys):
    fake(monkeypatch, copy_launch)
    path = case_file(tmp_path, """\
        defaults: {kernel: BUGS::copy32, sizes: {n: 32}, args: {b: zeros}}
        cases:
          - {name: good, assert_return: {b: "a"}}
          - {name: bad, assert_return: {b: "a + 1"}}
        """)
    out_json = tmp_path / "r.json"
    rc = cli.main(["conform", path, "--backend", "interp", "--json", str(out_json)])
    text = capsys.readouterr().out
    assert rc == 1
    assert "backend: interp (--backend interp)" in text
    assert "[1/2] c/good interp ... ok" in text and "[2/2] c/bad interp ... FAILED" in text
    assert "max abs err" in text and "FAILED c/bad [interp]" in text and "max rel err" in text
    assert text.rstrip().endswith("1 passed, 1 failed, 0 errors, 0 skipped")
    data = json.loads(out_json.read_text())
    assert data["summary"] == {"passed": 1, "failed": 1, "skipped": 0}
    assert [(c["id"], c["backend"], c["status"]) for c in data["cases"]] == [
        ("c/good", "interp", "passed"), ("c/bad", "interp", "failed")]
    assert set(data["cases"][0]) == {"id", "backend", "status", "max_abs", "max_rel", "seconds", "message"}


def test_cli_filters_with_k_and_refuses_an_empty_selection(tmp_path, monkeypatch, capsys):
    fake(monkeypatch, copy_launch)
    path = case_file(tmp_path, COPY % 'assert_return: {b: "a"}')
    assert cli.main(["conform", path, "-k", "cop", "--backend", "interp"]) == 0
    assert cli.main(["conform", path, "-k", "nothing-like-this", "--backend", "interp"]) == 2
    assert "no case matched" in capsys.readouterr().err


def test_cli_reports_malformed_files_without_traceback(tmp_path, capsys):
    path = case_file(tmp_path, "cases:\n  - name: x\n    kernel: BUGS::copy32\n")
    assert cli.main(["conform", path, "--backend", "interp"]) == 1
    out = capsys.readouterr().out
    assert f"ERROR c/x: {path}:2: a kernel case needs exactly one of" in out and "Traceback" not in out
    assert out.rstrip().endswith("0 passed, 0 failed, 1 errors, 0 skipped")


def test_default_run_refuses_a_suite_below_the_floor(tmp_path, monkeypatch, capsys):
    case_file(tmp_path, COPY % 'assert_return: {b: "a"}')
    monkeypatch.setattr(loader, "CASES_DIR", str(tmp_path))
    assert cli.main(["conform"]) == 2
    assert f"built-in suite: only 1 cases collected, expected at least {runner.MIN_DEFAULT_CASES}" \
        in capsys.readouterr().err


def test_the_floor_holds_per_case_kind(monkeypatch):
    from taskmap.conformance.loader import load_paths
    cases = load_paths()
    assert runner.below_floor(cases) is None
    monkeypatch.setitem(runner.MIN_CASES_BY_KIND, "model", 10**6)
    assert runner.below_floor(cases).endswith("`model` cases collected, expected at least 1000000")


def test_json_summary_counts_errors_as_failed(tmp_path):
    path = case_file(tmp_path, "cases:\n  - name: x\n    kernel: BUGS::copy32\n")
    out_json = tmp_path / "r.json"
    assert cli.main(["conform", path, "--backend", "interp", "--json", str(out_json)]) == 1
    data = json.loads(out_json.read_text())
    assert data["summary"] == {"passed": 0, "failed": 1, "skipped": 0}
    assert data["cases"][0]["status"] == "error"


def test_all_skipped_is_not_a_pass(tmp_path, monkeypatch, capsys):
    fake(monkeypatch, copy_launch, name="cuda", unavailable=lambda: "no CUDA GPU: test")
    path = case_file(tmp_path, COPY % 'assert_return: {b: "a"}')
    assert cli.main(["conform", path, "--backend", "cuda"]) == 1
    assert "every run was skipped" in capsys.readouterr().err


def test_backend_default_depends_on_the_gpu(monkeypatch):
    monkeypatch.setattr(runner, "cuda_unavailable", lambda: None)
    assert runner.choose_backends(None) == (("interp", "cuda"), "a CUDA GPU is available")
    monkeypatch.setattr(runner, "cuda_unavailable", lambda: "no CUDA GPU: none here")
    chosen, why = runner.choose_backends(None)
    assert chosen == ("interp",) and why.startswith("no CUDA GPU: none here")


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert all(cmd in text for cmd in ("conform", "bench", "debug"))


def test_debug_delegates_its_arguments_to_the_interpreters_debugger(monkeypatch):
    import sys
    import types
    seen = []
    fake_debug = types.ModuleType("taskmap.refimpl.debug")
    fake_debug.main = lambda argv: seen.append(argv) or 7
    monkeypatch.setitem(sys.modules, "taskmap.refimpl.debug", fake_debug)
    from taskmap import refimpl
    monkeypatch.setattr(refimpl, "debug", fake_debug, raising=False)
    assert cli.main(["debug", "examples/transpose.py::transpose", "--thread", "3"]) == 7
    assert seen == [["examples/transpose.py::transpose", "--thread", "3"]]
