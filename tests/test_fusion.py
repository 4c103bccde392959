"""spec.passes.replace_tensor, the rewrite fusion builds on (SPEC §6.3): a tensor parameter's
loads and stores replaced by computations over new parameters give a kernel that verifies,
keeps every interpreter check and points traps at the replaced access. Running the fused
example against NumPy and an out-of-bounds fusion: conformance/cases/fusion.yaml."""
from __future__ import annotations

import numpy as np
import pytest

from taskmap import refimpl
from taskmap.conformance.kernels.fusion import fuse_relu_bias, relu_add_bias
from taskmap.examples import reduce_sum, vector_add
from taskmap.lang import In, f32, i32, kernel, threadIdx
from taskmap.spec import dtypes as dt
from taskmap.spec import ir
from taskmap.spec.errors import VerifyError
from taskmap.spec.passes import replace_tensor

ADD_LINE = next(s.loc.line for s in ir.walk(vector_add.vector_add) if isinstance(s, ir.Store))


def test_the_fused_kernel_has_the_new_parameters_and_directions():
    assert [p.name for p in relu_add_bias.params] == ["n", "a2", "b", "c2", "bias"]
    assert relu_add_bias.directions == {"a2": "in", "b": "in", "c2": "out", "bias": "in"}
    assert "c2[idx] = max(a2[idx], 0.0) * 2.0 + b[idx] + bias[idx]" in str(relu_add_bias)


def test_the_source_kernel_is_left_as_it_was():
    before = str(vector_add.vector_add)
    fuse_relu_bias(vector_add.vector_add)
    assert str(vector_add.vector_add) == before


def test_new_code_carries_the_location_of_the_access_it_replaced():
    stores = [s for s in ir.walk(relu_add_bias) if isinstance(s, ir.Store)]
    assert [s.buffer.name for s in stores] == ["c2"]
    new_nodes = [n for n in ir.walk(stores[0]) if not isinstance(n, (ir.Var, ir.Buffer, ir.Special))]
    assert all(n.loc is not None and n.loc.line == ADD_LINE for n in new_nodes)


def test_checks_cover_the_new_tensors():
    n = 300
    rng = np.random.default_rng(1)
    a2, b, bias = (rng.standard_normal(n).astype(np.float32) for _ in range(3))
    c2 = refimpl.empty(n, "f32")                           # must be written before it is read
    refimpl.interpret(relu_add_bias, n, a2, b, c2, bias)
    np.testing.assert_array_equal(c2, np.maximum(a2, 0) * np.float32(2) + b + bias)
    assert c2.initialized.all()
    with pytest.raises(refimpl.KernelTrap, match=r"uninitialized global read: a2\[0\]") as e:
        refimpl.interpret(relu_add_bias, n, refimpl.empty(n, "f32"), b, c2, bias)
    assert e.value.kernel == "relu_add_bias" and e.value.loc.line == ADD_LINE


def test_a_fused_kernel_is_verified_like_any_other():
    k = vector_add.vector_add
    n = k.params[0]
    frozen = ir.Buffer("frozen", dt.float32, (n,), "global", direction="in")
    fused = replace_tensor(k, "c", (frozen,), store=lambda idx, v: ir.Store(frozen, idx, v))
    with pytest.raises(VerifyError, match="write to input tensor") as e:
        fused.verify()
    assert f":{ADD_LINE}:" in str(e.value)


def test_what_cannot_be_replaced_is_refused_with_the_reason():
    k = vector_add.vector_add
    with pytest.raises(ValueError, match=r"kernel vector_add_f32 has no tensor parameter 'x'; its tensors: a, b, c"):
        replace_tensor(k, "x", ())
    with pytest.raises(ValueError, match=r"a is read \(.*vector_add.py:\d+:\d+\): pass load= to say what replaces it"):
        replace_tensor(k, "a", ())
    with pytest.raises(ValueError, match=r"out is accessed through an address \(.*\): only its loads and stores "
                                         r"can be replaced, not atomic"):
        replace_tensor(reduce_sum.reduce_sum_atomic, "out", (), store=lambda idx, v: ())
