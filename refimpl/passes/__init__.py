"""The interpreter's pipeline: the shared lowering, then its own index simplification and the
folding of comparisons that the value ranges decide."""
from taskmap.spec.passes import LOWERING

from .fold_range_compares import fold_range_compares
from .simplify_divmod import simplify_divmod

PIPELINE = LOWERING + (("simplify_divmod", simplify_divmod), ("fold_range_compares", fold_range_compares))
