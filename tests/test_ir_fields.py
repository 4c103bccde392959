"""The verifier's view of a statement (own expressions, addresses, nested bodies) is derived
from the IR dataclasses' field types: every statement class is covered, and a new field of an
unknown kind fails loudly instead of escaping the checks."""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass

import pytest

from taskmap.spec import dtypes as dt
from taskmap.spec import ir
from taskmap.spec import verify_common as vc


def _subclasses(cls):
    for c in cls.__subclasses__():
        yield c
        yield from _subclasses(c)


STATEMENTS = sorted(set(_subclasses(ir.Stmt)), key=lambda c: c.__name__)


def _sample(hint, default):
    """A fresh value of a field's type (distinct objects, so identity tells them apart)."""
    if typing.get_origin(hint) is tuple:
        return (_sample(typing.get_args(hint)[0], dataclasses.MISSING),)
    kinds = [t for t in typing.get_args(hint) or (hint,) if t is not type(None)]
    node = next((t for t in kinds if isinstance(t, type) and issubclass(t, ir.Node)), None)
    if node is None:
        return 1 if default is dataclasses.MISSING else default
    tile = ir.Buffer("t", dt.float32, (ir.Const(4, dt.int32), ir.Const(4, dt.int32)), "shared")
    if issubclass(node, ir.Var):
        return ir.Var("v", dt.int32)
    if issubclass(node, ir.Buffer):
        return tile
    if issubclass(node, ir.Ref):
        return ir.Ref(tile, (ir.Const(1, dt.int32),))
    if issubclass(node, ir.Expr):
        return ir.Const(2, dt.int32)
    return ir.SyncThreads()


def _instance(cls):
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: _sample(hints[f.name], f.default) for f in dataclasses.fields(cls) if f.name != "loc"})


def test_the_statement_classes_are_all_found():
    assert {"Store", "For", "ForTask", "If", "CpAsync", "Atomic", "MmaSync"} <= {c.__name__ for c in STATEMENTS}


@pytest.mark.parametrize("cls", STATEMENTS, ids=lambda c: c.__name__)
def test_every_child_node_is_seen_by_the_checks(cls):
    s = _instance(cls)
    seen = {id(e) for e in vc.own_exprs(s)}
    seen |= {id(r) for r in vc.refs(s)} | {id(x) for b in vc.bodies(s) for x in b}
    names = {id(getattr(s, f)) for f, role in vc.field_roles(cls) if role == "name"}
    names |= {id(x) for f, role in vc.field_roles(cls) if role == "name" and isinstance(getattr(s, f), tuple)
              for x in getattr(s, f)}
    for child in ir.children(s):
        assert id(child) in seen | names, f"{cls.__name__}: {child!r} escapes the verifier"
    for r in vc.refs(s):                         # an address's indices are evaluated too
        assert all(id(i) in seen for i in r.indices)


def test_the_known_roles():
    assert vc.own_exprs(ir.Store(_sample(ir.Buffer, None), (a := ir.const(1),), b := ir.const(2.0))) == (a, b)
    x, y, z, body = ir.const(0), ir.const(4), ir.const(1), (ir.SyncThreads(),)
    loop = ir.For(ir.Var("i", dt.int32), x, y, z, body)
    assert vc.own_exprs(loop) == (x, y, z) and vc.bodies(loop) == (body,)


def test_a_field_of_an_unknown_node_kind_is_refused():
    @dataclass(frozen=True)
    class Launch(ir.Stmt):
        callee: ir.Kernel

    with pytest.raises(TypeError, match=r"Launch.callee: the verifier does not know the role"):
        vc.own_exprs(Launch(None))
