"""Case kinds: a registry mapping a file's (or case's) `kind:` to the code that builds and runs it.

The loader (loader.py) handles what every kind shares — `name`, `each` expansion, file-level
`defaults`, `backends`, `tags` — and hands each case's mapping to its kind's `build`. A kind
is registered once at import time; `kernel` (conformance/kernel_case.py) is the first, and
later operator / fusion / model kinds plug in the same way:

    register(CaseKind("operator", fields={"op", "inputs", ...}, backends=("interp", "cuda"),
                      build=build_operator_case))
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .schema import Where, YMap

COMMON_FIELDS = frozenset({"name", "kind", "each", "backends", "tags"})


STATUSES = ("passed", "failed", "error", "skipped")


@dataclass
class Outcome:
    """What one (case, backend) run gave. status: passed | failed (the code under test gave a
    wrong answer) | error (the case itself could not be run: a malformed file, a kernel file
    that does not import, arguments that cannot be made) | skipped (backend unavailable).
    result: a case kind's own finer verdict, "" for most (ONNX node tests: passed | failed |
    unsupported, before comparing with their expected list; conformance/onnx_node.py)."""
    status: str
    message: str = ""
    max_abs: float | None = None
    max_rel: float | None = None
    seconds: float = 0.0
    result: str = ""


@dataclass(frozen=True)
class CaseInfo:
    """What the loader knows about a case before its kind builds it."""
    id: str
    where: Where
    base_dir: str                      # the YAML file's directory: kernel paths are relative to it
    backends: tuple[str, ...]          # requested: the case's own `backends:`, else the file's
    backends_explicit: bool            # whether the case itself named them
    tags: tuple[str, ...]
    kind: str = ""                     # the case kind's name ("" for a case that did not load)

    def allowed_backends(self, allowed: tuple[str, ...], why: str) -> tuple[str, ...]:
        """The requested backends a case can run on: inherited ones are narrowed silently,
        ones the case names itself must all be allowed (`why` says why not)."""
        if self.backends_explicit:
            bad = [b for b in self.backends if b not in allowed]
            if bad:
                raise self.where.error(f"backend {bad[0]!r} not allowed here: {why}")
        return tuple(b for b in self.backends if b in allowed)


@dataclass
class Case:
    """A built case. Kinds subclass it and implement run()."""
    info: CaseInfo
    backends: tuple[str, ...] = field(default=())

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def where(self) -> Where:
        return self.info.where

    @property
    def tags(self) -> tuple[str, ...]:
        return self.info.tags

    def run(self, backend: str) -> Outcome:
        raise NotImplementedError(f"case kind {type(self).__name__} does not implement run()")


@dataclass
class BrokenCase(Case):
    """A case (or a whole file) that could not be loaded: it runs as one `error` result with
    the load error's message, so the other cases still run. `whole_file`: the file itself is
    malformed, so which case ids it holds is unknown (it is reported whatever `-k` selects)."""
    message: str = ""
    whole_file: bool = False

    def run(self, backend: str) -> Outcome:
        return Outcome("error", self.message)


@dataclass(frozen=True)
class CaseKind:
    name: str
    fields: frozenset[str]                       # the kind's own keys, beyond COMMON_FIELDS
    backends: tuple[str, ...]                    # the backends a case of this kind can run on
    build: Callable[[YMap, CaseInfo], Case]      # raises schema.CaseError on a malformed case
    alternatives: frozenset[str] = frozenset()  # mutually exclusive keys: a case naming one of them
                                                 # drops the others it would inherit from defaults


KINDS: dict[str, CaseKind] = {}


def register(kind: CaseKind) -> CaseKind:
    if kind.name in KINDS:
        raise ValueError(f"case kind {kind.name!r} registered twice")
    KINDS[kind.name] = kind
    return kind
