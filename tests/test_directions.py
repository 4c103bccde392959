"""Tensor parameter directions (SPEC §6.1): inferred from what the body does to each tensor
unless declared; a declared In that is written is a verifier error."""
from __future__ import annotations

import pytest

from taskmap.lang import In, InOut, Out, atomic_add, cp_async, f32, i32, kernel, shared_tensor, threadIdx
from taskmap.spec.errors import VerifyError


@kernel(grid=1, block=32)
def mixed(n: i32, a: f32[32], b: f32[32], c: f32[32], total: f32[1], src: f32[32], unused: f32[32]):
    b[threadIdx.x] = a[threadIdx.x]                   # b written only: out
    c[threadIdx.x] = c[threadIdx.x] * 2.0             # c read and written: inout
    atomic_add(total[0], a[threadIdx.x])              # an atomic reads and writes: inout
    tile = shared_tensor(f32, [32])
    cp_async(tile[threadIdx.x], src[threadIdx.x])     # a cp_async source is read: in


@kernel(grid=1, block=32)
def declared(a: InOut[f32[32]], b: Out[f32[32]], c: In[f32[32]]):
    b[threadIdx.x] = c[threadIdx.x]


def test_directions_are_inferred_from_the_body():
    assert mixed.directions == {"a": "in", "b": "out", "c": "inout", "total": "inout", "src": "in", "unused": "in"}
    assert [b.name for b in mixed.outputs] == ["b", "c", "total"]
    assert [p.name for p in mixed.inputs] == ["n", "a", "c", "total", "src", "unused"]


def test_declared_directions_win_and_print_as_written():
    assert declared.directions == {"a": "inout", "b": "out", "c": "in"}
    assert [b.name for b in declared.outputs] == ["a", "b"] and [p.name for p in declared.inputs] == ["a", "c"]
    assert str(declared).splitlines()[0] == "kernel declared(a: InOut[f32[32]], b: Out[f32[32]], c: In[f32[32]])"


def test_writing_a_declared_input_names_the_declaration_and_the_fix():
    with pytest.raises(VerifyError) as e:
        @kernel(grid=1, block=32)
        def k(a: In[f32[32]]):
            a[threadIdx.x] = 1.0
    assert e.value.phrase == "write to input tensor"
    message = str(e.value)
    assert "`a` is declared In[f32[32]] (" in message and "declare it InOut[...] if the kernel updates it" in message
    assert "  >   3 |   a[threadIdx.x] = 1.0" in message


def test_a_direction_needs_a_tensor_type():
    with pytest.raises(TypeError, match=r"Out\[...\] takes a tensor type such as f32\[n\], got i32"):
        Out[i32]
