"""`Template`: one schedule of one or more operators, with its space and default point."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

from .space import Resources, prune


@dataclass(frozen=True, eq=False)
class Template:
    """`plan(op, types, attrs, point) -> Plan` for the operators in `ops` whose input types and
    attributes `applies(types, attrs)` accepts. `candidates` is the unpruned space; `space` keeps the points
    whose `resources(point)` fit an sm_90 block (space.prune), `default` is the point the
    interpreter runs and the tuner starts from."""
    name: str
    ops: tuple[str, ...]
    applies: Callable
    candidates: tuple
    default: object
    resources: Callable[[object], Resources | None]
    plan: Callable

    @functools.cached_property
    def space(self) -> tuple:
        return prune(self.candidates, self.resources)

    def __post_init__(self):
        if self.default not in self.space:
            raise ValueError(f"template {self.name}: the default point {self.default} is not in its pruned space")
