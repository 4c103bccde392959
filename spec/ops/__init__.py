"""Operator definitions (issue 10): the registry and one module per family.

    from taskmap.spec.ops import get, OPERATORS
    get("softmax").infer([f32[4, 10]], axis=-1)

See registry.py (Operator records), compute.py (the compute-definition IR) and
docs/OPERATORS.md (the table of operators, generated from this registry).
"""
from . import attention, conv, elementwise, matmul, movement, norm, pool, reduce, selection  # noqa: F401  (each module registers its family)
from .registry import FLOATS, INTS, OPERATORS, Attr, Example, OnnxNode, OpError, Operator, TensorType, get

__all__ = ["OPERATORS", "get", "Operator", "OpError", "TensorType", "Attr", "Example", "OnnxNode", "FLOATS", "INTS"]
