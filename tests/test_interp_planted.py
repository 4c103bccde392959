"""The planted bugs of the conformance suite (conformance/cases/traps.yaml) beyond what a case
checks: every §10 trap phrase is exercised, the full text of a race, and what `checks=False`
skips. The kind, phrase, place, block, thread and tensor of each trap are the cases' own checks."""
from __future__ import annotations

import os

import pytest

from taskmap import refimpl
from taskmap.conformance.loader import load_paths
from taskmap.refimpl.traps import PHRASES, fmt3

SUITE = {c.id: c for c in load_paths()}


def launch(case_id: str):
    """(kernel, arguments) of a suite case, generated as the case says."""
    case = SUITE[case_id]
    kernel = case.ref.load()
    return kernel, case.arguments(kernel).args


# kind `launch` is a refused launch, a LaunchError (SPEC §3.4): tests/test_bad_input_runtime.py checks its text
TRAP_CASES = sorted(c.id for c in SUITE.values() if getattr(c, "trap", None) and c.trap.kind != "launch")


def test_every_trap_phrase_is_exercised_by_a_case():
    exercised = {(SUITE[i].trap.kind, SUITE[i].trap.phrase) for i in TRAP_CASES}
    assert exercised == {(kind, p) for kind, ps in PHRASES.items() for p in ps}


@pytest.mark.parametrize("case_id", TRAP_CASES)
def test_every_trap_text_names_kind_phrase_element_block_thread_and_line(case_id):
    kernel, args = launch(case_id)
    with pytest.raises(refimpl.KernelTrap) as info:
        refimpl.interpret(kernel, *args)
    trap, text = info.value, str(info.value)
    assert text.startswith(f"[{trap.kind}] {trap.phrase}"), text
    thread = trap.thread if isinstance(trap.thread[0], int) else next(t for t in trap.thread[::-1] if t)
    assert f" in block {fmt3(trap.block)}, thread" in text and fmt3(thread) in text, text
    assert f" at {os.path.basename(trap.loc.file)}:{trap.loc.line} (" in text, text
    if trap.buffer is not None:
        assert f"{trap.buffer}[{', '.join(map(str, trap.index))}]" in text, text


def test_race_message_names_element_threads_and_fix():
    kernel, args = launch("traps/race-transpose-missing-barrier")
    with pytest.raises(refimpl.KernelTrap) as info:
        refimpl.interpret(kernel, *args)
    msg = str(info.value)
    assert msg.startswith("[race] data race on shared memory: tile[1, 0] written by thread (32,0,0) and read by "
                          "thread (1,0,0) in block (0,0,0), threads (32,0,0) and (1,0,0) at bugs.py:")
    assert "(b[r, c] = tile[j, i])" in msg and msg.endswith("add syncthreads() between the write and the read")
    assert info.value.index == (1, 0)


def test_checks_off_skips_shadow_state_but_not_bounds():
    kernel, args = launch("traps/race-transpose-missing-barrier")
    refimpl.interpret(kernel, *args, checks=False)        # the race goes unnoticed
    kernel, args = launch("traps/oob-off-by-one-guard")
    with pytest.raises(refimpl.KernelTrap, match="out of bounds global access"):
        refimpl.interpret(kernel, *args, checks=False)
