"""Every planted bug (tests/planted_bugs.py) traps with the expected kind, phrase, place."""
from __future__ import annotations

import numpy as np
import pytest

from taskmap import refimpl
from tests.planted_bugs import BUGS, matmul_double_buffer


def test_catalogue_is_large_enough():
    assert len(BUGS) >= 15
    assert len({b.name for b in BUGS}) == len(BUGS)


@pytest.mark.parametrize("bug", BUGS, ids=lambda b: b.name)
def test_planted_bug_traps(bug):
    with pytest.raises(refimpl.KernelTrap) as info:
        refimpl.interpret(bug.kernel, *bug.args())
    trap = info.value
    assert (trap.kind, trap.phrase) == (bug.kind, bug.phrase), str(trap)
    assert str(trap).startswith(bug.phrase)
    assert trap.kernel == bug.kernel.name
    assert trap.loc is not None and trap.loc.line == bug.line, str(trap)
    assert tuple(trap.block) == bug.block, str(trap)
    if isinstance(bug.thread, list):
        assert [tuple(t) for t in trap.thread] == [tuple(t) for t in bug.thread], str(trap)
    else:
        assert tuple(trap.thread) == bug.thread, str(trap)
    if bug.buffer is not None:
        assert trap.buffer == bug.buffer, str(trap)
    assert f"{trap.loc.file.rsplit('/', 1)[-1]}:{bug.line}" in str(trap)


def test_race_message_names_element_threads_and_fix():
    bug = next(b for b in BUGS if b.name == "missing barrier in transpose")
    with pytest.raises(refimpl.KernelTrap) as info:
        refimpl.interpret(bug.kernel, *bug.args())
    msg = str(info.value)
    assert msg.startswith("data race on shared memory: tile[1, 0] written by thread (32,0,0) and read by "
                          "thread (1,0,0) in block (0,0,0) at planted_bugs.py:")
    assert "(b[r, c] = tile[j, i])" in msg and msg.endswith("add syncthreads() between the write and the read")
    assert info.value.index == (1, 0)


def test_fixed_double_buffer_runs_clean_and_matches_numpy():
    rng = np.random.default_rng(1)
    a = rng.integers(-4, 5, (8, 12)).astype(np.float32)
    b = rng.integers(-4, 5, (12, 8)).astype(np.float32)
    c = np.zeros((8, 8), np.float32)
    refimpl.interpret(matmul_double_buffer, 12, a, b, c)
    np.testing.assert_array_equal(c, a @ b)


def test_checks_off_skips_shadow_state_but_not_bounds():
    bug = next(b for b in BUGS if b.name == "missing barrier in transpose")
    refimpl.interpret(bug.kernel, *bug.args(), checks=False)        # the race goes unnoticed
    bug = next(b for b in BUGS if b.name == "off by one")
    with pytest.raises(refimpl.KernelTrap, match="out of bounds global access"):
        refimpl.interpret(bug.kernel, *bug.args(), checks=False)
