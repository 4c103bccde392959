"""Run one kernel on the GPU and on the interpreter, each on its own copy of the arguments."""
from __future__ import annotations

import numpy as np


def run_both(k, *args):
    """(GPU arguments, interpreter arguments) after the launch: arrays copied, scalars shared."""
    from taskmap import gpu
    from taskmap import refimpl
    on_gpu = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    on_ref = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    gpu.launch(k, *on_gpu)
    refimpl.interpret(k, *on_ref)
    return on_gpu, on_ref
