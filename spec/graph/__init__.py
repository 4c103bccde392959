"""The graph IR of whole models (issue 11): typed values, operator nodes, a verifier, a printer.

    from taskmap.spec.graph import Graph, Node, Value, Constant, verify
    print(verify(graph))

See ir.py (the nodes), verify.py (the rules), printer.py and passes/ (the graph pipeline).
"""
from .ir import Constant, Graph, Node, Value, format_type, is_static, symbols
from .verify import GraphError, verify

__all__ = ["Graph", "Node", "Value", "Constant", "GraphError", "verify", "format_type", "is_static", "symbols"]
