"""Frontends: models from other systems into taskmap's graph IR (issue 11).

    from taskmap.frontends import onnx_import
    graph = onnx_import.load("model.onnx")           # a verified taskmap.spec.graph.Graph

Layer: above refimpl, below conformance (tests/test_architecture.py). The ONNX importer
itself needs only spec (operators, graph IR); `compile` (compile.py) joins it to the graph
passes and the interpreter's executable (refimpl.graph_exec).
"""
