"""`taskmap debug` on bad input: each row gives its exit status and a phrase saying what is
wrong (status 2: the arguments or the file; 1: the kernel trapped; 0: ran clean)."""
from __future__ import annotations

import pytest

from taskmap.refimpl import debug

KERNELS = '''from __future__ import annotations
import numpy as np
from taskmap.lang import kernel, i32, f32, threadIdx


@kernel(block=32)
def copy(n: i32, a: f32[n], b: f32[n]):
    for i in range(threadIdx.x, n, 32):
        b[i] = a[i]


@kernel(block=32)
def off_by_one(n: i32, a: f32[n], b: f32[n]):
    b[threadIdx.x] = a[threadIdx.x + 1]


@kernel(block=32)
def spin(n: i32, a: f32[n]):
    k = 0
    while k < n:
        a[threadIdx.x] = 1.0


def make_copy():
    return copy
'''
FILES = {
    "kernels.py": KERNELS,
    "syntax_error.py": "from __future__ import annotations\n\ndef f(:\n",
    "raises.py": "from __future__ import annotations\nx = 1\nraise RuntimeError('no config')\n",
    "dsl_error.py": ("from __future__ import annotations\nfrom taskmap.lang import kernel, i32\n\n"
                     "@kernel(block=32)\ndef k(n: i32):\n    x = y\n"),
}

# (id, arguments after the target, target file::name, exit status, phrase, stream)
ROWS = [
    ("negative-shape", ["--shape", "n=-5"], "kernels.py::copy", 2, "tensor a would have shape (-5,) (from n)", "err"),
    ("syntax-error", [], "syntax_error.py::f", 2, "syntax_error.py:3: syntax error", "err"),
    ("import-raises", [], "raises.py::k", 2, "raises.py:3: importing the file failed: RuntimeError: no config", "err"),
    ("dsl-error-in-file", [], "dsl_error.py::k", 2, "dsl_error.py:6:9: name 'y' is not defined", "err"),
    ("unknown-parameter", ["--shape", "n=8", "--shape", "q=3"], "kernels.py::copy", 2,
     "kernel copy has no scalar parameter 'q'; scalar parameters: n", "err"),
    ("tensor-as-shape", ["--shape", "n=8", "--shape", "a=3"], "kernels.py::copy", 2,
     "no scalar parameter 'a' (it is a tensor: its contents are random)", "err"),
    ("missing-shape", [], "kernels.py::copy", 2, "kernel copy needs --shape n=...", "err"),
    ("thread-outside-block", ["--shape", "n=8", "--thread", "9999"], "kernels.py::copy", 2,
     "--thread 9999,0,0 is outside the block 32,1,1 of this launch", "err"),
    ("negative-thread", ["--shape", "n=8", "--thread", "-1"], "kernels.py::copy", 2,
     "--thread -1,0,0 is outside the block", "err"),
    ("block-outside-grid", ["--shape", "n=8", "--block", "5,5,5"], "kernels.py::copy", 2,
     "--block 5,5,5 is outside the grid 1,1,1 of this launch", "err"),
    ("missing-file", [], "nowhere.py::copy", 2, "no such file", "err"),
    ("no-kernel-separator", [], "kernels.py", 2, "expected FILE.py::KERNEL", "err"),
    ("unknown-kernel", [], "kernels.py::nope", 2, "has no kernel 'nope'; kernels: copy, off_by_one, spin", "err"),
    ("factory-not-kernel", [], "kernels.py::make_copy", 2, "'make_copy' in", "err"),
    ("module-not-kernel", [], "kernels.py::np", 2, "is a module, not a kernel", "err"),
    ("shape-without-value", ["--shape", "n"], "kernels.py::copy", 2, "--shape expects NAME=VALUE, got 'n'", "err"),
    ("shape-not-a-number", ["--shape", "n=abc"], "kernels.py::copy", 2, "'abc' is not a number", "err"),
    ("float-for-integer", ["--shape", "n=3.5"], "kernels.py::copy", 2, "n is a i32 parameter; give an integer", "err"),
    ("integer-out-of-range", ["--shape", "n=100000000000"], "kernels.py::copy", 2,
     "outside the range of i32 [-2147483648, 2147483647]", "err"),
    ("inputs-too-large", ["--shape", "n=300000000"], "kernels.py::copy", 2,
     "taskmap debug allocates at most 1 GiB of inputs", "err"),
    ("index-not-numbers", ["--shape", "n=8", "--block", "a,b"], "kernels.py::copy", 2,
     "--block expects x, x,y or x,y,z, got 'a,b'", "err"),
    ("index-four-numbers", ["--shape", "n=8", "--thread", "1,2,3,4"], "kernels.py::copy", 2,
     "--thread expects 1 to 3 numbers", "err"),
    ("negative-seed", ["--shape", "n=8", "--seed", "-1"], "kernels.py::copy", 2, "--seed must be ≥ 0, got -1", "err"),
    ("negative-limit", ["--shape", "n=8", "--limit", "-1"], "kernels.py::copy", 2, "--limit must be ≥ 0", "err"),
    ("truncated-trace", ["--shape", "n=96", "--limit", "2"], "kernels.py::copy", 0,
     "trace truncated: 4 more step(s) after the first 2 not shown", "out"),
    ("trap", ["--shape", "n=32", "--thread", "31"], "kernels.py::off_by_one", 1,
     "TRAP [oob] out of bounds global access: a[32]", "out"),
    ("loop-never-ends", ["--shape", "n=32", "--max-steps", "3"], "kernels.py::spin", 1,
     "TRAP [loop] step budget exceeded: one execution of this loop reached 3 iterations", "out"),
    ("zero-max-steps", ["--shape", "n=32", "--max-steps", "0"], "kernels.py::spin", 2,
     "--max-steps must be ≥ 1, got 0", "err"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("debug_inputs")
    for name, text in FILES.items():
        (folder / name).write_text(text)
    return folder


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_debug_bad_input(files, capsys, row):
    _, argv, target, rc, phrase, stream = row
    assert debug.main([str(files / target), *argv]) == rc
    captured = capsys.readouterr()
    text = captured.err if stream == "err" else captured.out
    assert phrase in text, (captured.out, captured.err)
    assert "Traceback" not in captured.out + captured.err


def test_the_table_is_large_enough():
    assert len(ROWS) >= 15 and len({r[0] for r in ROWS}) == len(ROWS)
