"""A launch's outputs staged on private copies (SPEC.md §10.2): the caller's arrays change only
when the launch completes, so a trapped (or interrupted) launch leaves them as they were, and
the trap carries what the outputs held when it fired (`KernelTrap.partial`)."""
from __future__ import annotations

import numpy as np

from . import memory


class Staged:
    """The global spaces of the tensors the kernel writes, moved onto copies of the caller's
    arrays (data, and the `initialized` mask of an `empty()` array when checks track it).
    Read-only tensors stay views: copying them would only cost memory."""

    def __init__(self, spaces: dict, arrays: dict, written: set):
        self.outputs: list[tuple[memory.Space, np.ndarray]] = []
        for space in spaces.values():
            if space.buffer.name in written:
                space.data = space.data.copy()
                if space.init is not None:
                    space.init = space.init.copy()
                self.outputs.append((space, arrays[space.buffer.name]))

    def commit(self):
        """The launch completed: the caller's arrays receive the outputs."""
        for space, a in self.outputs:
            a.reshape(-1)[...] = space.data
            if space.init is not None:
                a.initialized.reshape(-1)[...] = space.init

    def partial(self) -> dict:
        """name -> what the output holds now, shaped like the caller's array (an `empty()`
        array's copy with its `initialized` mask)."""
        out = {}
        for space, a in self.outputs:
            held = space.data.reshape(a.shape)
            if space.init is not None:
                held = held.view(type(a))
                held.initialized = space.init.reshape(a.shape)
            out[space.name] = held
        return out
