"""Kernels fused by rewriting loads and stores (spec.passes.replace_tensor, SPEC.md §6.3): the
example vector_add with a producer computation in place of its input `a` and a consumer
computation in place of its output `c`. Cases: conformance/cases/fusion.yaml.
"""
from __future__ import annotations

from taskmap.examples.vector_add import vector_add
from taskmap.lang import f32
from taskmap.spec import ir
from taskmap.spec.passes import replace_tensor


def fuse_relu_bias(k: ir.Kernel, shift: int = 0) -> ir.Kernel:
    """c2 = relu(a2) * 2 + b + bias: the producer `a[i] -> relu(a2[i + shift]) * 2` and the
    consumer `c[i] = v -> c2[i] = v + bias[i]` replace k's input a and output c."""
    n = next(p for p in k.scalar_params if p.name == "n")
    a2, c2, bias = (ir.Buffer(name, f32, (n,), "global") for name in ("a2", "c2", "bias"))

    def produce(idx):
        (i,) = idx
        return ir.binary("*", ir.binary("max", ir.Load(a2, (ir.binary("+", i, shift),)), 0.0), 2.0)

    def consume(idx, v):
        return ir.Store(c2, idx, ir.binary("+", v, ir.Load(bias, idx)))

    producer = replace_tensor(k, "a", (a2,), load=produce)
    return replace_tensor(producer, "c", (c2, bias), store=consume, kernel_name="relu_add_bias").verify()


relu_add_bias = fuse_relu_bias(vector_add)
relu_add_bias_oob = fuse_relu_bias(vector_add, shift=1)    # reads a2[n] in the last thread
