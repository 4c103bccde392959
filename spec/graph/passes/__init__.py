"""Graph -> graph passes, one per file, and the one pipeline that runs them.

    from taskmap.spec.graph.passes import PIPELINE, run
    graph = run(PIPELINE, graph)            # verified after every pass

Each pass is a pure function Graph -> Graph. The passes need only the operators' definitions
(shapes, NumPy references), so they live beside the graph IR in spec, below every backend.
"""
from __future__ import annotations

from typing import Callable

from ...errors import TaskmapError
from ..ir import Graph
from ..verify import GraphError, verify
from .constant_fold import constant_fold
from .dead_code import dead_code
from .fold_batch_norm import fold_batch_norm
from .fuse_attention import fuse_attention
from .half_precision import half_precision
from .infer_shapes import infer_shapes
from .simplify import simplify

Pass = tuple[str, Callable[[Graph], Graph]]

PIPELINE: tuple[Pass, ...] = (
    ("infer_shapes", infer_shapes),
    ("constant_fold", constant_fold),
    ("fold_batch_norm", fold_batch_norm),
    ("simplify", simplify),
    ("fuse_attention", fuse_attention),
    ("dead_code", dead_code),
)


def run(pipeline: tuple[Pass, ...], graph: Graph) -> Graph:
    """`graph` after every pass of `pipeline`; a pass whose result does not verify is named."""
    for name, stage in pipeline:
        out = stage(graph)
        try:
            verify(out)
        except GraphError as e:
            raise TaskmapError(f"graph pass {name} produced an invalid graph (a bug in the pass; the graph "
                               f"verified before it): {e}") from None
        graph = out
    return graph


__all__ = ["PIPELINE", "run", "infer_shapes", "constant_fold", "fold_batch_norm", "simplify", "fuse_attention",
           "dead_code", "half_precision"]
