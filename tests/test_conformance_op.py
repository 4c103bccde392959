"""The `op` and `fusion` case kinds: schema errors at their YAML line, a wrong reference
fails, the bf16 / ONNX Runtime / cuda skips say why, interpreter runs never import
taskmap.gpu, fused kernels match the unfused one, refusals are checked."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from taskmap.conformance import backends, fusion_case, op_case
from taskmap.conformance.cases import BrokenCase
from taskmap.conformance.loader import load_file


def op_file(tmp_path, *body: str) -> str:
    """A file of `op` cases with one case `x`: body[i] is on line 4 + i."""
    path = tmp_path / "c.yaml"
    path.write_text("kind: op\ncases:\n  - name: x\n" + "".join(f"    {line}\n" for line in body))
    return str(path)


def one(tmp_path, *body: str):
    [case] = load_file(op_file(tmp_path, *body))
    return case


@pytest.mark.parametrize("body, line, phrase", [
    (("op: sotfmax", "inputs: [[3]]"), 4, "unknown operator 'sotfmax'; did you mean 'softmax'?"),
    (("op: softmax", "attrs: {axsi: 0}", "inputs: [[3]]"), 5, "unknown attribute 'axsi'; did you mean 'axis'?"),
    (("op: add", "inputs: [[3, 5], [4]]"), 5, "add: "),
    (("op: add", "inputs: [[3], [0]]"), 5, "shape extents must be integers, 1 or more"),
    (("op: relu", "inputs: []"), 5, "`inputs:` must list at least one input"),
    (("op: relu", "inputs: [{shape: [3], init: emtpy}]"), 5, "unknown init 'emtpy' for an operator input"),
    (("op: relu", "dtype: f33", "inputs: [[3]]"), 5, "f33"),
    (("op: relu", "inputs: [[3]]", "tolerance: {i32: 0.1}"), 6, "i32 outputs are compared exactly"),
    (("op: relu", "inputs: [[3]]", "reference: torch"), 6, "unknown reference 'torch'"),
    (("op: rsqrt", "inputs: [[3, 4]]", "reference: onnxruntime"), 6, "has no ONNX equivalent"),
    (("op: cast", "attrs: {to: f12}", "inputs: [[3]]"), 5, "f12"),
    (("op: relu", "inputs: [[3]]", "sizes: {n: 3}"), 6, "unknown key `sizes`"),
])
def test_malformed_op_cases_are_errors_at_their_line(tmp_path, body, line, phrase):
    case = one(tmp_path, *body)
    assert isinstance(case, BrokenCase), case
    assert case.message.startswith(f"{tmp_path / 'c.yaml'}:{line}: ") and phrase in case.message, case.message


def test_a_plan_matching_its_reference_passes_and_a_wrong_reference_fails(tmp_path, monkeypatch):
    case = one(tmp_path, "op: softmax", "dtype: f16", "inputs: [[3, 33]]")
    assert case.run("interp").status == "passed"
    reference = case.op.reference
    # 0.03 off: past f16's atol for rows of 33 terms (2^-9 * sqrt(33) = 0.011) and any rtol
    wrong = lambda *a, **k: tuple(np.asarray(r, np.float16) + np.float16(0.03) for r in reference(*a, **k))  # noqa: E731
    monkeypatch.setattr(op_case.OpCase, "_expected", lambda self, inputs: list(wrong(*inputs, **self.attrs)))
    outcome = case.run("interp")
    assert outcome.status == "failed" and "max rel err" in outcome.message and "via softmax" in outcome.message


def test_explicit_generators_and_per_dtype_tolerance(tmp_path):
    case = one(tmp_path, "op: add", "dtype: i32", "inputs: [{shape: [4], init: arange}, {shape: [4], init: full, value: 3}]")
    assert [a.tolist() for a in case.make_inputs()] == [[0, 1, 2, 3], [3, 3, 3, 3]]
    case = one(tmp_path, "op: exp", "inputs: [[3]]", "tolerance: {f16: {rtol: 0.5}, bf16: 0.25}")
    assert case.tolerance_for(op_case.dt.float16, 1) == op_case.Tolerance(0.5, 2.0 ** -9)
    assert case.tolerance_for(op_case.dt.bfloat16, 1) == op_case.Tolerance(0.25, 0.25)
    assert case.tolerance_for(op_case.dt.float32, 16) == op_case.Tolerance(1e-5, 4e-5)        # atol x sqrt(depth)


def test_skips_say_why(tmp_path, monkeypatch):
    bf16 = one(tmp_path, "op: relu", "dtype: bf16", "inputs: [[3]]", "reference: onnxruntime")
    assert bf16.run("interp").status == "skipped"
    monkeypatch.setitem(backends.BACKENDS, "cuda", backends.Backend("cuda", None, lambda: "no CUDA GPU: test"))
    outcome = one(tmp_path, "op: relu", "inputs: [[3]]").run("cuda")
    assert (outcome.status, outcome.message) == ("skipped", "no CUDA GPU: test")


def test_onnxruntime_reference(tmp_path):
    pytest.importorskip("onnxruntime")
    assert one(tmp_path, "op: gelu", "inputs: [[3, 7]]", "reference: onnxruntime").run("interp").status == "passed"


def test_interpreter_runs_do_not_import_the_gpu_package(tmp_path):
    path = op_file(tmp_path, "op: layer_norm", "inputs: [[2, 5], [5], [5]]")
    script = textwrap.dedent(f"""
        import sys
        from taskmap.conformance.loader import load_file
        [case] = load_file({path!r})
        assert case.run("interp").status == "passed"
        assert "taskmap.gpu" not in sys.modules, "taskmap.gpu imported"
    """)
    subprocess.run([sys.executable, "-c", script], check=True)


# ---------------------------------------------------------------- the fusion kind

VECTOR_ADD = os.path.join(os.path.dirname(__file__), "..", "examples", "vector_add.py")


def fusion(tmp_path, *body: str):
    """One `fusion` case on examples/vector_add.py (n 37); body[i] is on line 6 + i."""
    path = tmp_path / "f.yaml"
    path.write_text(f"kind: fusion\ncases:\n  - name: x\n    kernel: {os.path.abspath(VECTOR_ADD)}::vector_add\n"
                    "    sizes: {n: 37}\n" + "".join(f"    {line}\n" for line in body))
    [case] = load_file(str(path))
    return case


def test_fused_kernel_matches_the_unfused_one_and_a_wrong_reference_fails(tmp_path, monkeypatch):
    case = fusion(tmp_path, "prologue: {a: {op: gelu, inputs: [a2]}}",
                  "epilogue: {c: {op: sub, inputs: [bias, c], output: c2}}")
    fused = case.fused_kernel(case._anchor())
    assert [p.name for p in fused.params] == ["n", "a2", "b", "bias", "c2"]
    assert case.run("interp").status == "passed"
    expected = fusion_case.FusionCase._expected
    monkeypatch.setattr(fusion_case.FusionCase, "_expected", lambda self, *a: {
        k: v * np.float32(1.01) for k, v in expected(self, *a).items()})
    outcome = case.run("interp")
    assert outcome.status == "failed" and "fused kernel vector_add_f32: " in outcome.message and "c2: max rel err" in outcome.message


@pytest.mark.parametrize("body, line, phrase", [
    (("prologue: {z: {op: relu, inputs: [a2]}}",), 6, "kernel vector_add_f32 has no tensor parameter 'z'"),
    (("prologue: {a: {op: relu, inputs: [b]}}",), 6, "'b' is already a parameter of kernel vector_add_f32"),
    (("prologue: {a: {op: softmax, inputs: [a2]}}",), 6, "softmax is not one element-wise computation"),
    (("prologue: {a: {op: equal, inputs: [x, y]}}",), 6, "equal changes the dtype (f32 -> bool)"),
    (("epilogue: {c: {op: relu, inputs: [a2], output: c2}}",), 6, "an epilogue's inputs name the kernel's value 'c'"),
    (("prologue: {a: {op: relu, inputs: [a2], output: a3}}",), 6, "a prologue has no `output:`"),
    (("prologue: {a: {op: rleu, inputs: [a2]}}",), 6, "unknown operator 'rleu'; did you mean 'relu'?"),
    (("sizes: {n: 3}",), 3, "a fusion case needs `prologue:` or `epilogue:`"),
])
def test_malformed_fusions_are_errors_at_their_line(tmp_path, body, line, phrase):
    case = fusion(tmp_path, *body) if "sizes" not in body[0] else None
    if case is None:
        path = tmp_path / "g.yaml"
        path.write_text(f"kind: fusion\ncases:\n  - name: x\n    kernel: {os.path.abspath(VECTOR_ADD)}::vector_add\n")
        [case] = load_file(str(path))
        where = f"{path}:{line}: "
    else:
        where = f"{tmp_path / 'f.yaml'}:{line}: "
    message = case.message if isinstance(case, BrokenCase) else case.run("interp").message
    assert message.startswith(where) and phrase in message, message


def test_refused_fusions_must_be_refused(tmp_path):
    case = fusion(tmp_path, "prologue: {a: {op: relu, inputs: [a2]}}", "refused: accessed through an address")
    outcome = case.run("interp")
    assert outcome.status == "failed" and "expected the fusion to be refused" in outcome.message
