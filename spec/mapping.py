"""Task mappings (SPEC.md §7): which worker does which task, and in what order.

A mapping is a composition of atoms. `spatial(*shape)` gives each of prod(shape) workers
one task; `repeat(*shape)` gives its single worker every task in order. For a composition
`outer * inner` worker w is split into (w // inner.workers, w % inner.workers) and runs, for
each task t_o of outer in order and each task t_i of inner in order, the task
t_o * inner.task_shape + t_i. `ranks` reorders which dimension varies slowest.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import product

import numpy as np


@dataclass(frozen=True)
class Atom:
    kind: str                  # "spatial" | "repeat"
    shape: tuple[int, ...]
    ranks: tuple[int, ...]     # ranks[d] = significance of dim d; rank 0 varies slowest

    @property
    def workers(self) -> int:
        return math.prod(self.shape) if self.kind == "spatial" else 1

    def ordered_dims(self) -> tuple[int, ...]:
        """Dimensions from slowest- to fastest-varying."""
        return tuple(sorted(range(len(self.shape)), key=lambda d: self.ranks[d]))

    def unravel(self, linear: int) -> tuple[int, ...]:
        idx = [0] * len(self.shape)
        for d in reversed(self.ordered_dims()):
            idx[d] = linear % self.shape[d]
            linear //= self.shape[d]
        return tuple(idx)

    def tasks(self, worker: int) -> list[tuple[int, ...]]:
        if self.kind == "spatial":
            return [self.unravel(worker)]
        return [self.unravel(i) for i in range(math.prod(self.shape))]

    def __str__(self) -> str:
        args = ", ".join(map(str, self.shape))
        if self.ranks != tuple(range(len(self.shape))):
            args += f", ranks={list(self.ranks)}"
        return f"{self.kind}({args})"


@dataclass(frozen=True)
class TaskMapping:
    atoms: tuple[Atom, ...]

    @property
    def ndim(self) -> int:
        return len(self.atoms[0].shape)

    @property
    def task_shape(self) -> tuple[int, ...]:
        return tuple(math.prod(a.shape[d] for a in self.atoms) for d in range(self.ndim))

    @property
    def num_workers(self) -> int:
        return math.prod(a.workers for a in self.atoms)

    def __mul__(self, other: TaskMapping) -> TaskMapping:
        if not isinstance(other, TaskMapping):
            return NotImplemented
        if other.ndim != self.ndim:
            raise ValueError(f"cannot compose {self} ({self.ndim}-d) with {other} ({other.ndim}-d): "
                             "task mappings must have the same number of dimensions")
        return TaskMapping(self.atoms + other.atoms)

    def worker_tasks(self, worker: int) -> list[tuple[int, ...]]:
        """The reference definition: the ordered task list of one worker (empty if out of range)."""
        if not 0 <= worker < self.num_workers:
            return []
        parts = []
        for atom in reversed(self.atoms):      # innermost atom takes the low digits of w
            parts.append(atom.tasks(worker % atom.workers))
            worker //= atom.workers
        parts.reverse()
        out = []
        for combo in product(*parts):          # outer atoms vary slowest
            idx = [0] * self.ndim
            for atom, t in zip(self.atoms, combo):
                idx = [i * n + ti for i, n, ti in zip(idx, atom.shape, t)]
            out.append(tuple(idx))
        return out

    def first_tasks(self, workers: np.ndarray) -> np.ndarray:
        """`worker_tasks(w)[0]` for every w of an integer array at once, as an (ndim, len)
        array (-1 where w is outside [0, W)): the verifier asks it for every thread of a
        block, too often for the per-worker lists. A worker's first task takes every repeat
        atom's task 0 and every spatial atom's task from that atom's digit of w."""
        w = np.asarray(workers, dtype=np.int64)
        valid = (w >= 0) & (w < self.num_workers)
        rest = np.where(valid, w, 0)
        digits = []
        for atom in reversed(self.atoms):      # innermost atom takes the low digits of w
            digits.append(rest % atom.workers)
            rest = rest // atom.workers
        idx = np.zeros((self.ndim, w.size), dtype=np.int64)
        for atom, digit in zip(self.atoms, reversed(digits)):
            task = np.zeros_like(idx)
            if atom.kind == "spatial":
                for d in reversed(atom.ordered_dims()):
                    task[d], digit = digit % atom.shape[d], digit // atom.shape[d]
            idx = idx * np.array(atom.shape, dtype=np.int64)[:, None] + task
        idx[:, ~valid] = -1
        return idx

    def on(self, worker):
        """Only meaningful inside a @kernel body: `for i, j in m.on(threadIdx.x): ...`."""
        raise RuntimeError("TaskMapping.on(...) is kernel syntax: use it as a for-loop iterable "
                           "inside a @kernel function")

    def __str__(self) -> str:
        return " * ".join(map(str, self.atoms))


def _atom(kind: str, shape, ranks) -> TaskMapping:
    shape = tuple(int(s) for s in shape)
    if not shape or any(s <= 0 for s in shape):
        raise ValueError(f"{kind}{shape}: every extent must be a positive integer")
    ranks = tuple(range(len(shape))) if ranks is None else tuple(int(r) for r in ranks)
    if sorted(ranks) != list(range(len(shape))):
        raise ValueError(f"{kind}{shape}: ranks={list(ranks)} must be a permutation of 0..{len(shape) - 1}")
    return TaskMapping((Atom(kind, shape, ranks),))


def spatial(*shape: int, ranks=None) -> TaskMapping:
    return _atom("spatial", shape, ranks)


def repeat(*shape: int, ranks=None) -> TaskMapping:
    return _atom("repeat", shape, ranks)


def auto_map(*task_shape: int, workers: int) -> TaskMapping:
    """repeat(r) * spatial(s) with s taking workers from the innermost dimension outwards
    (s[d] = gcd(remaining workers, task_shape[d])), so consecutive workers touch consecutive
    elements of the last dimension (coalesced). Requires workers | prod(task_shape)."""
    if math.prod(task_shape) % workers:
        raise ValueError(f"auto_map{task_shape}: {workers} workers do not divide {math.prod(task_shape)} tasks")
    remaining, s = workers, [1] * len(task_shape)
    for d in reversed(range(len(task_shape))):
        s[d] = math.gcd(remaining, task_shape[d])
        remaining //= s[d]
    if remaining != 1:
        raise ValueError(f"auto_map{task_shape}: cannot spread {workers} workers over the task shape "
                         "evenly; pass a shape whose trailing extents hold the worker count")
    r = [n // k for n, k in zip(task_shape, s)]
    if all(x == 1 for x in r):
        return spatial(*s)
    return repeat(*r) * spatial(*s)
