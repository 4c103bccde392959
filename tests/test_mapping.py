"""Task-mapping algebra (SPEC.md §7): coverage, order, lowering, auto_map, errors.

The expected task lists come from definitions written here, independently of
spec/mapping.py: the recursive binary-composition rule of §7.1 over a random
parenthesization (which also shows that `*` is associative), and a small evaluator of the
loops that `lower_task_mappings` produces (§7.3).
"""
from __future__ import annotations

import math
from collections import Counter
from itertools import product

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskmap.spec import dtypes as dt
from taskmap.spec import ir
from taskmap.spec.mapping import auto_map, repeat, spatial
from taskmap.spec.passes.lower_task_mappings import lower_task_mappings

MAX_TASKS = 256

# ------------------------------------------------------------------ random mappings


@st.composite
def atoms(draw, ndim: int, budget: int):
    """(kind, shape, ranks) with prod(shape) <= budget."""
    shape = []
    for _ in range(ndim):
        left = budget // math.prod(shape) if shape else budget
        shape.append(draw(st.integers(1, max(1, min(4, left)))))
    ranks = draw(st.permutations(range(ndim)))
    return draw(st.sampled_from(["spatial", "repeat"])), tuple(shape), tuple(ranks)


@st.composite
def atom_lists(draw):
    ndim = draw(st.integers(1, 3))
    out, tasks = [], 1
    for _ in range(draw(st.integers(1, 4))):
        a = draw(atoms(ndim, MAX_TASKS // tasks))
        out.append(a)
        tasks *= math.prod(a[1])
    return out


@st.composite
def trees(draw):
    """A random binary parenthesization of a random atom list: an atom tuple or (left, right)."""
    def split(items):
        if len(items) == 1:
            return items[0]
        k = draw(st.integers(1, len(items) - 1))
        return (split(items[:k]), split(items[k:]))
    return split(draw(atom_lists()))


def is_atom(t) -> bool:
    return isinstance(t[0], str)


def build(t):
    """The TaskMapping of a tree, composed with `*` in the tree's order."""
    if is_atom(t):
        kind, shape, ranks = t
        return (spatial if kind == "spatial" else repeat)(*shape, ranks=ranks)
    return build(t[0]) * build(t[1])


# ------------------------------------------------------------------ the §7.1 definition, independently

def unravel(x: int, shape, ranks) -> tuple[int, ...]:
    """Mixed-radix digits of x; the rank-0 dimension is the most significant."""
    idx = [0] * len(shape)
    for d in sorted(range(len(shape)), key=lambda d: -ranks[d]):   # least significant first
        idx[d] = x % shape[d]
        x //= shape[d]
    assert x == 0
    return tuple(idx)


def shape_of(t):
    if is_atom(t):
        return t[1]
    return tuple(a * b for a, b in zip(shape_of(t[0]), shape_of(t[1])))


def workers_of(t) -> int:
    if is_atom(t):
        return math.prod(t[1]) if t[0] == "spatial" else 1
    return workers_of(t[0]) * workers_of(t[1])


def tasks_of(t, w: int) -> list[tuple[int, ...]]:
    if not 0 <= w < workers_of(t):
        return []
    if is_atom(t):
        kind, shape, ranks = t
        xs = [w] if kind == "spatial" else range(math.prod(shape))
        return [unravel(x, shape, ranks) for x in xs]
    left, right = t
    wb = workers_of(right)
    sb = shape_of(right)
    return [tuple(a * n + b for a, n, b in zip(ta, sb, tb))
            for ta in tasks_of(left, w // wb) for tb in tasks_of(right, w % wb)]


# ------------------------------------------------------------------ (a), (b)

@settings(max_examples=150, deadline=None)
@given(trees())
def test_every_task_is_covered_exactly_once(tree):
    m = build(tree)
    counts = Counter(t for w in range(m.num_workers) for t in m.worker_tasks(w))
    assert counts == Counter(product(*map(range, shape_of(tree))))


@settings(max_examples=150, deadline=None)
@given(trees())
def test_worker_tasks_follow_the_recursive_definition(tree):
    """Any parenthesization gives the §7.1 lists: this is also associativity of `*`."""
    m = build(tree)
    assert m.task_shape == shape_of(tree)
    assert m.num_workers == workers_of(tree)
    for w in range(m.num_workers + 3):
        assert m.worker_tasks(w) == tasks_of(tree, w)


@settings(max_examples=100, deadline=None)
@given(trees(), st.lists(st.integers(-3, MAX_TASKS + 3), max_size=40))
def test_first_tasks_are_each_workers_first_task_at_once(tree, workers):
    """The verifier's vectorized form against the §7.1 lists: -1 outside [0, W)."""
    m = build(tree)
    workers = workers + list(range(m.num_workers))
    want = [(tasks_of(tree, w) or [(-1,) * m.ndim])[0] for w in workers]
    assert [tuple(t) for t in m.first_tasks(np.array(workers)).T.tolist()] == want


# ------------------------------------------------------------------ (c) lowering, run by a tiny evaluator

_C_OPS = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": lambda a, b: int(a / b), "%": lambda a, b: a - int(a / b) * b,
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, "==": lambda a, b: a == b,
    "&&": lambda a, b: a and b,
}


def evaluate(e, env):
    match e:
        case ir.Const(value=v):
            return v
        case ir.Var() | ir.Special():
            return env[e]
        case ir.Binary(op=op, a=a, b=b):
            return _C_OPS[op](evaluate(a, env), evaluate(b, env))
    raise AssertionError(f"lowered task loops contain an unexpected expression {e!r}")


def execute(stmts, env, trace):
    for s in stmts:
        match s:
            case ir.DeclareVar(var=v, init=init):
                env[v] = evaluate(init, env)
            case ir.For(var=v, start=lo, stop=hi, step=step, body=body):
                for x in range(evaluate(lo, env), evaluate(hi, env), evaluate(step, env)):
                    execute(body, {**env, v: x}, trace)
            case ir.If(cond=c, then=then, orelse=orelse):
                execute(then if evaluate(c, env) else orelse, env, trace)
            case ir.Store(indices=idx):
                trace.append(tuple(evaluate(i, env) for i in idx))
            case _:
                raise AssertionError(f"lowered task loops contain an unexpected statement {s!r}")


def lowered_tasks(m, worker: int) -> list[tuple[int, ...]]:
    """Run `for v... in m.on(threadIdx.x): record[v...] = 1` after lowering, for one worker."""
    tid = ir.Special("threadIdx.x")
    vs = tuple(ir.Var(f"v{d}", dt.int32) for d in range(m.ndim))
    record = ir.Buffer("record", dt.int32, tuple(ir.const(n) for n in m.task_shape), "global")
    loop = ir.ForTask(vs, m, tid, (ir.Store(record, vs, ir.const(1)),))
    one = (ir.const(1),) * 3
    k = lower_task_mappings(ir.Kernel("k", (record,), one, one, (loop,)))
    assert not any(isinstance(n, ir.ForTask) for n in ir.walk(k))
    trace: list = []
    execute(k.body, {tid: worker}, trace)
    return trace


@settings(max_examples=100, deadline=None)
@given(trees())
def test_lowered_loops_run_each_workers_tasks_in_order(tree):
    m = build(tree)
    for w in range(m.num_workers + 3):
        assert lowered_tasks(m, w) == tasks_of(tree, w), f"worker {w} of {m}"


# ------------------------------------------------------------------ (d) auto_map

@st.composite
def auto_map_cases(draw):
    shape = tuple(draw(st.lists(st.integers(1, 12), min_size=1, max_size=3)))
    total = math.prod(shape)
    return shape, draw(st.sampled_from([d for d in range(1, total + 1) if total % d == 0]))


@settings(max_examples=150, deadline=None)
@given(auto_map_cases())
def test_auto_map_spreads_workers_evenly_and_coalesced(case):
    shape, workers = case
    m = auto_map(*shape, workers=workers)
    assert m.task_shape == shape and m.num_workers == workers
    lists = [m.worker_tasks(w) for w in range(workers)]
    assert Counter(t for ts in lists for t in ts) == Counter(product(*map(range, shape)))
    assert len({len(ts) for ts in lists}) == 1
    row = math.gcd(workers, shape[-1])          # workers sharing one run of the last dimension
    for w in range(workers - 1):
        if (w + 1) % row:
            step = [tuple(b - a for a, b in zip(x, y)) for x, y in zip(lists[w], lists[w + 1])]
            assert set(step) == {(0,) * (len(shape) - 1) + (1,)}, f"workers {w}, {w + 1} of {m}"


def test_auto_map_rejects_a_worker_count_that_does_not_divide_the_tasks():
    with pytest.raises(ValueError, match="do not divide"):
        auto_map(4, 6, workers=16)


# ------------------------------------------------------------------ (e) errors

@pytest.mark.parametrize("make, match", [
    (lambda: spatial(4, 8, ranks=[0]), "permutation"),
    (lambda: repeat(2, 3, ranks=[0, 0]), "permutation"),
    (lambda: spatial(2, ranks=[1]), "permutation"),
    (lambda: repeat(2, 2, ranks=[0, 1, 2]), "permutation"),
    (lambda: spatial(4, 0), "positive"),
    (lambda: repeat(-1), "positive"),
    (lambda: spatial(), "positive"),
    (lambda: spatial(4, 8) * repeat(2), "same number of dimensions"),
    (lambda: repeat(2) * spatial(2, 2, 2), "same number of dimensions"),
])
def test_invalid_mappings_are_rejected(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_composing_with_a_non_mapping_is_a_type_error():
    with pytest.raises(TypeError):
        spatial(4) * 3


# ------------------------------------------------------------------ SPEC.md §7 worked examples

@pytest.mark.parametrize("m, expected", [
    (spatial(2, 3), {0: [(0, 0)], 1: [(0, 1)], 2: [(0, 2)], 3: [(1, 0)], 5: [(1, 2)], 6: []}),
    (spatial(2, 3, ranks=[1, 0]), {0: [(0, 0)], 1: [(1, 0)], 2: [(0, 1)], 5: [(1, 2)]}),
    (repeat(2, 2), {0: [(0, 0), (0, 1), (1, 0), (1, 1)], 1: []}),
    (repeat(2, 2, ranks=[1, 0]), {0: [(0, 0), (1, 0), (0, 1), (1, 1)]}),
    (repeat(2, 1) * spatial(2, 4), {0: [(0, 0), (2, 0)], 5: [(1, 1), (3, 1)], 7: [(1, 3), (3, 3)], 8: []}),
    (spatial(2, 4) * repeat(2, 1), {0: [(0, 0), (1, 0)], 5: [(2, 1), (3, 1)]}),
    (spatial(2, 1) * spatial(2, 2), {0: [(0, 0)], 1: [(0, 1)], 2: [(1, 0)], 4: [(2, 0)], 7: [(3, 1)]}),
    (spatial(2) * repeat(3) * spatial(2), {0: [(0,), (2,), (4,)], 1: [(1,), (3,), (5,)], 2: [(6,), (8,), (10,)]}),
    (auto_map(4, 6, workers=8), {0: [(0, 0), (0, 2), (0, 4)], 1: [(0, 1), (0, 3), (0, 5)], 7: [(3, 1), (3, 3), (3, 5)]}),
    (spatial(4, 2) * spatial(4, 8) * repeat(4, 4), {37: [(r, c) for r in range(4) for c in range(52, 56)]}),
    (repeat(2, 1) * spatial(8, 4) * repeat(1, 2),   # the m16n8 accumulator fragment, SPEC.md §5.7
     {lane: [(lane // 4 + 8 * (i // 2), 2 * (lane % 4) + i % 2) for i in range(4)] for lane in range(33)}),
])
def test_spec_worked_examples(m, expected):
    for w, tasks in expected.items():
        tasks = tasks if w < m.num_workers else []
        assert m.worker_tasks(w) == tasks
        assert lowered_tasks(m, w) == tasks
