"""Names the user wrote travel as metadata (`origin`), not inside IR names: a pass may rename
variables freely (fusion will) and traces and messages still show the DSL source's names;
loops the compiler made are recognized by having no origin, whatever they are called."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from taskmap import refimpl
from taskmap.lang import f32, kernel, repeat, spatial, threadIdx
from taskmap.spec import ir


@kernel(grid=1, block=4)
def shadowing(a: f32[4], b: f32[4]):
    i = threadIdx.x
    acc = 0.0
    for k__2 in range(2):           # a user's name with "__" in it is still a user's loop
        acc = acc + a[i]
    if i < 4:
        acc: f32 = a[i] * 3.0       # a new `acc` in an inner block: the parser renames it
        b[i] = acc


@kernel(grid=1, block=8)
def mapped(a: f32[8, 2], b: f32[8, 2]):
    for r, c in (spatial(8, 1) * repeat(1, 2)).on(threadIdx.x):
        b[r, c] = a[r, c]


def _renamed(k: ir.Kernel) -> ir.Kernel:
    """Every variable and tensor renamed (as fusion renames), origins kept."""
    def rename(n):
        if isinstance(n, (ir.Var, ir.Buffer)):
            return dataclasses.replace(n, name=f"fused_{n.name}")
        return n
    return ir.rewrite(k, rename)


def _trace(k, *args):
    t = refimpl.Trace(threads=[(1, 0, 0)])
    refimpl.interpret(k, *args, trace=t)
    return [(e.code, e.values) for e in t.events]


def test_the_parser_records_the_dsl_name_of_a_renamed_local():
    decls = [s.var for s in ir.walk(shadowing) if isinstance(s, ir.DeclareVar)]
    assert [(v.name, v.origin) for v in decls] == [("i", "i"), ("acc", "acc"), ("acc_1", "acc")]
    assert decls[1] == dataclasses.replace(decls[1], origin=None)   # metadata, not identity


def test_traces_show_dsl_names_after_renaming():
    a = np.arange(4, dtype=np.float32)
    events = _trace(shadowing, a, np.zeros(4, np.float32))
    assert ("acc: f32 = a[i] * 3.0", "acc = 3.0") in events              # acc_1 shown as the user wrote it
    assert [v for _, v in events if v and v.startswith("k__2")] == ["k__2 = 0", "k__2 = 1"]
    renamed = _renamed(shadowing)
    assert "fused_acc_1" in str(renamed)
    assert _trace(renamed, a, np.zeros(4, np.float32)) == events


def test_task_mapping_loops_are_not_traced_but_their_task_variables_are():
    events = _trace(mapped, np.ones((8, 2), np.float32), np.zeros((8, 2), np.float32))
    values = [v for _, v in events if v and not v.startswith("->")]
    assert values == ["r = 1", "c = 0", "b[1, 0] = 1.0", "r = 1", "c = 1", "b[1, 1] = 1.0"]


def test_messages_name_the_dsl_tensor_and_variable():
    @kernel(grid=1, block=4)
    def oob(a: f32[4], b: f32[4]):
        b[threadIdx.x] = a[threadIdx.x + 1]

    with pytest.raises(refimpl.KernelTrap, match=r"out of bounds global access: a\[4\]"):
        refimpl.interpret(_renamed(oob), np.zeros(4, np.float32), np.zeros(4, np.float32))
