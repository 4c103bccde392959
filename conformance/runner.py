"""Select cases, run each on its backends, and collect results (what `taskmap conform` drives)."""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import TextIO

from .backends import BACKENDS, cuda_unavailable
from .cases import BrokenCase, Case, Outcome

MIN_DEFAULT_CASES = 60     # a default run collecting fewer means the loader lost cases


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


def matches(case: Case, pattern: str | None) -> bool:
    """-k: a substring or glob of the case id, or one of its tags. A malformed file matches
    every pattern: which cases it would hold is unknown, and its error must not go unseen."""
    if not pattern or (isinstance(case, BrokenCase) and case.whole_file):
        return True
    return pattern in case.id or fnmatch.fnmatchcase(case.id, pattern) or pattern in case.tags


def plan(cases: list[Case], backends: tuple[str, ...]) -> list[tuple[Case, str]]:
    """(case, backend) runs; a BrokenCase runs once, on the first backend, to report its error."""
    pairs = []
    for c in cases:
        runs = [b for b in c.backends if b in backends]
        pairs += [(c, b) for b in (runs[:1] if isinstance(c, BrokenCase) else runs)]
    return pairs


def run(pairs: list[tuple[Case, str]], out: TextIO | None = None) -> list[Result]:
    """Run each (case, backend); with `out`, write `[i/n] id backend ... status` as it goes."""
    results = []
    for i, (case, backend) in enumerate(pairs, 1):
        if out:
            out.write(f"[{i}/{len(pairs)}] {case.id} {backend} ... ")
            out.flush()
        try:
            outcome = case.run(backend)
        except Exception as e:  # noqa: BLE001 — one case's bug in the runner must not stop the others
            outcome = Outcome("error", f"{case.where}: internal error of the conformance runner running "
                                       f"this case: {type(e).__name__}: {e} (please report it)")
        if out:
            out.write(("ok" if outcome.status == "passed" else outcome.status.upper()) + "\n")
            out.flush()
        results.append(Result(case, backend, outcome))
    return results
