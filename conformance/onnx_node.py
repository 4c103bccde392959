"""`taskmap conform --onnx-node-tests`: ONNX's own backend node tests through the ONNX frontend.

onnx generates its node tests in memory (`onnx.backend.test.loader.load_model_tests(kind=
"node")`: a model of one operator, its inputs and its expected outputs, computed by onnx's
own reference code), so nothing is downloaded. Each test is one case, `onnx-node/<test name>`,
run through `taskmap.compile(model, backend=...)` and compared with the expected outputs
within the test's own tolerances (rtol 1e-3 / atol 1e-7 unless the test says otherwise, as
onnx's backend runner does; integer and bool outputs exactly).

A test's **result** is `passed`, `failed` (a wrong value, shape or dtype, a trap, or an
exception other than the frontend's UnsupportedModel) or `unsupported` (the frontend refused
it with UnsupportedModel). The committed expected list (onnx_node_expected.yaml, EXPECTED)
says which tests do not pass and why; a run's status is then `passed` (passed, as expected),
`skipped` (unsupported or failing, as listed: the reason is in the message) or `failed` (the
result differs from the list: a regression, or a listed test that now passes, so the list
must be updated).
"""
from __future__ import annotations

import collections
import fnmatch
import os
import time
import warnings
from dataclasses import dataclass

import numpy as np
from tabulate import tabulate

from taskmap.spec import dtypes as dt

from . import arrays
from .backends import BACKENDS
from .cases import Case, CaseInfo, Outcome
from .runner import Result
from .schema import CaseError, Where, YList, YMap, check_keys, get, load_yaml

EXPECTED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "onnx_node_expected.yaml")
MIN_NODE_TESTS = 1500          # onnx 1.23 generates 1,884; far fewer means the loader broke
RESULTS = ("passed", "failed", "unsupported")
PREFIX = "onnx-node/"


@dataclass(frozen=True)
class Expectation:
    result: str                # one of RESULTS
    reason: str
    where: Where               # the list entry that says so (not listed: the list's line 1, reason "")


@dataclass
class NodeTest(Case):
    test: object = None        # onnx.backend.test.case.test_case.TestCase
    op_type: str = ""          # the operator the test is about (an `_expanded` test's is its base test's)
    op_types: tuple[str, ...] = ()     # every op type of its graph
    expected: Expectation | None = None

    def run(self, backend: str) -> Outcome:
        start = time.perf_counter()
        why_not = _unavailable(backend)
        if why_not:
            return Outcome("skipped", why_not)
        result, detail, max_abs, max_rel = attempt(self.test, backend)
        seconds = time.perf_counter() - start
        want = self.expected
        if result == want.result:
            status = "passed" if result == "passed" else "skipped"
            message = "" if result == "passed" else f"{result} as listed in {want.where.file}: {want.reason}"
            return Outcome(status, message, max_abs, max_rel, seconds, result=result)
        listed = f"listed as {want.result} at {want.where} ({want.reason})" if want.reason else \
            f"expected to pass (not in {want.where.file})"
        message = (f"{self.op_type}: {listed}, but it {_said(result)}: {detail or 'all outputs match'}. "
                   f"Fix the regression, or update {want.where.file} to the new result")
        return Outcome("failed", message, max_abs, max_rel, seconds, result=result)


def _said(result: str) -> str:
    return {"passed": "passed", "failed": "failed", "unsupported": "was refused as unsupported"}[result]


def _unavailable(backend: str) -> str | None:
    from taskmap.frontends import compiler
    if backend not in compiler.BACKENDS:
        return f"taskmap.compile has no {backend} backend for whole models yet (frontends/compiler.py)"
    return BACKENDS[backend].unavailable()


def attempt(test, backend: str) -> tuple[str, str, float | None, float | None]:
    """(result, detail, max abs err, max rel err) of one node test on `backend`."""
    import taskmap
    from taskmap.frontends.onnx_import import UnsupportedModel
    try:
        program = taskmap.compile(test.model, backend=backend)
    except UnsupportedModel as e:
        return "unsupported", _first_lines(str(e)), None, None
    except Exception as e:  # noqa: BLE001 — any other failure to compile a claimed model is a bug
        return "failed", f"compile: {type(e).__name__}: {_first_lines(str(e))}", None, None
    problems, max_abs, max_rel = [], 0.0, 0.0
    names = [o.name for o in test.model.graph.output]
    for k, (inputs, expected) in enumerate(test.data_sets):
        try:
            outputs = program(*(_storage(a) for a in inputs))
        except Exception as e:  # noqa: BLE001 — a trap or error while running is a wrong answer
            return "failed", f"data set {k}: {type(e).__name__}: {_first_lines(str(e))}", None, None
        for name, got, want in zip(names, outputs, expected, strict=True):
            problem, a, r = _compare(name, np.asarray(got), want, test.rtol, test.atol)
            max_abs, max_rel = max(max_abs, a), max(max_rel, r)
            if problem:
                problems.append(f"data set {k}: {problem}" if len(test.data_sets) > 1 else problem)
    return ("failed" if problems else "passed"), "; ".join(problems), max_abs, max_rel


def _array(a) -> np.ndarray:
    """An onnx test value as a NumPy array (some tests hold TensorProtos: float8 casts)."""
    if hasattr(a, "raw_data") and hasattr(a, "data_type"):
        from onnx import numpy_helper
        return numpy_helper.to_array(a)
    return np.asarray(a)


def _storage(a):
    """An onnx test input as the storage array taskmap takes (bf16 as uint16 bits)."""
    a = _array(a)
    return a.view(np.uint16) if a.dtype.name == "bfloat16" else a


def _dtype(a: np.ndarray) -> dt.DType | None:
    if a.dtype.name == "bfloat16":
        return dt.bfloat16
    try:
        return dt.from_numpy(a.dtype)
    except (KeyError, ValueError, TypeError):
        return None


def _compare(name: str, got: np.ndarray, want, rtol: float, atol: float) -> tuple[str, float, float]:
    """('' or what is wrong, max abs err, max rel err); floats within rtol/atol, the rest exactly."""
    want = _array(want)
    want_t = _dtype(want)
    got_t = dt.bfloat16 if got.dtype == np.uint16 else _dtype(got)
    if want_t is None or got_t is not want_t:
        return f"{name}: dtype {got_t.short if got_t else got.dtype}, expected {want.dtype}", 0.0, 0.0
    if got.shape != want.shape:
        return f"{name}: shape {list(got.shape)}, expected {list(want.shape)}", 0.0, 0.0
    values = arrays.as_values(_storage(want), want_t)
    if want_t is dt.bfloat16:          # onnx's runner: at least two bf16 ulps
        rtol = max(rtol, 2.0**-6)
    c = arrays.compare(name, got, values, want_t, not want_t.is_float, rtol, atol)
    return ("" if c.ok else c.message), c.max_abs, c.max_rel


def _first_lines(text: str, n: int = 3) -> str:
    lines = text.strip().splitlines()
    return " / ".join(s.strip() for s in lines[:n]) + (f" (+{len(lines) - n} lines)" if len(lines) > n else "")


# ---------------------------------------------------------------- the expected list

@dataclass(frozen=True)
class ExpectedList:
    file: str
    unsupported_ops: dict[str, Expectation]        # op type -> why no converter
    tests: tuple[tuple[str, Expectation], ...]     # (test-name glob, expectation), first match wins

    def expect(self, name: str, op_types: tuple[str, ...]) -> Expectation:
        for pattern, e in self.tests:
            if fnmatch.fnmatchcase(name, pattern):
                return e
        for op in op_types:
            if op in self.unsupported_ops:
                return self.unsupported_ops[op]
        return Expectation("passed", "", Where(self.file, 1))


def read_expected(path: str = EXPECTED) -> ExpectedList:
    """The expected list (format in conformance/README.md); CaseError with file:line if malformed."""
    shown = os.path.relpath(path) if not os.path.relpath(path).startswith("..") else path
    doc = load_yaml(shown)
    if not isinstance(doc, YMap):
        raise Where(shown, 1).error("the expected list is a mapping with `unsupported_ops:` and `tests:`")
    check_keys(doc, {"description", "unsupported_ops", "tests"}, "the ONNX node-test expected list")
    ops: dict[str, Expectation] = {}
    for reason, names in _groups(doc, "unsupported_ops"):
        for k, op in enumerate(names):
            if op in ops:
                raise names.at(k).error(f"op type {op} is listed twice (also at {ops[op].where})")
            ops[op] = Expectation("unsupported", reason, names.at(k))
    tests = []
    for key in ("unsupported", "failed"):
        for reason, patterns in _groups(get(doc, "tests", "map", YMap(), what="the expected list"), key):
            tests += [(p, Expectation(key, reason, patterns.at(k))) for k, p in enumerate(patterns)]
    return ExpectedList(shown, ops, tuple(tests))


def _groups(m: YMap, key: str):
    """(reason, YList of names) for each `reason: [names]` entry of m[key]."""
    groups = get(m, key, "map", YMap(), what="the expected list")
    for reason, names in groups.items():
        if not isinstance(names, YList) or not names or not all(isinstance(n, str) for n in names):
            raise groups.at(reason).error(f"`{reason}:` must be a non-empty list of names (strings)")
        yield reason, names


def check_expected(expected: ExpectedList, tests: list[NodeTest], claimed: set[str]) -> list[str]:
    """What is stale or missing in the list: entries that match no test, op types listed as
    unsupported that the frontend claims, op types neither claimed nor listed."""
    problems = []
    for pattern, e in expected.tests:
        if not any(fnmatch.fnmatchcase(t.test.name, pattern) for t in tests):
            problems.append(f"{e.where}: {pattern} matches no ONNX node test; remove it")
    seen = {op for t in tests for op in t.op_types}
    for op, e in expected.unsupported_ops.items():
        if op in claimed:
            problems.append(f"{e.where}: {op} is listed as unsupported, but the frontend claims it "
                            "(onnx_ops.supported_ops()); remove it, so its tests are expected to pass")
        elif op not in seen:
            problems.append(f"{e.where}: no ONNX node test uses op type {op}; remove it")
    for op in sorted(seen - claimed - set(expected.unsupported_ops)):
        users = [t.test.name for t in tests if op in t.op_types]
        problems.append(f"{expected.file}: op type {op} (used by {len(users)} tests, e.g. {users[0]}) is neither "
                        "claimed by the frontend nor listed under `unsupported_ops:`; add it with a reason")
    return problems


# ---------------------------------------------------------------- loading

def load_cases(expected_path: str = EXPECTED) -> list[NodeTest]:
    """One case per ONNX node test, with its expectation; CaseError if onnx is missing, too few
    tests are generated, or the expected list is malformed or out of date."""
    return build_cases(generate(), read_expected(expected_path))


def generate() -> list:
    """onnx's node tests, generated in memory (a few seconds; real-model tests excluded)."""
    try:
        from onnx.backend.test.loader import load_model_tests
    except ImportError as e:
        raise CaseError(f"--onnx-node-tests needs the onnx package ({e}); pip install onnx") from None
    with np.errstate(all="ignore"), warnings.catch_warnings():   # onnx's generators overflow casts on purpose
        warnings.simplefilter("ignore")
        generated = load_model_tests(kind="node")
    if len(generated) < MIN_NODE_TESTS:
        raise CaseError(f"onnx generated only {len(generated)} node tests, expected at least {MIN_NODE_TESTS}: "
                        "is the onnx package complete?")
    return generated


def build_cases(generated: list, expected: ExpectedList) -> list[NodeTest]:
    """The cases of `generated` tests under `expected`; CaseError if the list is out of date."""
    from taskmap.frontends.onnx_ops import supported_ops
    by_name = {t.name: t for t in generated}
    cases = []
    for t in generated:
        op_types = tuple(dict.fromkeys(n.op_type for n in t.model.graph.node))
        e = expected.expect(t.name, op_types)
        info = CaseInfo(id=PREFIX + t.name.removeprefix("test_"), where=e.where, base_dir=os.path.dirname(EXPECTED),
                        backends=tuple(BACKENDS), backends_explicit=False, tags=op_types)
        cases.append(NodeTest(info, backends=tuple(BACKENDS), test=t, op_type=_op_type(t, by_name),
                              op_types=op_types, expected=e))
    problems = check_expected(expected, cases, set(supported_ops()))
    if problems:
        raise CaseError(f"the ONNX node-test expected list is out of date ({len(problems)} problems):\n  "
                        + "\n  ".join(problems))
    return cases


def _op_type(test, by_name: dict) -> str:
    """The operator a test is about: its graph's only op type; for `test_x_expanded[_verN]`
    (a function body written out in primitive ops), that of test_x."""
    base = test.name.split("_expanded")[0]
    if base != test.name and base in by_name:
        test = by_name[base]
    ops = list(dict.fromkeys(n.op_type for n in test.model.graph.node))
    return ops[0] if len(ops) == 1 else "+".join(ops)


# ---------------------------------------------------------------- reports

def by_op(results: list[Result]) -> dict[str, dict[str, int]]:
    """{op type: {passed, failed, unsupported, unexpected}} over the node-test runs."""
    out: dict[str, collections.Counter] = {}
    for r in results:
        if not isinstance(r.case, NodeTest) or not r.outcome.result:
            continue
        c = out.setdefault(r.case.op_type, collections.Counter())
        c[r.outcome.result] += 1
        c["unexpected"] += r.outcome.status == "failed"
    return {op: {k: c[k] for k in (*RESULTS, "unexpected")} for op, c in sorted(out.items())}


def op_table(results: list[Result]) -> str:
    rows = [(op, sum(c[k] for k in RESULTS), *(c[k] for k in RESULTS), c["unexpected"] or "")
            for op, c in by_op(results).items()]
    totals = [sum(r[k] for r in rows) for k in range(1, 5)]
    rows.append(("total", *totals, sum(r[5] or 0 for r in rows) or ""))
    return tabulate(rows, headers=("op type", "tests", *RESULTS, "unexpected"), disable_numparse=True)


def add_json(doc: dict, results: list[Result]) -> dict:
    """report.as_json's document with each node-test run's result and op type, and the table."""
    for entry, r in zip(doc["cases"], results):
        if isinstance(r.case, NodeTest):
            entry.update(result=r.outcome.result, op_type=r.case.op_type)
    ops = by_op(results)
    doc["onnx_node_tests"] = {"ops": ops, "summary": {k: sum(c[k] for c in ops.values())
                                                      for k in (*RESULTS, "unexpected")}}
    return doc
