"""`taskmap conform --onnx-node-tests`: ONNX's own node tests through the frontend, held to the
committed expected list (conformance/onnx_node_expected.yaml).

The default run takes a representative subset (SUBSET); the whole suite is `slow`
(conformance/README.md gives the timings)."""
from __future__ import annotations

import copy
import json
import textwrap

import numpy as np
import pytest

from taskmap.conformance import cli, onnx_node, runner
from taskmap.conformance.schema import CaseError

pytest.importorskip("onnx")

# One or two tests per family, and the ones that caught bugs: equal-shaped concat along axis 0
# (vector loads hoisted out of a select), a rank-0 input (made 1-D on the way in), an opset-7
# model (upgraded), bf16, an `_expanded` function body, TensorProto data (float8 casts).
SUBSET = ("test_abs", "test_add_bcast", "test_relu", "test_gelu_tanh_2", "test_celu_bfloat16", "test_and2d",
          "test_where_example", "test_pow_bcast_scalar", "test_cast_FLOAT_to_FLOAT16",
          "test_reduce_sum_keepdims_example", "test_reduce_log_sum_exp_do_not_keepdims_example_expanded",
          "test_argmax_keepdims_random", "test_softmax_axis_1", "test_layer_normalization_2d_axis0",
          "test_gemm_default_scalar_bias", "test_matmul_3d", "test_conv_with_strides_padding",
          "test_maxpool_2d_pads", "test_averagepool_2d_ceil", "test_concat_2d_axis_0", "test_transpose_default",
          "test_slice_neg_steps", "test_gather_1", "test_resize_downsample_scales_nearest",
          "test_add_uint8", "test_cumprod_1d", "test_cast_FLOAT_to_FLOAT8E4M3FN", "test_scatternd_add",
          "test_einsum_batch_matmul_bfloat16", "test_triu_square", "test_isinf_negative", "test_shrink_soft",
          "test_sinh", "test_swish", "test_tan", "test_acosh", "test_atanh",
          "test_depthtospace_crd_mode_example", "test_spacetodepth", "test_eyelike_with_dtype",
          "test_l2normalization_axis_0", "test_mvn")


@pytest.fixture(scope="module")
def generated():
    return onnx_node.generate()


@pytest.fixture(scope="module")
def cases(generated):
    return {c.test.name: c for c in onnx_node.build_cases(generated, onnx_node.read_expected())}


@pytest.mark.parametrize("name", SUBSET)
def test_node_test_meets_the_expected_list(cases, name):
    out = cases[name].run("interp")
    assert out.status in ("passed", "skipped"), out.message
    assert out.result == cases[name].expected.result


@pytest.mark.slow
def test_every_node_test_meets_the_expected_list(cases):
    results = runner.run(runner.plan(list(cases.values()), ("interp",)))
    wrong = [f"{r.case.id}: {r.outcome.message}" for r in results if r.outcome.status not in ("passed", "skipped")]
    assert not wrong, "\n".join(wrong)


def _expected(tmp_path, body: str) -> onnx_node.ExpectedList:
    path = tmp_path / "expected.yaml"
    path.write_text(textwrap.dedent(body))
    return onnx_node.read_expected(str(path))


def _only(generated, expected, *names):
    picked = [t for t in generated if t.name in names]
    return {c.test.name: c for c in onnx_node.build_cases(picked, expected)}


def test_a_listed_test_that_passes_fails_the_run_saying_to_update_the_list(tmp_path, generated):
    expected = _expected(tmp_path, """\
        tests:
          unsupported:
            "we thought so": [test_abs]
        """)
    out = _only(generated, expected, "test_abs")["test_abs"].run("interp")
    assert (out.status, out.result) == ("failed", "passed")
    assert "listed as unsupported at" in out.message and "expected.yaml:3" in out.message
    assert "update" in out.message and "all outputs match" in out.message


def test_a_wrong_expected_value_fails(generated):
    case = _only(generated, onnx_node.ExpectedList("x.yaml", {}, ()), "test_abs")["test_abs"]
    case.test = copy.deepcopy(case.test)
    case.test.data_sets[0][1][0].flat[3] += 0.5
    out = case.run("interp")
    assert (out.status, out.result) == ("failed", "failed")
    assert "expected to pass (not in x.yaml)" in out.message and "index (0, 0, 3)" in out.message


def test_an_unsupported_test_not_in_the_list_fails(generated):
    case = _only(generated, onnx_node.ExpectedList("x.yaml", {}, ()), "test_add_uint8")["test_add_uint8"]
    out = case.run("interp")
    assert (out.status, out.result) == ("failed", "unsupported")
    assert "was refused as unsupported" in out.message and "u8" in out.message


def test_an_unsupported_op_type_is_expected_unsupported_and_skipped_with_its_reason(cases):
    case = cases["test_cumprod_1d"]
    assert (case.op_type, case.expected.result) == ("CumProd", "unsupported")
    assert case.expected.reason.startswith("no registry operator and converter yet")
    out = case.run("interp")
    assert out.status == "skipped" and "unsupported as listed in" in out.message and "converter yet" in out.message


def test_an_out_of_date_list_is_refused_with_each_problem(tmp_path, generated):
    expected = _expected(tmp_path, """\
        unsupported_ops:
          "no reason": [Relu, NoSuchOp]
        tests:
          failed:
            "stale": [test_no_such_test*]
        """)
    picked = [t for t in generated if t.name in ("test_relu", "test_cumprod_1d")]
    with pytest.raises(CaseError) as e:
        onnx_node.build_cases(picked, expected)
    text = str(e.value)
    assert "expected.yaml:5: test_no_such_test* matches no ONNX node test" in text
    assert "expected.yaml:2: Relu is listed as unsupported, but the frontend claims it" in text
    assert "expected.yaml:2: no ONNX node test uses op type NoSuchOp" in text
    assert "op type CumProd (used by 1 tests, e.g. test_cumprod_1d) is neither claimed" in text


def test_a_malformed_list_names_its_line(tmp_path):
    with pytest.raises(CaseError, match=r"expected.yaml:3: `bad:` must be a non-empty list"):
        _expected(tmp_path, """\
            tests:
              unsupported:
                bad: 3
            """)
    with pytest.raises(CaseError, match=r"expected.yaml:1: .*unknown key|expected.yaml:1: .*skip"):
        _expected(tmp_path, "skip: [test_abs]\n")


def test_cli_reports_per_op_type_and_json(tmp_path, capsys):
    out_json = tmp_path / "r.json"
    code = cli.main(["conform", "--onnx-node-tests", "-k", "onnx-node/abs", "--json", str(out_json)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "op type" in text and "unsupported" in text and "1 passed" in text
    doc = json.loads(out_json.read_text())
    assert (doc["cases"][0]["id"], doc["cases"][0]["result"], doc["cases"][0]["op_type"]) == \
        ("onnx-node/abs", "passed", "Abs")
    assert doc["onnx_node_tests"]["ops"]["Abs"] == {"passed": 1, "failed": 0, "unsupported": 0, "unexpected": 0}


def test_cli_refuses_paths_with_onnx_node_tests(capsys):
    assert cli.main(["conform", "--onnx-node-tests", "conformance/cases"]) == 2
    assert "drop the PATHS" in capsys.readouterr().err


def test_storage_and_comparison_follow_onnx(generated):
    bf16 = next(t for t in generated if t.name == "test_celu_bfloat16")
    x = onnx_node._storage(bf16.data_sets[0][0][0])
    assert x.dtype == np.uint16
    problem, _, _ = onnx_node._compare("y", np.zeros(3, np.float64), np.zeros(3, np.float32), 1e-3, 1e-7)
    assert "dtype f64, expected float32" in problem
