"""The interpreter's pipeline: the shared lowering, then its own index simplification."""
from taskmap.spec.passes import LOWERING

from .simplify_divmod import simplify_divmod

PIPELINE = LOWERING + (("simplify_divmod", simplify_divmod),)
