"""Bad conformance input, as a new user writes it: each row is one mistake, run through
`taskmap conform`, and must give a clear error — its phrase, at its place (file:line of the
YAML key, or the path / option named) — never a traceback, and a non-zero exit status.

The mixed-directory test at the end checks that one bad file or case never stops the others.
"""
from __future__ import annotations

import json
import os

import pytest

from taskmap.conformance import cases as case_kinds
from taskmap.conformance import cli

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
BUGS = os.path.join(ROOT, "conformance", "kernels", "bugs.py")
VECTOR_ADD = os.path.join(ROOT, "examples", "vector_add.py")


def case(*body: str) -> str:
    """A file with one case `x`: body[i] is on line 3 + i."""
    return "cases:\n  - name: x\n" + "".join(f"    {line}\n" for line in body)


def copy(*body: str, sizes: str = "{n: 32}") -> str:
    """The copy32 kernel (n: i32, a: f32[n], b: f32[n]); body[i] is on line 5 + i."""
    return case("kernel: BUGS::copy32", f"sizes: {sizes}", *body)


RETURN = 'assert_return: {b: "a"}'
TRAP = "assert_trap: {kind: oob, phrase: out of bounds global access}"

# A kernel file written next to the case file as k.py, for the rows that need one.
KERNEL_FILE = '''from __future__ import annotations
from taskmap.lang import f32, i32, kernel, threadIdx
import numpy as np


@kernel(grid=1, block=32)
def short(n: i32, a: f32[n - 10]):
    a[threadIdx.x] = 0.0


@kernel(grid=1, block=32)
def scaled(x: f32, a: f32[32]):
    a[threadIdx.x] = a[threadIdx.x] * x
'''

# (id, case file text, line in it, phrase)
ROWS = [
    # ---- the file
    ("not-utf8", b"cases:\n  - name: caf\xe9\n", 2, "case file is not UTF-8 text (byte 0xe9"),
    ("empty-file", "", 1, "empty case file; expected a mapping with a `cases:` list"),
    ("only-a-comment", "# nothing here\n", 1, "empty case file"),
    ("file-is-a-list", "- name: x\n", 1, "a case file is a mapping with a `cases:` list"),
    ("file-is-a-scalar", "cases\n", 1, "a case file is a mapping with a `cases:` list"),
    ("unclosed-bracket", case("kernel: [BUGS"), 4, "invalid YAML"),
    ("tab-indent", "cases:\n\t- name: x\n", 2, "invalid YAML"),
    ("unknown-file-key", "case:\n  - name: x\n", 1, "unknown key `case` in a case file"),
    ("cases-a-mapping", "cases: {x: 1}\n", 1, "`cases:` must be a list, got a mapping"),
    ("cases-empty", "cases: []\n", 1, "`cases:` is empty"),
    ("cases-missing", "description: nothing\n", 1, "a case file needs `cases:` (a list)"),
    ("entry-a-string", "cases:\n  - copy\n", 2, "each entry of `cases:` must be a mapping (a case)"),
    ("defaults-a-number", "defaults: 3\ncases:\n  - name: x\n", 1, "`defaults:` must be a mapping, got int 3"),
    ("file-kind-unknown", "kind: operator\ncases:\n  - name: x\n", 1, "unknown case kind 'operator'"),
    ("description-a-list", "description: [a, b]\ncases:\n  - name: x\n", 1,
     "`description:` must be a string, got a list"),
    ("two-documents", "cases: []\n---\ncases: []\n", 2,
     "invalid YAML: expected a single document in the stream, but found another document"),
    ("defaults-unknown-key", "defaults: {kernal: BUGS::copy32}\ncases:\n  - name: x\n", 1,
     "unknown key `kernal` in a `kernel` case"),
    ("duplicate-key", case("kernel: BUGS::copy32", "kernel: BUGS::copy32"), 4, "duplicate key 'kernel'"),
    ("duplicate-case-name", copy(RETURN) + copy(RETURN)[7:], 6, "duplicate case id 'c/x'"),
    # ---- the case's own keys
    ("name-missing", "cases:\n  - kernel: BUGS::copy32\n    " + RETURN + "\n", 2, "case needs `name:` (a string)"),
    ("name-a-number", "cases:\n  - name: 3\n    kernel: BUGS::copy32\n", 2, "`name:` must be a string, got int 3"),
    ("name-with-space", "cases:\n  - name: my case\n    kernel: BUGS::copy32\n    " + RETURN + "\n", 2,
     "case name 'my case' may use letters, digits and _ . + - only"),
    ("unknown-case-key", copy("kernal: BUGS::copy32", RETURN), 5, "unknown key `kernal` in a `kernel` case"),
    ("no-assertion", copy(), 2, "a kernel case needs exactly one of assert_return, assert_trap, assert_invalid"),
    ("two-assertions", copy(RETURN, TRAP), 2, "(found: assert_return, assert_trap)"),
    ("backends-a-string", copy("backends: interp", RETURN), 5, "`backends:` must be a list of strings"),
    ("backend-unknown", copy("backends: [tpu]", RETURN), 5, "unknown backend 'tpu'; known: interp, cuda"),
    ("trap-on-cuda", copy("backends: [cuda]", TRAP), 2, "backend 'cuda' not allowed here: traps are checked"),
    ("tags-a-string", copy("tags: fast", RETURN), 5, "`tags:` must be a list of strings"),
    ("case-kind-unknown", case("kind: graph"), 3, "unknown case kind 'graph'"),
    ("case-kind-a-number", case("kind: 3"), 3, "`kind:` must be a string, got int 3"),
    # ---- kernel:
    ("kernel-a-number", case("kernel: 3", RETURN), 3, "`kernel:` must be a string, got int 3"),
    ("kernel-file-missing", case("kernel: nowhere.py::k", RETURN), 3, "kernel file 'nowhere.py' not found"),
    ("kernel-no-colons", case("kernel: BUGS", RETURN), 3, "must look like `file.py::name`"),
    ("kernel-target-garbled", case("kernel: BUGS::copy 32", RETURN), 3, "cannot parse kernel target 'copy 32'"),
    ("factory-bad-dtype", case("kernel: VECTOR_ADD::make_vector_add(f33)", RETURN), 3,
     "factory argument 'f33': unknown dtype 'f33'"),
    ("factory-non-literal", case("kernel: VECTOR_ADD::make_vector_add(1 + n)", RETURN), 3,
     "factory arguments must be literals or dtype names, got '1 + n'"),
    ("factory-wrong-arguments", case("kernel: VECTOR_ADD::make_vector_add(blocks=3)", "sizes: {n: 8}",
                                     'assert_return: {c: "a + b"}'), 3,
     "cannot load kernel VECTOR_ADD::make_vector_add(blocks=3): TypeError"),
    ("kernel-names-a-module", case("kernel: VECTOR_ADD::np", "sizes: {n: 8}", 'assert_return: {c: "a + b"}'), 3,
     "VECTOR_ADD::np is a module, not a kernel: name a function decorated with @kernel(...)"),
    ("kernel-names-a-plain-function", case("kernel: VECTOR_ADD::reference", "sizes: {n: 8}",
                                           'assert_return: {c: "a + b"}'), 3,
     "VECTOR_ADD::reference is a plain function (decorate it with @kernel(...)), not a kernel"),
    ("kernel-name-missing", copy(RETURN).replace("copy32", "copy33"), 3,
     "bugs.py has no 'copy33'; its kernels: oob_global_read"),
    ("kernel-file-syntax-error", case("kernel: syntax.py::k", RETURN), 3,
     "cannot load kernel syntax.py::k: SyntaxError: invalid syntax"),
    ("kernel-file-import-error", case("kernel: imports.py::k", RETURN), 3,
     "cannot load kernel imports.py::k: ModuleNotFoundError: No module named 'no_such_module'"),
    ("verify-stage-on-a-function", case("kernel: VECTOR_ADD::reference",
                                        "assert_invalid: {phrase: loop step is zero}"), 3,
     "VECTOR_ADD::reference is a plain function (decorate it with @kernel(...)), not a kernel: stage verify "
     "needs a kernel built with @kernel(..., verify=False)"),
    # ---- sizes: and the memory ceiling
    ("sizes-a-list", copy(RETURN, sizes="[1, 2]"), 4, "`sizes:` must be a mapping, got a list"),
    ("size-a-float", copy(RETURN, sizes="{n: 2.5}"), 4, "size 'n' must be an integer, got 2.5"),
    ("size-a-bool", copy(RETURN, sizes="{n: true}"), 4, "size 'n' must be an integer, got True"),
    ("size-negative", copy(RETURN, sizes="{n: -5}"), 4, "size 'n' is -5: sizes are extents (0 or more)"),
    ("size-beyond-i32", copy(RETURN, sizes="{n: 3000000000}"), 4,
     "scalar parameter 'n' (i32) is 3000000000, outside i32's range [-2147483648, 2147483647]"),
    ("size-needs-hundreds-of-gib", copy(RETURN, sizes="{n: 2000000000}"), 4,
     "the tensor arguments need 15,258.8 MiB (the largest, a (2000000000,) f32, 7,629.4 MiB), over the "
     "case's memory limit of 1024 MiB; use smaller sizes or raise `memory_limit_mib:`"),
    ("memory-limit-lowered", copy("memory_limit_mib: 1", RETURN, sizes="{n: 300000}"), 4,
     "over the case's memory limit of 1 MiB"),
    ("memory-limit-zero", copy("memory_limit_mib: 0", RETURN), 5, "`memory_limit_mib:` must be 1 or more, got 0"),
    ("memory-limit-a-string", copy("memory_limit_mib: 4 GiB", RETURN), 5, "`memory_limit_mib:` must be an integer"),
    ("computed-shape-negative", case("kernel: k.py::short", "sizes: {n: 5}", "assert_return: {a: '0.0'}"), 4,
     "tensor a would have shape (-5,) (f32[n - 10] with n = 5): extents must be 0 or more"),
    # ---- seed:
    ("seed-negative", copy("seed: -1", RETURN), 5, "`seed:` must be 0 or more, got -1"),
    ("seed-a-string", copy("seed: one", RETURN), 5, "`seed:` must be an integer, got str 'one'"),
    ("tensor-seed-negative", copy("args: {a: {init: random, seed: -3}}", RETURN), 5, "`seed:` must be 0 or more"),
    # ---- args:
    ("args-a-list", copy("args: [a, b]", RETURN), 5, "`args:` must be a mapping, got a list"),
    ("number-for-a-tensor", copy("args: {a: 2.5}", RETURN), 5,
     "tensor parameter 'a' (f32[n]) takes an init name (random, randint, arange, zeros, full, empty) or a "
     "mapping, not 2.5; to fill it with 2.5, write `a: {init: full, value: 2.5}`"),
    ("unknown-init-name-for-a-tensor", copy("args: {a: normal}", RETURN), 5,
     "tensor parameter 'a' (f32[n]) takes an init name"),
    ("tensor-for-a-scalar", copy("args: {n: {init: zeros}}", RETURN), 5,
     "scalar parameter 'n' (i32) takes a number or a size expression, not a tensor description"),
    ("init-name-for-a-scalar", copy("args: {n: zeros}", RETURN), 5,
     "scalar parameter 'n' (i32) takes a number or a size expression, not a tensor description (zeros)"),
    ("scalar-expression-unknown-name", copy("args: {n: m * 2}", RETURN), 5,
     "cannot evaluate 'm * 2': NameError: name 'm' is not defined"),
    ("scalar-float-for-an-integer", case("kernel: BUGS::shift_by", "sizes: {n: 32}", "args: {s: 2.5}", RETURN), 5,
     "scalar parameter 's' (i32) takes an integer, got 2.5"),
    ("scalar-beyond-i32", case("kernel: BUGS::shift_by", "sizes: {n: 32}", "args: {s: -2147483649}", RETURN), 5,
     "scalar parameter 's' (i32) is -2147483649, outside i32's range"),
    ("scalar-beyond-f32", case("kernel: k.py::scaled", "args: {x: 1.0e+39}", 'assert_return: {a: "a * x"}'), 4,
     "scalar parameter 'x' (f32) is 1e+39, beyond the range of f32 (it would round to infinity)"),
    ("size-with-400-digits", copy(RETURN, sizes="{n: 1" + "0" * 400 + "}"), 4,
     "scalar parameter 'n' (i32) is 1000"),
    ("fill-value-fractional-for-integers", case("kernel: BUGS::int_divide", "sizes: {n: 32}",
                                                "args: {d: {init: full, value: 2.5}}", 'assert_return: {q: "a"}'), 5,
     "`value:` 2.5 is not a value of i32 (an integer in [-2147483648, 2147483647])"),
    ("fill-value-beyond-the-type", case("kernel: BUGS::int_divide", "sizes: {n: 32}",
                                        "args: {d: {init: full, value: 3000000000}}", 'assert_return: {q: "a"}'),
     5, "`value:` 3000000000 is not a value of i32"),
    ("range-beyond-int64", copy("args: {a: {init: randint, range: [-1.0e+30, 1.0e+30]}}", RETURN), 5,
     "cannot generate tensor a (randint): low is out of bounds for int64"),
    ("scalar-without-value", copy(RETURN, sizes="{}"), 2, "scalar parameter 'n' (i32) has no value"),
    ("args-names-no-parameter", copy("args: {c: zeros}", RETURN), 5,
     "`args:` names 'c', which is not a parameter of kernel copy32 (n, a, b)"),
    ("arg-a-list", copy("args: {a: [1, 2]}", RETURN), 5, "argument 'a' must be a number or expression (scalar)"),
    ("arg-unknown-key", copy("args: {a: {int: zeros}}", RETURN), 5, "unknown key `int` in argument 'a'"),
    ("arg-unknown-init", copy("args: {a: {init: normal}}", RETURN), 5, "unknown init 'normal'; expected one of"),
    ("range-reversed", copy("args: {a: {init: random, range: [5, 1]}}", RETURN), 5,
     "`range:` [5, 1] is empty: values are drawn from [low, high), so low must be below high"),
    ("range-one-number", copy("args: {a: {range: [1]}}", RETURN), 5,
     "`range:` must be [low, high], two finite numbers"),
    ("range-fractional-for-integers", copy("args: {a: {init: randint, range: [0.5, 2.5]}}", RETURN), 5,
     "`range:` [0.5, 2.5] of integer values must be two integers"),
    ("shape-negative", copy("args: {a: {shape: [-3]}}", TRAP), 5, "`shape:` extents must be integers (0 or more)"),
    ("shape-expression-negative", copy("args: {a: {shape: ['n - 40']}}", TRAP), 5,
     "`shape:` extent 'n - 40' is -8; extents must be integers, 0 or more"),
    ("shape-a-number", copy("args: {a: {shape: 3}}", TRAP), 5, "`shape:` must be a list, got int 3"),
    ("shape-bad-expression", copy("args: {a: {shape: ['n +']}}", TRAP), 5, "invalid Python expression 'n +'"),
    ("dtype-unknown", copy("args: {a: {dtype: f128}}", TRAP), 5, "unknown dtype 'f128'"),
    ("fill-value-a-word", copy("args: {a: {init: full, value: one}}", RETURN), 5, "`value:` must be a number"),
    # ---- assert_return:
    ("assert-return-a-string", copy("assert_return: a"), 5, "`assert_return:` must be a mapping, got str 'a'"),
    ("assert-return-empty", copy("assert_return: {}"), 5, "`assert_return:` must name at least one output"),
    ("output-a-number", copy("assert_return: {b: 3}"), 5, "output 'b' must be an expression string or a mapping"),
    ("output-syntax-error", copy("assert_return: {b: 'a +'}"), 5, "invalid Python expression 'a +'"),
    ("output-private-name", copy("assert_return: {b: a.__class__}"), 5,
     "names starting with '_' are not allowed in case expressions"),
    ("output-unknown-name", copy("assert_return: {b: a + q}"), 5,
     "b: cannot evaluate 'a + q': NameError: name 'q' is not defined"),
    ("output-not-a-tensor", copy("assert_return: {n: a}"), 5,
     "assert_return names 'n', which is not a tensor parameter of kernel copy32 (a, b)"),
    ("output-is-an-input", copy("assert_return: {a: a, b: a}"), 5,
     "assert_return names 'a', which kernel copy32 never writes (an input, SPEC §6.1); its outputs: b"),
    ("output-wrong-shape", copy("assert_return: {b: 'a[:3]'}"), 5,
     "b: the expected value has shape (3,), which does not broadcast to the output's shape (32,)"),
    ("output-mapping-unknown-key", copy("assert_return: {b: {value: a, tol: 1}}"), 5,
     "unknown key `tol` in output 'b'"),
    ("output-mapping-no-value", copy("assert_return: {b: {exact: true}}"), 5, "output 'b' needs `value:` (a string)"),
    ("rtol-negative", copy("rtol: -1.0e-3", RETURN), 5, "`rtol:` must be a finite number, 0 or more, got -0.001"),
    ("atol-negative", copy("assert_return: {b: {value: a, atol: -1}}"), 5,
     "`atol:` must be a finite number, 0 or more"),
    ("rtol-a-string", copy("rtol: small", RETURN), 5, "`rtol:` must be a number, got str 'small'"),
    ("depth-zero", copy("depth: 0", RETURN), 5, "`depth:` is a reduction length, 1 or more, got 0"),
    ("exact-a-number", copy("exact: 1", RETURN), 5, "`exact:` must be true or false, got int 1"),
    # ---- assert_trap: / assert_invalid:
    ("trap-a-string", copy("assert_trap: oob"), 5, "`assert_trap:` must be a mapping"),
    ("trap-kind-unknown", copy("assert_trap: {kind: boom, phrase: x}"), 5, "unknown trap kind 'boom'"),
    ("trap-phrase-unknown", copy("assert_trap: {kind: oob, phrase: out of bound}"), 5,
     "'out of bound' is not a phrase of trap kind oob"),
    ("trap-line-a-string", copy("assert_trap: {kind: oob, phrase: out of bounds global access, line: top}"), 5,
     "`line:` must be an integer, got str 'top'"),
    ("trap-unknown-key", copy("assert_trap: {kind: oob, phrase: out of bounds global access, lane: 3}"), 5,
     "unknown key `lane` in assert_trap"),
    ("invalid-phrase-unknown", copy("assert_invalid: {phrase: loop step zero}"), 5,
     "'loop step zero' is not a verifier phrase (SPEC.md §9.1)"),
    ("invalid-unknown-key", copy("assert_invalid: {phrase: loop step is zero, where: 3}"), 5,
     "unknown key `where` in assert_invalid"),
    ("invalid-stage-unknown", copy("assert_invalid: {stage: parse, phrase: x}"), 5,
     "`stage:` must be `verify` (the default) or `dsl`"),
    # ---- each:
    ("each-a-number", copy("each: 3", RETURN), 5, "`each:` must be a mapping of lists or a non-empty list of mappings"),
    ("each-value-not-a-list", copy("each: {n: 3}", RETURN), 5, "`each: n:` must be a non-empty list of values"),
    ("each-rows-not-mappings", copy("each: [1, 2]", RETURN), 5, "`each:` must be a mapping of lists"),
    ("each-without-placeholder", copy("each: {n: [1, 2]}", RETURN), 2, "needs {placeholders} in its name"),
    ("each-placeholder-typo", "cases:\n  - name: 'n{n}'\n    each: {n: [1, 2]}\n    kernel: BUGS::copy32\n"
     "    sizes: {n: '{N}'}\n    " + RETURN + "\n", 5, "{N} is not a variable of `each:` (n)"),
    ("each-unknown-placeholder", "cases:\n  - name: 'n{m}'\n    each: {n: [1, 2]}\n    kernel: BUGS::copy32\n"
     "    " + RETURN + "\n", 2, "{m} in the name is not a variable of `each:` (n)"),
]


@pytest.fixture
def conform(tmp_path, capsys):
    """Run `taskmap conform` on the given case file text; (path, exit status, all output)."""
    (tmp_path / "k.py").write_text(KERNEL_FILE)
    (tmp_path / "syntax.py").write_text("from taskmap.lang import kernel\ndef k(:\n")
    (tmp_path / "imports.py").write_text("import no_such_module\n")

    def run(text, *argv):
        path = tmp_path / "c.yaml"
        if isinstance(text, str):
            text = text.replace("BUGS", BUGS).replace("VECTOR_ADD", VECTOR_ADD).encode()
        path.write_bytes(text)
        rc = cli.main(["conform", str(path), "--backend", "interp", *argv])
        out = capsys.readouterr()
        return str(path), rc, out.out + out.err
    return run


def test_the_table_is_large_and_distinct():
    assert len(ROWS) >= 40
    assert len({r[0] for r in ROWS}) == len(ROWS) and len({r[1] for r in ROWS}) == len(ROWS)


@pytest.mark.parametrize("text, line, phrase", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_bad_case_file_is_a_clear_error_at_its_line(conform, text, line, phrase):
    path, rc, out = conform(text)
    phrase = phrase.replace("VECTOR_ADD", VECTOR_ADD)
    assert rc == 1 and "Traceback" not in out, out
    assert "ERROR c" in out, out
    lines = [ln for ln in out.splitlines() if phrase in ln]
    assert lines, f"phrase {phrase!r} not in:\n{out}"
    assert any(f"{path}:{line}: " in ln for ln in lines), f"expected {path}:{line}:\n{out}"


# ---------------------------------------------------------------- the command line

def test_json_into_a_missing_directory_is_refused_before_the_run(conform, tmp_path):
    target = tmp_path / "no" / "such" / "r.json"
    path, rc, out = conform(copy(RETURN), "--json", str(target))
    assert rc == 2 and "Traceback" not in out
    assert f"--json {target}: directory {target.parent} does not exist" in out
    assert "[1/1]" not in out                       # nothing ran


def test_json_onto_a_directory_is_refused(conform, tmp_path):
    path, rc, out = conform(copy(RETURN), "--json", str(tmp_path))
    assert rc == 2 and f"--json {tmp_path}: is a directory" in out


def test_a_directory_without_case_files_is_refused(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("no yaml here")
    assert cli.main(["conform", str(tmp_path)]) == 2
    assert f"{tmp_path}: no case files (*.yaml, *.yml) in this directory or below" in capsys.readouterr().err


def test_a_missing_path_is_refused(tmp_path, capsys):
    assert cli.main(["conform", str(tmp_path / "gone.yaml")]) == 2
    assert f"{tmp_path / 'gone.yaml'}: no such case file or directory" in capsys.readouterr().err


# ---------------------------------------------------------------- one bad case never stops the run

class ExplodingCase(case_kinds.Case):
    def run(self, backend):
        raise RuntimeError("boom")


def test_a_mixed_directory_runs_every_good_case(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(case_kinds.KINDS, "exploding", case_kinds.CaseKind(
        "exploding", frozenset(), ("interp",), lambda m, info: ExplodingCase(info, backends=("interp",))))
    files = {
        "a_good.yaml": copy(RETURN) + copy(RETURN).replace("name: x", "name: y")[7:],
        "b_not_yaml.yaml": "cases:\n  - name: x\n    kernel: a: b\n  - name: y\n",
        "c_bad_kernel_file.yaml": case("kernel: syntax.py::k", RETURN),
        "d_mixed.yaml": copy(RETURN) + copy("args: {a: 2.5}", RETURN).replace("name: x", "name: bad-arg")[7:]
        + copy(RETURN, sizes="{n: -1}").replace("name: x", "name: bad-size")[7:]
        + copy(RETURN).replace("name: x", "name: z")[7:],
        "e_runner_bug.yaml": "kind: exploding\ncases:\n  - name: x\n",
    }
    (tmp_path / "syntax.py").write_text("def k(:\n")
    for name, text in files.items():
        (tmp_path / name).write_text(text.replace("BUGS", BUGS))
    report = tmp_path / "r.json"
    rc = cli.main(["conform", str(tmp_path), "--backend", "interp", "--json", str(report)])
    out = capsys.readouterr().out
    assert rc == 1 and "Traceback" not in out
    statuses = {c["id"]: c["status"] for c in json.loads(report.read_text())["cases"]}
    assert statuses == {
        "a_good/x": "passed", "a_good/y": "passed",
        "b_not_yaml": "error",
        "c_bad_kernel_file/x": "error",
        "d_mixed/x": "passed", "d_mixed/bad-arg": "error", "d_mixed/bad-size": "error", "d_mixed/z": "passed",
        "e_runner_bug/x": "error",
    }
    assert f"ERROR b_not_yaml: {tmp_path / 'b_not_yaml.yaml'}:3: invalid YAML" in out
    assert "internal error of the conformance runner running this case: RuntimeError: boom" in out
    assert out.rstrip().endswith("4 passed, 0 failed, 5 errors, 0 skipped")


def test_a_malformed_file_is_reported_whatever_k_selects(tmp_path, capsys):
    (tmp_path / "good.yaml").write_text(copy(RETURN).replace("BUGS", BUGS))
    (tmp_path / "bad.yaml").write_text("cases: [\n")
    assert cli.main(["conform", str(tmp_path), "-k", "good/x", "--backend", "interp"]) == 1
    out = capsys.readouterr().out
    assert "good/x interp ... ok" in out and "ERROR bad:" in out

