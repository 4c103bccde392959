"""`line:` / `at:` — where an expected error (a trap, a verifier or DSL error) must point.

    at: "tile[31 - i]"       # the error's DSL line contains this text
    line: 84                 # or: the error is on this line of the kernel file

Shared by assert_trap (trap_check.py) and assert_invalid (invalid_check.py).
"""
from __future__ import annotations

import linecache
import os
from dataclasses import dataclass

from .schema import YMap, get

PLACE_KEYS = {"line", "at"}


@dataclass(frozen=True)
class Place:
    line: int | None = None
    at: str | None = None

    def __bool__(self) -> bool:
        return self.line is not None or self.at is not None

    def problems(self, loc, message: str) -> list[str]:
        """What is wrong with an error at DSL location `loc` whose text is `message`: not at
        the expected line, or a message that does not name its own file:line."""
        if loc is None:
            return ["the error carries no DSL location"] if self else []
        source = linecache.getline(loc.file, loc.line).strip()
        here = f"{os.path.basename(loc.file)}:{loc.line}"
        problems = []
        if self.line is not None and loc.line != self.line:
            problems.append(f"error at {here} `{source}`, expected line {self.line}")
        if self.at is not None and self.at not in source:
            problems.append(f"error at {here} `{source}`, expected a line containing `{self.at}`")
        if here not in message:
            problems.append(f"the message does not name its place {here}")
        return problems


def parse_place(m: YMap, what: str) -> Place:
    if "line" in m and "at" in m:
        raise m.at("at").error(f"{what}: give either `line:` or `at:`, not both")
    line = get(m, "line", "int", None, what=what)
    if line is not None and line < 1:
        raise m.at("line").error(f"`line:` must be a line number (1 or more), got {line}")
    return Place(line, get(m, "at", "str", None, what=what))
