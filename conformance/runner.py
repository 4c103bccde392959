"""Select cases, run each on its backends, and collect results (what `taskmap conform` drives)."""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import TextIO

from .backends import BACKENDS, cuda_unavailable
from .cases import Case, Outcome

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
    """-k: a substring or glob of the case id, or one of its tags."""
    if not pattern:
        return True
    return pattern in case.id or fnmatch.fnmatchcase(case.id, pattern) or pattern in case.tags


def plan(cases: list[Case], backends: tuple[str, ...]) -> list[tuple[Case, str]]:
    return [(c, b) for c in cases for b in c.backends if b in backends]


def run(pairs: list[tuple[Case, str]], out: TextIO | None = None) -> list[Result]:
    """Run each (case, backend); with `out`, write `[i/n] id backend ... status` as it goes."""
    results = []
    for i, (case, backend) in enumerate(pairs, 1):
        if out:
            out.write(f"[{i}/{len(pairs)}] {case.id} {backend} ... ")
            out.flush()
        outcome = case.run(backend)
        if out:
            out.write(("ok" if outcome.status == "passed" else outcome.status.upper()) + "\n")
            out.flush()
        results.append(Result(case, backend, outcome))
    return results
