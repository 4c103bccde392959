"""The operator table of tests/test_ops_schedules.py on the GPU: every scheduled operator ×
dtype × example shape, the larger shapes, and a sample of every template's space, launched
through `gpu.launch` and compared with the operator's NumPy reference (same tolerances)."""
from __future__ import annotations

import pytest

from taskmap.lang import f16, f32
from taskmap.spec.ops import get
from tests.test_ops_schedules import (FAST, IMPLICIT_SIMT, IMPLICIT_TC, LARGER, SLOW, _space_params, check_operator,
                                      implicit_attrs, implicit_case)

pytestmark = pytest.mark.gpu


def _launch():
    from taskmap import gpu
    return gpu.launch


@pytest.mark.parametrize("name,t,k", [pytest.param(*p.values, id=p.id) for p in FAST + SLOW])
def test_schedule_on_gpu_matches_reference(name, t, k):
    ex = get(name).examples[k]
    check_operator(name, ex.types(t), ex.attrs, launch=_launch())


@pytest.mark.parametrize("name,types,attrs", LARGER, ids=lambda v: getattr(v, "short", None))
def test_larger_shapes_on_gpu_match_reference(name, types, attrs):
    check_operator(name, types, attrs, launch=_launch())


@pytest.mark.parametrize("template,name,types,attrs,point", _space_params())
def test_space_points_on_gpu_match_reference(template, name, types, attrs, point):
    check_operator(name, types, attrs, point, launch=_launch())


@pytest.mark.parametrize("types,attrs", IMPLICIT_TC + IMPLICIT_SIMT, ids=lambda v: getattr(v, "short", None))
def test_implicit_gemm_conv_on_gpu_matches_reference(types, attrs):
    check_operator("conv2d", types, implicit_attrs(attrs), implicit_case(types, attrs)[1], launch=_launch())


def _implicit_points():
    from taskmap.refimpl.schedules.conv import CONV_SIMT_TEMPLATE, CONV_TC_TEMPLATE
    return [(f16, p) for p in CONV_TC_TEMPLATE.space if p.split_k != 4] + \
        [(f32, p) for p in CONV_SIMT_TEMPLATE.space]


@pytest.mark.parametrize("t,point", _implicit_points(), ids=str)
def test_every_implicit_gemm_conv_point_on_gpu_matches_reference(t, point):
    """Both whole spaces on a ResNet-like 3x3 layer (16-byte copies on tensor cores), several
    m and o tiles (split_k=4 left to the IMPLICIT_TC case: None already splits this one)."""
    check_operator("conv2d", [t[2, 64, 15, 15], t[48, 64, 3, 3], t[48]], {"pads": (1, 1, 1, 1)}, point,
                   launch=_launch())
