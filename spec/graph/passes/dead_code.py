"""dead_code: nodes and constants that no graph output depends on are dropped (inputs stay:
they are the program's signature)."""
from __future__ import annotations

from ..ir import Graph


def dead_code(g: Graph) -> Graph:
    """Nodes and constants no output depends on removed."""
    live = set(g.outputs)
    kept = []
    for n in reversed(g.nodes):
        if any(v.name in live for v in n.outputs):
            kept.append(n)
            live.update(n.inputs)
    return g.replace(nodes=reversed(kept), constants=[c for c in g.constants if c.name in live])
