"""Select cases, run each on its backends, and collect results (what `taskmap conform` drives)."""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import TextIO

from .backends import BACKENDS, cuda_unavailable
from .cases import BrokenCase, Case, Outcome

# The floor of a default run (committed; raise it as cases are added): collecting fewer, in
# all or of one kind, means the loader lost cases, and the run is refused.
MIN_DEFAULT_CASES = 900
MIN_CASES_BY_KIND = {"kernel": 200, "op": 400, "fusion": 90, "model": 10}
SLOW = "slow"              # cases tagged so run only with --slow


@dataclass(frozen=True)
class Result:
    case: Case
    backend: str
    outcome: Outcome


def choose_backends(requested: str | None) -> tuple[tuple[str, ...], str]:
    """(backends to run, why): `--backend` if given, else all with a GPU and interp without."""
    if requested == "all":
        return tuple(BACKENDS), "--backend all"
    if requested:
        return (requested,), f"--backend {requested}"
    reason = cuda_unavailable()
    if reason is None:
        return tuple(BACKENDS), "a CUDA GPU is available"
    return ("interp",), f"{reason}; pass --backend all to list the cuda runs as skipped"


def below_floor(cases: list[Case]) -> str | None:
    """Why the built-in suite's `cases` are fewer than the committed floor, or None."""
    if len(cases) < MIN_DEFAULT_CASES:
        return f"only {len(cases)} cases collected, expected at least {MIN_DEFAULT_CASES}"
    for kind, floor in MIN_CASES_BY_KIND.items():
        n = sum(c.info.kind == kind for c in cases)
        if n < floor:
            return f"only {n} `{kind}` cases collected, expected at least {floor}"
    return None


def matches(case: Case, pattern: str | None) -> bool:
    """-k: a substring or glob of the case id, or one of its tags. A malformed file matches
    every pattern: which cases it would hold is unknown, and its error must not go unseen."""
    if not pattern or (isinstance(case, BrokenCase) and case.whole_file):
        return True
    return pattern in case.id or fnmatch.fnmatchcase(case.id, pattern) or pattern in case.tags


def select(cases: list[Case], pattern: str | None, slow: bool) -> list[Case]:
    """The cases -k selects; those tagged `slow` only with --slow (or when -k names the tag)."""
    return [c for c in cases if matches(c, pattern) and (slow or pattern == SLOW or SLOW not in c.tags)]


def plan(cases: list[Case], backends: tuple[str, ...]) -> list[tuple[Case, str]]:
    """(case, backend) runs; a BrokenCase runs once, on the first backend, to report its error."""
    pairs = []
    for c in cases:
        runs = [b for b in c.backends if b in backends]
        pairs += [(c, b) for b in (runs[:1] if isinstance(c, BrokenCase) else runs)]
    return pairs


def run_one(case: Case, backend: str) -> Outcome:
    try:
        return case.run(backend)
    except Exception as e:  # noqa: BLE001 — one case's bug in the runner must not stop the others
        return Outcome("error", f"{case.where}: internal error of the conformance runner running "
                                f"this case: {type(e).__name__}: {e} (please report it)")


class Progress:
    """`[i/n] id backend ... status` per run; on a terminal one line rewritten in place, with
    the runs that did not pass left on their own lines."""

    def __init__(self, out: TextIO | None, total: int):
        self.out, self.total, self.done = out, total, 0
        self.tty = bool(out) and out.isatty()

    def start(self, case: Case, backend: str) -> None:
        if self.out and not self.tty:
            self.out.write(f"[{self.done + 1}/{self.total}] {case.id} {backend} ... ")
            self.out.flush()

    def finish(self, case: Case, backend: str, outcome: Outcome) -> None:
        self.done += 1
        if not self.out:
            return
        status = "ok" if outcome.status == "passed" else outcome.status.upper()
        if not self.tty:
            self.out.write(status + "\n")
        else:
            line = f"[{self.done}/{self.total}] {case.id} {backend} ... {status}"
            keep = outcome.status in ("failed", "error")
            self.out.write("\r\033[K" + line + ("\n" if keep or self.done == self.total else ""))
        self.out.flush()


def run(pairs: list[tuple[Case, str]], out: TextIO | None = None) -> list[Result]:
    """Run each (case, backend) in order; with `out`, report progress as it goes."""
    progress, results = Progress(out, len(pairs)), []
    for case, backend in pairs:
        progress.start(case, backend)
        outcome = run_one(case, backend)
        progress.finish(case, backend, outcome)
        results.append(Result(case, backend, outcome))
    return results
