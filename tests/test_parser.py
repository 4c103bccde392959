"""The DSL front end: what Python forms become which IR (SPEC.md §8)."""
from __future__ import annotations

import pytest

from taskmap.spec import dtypes as dt
from taskmap.spec import ir
from taskmap.spec.errors import DSLError
from taskmap.lang import (f16, f32, i32, i64, kernel, register_tensor, repeat, shared_tensor, spatial,
                       swizzle, syncthreads, threadIdx)

TILE = 4


def statements(k):
    return [n for n in ir.walk(k) if isinstance(n, ir.Stmt)]


def test_params_become_vars_and_global_buffers():
    @kernel(grid=lambda n: (n + 63) // 64, block=64)
    def k(n: i32, a: f32[n], out: f16[n, 2]):
        out[threadIdx.x, 0] = a[threadIdx.x]

    n, a, out = k.params
    assert n == ir.Var("n", dt.int32)
    assert (a.scope, a.dtype, a.shape) == ("global", dt.float32, (n,))
    assert (out.dtype, out.shape) == (dt.float16, (n, ir.const(2)))
    assert k.grid[0] == ir.Binary("/", ir.Binary("+", n, ir.const(63)), ir.const(64))
    assert k.block == (ir.const(64), ir.const(1), ir.const(1))
    store = next(s for s in statements(k) if isinstance(s, ir.Store))
    assert isinstance(store.value, ir.Cast) and store.value.dtype == dt.float16   # implicit conversion


def test_compile_time_constants_fold_and_static_if_picks_a_branch():
    def make(wide):
        @kernel(block=TILE * 8)
        def k(a: f32[TILE * 8]):
            if wide:
                a[threadIdx.x] = 1.0
            else:
                a[threadIdx.x] = 2.0
        return k

    for wide, value in ((True, 1.0), (False, 2.0)):
        k = make(wide)
        assert k.params[0].shape == (ir.const(32),)
        stores = [s for s in statements(k) if isinstance(s, ir.Store)]
        assert len(stores) == 1 and stores[0].value == ir.const(value)
        assert not any(isinstance(s, ir.If) for s in statements(k))


def test_weak_literals_take_the_other_operands_type():
    @kernel(block=1)
    def k(x: f16[1], y: i64[1]):
        x[0] = x[0] * 0.5
        y[0] = y[0] + 1

    s1, s2 = [s for s in statements(k) if isinstance(s, ir.Store)]
    assert s1.value.dtype == dt.float16 and s1.value.b == ir.const(0.5, dt.float16)
    assert s2.value.dtype == dt.int64 and s2.value.b == ir.const(1, dt.int64)


def test_reused_names_get_unique_vars_and_block_scoping():
    @kernel(block=32)
    def k(a: i32[32]):
        for i in range(2):
            t = i
            a[threadIdx.x] = t
        for i in range(3):
            t = i * 2
            a[threadIdx.x] = t

    names = [s.var.name for s in statements(k) if isinstance(s, (ir.DeclareVar, ir.For))]
    assert len(names) == len(set(names)) == 4

    with pytest.raises(DSLError, match="name 't' is not defined"):
        @kernel(block=32)
        def bad(a: i32[32]):
            if threadIdx.x < 4:
                t = 1
            a[threadIdx.x] = t


def test_task_mapping_loop_and_tensors():
    m = repeat(2, 1) * spatial(4, 8)

    @kernel(block=32)
    def k(a: f32[8, 8]):
        s = shared_tensor(f32, [8, 8], layout=swizzle(1, 2, 3))
        r = register_tensor(f32, [2])
        for i, j in m.on(threadIdx.x):
            s[i, j] = a[i, j]
        syncthreads()
        r[0] = s[0, 0]

    loop = next(s for s in statements(k) if isinstance(s, ir.ForTask))
    assert loop.mapping == m and [v.name for v in loop.vars] == ["i", "j"]
    decls = [s.buffer for s in statements(k) if isinstance(s, ir.DeclareBuffer)]
    assert [(b.scope, b.layout) for b in decls] == [("shared", ir.Swizzle(1, 2, 3)), ("register", ir.RowMajor())]


def test_short_circuit_and_chained_compare():
    @kernel(block=32)
    def k(n: i32, a: f32[n]):
        if 0 <= threadIdx.x < n and a[threadIdx.x] > 0.0:
            a[threadIdx.x] = 0.0

    cond = next(s for s in statements(k) if isinstance(s, ir.If)).cond
    assert cond.op == "&&" and cond.a.op == "&&" and cond.b.op == ">"


@pytest.mark.parametrize("body, phrase", [
    ("    return\n", "unsupported statement `Return`"),
    ("    a[0] = a[0] / 2\n", "`/` on integers is ambiguous"),
    ("    x, y = 1, 2\n", "assignments are supported"),
    ("    for i in [1, 2]:\n        pass\n", "cannot iterate over"),
    ("    q = undefined_name\n", "name 'undefined_name' is not defined"),
])
def test_unsupported_python_fails_with_location_and_hint(tmp_path, body, phrase):
    src = ("from __future__ import annotations\nfrom taskmap.lang import kernel, i32\n"
           "@kernel(block=1)\ndef k(a: i32[4]):\n" + body)
    path = tmp_path / "bad_kernel.py"
    path.write_text(src)
    import importlib.util
    spec = importlib.util.spec_from_file_location("bad_kernel", path)
    with pytest.raises(DSLError) as info:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    assert phrase in str(info.value)
    assert f"{path}:5:" in str(info.value)


def test_module_groups_kernels_and_rejects_duplicate_names():
    from taskmap.spec.errors import VerifyError
    from taskmap.lang import module

    def make(name):
        @kernel(block=32, name=name)
        def k(a: f32[32]):
            a[threadIdx.x] = 1.0
        return k

    m = module("pair", make("first"), make("second"))
    assert [k.name for k in m.kernels] == ["first", "second"]
    assert "kernel first(" in str(m) and "kernel second(" in str(m)
    with pytest.raises(VerifyError, match="duplicate name: module 'twice' holds two kernels named 'first'"):
        module("twice", make("first"), make("first"))
