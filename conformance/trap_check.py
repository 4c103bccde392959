"""`assert_trap:` — what a trapping kernel must report (SPEC.md §10) and the check of it.

    assert_trap:
      kind: race                          # §10 kind
      phrase: data race on shared memory  # §10 phrase (the message's, after `[kind] `)
      at: "tile[i, j] = a[r, c]"          # the trap's DSL line contains this text (or `line: 23`)
      block: [0, 0]                       # optional: block index, missing trailing dims are 0
      thread: [3]                         # optional: thread index, or a list of them (a race's pair)
      buffer: tile                        # optional: the tensor involved
"""
from __future__ import annotations

from dataclasses import dataclass

from taskmap.spec.errors import LaunchError

from .places import PLACE_KEYS, Place, parse_place
from .schema import YList, YMap, check_keys, get

TRAP_KEYS = {"kind", "phrase", "block", "thread", "buffer"} | PLACE_KEYS


@dataclass(frozen=True)
class TrapExpectation:
    kind: str
    phrase: str
    place: Place = Place()
    block: tuple | None = None
    thread: tuple | None = None         # one index, or a tuple of indices
    buffer: str | None = None

    def check(self, error, kernel: str) -> tuple[str, str]:
        """(status, message) for what launching `kernel` raised (None: nothing)."""
        from taskmap.refimpl import KernelTrap
        want = f"trap {self.kind} ({self.phrase!r})"
        if error is None:
            return "failed", f"expected {want}, none raised"
        if not isinstance(error, (KernelTrap, LaunchError)):       # kind `launch`: the launch was refused
            return "failed", f"expected {want}, got {type(error).__name__}: {error}"
        if error.kind != self.kind:
            return "failed", f"wrong trap kind: expected {self.kind}, got {error.kind}: {error}"
        if error.phrase != self.phrase:
            return "failed", f"wrong trap phrase: expected {self.phrase!r}, got {error.phrase!r}: {error}"
        problems = self.place.problems(error.loc, str(error)) + self._thread_problems(error)
        if error.kernel != kernel:
            problems.append(f"trap names kernel {error.kernel!r}, expected {kernel!r}")
        return ("failed", "; ".join(problems) + f" (trap: {error})") if problems else ("passed", "")

    def _thread_problems(self, trap) -> list[str]:
        problems = []
        block, thread = getattr(trap, "block", None), getattr(trap, "thread", None)    # a LaunchError has neither
        tensor = trap.param if isinstance(trap, LaunchError) else trap.buffer
        if self.block is not None and _dim3(block) != self.block:
            problems.append(f"trap in block {block}, expected {self.block}")
        if self.thread is not None and not _thread_matches(thread, self.thread):
            problems.append(f"trap in thread {thread}, expected {self.thread}")
        if self.buffer is not None and tensor != self.buffer:
            problems.append(f"trap on tensor {tensor!r}, expected {self.buffer!r}")
        return problems


def _dim3(index) -> tuple | None:
    """(x,), [x, y], x -> (x, y, z) with missing trailing dims 0."""
    if index is None:
        return None
    if not isinstance(index, (tuple, list)):
        index = (index,)
    return tuple(int(v) for v in index) + (0,) * (3 - len(index))


def _thread_matches(actual, expected: tuple) -> bool:
    """`thread: [3]` matches a trap in thread 3, or a race involving thread 3;
    `thread: [[3], [5]]` matches a race between exactly threads 3 and 5, in that order."""
    if actual is None:
        return False
    several = len(actual) > 0 and isinstance(actual[0], (tuple, list))
    if isinstance(expected[0], tuple):
        return several and tuple(_dim3(t) for t in actual) == expected
    return expected in (tuple(_dim3(t) for t in actual) if several else (_dim3(actual),))


def parse_trap(m: YMap) -> TrapExpectation:
    from taskmap.refimpl.traps import PHRASES
    phrases = PHRASES | {"launch": LaunchError.PHRASES}          # and refused launches (SPEC.md §3.4)
    check_keys(m, TRAP_KEYS, "assert_trap")
    kind = get(m, "kind", "str", what="assert_trap")
    if kind not in phrases:
        raise m.at("kind").error(f"unknown trap kind {kind!r}; SPEC.md §10 kinds: {', '.join(phrases)}")
    phrase = get(m, "phrase", "str", what="assert_trap")
    if phrase not in phrases[kind]:
        raise m.at("phrase").error(f"{phrase!r} is not a phrase of trap kind {kind}; expected one of: "
                                   + "; ".join(phrases[kind]))
    return TrapExpectation(kind, phrase, parse_place(m, "assert_trap"),
                           block=_index_field(m, "block"), thread=_index_field(m, "thread", pairs=True),
                           buffer=get(m, "buffer", "str", None))


def _index_field(m: YMap, key: str, pairs: bool = False):
    if key not in m:
        return None
    v = m[key]
    if isinstance(v, int) and not isinstance(v, bool):
        return _dim3(v)
    if isinstance(v, YList) and 1 <= len(v) <= 3 and all(isinstance(x, int) for x in v):
        return _dim3(v)
    if pairs and isinstance(v, YList) and v and all(isinstance(x, YList) and 1 <= len(x) <= 3 for x in v):
        return tuple(_dim3(x) for x in v)
    more = ", or a list of such lists" if pairs else ""
    raise m.at(key).error(f"`{key}:` must be an index: an integer or a list of 1-3 integers{more}")
