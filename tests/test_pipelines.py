"""The backends' pass pipelines: listed, pure, and re-verified pass by pass on request, so a
pass that breaks the IR is named (TASKMAP_VERIFY_PASSES=1)."""
from __future__ import annotations

import importlib

import numpy as np
import pytest

from taskmap import refimpl
from taskmap.examples import MODULES
from taskmap.gpu.passes import PIPELINE as CUDA
from taskmap.refimpl import launch
from taskmap.refimpl.passes import PIPELINE as INTERPRETER
from taskmap.spec import ir
from taskmap.spec.errors import PassError
from taskmap.spec.passes import LOWERING, describe, run

EXAMPLES = [k for m in MODULES for k in vars(importlib.import_module(f"taskmap.examples.{m}")).values()
            if isinstance(k, ir.Kernel)]
PIPELINES = {"interpreter": INTERPRETER, "cuda": CUDA}


def drop_declarations(kernel):
    """A deliberately broken pass: removes every scalar declaration."""
    return ir.rewrite(kernel, lambda n: () if isinstance(n, ir.DeclareVar) else n)


def test_each_backend_states_its_passes_after_the_shared_lowering():
    assert [name for name, _ in INTERPRETER] == ["lower_task_mappings", "simplify_divmod", "fold_range_compares"]
    assert [name for name, _ in CUDA] == ["lower_task_mappings", "simplify_divmod", "mark_vector_copies",
                                          "place_shared"]
    assert INTERPRETER[:len(LOWERING)] == CUDA[:len(LOWERING)] == LOWERING
    text = describe(CUDA).splitlines()
    assert text[0].startswith("1. lower_task_mappings: Task-mapping loops") and text[3].startswith("4. place_shared: ")


@pytest.mark.parametrize("which", PIPELINES)
def test_every_pass_is_pure(which):
    for k in EXAMPLES:
        for name, stage in PIPELINES[which]:
            before = str(k)
            out = stage(k)
            assert str(k) == before, f"{name} changed its input"
            assert stage(k) == out and str(stage(k)) == str(out), f"{name} is not deterministic"
            k = out


@pytest.mark.parametrize("which", PIPELINES)
def test_the_passes_keep_every_example_valid(which):
    for k in EXAMPLES:
        run(PIPELINES[which], k, verify=True)


def test_a_pass_that_breaks_the_ir_is_named_with_the_ir_around_the_damage():
    k = EXAMPLES[0]
    broken = LOWERING + (("drop_declarations", drop_declarations),)
    assert run(broken, k) is not None                          # unchecked by default
    with pytest.raises(PassError, match=r"pass drop_declarations produced invalid IR \(undeclared variable\)") as e:
        run(broken, k, verify=True)
    assert e.value.pass_name == "drop_declarations" and "  > " in str(e.value)


def test_the_environment_switch_reverifies_the_interpreters_pipeline(monkeypatch):
    from taskmap.examples.vector_add import make_vector_add
    monkeypatch.setattr(launch, "PIPELINE", INTERPRETER + (("drop_declarations", drop_declarations),))
    monkeypatch.setenv("TASKMAP_VERIFY_PASSES", "1")
    x = np.ones(8, np.float32)
    with pytest.raises(PassError, match="pass drop_declarations"):
        refimpl.interpret(make_vector_add(), 8, x, x, np.zeros(8, np.float32))


def test_an_unverified_kernel_is_not_blamed_on_a_pass():
    from taskmap.conformance.kernels.bugs import divergent_syncthreads    # built with verify=False
    run(INTERPRETER, divergent_syncthreads, verify=True)


def test_the_cli_lists_the_pipelines_and_prints_the_ir_after_each_pass(capsys):
    from taskmap.conformance import cli
    assert cli.main(["passes"]) == 0
    out = capsys.readouterr().out
    assert "interp:\n1. lower_task_mappings" in out and "cuda:\n" in out and "4. place_shared" in out
    assert cli.main(["passes", "examples/matmul_simt.py::matmul_simt", "--backend", "cuda"]) == 0
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if line.startswith("# after")] == \
        ["# after lower_task_mappings", "# after simplify_divmod", "# after mark_vector_copies", "# after place_shared"]
    assert " in (" in out.split("# after")[0] and " in (" not in out.split("# after")[1]   # ForTask lowered
    assert cli.main(["passes", "examples/nope.py::k"]) == 2
