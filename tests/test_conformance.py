"""The YAML conformance suite (conformance/cases) as pytest items: one per case and backend.

Same cases, same checks as `taskmap conform`; cuda runs carry the `gpu` marker, so they
skip (with the reason) on machines without a GPU. CI runs every case on the interpreter
through `taskmap conform` (.ci/run), so here only the first case of each case file runs on
the interpreter in the not-slow suite — the runner's path through pytest, for every file
and kind — and the other interpreter runs carry the `slow` marker: `pytest -m slow` (or no
-m) still runs them all here.
"""
from __future__ import annotations

import pytest

from taskmap.conformance.cases import BrokenCase
from taskmap.conformance.graph_fusion_case import GraphFusionCase
from taskmap.conformance.kernel_case import KernelCase
from taskmap.conformance.loader import load_paths
from taskmap.conformance.op_case import OpCase
from taskmap.conformance.runner import SLOW, below_floor
from taskmap.spec.ops import OPERATORS

CASES = load_paths()
SAMPLE = {next(c for c in CASES if c.id.split("/")[0] == stem).id for stem in {c.id.split("/")[0] for c in CASES}}


def _marks(case, backend: str) -> list:
    if backend == "cuda":
        return [pytest.mark.gpu] + ([pytest.mark.slow] if SLOW in case.tags else [])
    return [pytest.mark.slow] if SLOW in case.tags or case.id not in SAMPLE else []


PARAMS = [pytest.param(case, backend, id=f"{case.id}:{backend}", marks=_marks(case, backend))
          for case in CASES for backend in case.backends]


def test_suite_is_complete():
    """A loader bug must not pass by collecting nothing (the CLI enforces the same floor)."""
    assert below_floor(CASES) is None
    assert [c.message for c in CASES if isinstance(c, BrokenCase)] == []
    kernel_cases = [c for c in CASES if isinstance(c, KernelCase)]
    assert {c.assertion for c in kernel_cases} == {"assert_return", "assert_trap", "assert_invalid"}
    assert sum(c.assertion == "assert_trap" for c in kernel_cases) >= 20
    assert sum(c.assertion == "assert_invalid" for c in kernel_cases) >= 10
    graph_fusion = [c for c in CASES if isinstance(c, GraphFusionCase)]
    assert len(graph_fusion) >= 30
    op_cases = [c for c in CASES if isinstance(c, OpCase)]
    assert len(op_cases) >= 400 and len({c.op.name for c in op_cases}) >= len(OPERATORS) - 10


@pytest.mark.parametrize("case, backend", PARAMS)
def test_case(case, backend):
    outcome = case.run(backend)
    if outcome.status == "skipped":
        pytest.skip(outcome.message)
    assert outcome.status == "passed", f"{case.where}: {outcome.message}"
