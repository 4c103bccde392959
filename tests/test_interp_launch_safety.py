"""What a launch promises beyond its results: a trapped launch leaves the caller's arrays as
they were and shows the partial outputs on the trap (SPEC.md §10.1); a loop that does not end
stops at the step budget (§5.2); a long launch reports progress on a terminal, and only there;
a finished batch's state is freed at once."""
from __future__ import annotations

import gc
import io
import sys

import numpy as np
import pytest

import taskmap
from taskmap.lang import f32, i32, kernel, threadIdx, blockIdx
from taskmap.refimpl import launch, progress

BLOCKS, T = 8, 32
N = BLOCKS * T


@kernel(grid=lambda n: n // 32, block=32)
def copy_until(n: i32, bad: i32, a: f32[n], b: f32[n]):
    assert blockIdx.x != bad, "reached the bad block"
    i = blockIdx.x * 32 + threadIdx.x
    b[i] = a[i]


@kernel(block=32)
def forgot_increment(n: i32, m: i32, a: f32[n], b: f32[n]):
    i = threadIdx.x
    while i < m:                       # i never changes
        b[i] = a[i]


@kernel(block=32)
def count_to(n: i32, steps: i32, a: f32[n], b: f32[n]):
    total = 0.0
    for k in range(steps):
        total += 1.0
    b[threadIdx.x] = total


@kernel(block=32)
def count_to_thread(n: i32, a: f32[n], b: f32[n]):
    total = 0.0
    for k in range(threadIdx.x):       # thread t loops t times
        total += 1.0
    b[threadIdx.x] = total


@pytest.fixture
def two_blocks_per_batch(monkeypatch):
    monkeypatch.setattr(launch, "LANE_BUDGET", 2 * T)


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(N).astype(np.float32)
    b = rng.standard_normal(N).astype(np.float32)
    b[::7] = np.nan                    # NaN payloads too must survive bit for bit
    return a, b


def _bits(x):
    return x.view(np.uint32).copy()


def test_trap_in_a_late_batch_leaves_the_outputs_bit_identical(two_blocks_per_batch):
    a, b = _inputs()
    before = _bits(b)
    with pytest.raises(taskmap.KernelTrap) as info:
        taskmap.interpret(copy_until, N, 6, a, b)              # blocks 6 and 7: the fourth batch
    trap = info.value
    assert trap.phrase == "assertion failed" and tuple(trap.block) == (6, 0, 0)
    np.testing.assert_array_equal(_bits(b), before)
    assert set(trap.partial) == {"b"}                            # `a` is only read: never copied
    expected = before.copy()
    expected[:6 * T] = _bits(a)[:6 * T]                          # the three batches before the trap
    np.testing.assert_array_equal(_bits(trap.partial["b"]), expected)


def test_trapped_launch_keeps_an_empty_arrays_initialized_mask(two_blocks_per_batch):
    a, _ = _inputs(1)
    c = taskmap.empty(N, "f32")
    before = _bits(c)
    with pytest.raises(taskmap.KernelTrap) as info:
        taskmap.interpret(copy_until, N, 3, a, c)
    assert not c.initialized.any()
    np.testing.assert_array_equal(_bits(c), before)
    held = info.value.partial["b"]
    np.testing.assert_array_equal(held.initialized, np.arange(N) < 2 * T)     # blocks 0 and 1
    np.testing.assert_array_equal(held[:2 * T], a[:2 * T])


def test_completed_launch_writes_the_outputs(two_blocks_per_batch):
    a, b = _inputs(2)
    c = taskmap.empty(N, "f32")
    taskmap.interpret(copy_until, N, -1, a, b)
    taskmap.interpret(copy_until, N, -1, a, c)
    np.testing.assert_array_equal(b, a)
    np.testing.assert_array_equal(c, a)
    assert c.initialized.all()


def test_refused_launch_changes_nothing():
    a, b = _inputs()
    before = _bits(b)
    with pytest.raises(taskmap.LaunchError):
        taskmap.interpret(copy_until, N, 0, a[:-1], b)
    np.testing.assert_array_equal(_bits(b), before)


# ---------------------------------------------------------------- step budget (§5.2)

def test_loop_whose_condition_never_changes_stops_at_the_budget():
    a, b = np.arange(T, dtype=np.float32), np.zeros(T, np.float32)
    with pytest.raises(taskmap.KernelTrap) as info:
        taskmap.interpret(forgot_increment, T, 20, a, b, max_steps=5)
    trap = info.value
    assert (trap.kind, trap.phrase) == ("loop", "step budget exceeded")
    assert trap.loc.line == forgot_increment.loc.line + 2 and tuple(trap.thread) == (0, 0, 0)
    assert "while i < m:" in str(trap) and "reached 5 iterations" in str(trap)
    assert not b.any()
    np.testing.assert_array_equal(trap.partial["b"], np.where(np.arange(T) < 20, a, 0))


@pytest.mark.parametrize("steps", [1, 10])
def test_budget_allows_exactly_max_steps_iterations(steps):
    a, b = np.zeros(T, np.float32), np.zeros(T, np.float32)
    taskmap.interpret(count_to, T, steps, a, b, max_steps=steps)
    np.testing.assert_array_equal(b, np.full(T, steps, np.float32))
    with pytest.raises(taskmap.KernelTrap, match="step budget exceeded") as info:
        taskmap.interpret(count_to, T, steps + 1, a, b, max_steps=steps)
    assert info.value.loc.line == count_to.loc.line + 2


def test_budget_counts_each_threads_own_iterations():
    a, b = np.zeros(T, np.float32), np.zeros(T, np.float32)
    taskmap.interpret(count_to_thread, T, a, b, max_steps=T - 1)
    np.testing.assert_array_equal(b, np.arange(T, dtype=np.float32))
    with pytest.raises(taskmap.KernelTrap) as info:
        taskmap.interpret(count_to_thread, T, a, b, max_steps=T - 2)
    assert tuple(info.value.thread) == (T - 1, 0, 0)


def test_budget_from_the_environment_and_the_default(monkeypatch):
    a, b = np.zeros(T, np.float32), np.zeros(T, np.float32)
    monkeypatch.setenv("TASKMAP_MAX_STEPS", "9")
    with pytest.raises(taskmap.KernelTrap, match="reached 9 iterations"):
        taskmap.interpret(count_to, T, 10, a, b)
    taskmap.interpret(count_to, T, 10, a, b, max_steps=10)        # the argument wins
    monkeypatch.setenv("TASKMAP_MAX_STEPS", "lots")
    with pytest.raises(taskmap.LaunchError, match="TASKMAP_MAX_STEPS must be a positive integer, got 'lots'"):
        taskmap.interpret(count_to, T, 10, a, b)
    monkeypatch.delenv("TASKMAP_MAX_STEPS")
    monkeypatch.setattr(launch, "STEP_BUDGET", 100)
    default = 100 + 2 * T                                          # plus the tensors' element count
    taskmap.interpret(count_to, T, default, a, b)
    with pytest.raises(taskmap.KernelTrap, match=f"reached {default} iterations"):
        taskmap.interpret(count_to, T, default + 1, a, b)
    with pytest.raises(taskmap.LaunchError, match="max_steps must be a positive integer, got 0"):
        taskmap.interpret(count_to, T, 1, a, b, max_steps=0)


# ---------------------------------------------------------------- progress

class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def report_at_once(monkeypatch, two_blocks_per_batch):
    monkeypatch.setattr(progress, "SHOW_AFTER", 0.0)
    monkeypatch.setattr(progress, "EVERY", 0.0)


def _stderr_of(monkeypatch, stream, bad=-1) -> str:
    """What a launch of copy_until writes to stderr when stderr is `stream`."""
    monkeypatch.setattr(sys, "stderr", stream)
    a, b = _inputs()
    try:
        taskmap.interpret(copy_until, N, bad, a, b)
    except taskmap.KernelTrap:
        assert bad >= 0
    return stream.getvalue()


def test_long_launch_reports_progress_on_a_terminal(monkeypatch, report_at_once):
    out = _stderr_of(monkeypatch, FakeTerminal())
    for done in (2, 4, 6, 8):
        assert f"kernel copy_until: {done}/{BLOCKS} blocks ({100 * done // BLOCKS}%)" in out, out
    assert "blocks/s" in out and out.endswith("\r") and out.split("\r")[-2].strip() == ""     # erased


def test_progress_is_erased_when_the_launch_traps(monkeypatch, report_at_once):
    out = _stderr_of(monkeypatch, FakeTerminal(), bad=6)
    assert "6/8 blocks" in out and "8/8" not in out and out.split("\r")[-2].strip() == ""


def test_no_progress_when_stderr_is_not_a_terminal(monkeypatch, report_at_once):
    assert _stderr_of(monkeypatch, io.StringIO()) == ""


def test_no_progress_for_a_short_launch(monkeypatch, two_blocks_per_batch):
    assert _stderr_of(monkeypatch, FakeTerminal()) == ""


def test_a_finished_batch_frees_its_state():
    """Shared reads still deferred at the end of the kernel (the transpose's tile reads) refer to
    the batch's state; left in place they would keep every batch's arrays alive until the garbage
    collector runs (the 4096² transpose's peak RSS doubled)."""
    from taskmap.examples import transpose
    from taskmap.refimpl.state import State
    a = np.arange(64 * 64, dtype=np.float32).reshape(64, 64)
    b = np.zeros_like(a)
    gc.collect()
    gc.disable()
    try:
        launch.interpret(transpose.transpose, 64, 64, a, b)
        alive = [o for o in gc.get_objects() if isinstance(o, State)]
    finally:
        gc.enable()
    np.testing.assert_array_equal(b, a.T)
    assert not alive
