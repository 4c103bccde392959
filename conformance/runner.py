"""Select cases, run each on its backends, and collect results (what `taskmap conform` drives)."""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Callable

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


def run(pairs: list[tuple[Case, str]], progress: Callable[[str], None] | None = None) -> list[Result]:
    results = []
    for i, (case, backend) in enumerate(pairs, 1):
        outcome = case.run(backend)
        if progress:
            status = "ok" if outcome.status == "passed" else outcome.status.upper()
            progress(f"[{i}/{len(pairs)}] {case.id} {backend} ... {status}")
        results.append(Result(case, backend, outcome))
    return results
