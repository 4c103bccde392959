"""IR -> IR passes, one per file. `LOWERING` is the pipeline both backends run, in order."""
from .lower_task_mappings import lower_task_mappings

LOWERING = (lower_task_mappings,)


def lower(kernel):
    for stage in LOWERING:
        kernel = stage(kernel)
    return kernel
