"""The CUDA emitter's pipeline: the shared lowering, then the placement decisions the emitter
reads off the IR (vector copies, dynamic shared memory)."""
from taskmap.spec.passes import LOWERING

from .mark_vector_copies import mark_vector_copies
from .place_shared import place_shared

PIPELINE = LOWERING + (("mark_vector_copies", mark_vector_copies), ("place_shared", place_shared))
