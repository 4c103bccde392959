"""Bad kernel sources: each fails at decoration time with its phrase, at the right file:line
(the line marked `# HERE`), with a short traceback that starts in the user's file."""
from __future__ import annotations

import textwrap
import traceback

import pytest

from taskmap.spec.errors import TaskmapError

FUTURE = "from __future__ import annotations\n"
IMPORTS = ("from taskmap.lang import (kernel, i32, f16, f32, spatial, threadIdx, syncthreads, shared_tensor,\n"
           "                          exp, shfl_xor)\n"
           "K = 4\n")

# (id, source after the imports, phrases the message contains, phrases it must not contain)
ROWS = [
    ("bare-kernel", """
        @kernel  # HERE
        def k(n: i32, a: f32[n]):
            a[0] = 1.0
        """, ["@kernel needs its launch configuration in parentheses", "@kernel(grid=..., block=...)"], []),
    ("positional-launch", """
        @kernel(256)  # HERE
        def k(n: i32, a: f32[n]):
            a[0] = 1.0
        """, ["kernel() takes keyword arguments only, got 256"], []),
    ("decorates-a-class", """
        @kernel(block=32)  # HERE
        class k:
            pass
        """, ["@kernel must decorate a plain `def` function"], []),
    ("name-not-identifier", """
        @kernel(block=32, name="my kernel")  # HERE
        def k(n: i32, a: f32[n]):
            a[0] = 1.0
        """, ["name= must be an identifier, got 'my kernel'"], []),
    ("declared-in-earlier-block", """
        @kernel(block=32)
        def k(n: i32, a: f32[n]):
            if n > 0:
                x = 1.0
            a[0] = x  # HERE
        """, ["name 'x' is not defined", "'x' is declared inside the block at line", "declare it before"], []),
    ("loop-variable-after-loop", """
        @kernel(block=32)
        def k(n: i32, a: f32[n]):
            for i in range(n):
                a[i] = 0.0
            a[i] = 1.0  # HERE
        """, ["name 'i' is not defined", "'i' is declared inside the block at line"], []),
    ("typo-of-a-local", """
        @kernel(block=32)
        def k(n: i32, a: f32[n]):
            total = 0.0
            a[0] = totl  # HERE
        """, ["name 'totl' is not defined", "did you mean 'total'?"], ["local to it"]),
    ("typo-of-an-intrinsic", """
        @kernel(block=32)
        def k(n: i32, a: f32[n]):
            syncthread()  # HERE
        """, ["name 'syncthread' is not defined", "did you mean 'syncthreads'?"], ["local to it", "import it"]),
    ("intrinsic-not-imported", """
        @kernel(block=32)
        def k(n: i32, a: f32[n]):
            syncwarp()  # HERE
        """, ["name 'syncwarp' is not defined", "add it to `from taskmap.lang import ...`"], ["local to it"]),
    ("typo-of-a-dtype", """
        @kernel(block=32)
        def k(n: i32, a: f33[n]):  # HERE
            a[0] = 1.0
        """, ["name 'f33' is not defined", "did you mean 'f32'?"], ["local to it"]),
    ("unknown-name", """
        @kernel(block=32)
        def k(n: i32, a: f32[n]):
            a[0] = qqzzx  # HERE
        """, ["name 'qqzzx' is not defined"], ["local to it", "did you mean"]),
    ("python-type-annotation", """
        @kernel(block=32)
        def k(n: int, a: f32[n]):  # HERE
            a[0] = 1.0
        """, ["unknown parameter type int", "write i32 for a Python int"], []),
    ("if-on-a-tensor", """
        @kernel(block=32)
        def k(n: i32, a: f32[n]):
            if a:  # HERE
                a[0] = 1.0
        """, ["expected a scalar expression, got the global tensor `a` (f32[n])", "e.g. `a[i]`"], ["Buffer("]),
    ("while-on-a-tensor", """
        @kernel(block=32)
        def k(n: i32, a: f32[n]):
            while a:  # HERE
                a[0] = 1.0
        """, ["expected a scalar expression, got the global tensor `a`"], ["Buffer("]),
    ("tensor-alias", """
        @kernel(block=32)
        def k(n: i32, a: f32[n]):
            b = a  # HERE
        """, ["expected a scalar expression, got the global tensor `a`"], []),
    ("tensor-in-arithmetic", """
        @kernel(block=32)
        def k(n: i32, a: f32[n]):
            a[0] = a * 2.0  # HERE
        """, ["unsupported operand in `a * 2.0`: the global tensor `a`"], ["Buffer("]),
    ("tensor-into-intrinsic", """
        @kernel(block=32)
        def k(n: i32, a: f32[n]):
            a[0] = exp(a)  # HERE
        """, ["expected a scalar expression, got the global tensor `a`"], []),
    ("tensor-into-min", """
        @kernel(block=32)
        def k(n: i32, a: f32[n]):
            a[0] = min(a, 1.0)  # HERE
        """, ["expected a scalar expression, got the global tensor `a`"], []),
    ("special-register-group", """
        @kernel(block=32)
        def k(n: i32, a: f32[n]):
            i = threadIdx  # HERE
        """, ["a group of special registers", "`threadIdx.x`"], []),
    ("special-register-field", """
        @kernel(block=32)
        def k(n: i32, a: f32[n]):
            i = threadIdx.w  # HERE
        """, ["threadIdx has fields x, y, z, not 'w'"], []),
    ("task-mapping-as-number", """
        @kernel(block=32)
        def k(n: i32, a: f32[n]):
            m = spatial(4)
            x = m + n  # HERE
        """, ["the task mapping `m`", "for i in m.on(worker):"], []),
    ("tensor-attribute", """
        @kernel(block=32)
        def k(n: i32, a: f32[n]):
            x = a.size  # HERE
        """, ["tensors have no attribute 'size'", "`.shape` is the only one"], []),
    ("attribute-of-a-constant", """
        @kernel(block=32)
        def k(n: i32, a: f32[n]):
            x = K.foo  # HERE
        """, ["int `K` has no attribute 'foo'"], []),
    ("compile-time-zero-division", """
        @kernel(block=32)
        def k(n: i32, a: f32[n]):
            x = K // 0  # HERE
        """, ["`K // 0` failed at compile time: ZeroDivisionError"], []),
    ("compile-time-type-error", """
        @kernel(block=32)
        def k(n: i32, a: f32[n]):
            x = "a" * 1.5  # HERE
        """, ["failed at compile time: TypeError"], []),
    ("shape-index-out-of-range", """
        @kernel(block=32)
        def k(n: i32, a: f32[n]):
            x = a.shape[3]  # HERE
        """, ["tuple index 3 out of range: a.shape has 1 element(s)"], []),
    ("runtime-shape-index", """
        @kernel(block=32)
        def k(n: i32, a: f32[n]):
            x = a.shape[n]  # HERE
        """, ["tuple index must be a compile-time integer, `n` is a runtime value"], []),
    ("matmul-operator", """
        @kernel(block=32)
        def k(n: i32, a: f32[n]):
            x = n @ n  # HERE
        """, ["unsupported operator MatMult"], []),
    ("keyword-to-a-barrier", """
        @kernel(block=32)
        def k(n: i32, a: f32[n]):
            syncthreads(scope=1)  # HERE
        """, ["unexpected keyword 'scope'; allowed: none"], []),
    ("unroll-not-constant", """
        @kernel(block=32)
        def k(n: i32, a: f32[n]):
            for i in range(4, unroll=a):  # HERE
                a[i] = 0.0
        """, ["unroll= must be a compile-time bool or int"], []),
    ("grid-string", """
        @kernel(grid="abc", block=32)
        def k(n: i32, a: f32[n]):  # HERE
            a[0] = 1.0
        """, ["grid= extents must be integers or expressions of the scalar parameters, got 'abc'"], []),
    ("grid-lambda-raises", """
        @kernel(grid=lambda n: n.bit_length(), block=32)
        def k(n: i32, a: f32[n]):  # HERE
            a[0] = 1.0
        """, ["grid= lambda failed: AttributeError"], []),
    ("grid-lambda-unknown-parameter", """
        @kernel(grid=lambda m: m, block=32)
        def k(n: i32, a: f32[n]):  # HERE
            a[0] = 1.0
        """, ["grid= lambda parameter(s) ['m'] are not scalar kernel parameters"], []),
    ("rebind-a-tensor", """
        @kernel(block=32)
        def k(n: i32, a: f32[n]):
            s = shared_tensor(f32, [4])
            s = 1.0  # HERE
        """, ["cannot assign to 's': it is the shared tensor `s` (f32[4])"], []),
    ("early-return", """
        @kernel(block=32)
        def k(n: i32, a: f32[n]):
            return  # HERE
        """, ["unsupported statement `Return` in kernel", "guard the rest of the body"], []),
    ("integer-true-division", """
        @kernel(block=32)
        def k(n: i32, a: f32[n]):
            a[n / 2] = 0.0  # HERE
        """, ["`/` on integers is ambiguous", "use `//`"], []),
    ("barrier-under-thread-branch", """
        @kernel(block=32)
        def k(n: i32, a: f32[n]):
            if threadIdx.x < 16:
                syncthreads()  # HERE
        """, ["barrier in thread-dependent branch"], []),
    ("block-too-large", """
        @kernel(block=2048)
        def k(n: i32, a: f32[n]):  # HERE
            a[0] = 1.0
        """, ["invalid launch dimension"], []),
]

MISSING_FUTURE = """
    @kernel(block=32)  # HERE
    def k(n: i32, a: f32[n]):
        a[0] = 1.0
    """


def _decorate(tmp_path, name: str, source: str):
    """Run `source` as the module file `name`.py; returns (error, path, expected line)."""
    path = tmp_path / f"{name.replace('-', '_')}.py"
    path.write_text(source)
    line = next(i for i, text in enumerate(source.splitlines(), 1) if "# HERE" in text)
    with pytest.raises(TaskmapError) as info:
        exec(compile(source, str(path), "exec", dont_inherit=True), {"__name__": path.stem})
    return info.value, str(path), line


def _user_frames(error, path: str) -> list:
    """The traceback from the user's file on (this test's exec frame dropped)."""
    frames = traceback.extract_tb(error.__traceback__)
    first = next(i for i, f in enumerate(frames) if f.filename == path)
    return frames[first:]


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_bad_kernel_source(tmp_path, row):
    name, body, phrases, absent = row
    error, path, line = _decorate(tmp_path, name, FUTURE + IMPORTS + textwrap.dedent(body))
    text = str(error)
    assert text.startswith(f"{path}:{line}:"), text
    for phrase in phrases:
        assert phrase in text, text
    for phrase in absent:
        assert phrase not in text, text
    frames = _user_frames(error, path)
    assert len(frames) <= 2, traceback.format_list(frames)       # the user's line, then the decorator
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


def test_missing_future_import_is_named_before_python_evaluates_annotations(tmp_path):
    error, path, line = _decorate(tmp_path, "no_future", IMPORTS + textwrap.dedent(MISSING_FUTURE))
    text = str(error)
    assert text.startswith(f"{path}:{line}:") and "NameError" not in text
    assert "kernel modules need `from __future__ import annotations`" in text
    assert "evaluates annotations such as `a: f32[n]`" in text


def test_the_table_is_large_enough():
    assert len(ROWS) >= 25 and len({r[0] for r in ROWS}) == len(ROWS)
