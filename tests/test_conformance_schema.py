"""Case files: a malformed file fails with file:line and what was expected, never a traceback."""
from __future__ import annotations

import os
import textwrap

import pytest

from taskmap.conformance.loader import load_file, load_paths
from taskmap.conformance.cases import BrokenCase
from taskmap.conformance.schema import CaseError

BUGS = os.path.join(os.path.dirname(__file__), "..", "conformance", "kernels", "bugs.py")


def write(tmp_path, text: str, name: str = "cases.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).replace("BUGS", os.path.abspath(BUGS)))
    return str(path)


def error_of(path: str) -> str:
    """The message of the one case of the file that could not be loaded (it runs as an error)."""
    [broken] = [c for c in load_file(path) if isinstance(c, BrokenCase)]
    outcome = broken.run("interp")
    assert (outcome.status, outcome.message) == ("error", broken.message)
    return broken.message


GOOD_CASE = """\
cases:
  - name: copy
    kernel: BUGS::copy32
    sizes: {n: 32}
    assert_return: {b: "a"}
"""


def test_a_good_file_loads(tmp_path):
    [case] = load_file(write(tmp_path, GOOD_CASE))
    assert case.id == "cases/copy"
    assert case.backends == ("interp", "cuda")
    assert case.sizes == {"n": 32}
    assert [e.text for e in case.expected] == ["a"]


@pytest.mark.parametrize("text, line, phrase", [
    ("cases:\n  - name: x\n    kernel: [unclosed\n", 4, "invalid YAML"),
    ("cases:\n  - name: x\n    kernal: BUGS::copy32\n    assert_return: {b: a}\n", 3,
     "unknown key `kernal` in a `kernel` case; expected one of:"),
    ("cases:\n  - name: x\n    kernel: BUGS::copy32\n", 2,
     "needs exactly one of assert_return, assert_trap, assert_invalid (found: none)"),
    ("cases:\n  - name: x\n    kernel: BUGS::copy32\n    assert_return: {b: a}\n"
     "    assert_trap: {kind: oob, phrase: out of bounds global access}\n", 2, "(found: assert_return, assert_trap)"),
    ("cases:\n  - name: x\n    kernel: BUGS::copy32\n    sizes: [1, 2]\n    assert_return: {b: a}\n", 4,
     "`sizes:` must be a mapping, got a list"),
    ("cases:\n  - name: x\n    kernel: nowhere.py::k\n    assert_return: {b: a}\n", 3, "kernel file 'nowhere.py' not found"),
    ("cases:\n  - name: x\n    kernel: BUGS\n    assert_return: {b: a}\n", 3, "must look like `file.py::name`"),
    ("cases:\n  - name: x\n    kernel: BUGS::copy32\n    assert_trap: {kind: oob, phrase: out of bound}\n", 4,
     "'out of bound' is not a phrase of trap kind oob"),
    ("cases:\n  - name: x\n    kernel: BUGS::copy32\n    assert_trap: {kind: boom, phrase: x}\n", 4,
     "unknown trap kind 'boom'"),
    ("cases:\n  - name: x\n    kernel: BUGS::copy32\n    assert_trap:\n      kind: oob\n"
     "      phrase: out of bounds global access\n      thread: [1, 2, 3, 4]\n", 7, "`thread:` must be an index"),
    ("cases:\n  - name: x\n    each: {n: [1, 2]}\n    kernel: BUGS::copy32\n    assert_return: {b: a}\n", 2,
     "needs {placeholders} in its name"),
    ("cases:\n  - name: x\n    name: y\n", 3, "duplicate key 'name'"),
    ("cases:\n  - name: x\n    kernel: BUGS::copy32\n    backends: [tpu]\n    assert_return: {b: a}\n", 4,
     "unknown backend 'tpu'"),
    ("cases:\n  - name: x\n    kernel: BUGS::copy32\n    backends: [cuda]\n"
     "    assert_trap: {kind: oob, phrase: out of bounds global access}\n", 2,
     "backend 'cuda' not allowed here: traps are checked by the interpreter only"),
    ("cases:\n  - name: x\n    kernel: BUGS::copy32\n    assert_return: {b: a.__class__}\n", 4,
     "names starting with '_' are not allowed"),
    ("cases:\n  - name: x\n    kernel: BUGS::copy32\n    assert_return: {b: 'a +'}\n", 4, "invalid Python expression"),
    ("cases:\n  - name: x\n    kernel: BUGS::copy32\n    args: {a: {init: normal}}\n    assert_return: {b: a}\n", 4,
     "unknown init 'normal'"),
    ("cases:\n  - name: x\n    kernel: BUGS::copy32\n    args: {a: {dtype: f128}}\n    assert_return: {b: a}\n", 4,
     "unknown dtype 'f128'"),
    ("cases:\n  - name: x\n    kind: operator\n", 3, "unknown case kind 'operator'"),
    ("cases:\n  - name: x\n    kernel: BUGS::copy32\n    assert_invalid: {phrase: loop step zero}\n", 4,
     "'loop step zero' is not a verifier phrase (SPEC.md §9.1)"),
    ("cases:\n  - name: x\n    kernel: BUGS::copy32\n    assert_invalid: {phrase: loop step is zero, hint: x}\n", 4,
     "`hint:` applies to `stage: dsl` errors only"),
    ("cases:\n  - name: x\n    kernel: BUGS::copy32\n    assert_invalid: {phrase: loop step is zero, line: 3, at: x}\n",
     4, "give either `line:` or `at:`, not both"),
    ("cases:\n  - name: x\n    kernel: BUGS::copy32\n    assert_invalid:\n      phrase: loop step is zero\n"
     "      line: 0\n", 6, "`line:` must be a line number"),
    ("cases:\n  - name: has space\n    kernel: BUGS::copy32\n    assert_return: {b: a}\n", 2,
     "may use letters, digits"),
    ("cases: []\n", 1, "`cases:` is empty"),
    ("- just a list\n", 1, "a case file is a mapping"),
    ("", 1, "empty case file"),
])
def test_malformed_files_say_where_and_what(tmp_path, text, line, phrase):
    path = write(tmp_path, text)
    message = error_of(path)
    assert message.startswith(f"{path}:{line}: "), message
    assert phrase in message


def test_defaults_merge_and_case_assertion_replaces_inherited_one(tmp_path):
    path = write(tmp_path, """\
        defaults:
          kernel: BUGS::copy32
          sizes: {n: 32}
          args: {a: arange, b: empty}
          backends: [interp, cuda]
          assert_return: {b: "a"}
        cases:
          - name: plain
            args: {a: zeros}
          - name: trap
            args: {a: empty}
            assert_trap: {kind: uninit, phrase: uninitialized global read}
        """)
    plain, trap = load_file(path)
    assert dict(plain.args) == {"a": "zeros", "b": "empty"}
    assert plain.assertion == "assert_return" and plain.backends == ("interp", "cuda")
    assert trap.assertion == "assert_trap" and trap.backends == ("interp",)   # inherited cuda narrowed


def test_each_expands_products_and_rows_with_typed_values(tmp_path):
    path = write(tmp_path, """\
        defaults: {kernel: BUGS::copy32, assert_return: {b: "a"}}
        cases:
          - name: "n{n}-s{seed}"
            each: {n: [1, 32], seed: [0, 1]}
            sizes: {n: "{n}"}
            seed: "{seed}"
          - name: "row-{n}"
            each:
              - {n: 5, args: {a: zeros}}
              - {n: 6, args: {a: arange}}
            sizes: {n: "{n}"}
            args: "{args}"
        """)
    cases = load_file(path)
    assert [c.id for c in cases] == ["cases/n1-s0", "cases/n1-s1", "cases/n32-s0", "cases/n32-s1",
                                     "cases/row-5", "cases/row-6"]
    assert [c.sizes["n"] for c in cases] == [1, 1, 32, 32, 5, 6]
    assert [c.seed for c in cases[:4]] == [0, 1, 0, 1]
    assert dict(cases[5].args) == {"a": "arange"}
    assert cases[5].where.line == 10           # a row's case points at its row


def test_duplicate_ids_across_the_suite_are_refused(tmp_path):
    first = write(tmp_path, GOOD_CASE, "a.yaml")
    (tmp_path / "sub").mkdir()
    second = write(tmp_path / "sub", GOOD_CASE, "a.yaml")
    good, duplicate = load_paths([str(tmp_path)])
    assert not isinstance(good, BrokenCase) and good.where.file == first
    assert isinstance(duplicate, BrokenCase)
    assert duplicate.message.startswith(f"{second}:2: duplicate case id 'a/copy' (also at {first}:2)")


def test_missing_path_is_a_case_error(tmp_path):
    with pytest.raises(CaseError, match="no such case file or directory"):
        load_paths([str(tmp_path / "missing.yaml")])


def test_a_new_case_kind_plugs_in_through_the_registry(tmp_path, monkeypatch):
    """Later operator / fusion / model kinds register like this and get defaults, each,
    ids, backends and file:line errors from the loader for free."""
    from dataclasses import dataclass

    from taskmap.conformance import cases
    from taskmap.conformance.schema import get

    @dataclass
    class ParityCase(cases.Case):
        value: int = 0

        def run(self, backend):
            return cases.Outcome("passed" if self.value % 2 == 0 else "failed", f"{self.value} is odd")

    def build(m, info):
        return ParityCase(info, backends=info.allowed_backends(("interp",), "parity runs on the CPU"),
                          value=get(m, "value", "int"))

    monkeypatch.setitem(cases.KINDS, "parity", cases.CaseKind("parity", frozenset({"value"}), ("interp",), build))
    path = write(tmp_path, """\
        kind: parity
        cases:
          - name: "v{v}"
            each: {v: [2, 3]}
            value: "{v}"
        """)
    even, odd = load_file(path)
    assert (even.id, even.backends) == ("cases/v2", ("interp",))
    assert [even.run("interp").status, odd.run("interp").status] == ["passed", "failed"]
    bad = write(tmp_path, "kind: parity\ncases:\n  - name: x\n    value: two\n", "bad.yaml")
    assert error_of(bad) == f"{bad}:4: `value:` must be an integer, got str 'two'"
