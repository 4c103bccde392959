"""The CUDA emitter's pipeline: the shared lowering, the interpreter's exact div/mod
simplification (register indices computed from task indices become constants after nvcc
unrolls, instead of a register tensor living in local memory), then the placement decisions
the emitter reads off the IR (vector copies, dynamic shared memory)."""
from taskmap.refimpl.passes.simplify_divmod import simplify_divmod
from taskmap.spec.passes import LOWERING

from .mark_vector_copies import mark_vector_copies
from .place_shared import place_shared

PIPELINE = LOWERING + (("simplify_divmod", simplify_divmod), ("mark_vector_copies", mark_vector_copies),
                       ("place_shared", place_shared))
