"""Operator schedules on the interpreter (issue 10), table-driven over the registry.

- Every scheduled operator x dtype at its first example shape, and every example shape
  (odd sizes, 1-sized dimensions, broadcasting) at its first dtype, runs its plan
  (`schedules.schedule`) on the interpreter with every check on, so a race, an
  out-of-bounds or an uninitialized read in a template traps; outputs start uninitialized,
  so an element a plan never writes fails too. Results are compared with the operator's
  NumPy reference (float64, rounded once). The full product is `slow`.
- Every template runs a sample of its pruned space at one small shape; each template's
  default point compiles with nvcc (no GPU needed).
- Plans, views and the pruning rule on their own.

Tolerances (|got - want| <= atol + rtol |want|) by output dtype: f32 1e-5 relative, atol
1e-5 · sqrt(depth) (the kernels sum in f32 in their own order: warp butterflies, tiles,
split-K; the reference in float64); f16 2^-9 and bf16 2^-6 (one rounding, which an f32
intermediate can move by an ulp); integers and bool exact.
"""
from __future__ import annotations

import zlib
from dataclasses import replace

import numpy as np
import pytest

from taskmap.lang import bf16, f16, f32, i32, i64
from taskmap.refimpl.schedules import SM90, Plan, Resources, Tensor, View, evaluate, fits, run, schedule
from taskmap.refimpl.schedules import TEMPLATES, template_for
from taskmap.refimpl.schedules.generic import INJECTIVE_TEMPLATE
from taskmap.refimpl.schedules.matmul import WgmmaPoint
from taskmap.refimpl.schedules.plan import Launch
from taskmap.refimpl.schedules.rows import RowPoint
from taskmap.refimpl.launch import interpret
from taskmap.refimpl.traps import KernelTrap
from taskmap.spec import dtypes as dt
from taskmap.spec.errors import LaunchError
from taskmap.spec.ops import OPERATORS, get
from taskmap.spec.ops.registry import TensorType, reduction_atol, values_of

from tests.test_cuda_compile import assert_compile_for_sm90, cc

TOLERANCE = {dt.float32: 1e-5, dt.float16: 2.0 ** -9, dt.bfloat16: 2.0 ** -6}
UNSCHEDULED: set[str] = set()
SCHEDULED = [op for op in OPERATORS.values() if op.name not in UNSCHEDULED]


def _cases(full: bool):
    """Every dtype at the first example; every example at the first dtype too, except for the
    element-wise family (one generic schedule: its first examples are odd-sized already)."""
    out = []
    for op in SCHEDULED:
        for k in range(len(op.examples)):
            for t in op.dtypes:
                if full or k == 0 or (t == op.dtypes[0] and op.family != "elementwise"):
                    out.append(pytest.param(op.name, t, k, id=f"{op.name}-{t.short}-{k}"))
    return out


FAST = _cases(False)
SLOW = [pytest.param(*c.values, id=c.id, marks=pytest.mark.slow) for c in _cases(True)
        if c.id not in {f.id for f in FAST}]


def check_operator(name: str, types, attrs: dict, point=None, launch=None):
    """The plan of `name` at `point` run through `launch` (default: the interpreter, every
    check on) against the operator's NumPy reference."""
    op = get(name)
    rng = np.random.default_rng(zlib.crc32(f"{name}/{types}/{attrs}".encode()))
    arrays = op.sample(rng, types, **attrs)
    plan = schedule(name, types, attrs, point)
    got = evaluate(plan, *arrays, **({"launch": launch} if launch else {}))
    want = op.reference(*arrays, **attrs)
    depth = op.task(types, **attrs).reduction_depth
    for g, w in zip(got, want, strict=True):
        what = f"{name} {[list(t.shape) for t in types]} {attrs} via {[k.name for k in plan.kernels]}"
        assert g.shape == w.shape and g.dtype == w.dtype, f"{what}: {g.dtype}{g.shape} vs {w.dtype}{w.shape}"
        out_t = dt.bfloat16 if w.dtype == np.uint16 else dt.from_numpy(w.dtype)
        if not out_t.is_float:
            np.testing.assert_array_equal(g, w, err_msg=what)
            continue
        tol = TOLERANCE[out_t]
        np.testing.assert_allclose(values_of(g, out_t), values_of(w, out_t), rtol=tol,
                                   atol=reduction_atol(out_t, depth), err_msg=what)


@pytest.mark.parametrize("name,t,k", FAST + SLOW)
def test_schedule_matches_reference(name, t, k):
    ex = get(name).examples[k]
    check_operator(name, ex.types(t), ex.attrs)


# shapes the registry's examples do not reach: convolutions too large for the window template,
# top_k rows longer than a warp (several elements per lane; i32: many ties) and than block_from
# (a block per row)
CONV = {"strides": (2, 1), "pads": (1, 0, 2, 1), "dilations": (1, 2)}
LARGER = [("conv2d", [t[2, 9, 7, 6], t[5, 9, 3, 3], t[5]], CONV) for t in (f32, f16, bf16)] + \
         [("conv2d", [f32[1, 24, 5, 5], f32[6, 8, 3, 3]], {"group": 3, "pads": (1, 1, 1, 1)}),
          ("conv2d", [f16[1, 16, 6, 5], f16[6, 16, 3, 3], f16[6]], {"pads": (1, 1, 1, 1)}),        # 16-byte copies
          ("conv2d", [bf16[2, 24, 5, 7], bf16[10, 12, 2, 3]], {"group": 2, "dilations": (2, 1)}),  # 8-byte copies
          ("top_k", [f16[3, 100]], {"k": 7}), ("top_k", [i32[2, 77, 2]], {"k": 10, "axis": 1, "largest": 0}),
          ("top_k", [f32[2, 1500]], {"k": 3}), ("top_k", [i32[1, 1100, 3]], {"k": 9, "axis": 1, "largest": 0})]


@pytest.mark.parametrize("name,types,attrs", LARGER, ids=lambda v: getattr(v, "short", None))
def test_larger_shapes_match_reference(name, types, attrs):
    check_operator(name, types, attrs)


def test_every_operator_is_scheduled_or_listed():
    missing = []
    for op in OPERATORS.values():
        if op.name in UNSCHEDULED:
            continue
        ex = op.examples[0]
        template = template_for(op.name, ex.types(op.dtypes[0]), ex.attrs)
        if template is INJECTIVE_TEMPLATE and not op.task(ex.types(op.dtypes[0]), **ex.attrs).is_injective:
            missing.append(op.name)
    assert not missing, f"operators with a reduction and no template: {missing} (add one, or list them in UNSCHEDULED)"


# ---------------------------------------------------------------- schedule spaces

def _sample(space, count=4):
    """`count` points spread over the space, the first and last included."""
    step = max(1, (len(space) - 1) // (count - 1))
    return sorted(set(range(0, len(space), step)) | {len(space) - 1})


def _example(name, t, k):
    ex = get(name).examples[k]
    return name, ex.types(t), ex.attrs


SPACE_CASES = {               # one small, odd shape per template: (operator, types, attributes)
    "row_reduce": _example("sum", f32, 1), "row_norm": _example("layer_norm", f32, 0),
    "matmul_simt": _example("gemm", f32, 1),
    "matmul_tc": ("matmul", [f16[2, 3, 24], f16[24, 5]], {}),      # K a multiple of 8: wgmma points too
    "injective": _example("add", f32, 4), "window_pool": _example("avg_pool2d", f32, 3),
    "window_conv": _example("conv2d", f32, 2), "conv2d_implicit_simt": LARGER[0], "conv2d_implicit_tc": LARGER[2],
    "attention_tc": _example("attention", f16, 3), "attention_simt": _example("attention", f32, 2),
    "top_k_select": ("top_k", [f32[2, 300]], {"k": 4}),        # long enough for a block per row at some points
    "cumsum_warp_scan": ("cumsum", [f32[3, 45]], {"axis": 1, "exclusive": 1}),
}


def _space_params():
    out = []
    for template in TEMPLATES + (INJECTIVE_TEMPLATE,):
        for i in _sample(template.space):
            out.append(pytest.param(template, *SPACE_CASES[template.name], template.space[i],
                                    id=f"{template.name}-{i}"))
    return out


@pytest.mark.parametrize("template,name,types,attrs,point", _space_params())
def test_space_points_match_reference(template, name, types, attrs, point):
    assert template_for(name, types, attrs) is template
    check_operator(name, types, attrs, point)


@pytest.mark.parametrize("template", TEMPLATES + (INJECTIVE_TEMPLATE,), ids=lambda t: t.name)
def test_space_is_pruned_by_the_one_rule(template):
    for point in template.candidates:
        r = template.resources(point)
        assert (point in template.space) == (r is not None and fits(r)), point


def test_pruning_limits():
    assert fits(Resources(1024, 48 * 1024, 64))
    assert not fits(Resources(1056, 0, 32))                          # > 1024 threads
    assert fits(Resources(128, 100 * 1024, 64)) and not fits(Resources(128, 100 * 1024, 64), opt_in=False)
    assert not fits(Resources(128, 228 * 1024, 64))                 # beyond sm_90's opt-in 227 KiB
    assert not fits(Resources(32, 0, 256))                          # > 255 registers
    assert not fits(Resources(1024, 0, 128))                        # 128 K registers per block
    assert SM90.shared_opt_in == 227 * 1024


def test_a_point_outside_the_space_is_rejected():
    from taskmap.refimpl.schedules.matmul import SimtPoint
    with pytest.raises(ValueError, match="not in the space"):
        schedule("matmul", [f32[4, 5], f32[5, 3]], point=SimtPoint(lanes=(4, 4)))


# ---------------------------------------------------------------- Hopper (wgmma) points

WGMMA_CASES = [         # K multiples of 8 (TMA rows), other sizes odd; B N-major (transposed first) or not
    ("matmul", [f16[100, 40], f16[40, 72]], {}),
    ("matmul", [f16[2, 70, 24], f16[2, 24, 9]], {}),
    ("matmul", [bf16[2, 70, 24], bf16[24, 9]], {}),                  # one B for both batches
    ("gemm", [f16[50, 16], f16[30, 16], f16[30]], {"trans_b": 1, "alpha": 0.5, "beta": 2.0}),
    ("batch_matmul", [bf16[3, 20, 8], bf16[3, 8, 17]], {}),
]


@pytest.mark.parametrize("name,types,attrs", WGMMA_CASES, ids=lambda v: getattr(v, "short", None))
@pytest.mark.parametrize("point", [WgmmaPoint(64, 1, 3), WgmmaPoint()], ids=str)
def test_wgmma_points_match_reference(name, types, attrs, point):
    check_operator(name, types, attrs, point)


def test_wgmma_plans_transpose_an_n_major_b_first():
    plan = schedule("matmul", [f16[100, 40], f16[40, 72]], {}, WgmmaPoint())
    assert [k.name for k in plan.kernels] == ["transpose_b", "matmul_wgmma_f16_128x128x4_f16"]
    assert [(t.name, t.shape) for t in plan.temps] == [("b_t", (72, 40))]
    given = schedule("gemm", [f16[50, 16], f16[30, 16]], {"trans_b": 1}, WgmmaPoint())
    assert [k.name for k in given.kernels] == ["matmul_wgmma_f16_128x128x4_f16"] and not given.temps


@pytest.mark.parametrize("types,attrs,why", [
    ([f16[4, 5], f16[5, 3]], {}, "K=5"),
    ([f16[16, 4], f16[16, 3]], {"trans_a": 1}, "trans_a=True"),
    ([f16[2, 3, 4, 8], f16[1, 3, 8, 5]], {}, r"b batch \(1, 3\) of \(2, 3\)"),
])
def test_a_wgmma_point_says_what_it_cannot_do(types, attrs, why):
    with pytest.raises(ValueError, match=f"matmul_wgmma point .*needs A K-major.*{why}.*use a TcPoint"):
        schedule("gemm" if attrs else "matmul", types, attrs, WgmmaPoint())


def test_every_tuning_level_weighs_mma_sync_against_wgmma():
    from taskmap.refimpl.schedules.matmul import TcPoint
    from taskmap.refimpl.schedules.tune import LEVELS, points
    template = template_for("matmul", [f16[64, 64], f16[64, 64]])
    for level in LEVELS:
        kinds = {type(p) for p in points(template, level)}
        assert kinds == {TcPoint, WgmmaPoint}, level


# ---------------------------------------------------------------- nvcc

def _default_kernels():
    kernels = []
    for template in TEMPLATES + (INJECTIVE_TEMPLATE,):
        kernels += schedule(*SPACE_CASES[template.name]).kernels
    for name, types, attrs in (("matmul", [bf16[33, 40], bf16[40, 24]], {}),           # cp_async of 8
                               ("gemm", [f16[40, 16], f16[24, 40]], {"trans_a": 1, "trans_b": 1}),
                               ("matmul", [i32[5, 7], i32[7, 3]], {}),
                               ("conv2d", [f16[2, 64, 14, 14], f16[64, 64, 3, 3], f16[64]], {"pads": (1, 1, 1, 1)}),
                               ("conv2d", [bf16[1, 24, 9, 9], bf16[70, 12, 2, 3]], {"group": 2}),
                               ("softmax", [f16[3, 2048]], {}), ("argmax", [f32[4, 9]], {"axis": 1}),
                               ("top_k", [i32[2, 77, 2]], {"k": 10, "axis": 1, "largest": 0}),
                               ("top_k", [f32[2, 1500]], {"k": 3}),
                               ("cumsum", [i64[2, 40, 3]], {"axis": 1, "reverse": 1}),     # i64 shuffles
                               ("cumsum", [f16[5, 33]], {"axis": -1})):
        kernels += schedule(name, types, attrs).kernels
    for name, types, attrs in WGMMA_CASES:
        kernels += schedule(name, types, attrs, WgmmaPoint()).kernels
    return kernels


@pytest.mark.skipif(cc.nvcc() is None, reason="nvcc not found")
def test_template_default_points_compile_for_sm90():
    assert_compile_for_sm90(_default_kernels())


# ---------------------------------------------------------------- plans

def test_plan_checks_its_arguments():
    plan = schedule("relu", [f32[3, 4]])
    x = np.arange(12, dtype=np.float32).reshape(3, 4) - 6
    y = np.zeros((3, 4), np.float32)
    run(plan, x, y)
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    with pytest.raises(LaunchError, match="wrong number of arguments"):
        run(plan, x)
    with pytest.raises(LaunchError, match="plan buffer y: expected f32"):
        run(plan, x, np.zeros((4, 3), np.float32))


def test_temporaries_start_uninitialized():
    """A plan whose second launch reads a temporary no launch wrote traps."""
    good = schedule("relu", [f32[6]])
    (k,) = good.kernels
    bad = Plan((Tensor("x", (6,), dt.float32),), (Tensor("y", (6,), dt.float32),), (Tensor("t", (6,), dt.float32),),
               (Launch(k, ("t", "y")),))
    with pytest.raises(KernelTrap, match="uninitialized global read"):
        evaluate(bad, np.ones(6, np.float32))


def test_plan_validates_launches():
    (k,) = schedule("relu", [f32[6]]).kernels
    x, y = Tensor("x", (6,), dt.float32), Tensor("y", (6,), dt.float32)
    with pytest.raises(ValueError, match="unknown buffer"):
        Plan((x,), (y,), (), (Launch(k, ("x", "z")),))
    with pytest.raises(ValueError, match="larger than the buffer"):
        Plan((x,), (y,), (), (Launch(k, ("x", View("y", (7,)))),))
    with pytest.raises(ValueError, match="1 arguments for 2 parameters"):
        Plan((x,), (y,), (), (Launch(k, ("x",)),))


def test_split_k_and_bias_use_a_temporary_and_an_epilogue():
    from taskmap.refimpl.schedules.matmul import SimtPoint
    types = [f32[17, 19], f32[19, 23], f32[23]]
    plan = schedule("gemm", types, {"alpha": 0.5, "beta": 2.0}, SimtPoint(split_k=4))
    assert [t.name for t in plan.temps] == ["partial"] and plan.temps[0].shape == (4 * 17, 23)
    assert len(plan.launches) == 2
    rng = np.random.default_rng(1)
    a, b, c = (rng.integers(-8, 9, t.shape).astype(np.float32) / 4 for t in types)
    (y,) = evaluate(plan, a, b, c)
    np.testing.assert_allclose(y, 0.5 * (a.astype(np.float64) @ b) + 2.0 * c, rtol=1e-6)


# implicit-GEMM conv2d at a small tile, so output positions, output channels and k span
# several tiles, with every edge case of the gather: padding on all sides, strides, dilations,
# groups, (tensor cores) channels per group padded to 8 or not (16, 12, 6, 5), a 1x1 layer the
# window template would otherwise take, and split-K (explicit, and chosen: 1 output tile, 18 k tiles)
IMPLICIT_TC = [
    ([f16[1, 16, 9, 9], f16[70, 16, 3, 3], f16[70]], {"pads": (2, 1, 0, 1), "strides": (1, 2)}),
    ([bf16[2, 24, 9, 7], bf16[70, 12, 2, 3]], {"pads": (1, 2, 1, 0), "group": 2, "dilations": (2, 2)}),
    ([f16[1, 12, 7, 8], f16[10, 6, 4, 3], f16[10]], {"group": 2, "strides": (2, 2), "pads": (1, 1, 1, 1)}),
    ([bf16[1, 5, 11, 4], bf16[3, 5, 5, 3]], {"pads": (2, 1, 2, 1), "dilations": (1, 2)}),
    ([f16[2, 32, 5, 3], f16[24, 32, 1, 1], f16[24]], {}),
    ([bf16[1, 16, 9, 9], bf16[70, 16, 3, 3], bf16[70]], {"pads": (2, 1, 0, 1), "strides": (1, 2), "split_k": 4}),
    ([f16[1, 64, 5, 5], f16[8, 64, 3, 3], f16[8]], {"pads": (1, 1, 1, 1), "split_k": None}),
]
IMPLICIT_SIMT = [       # f32 sums round in a different order (the tolerance grows with C/group*KH*KW)
    ([f32[1, 48, 9, 9], f32[20, 48, 3, 3], f32[20]], {"pads": (2, 1, 0, 1), "strides": (1, 2)}),
    ([f32[2, 24, 9, 7], f32[20, 12, 2, 3]], {"pads": (1, 2, 1, 0), "group": 2, "dilations": (2, 2)}),
    ([f32[1, 5, 11, 4], f32[3, 5, 5, 3]], {"pads": (2, 1, 2, 1), "dilations": (1, 2)}),
    ([f32[1, 48, 9, 9], f32[20, 48, 3, 3], f32[20]], {"pads": (2, 1, 0, 1), "strides": (1, 2), "split_k": 4}),
    ([f32[1, 64, 5, 5], f32[8, 32, 3, 3]], {"pads": (1, 1, 1, 1), "group": 2, "split_k": None}),   # splits fill the GPU
]


def implicit_case(types, attrs):
    """(template name, a point of small tiles) for an IMPLICIT_TC or IMPLICIT_SIMT case."""
    from taskmap.refimpl.schedules.conv import ConvSimtPoint, ConvTcPoint
    if types[0].dtype == dt.float32:
        return "conv2d_implicit_simt", ConvSimtPoint((2, 2), (8, 4), (2, 2), (1, 1), 8, attrs.get("split_k", 1))
    return "conv2d_implicit_tc", ConvTcPoint((64, 64, 32), (2, 2), 2, attrs.get("split_k", 1))


def implicit_attrs(attrs):
    """The operator's attributes of an IMPLICIT case (without the point's split_k)."""
    return {k: v for k, v in attrs.items() if k != "split_k"}


@pytest.mark.parametrize("types,attrs", IMPLICIT_TC + IMPLICIT_SIMT, ids=lambda v: getattr(v, "short", None))
def test_implicit_gemm_conv_matches_reference_across_tiles(types, attrs):
    name, point = implicit_case(types, attrs)
    assert template_for("conv2d", types, implicit_attrs(attrs)).name == name
    check_operator("conv2d", types, implicit_attrs(attrs), point)


def test_implicit_gemm_conv_builds_no_patch_matrix():
    """Tensor cores: the temporaries are the channels-last copies of x and w, nothing of size
    M × K; f32: x and w read as given, the one temporary split-K's partial sums (the 2 output
    tiles would occupy 2 multiprocessors; the 18 k tiles of 8 make 4 splits of at least 4)."""
    attrs = {"pads": (1, 1, 1, 1)}
    plan = schedule("conv2d", [f16[2, 16, 9, 9], f16[32, 16, 3, 3]], attrs)
    assert sorted(t.shape for t in plan.temps) == [(2, 9, 9, 16), (32, 3, 3, 16)]
    assert [k.name.split("_f16")[0] for k in plan.kernels] == ["conv2d_channels_last"] * 2 + ["conv2d_tc"]
    plan = schedule("conv2d", [f32[2, 16, 9, 9], f32[32, 16, 3, 3]], attrs)
    assert [(t.name, t.shape) for t in plan.temps] == [("partial", (4 * 2, 32, 9, 9))]
    assert [k.name.split("_")[:2] for k in plan.kernels] == [["conv2d", "simt"], ["conv2d", "split"]]


def test_implicit_gemm_conv_pads_channels_and_splits_k_to_fill_the_gpu():
    from taskmap.refimpl.schedules.space import MAX_SPLITS
    plan = schedule("conv2d", [f16[1, 3, 9, 9], f16[64, 3, 7, 7]], {"pads": (3, 3, 3, 3)})    # ResNet's first layer
    temps = {t.name: t.shape for t in plan.temps}
    assert (temps["x_nhwc"], temps["w_ohwc"]) == ((1, 9, 9, 8), (64, 7, 7, 8))            # 16-byte copies
    pointwise = schedule("conv2d", [f16[1, 32, 9, 9], f16[64, 32, 1, 1]], {})       # OIHW is OHWI: w read as given
    assert [t.name for t in pointwise.temps] == ["x_nhwc"] and len(pointwise.launches) == 2
    deep = schedule("conv2d", [f16[1, 512, 7, 7], f16[512, 512, 3, 3]], {"pads": (1, 1, 1, 1)})   # 4 output tiles
    assert deep.kernels[-1].name == f"conv2d_split_epilogue_k{MAX_SPLITS}"
    assert ("partial", (MAX_SPLITS, 512, 7, 7)) in [(t.name, t.shape) for t in deep.temps]
    wide = schedule("conv2d", [f16[16, 64, 56, 56], f16[64, 64, 3, 3]], {"pads": (1, 1, 1, 1)})   # 392 tiles
    assert "partial" not in [t.name for t in wide.temps]


@pytest.mark.parametrize("t", [f16, f32])
def test_implicit_gemm_conv_rejects_tensors_beyond_i32_indexing(t):
    with pytest.raises(ValueError, match="conv2d: x has 4294967296 elements, beyond the i32 index space"):
        schedule("conv2d", [t[4096, 64, 128, 128], t[64, 64, 3, 3]], {"pads": (1, 1, 1, 1)})


@pytest.mark.parametrize("largest", [1, 0])
def test_top_k_orders_nan_and_ties_as_the_definition_says(largest):
    """NaN above every number (last when smallest-first), NaNs and equal values by position:
    the plan on the interpreter, the compute definition and the NumPy reference agree."""
    from taskmap.refimpl.compute_eval import evaluate as evaluate_task
    x = np.array([[1, np.nan, 3, 3, -np.inf, np.nan, 0.5] * 6], np.float32)
    types, attrs = [f32[1, 42]], {"k": 42, "largest": largest}
    op = get("top_k")
    want = op.reference(x, **attrs)
    for got in (evaluate(schedule("top_k", types, attrs), x), evaluate_task(op.task(types, **attrs), x)):
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(got[0], want[0])
    assert np.isnan(want[0][0, :12]).all() if largest else np.isnan(want[0][0, -12:]).all()


# ---------------------------------------------------------------- norms with the row held in registers

# (operator, types, attributes): rows of 1100 (softmax also over an inner axis) and group norm
# rows of 2 channels x 550: a block of 128 threads per row (16 elements each at most: NORM_SHARE)
# and 2-element vectors, so a thread holds 5 chunks of the row (the last one on some threads only)
HELD_CASES = [("softmax", [f32[2, 1100]], {}), ("log_softmax", [f16[2, 1100]], {}),
              ("softmax", [f32[1, 1100, 2]], {"axis": 1}), ("layer_norm", [f32[2, 1100], f32[1100], f32[1100]], {}),
              ("rms_norm", [bf16[2, 1100], bf16[1100]], {}),
              ("group_norm", [f32[1, 4, 550], f32[4], f32[4]], {"num_groups": 2})]
HELD = RowPoint(warp_threads=64, block_threads=256, block_from=256, vec=2, cache=32)


@pytest.mark.parametrize("name,types,attrs", HELD_CASES, ids=lambda v: getattr(v, "short", None))
def test_a_norm_holding_its_row_in_registers_matches_the_streamed_one(name, types, attrs):
    """Held: one read of the row; streamed (cache 0): a read per pass. Both match the NumPy
    reference; the norms visit the chunks in the same order, so they agree bit for bit
    (softmax held takes two passes, max then sum, where the streamed one is online)."""
    held_plan, streamed_plan = (schedule(name, types, attrs, replace(HELD, cache=c)) for c in (32, 0))
    assert all("_held" in k.name for k in held_plan.kernels), [k.name for k in held_plan.kernels]
    assert not any("_held" in k.name for k in streamed_plan.kernels)
    for point in (HELD, replace(HELD, cache=0)):
        check_operator(name, types, attrs, point)
    if "softmax" in name:
        return
    arrays = get(name).sample(np.random.default_rng(7), types, **attrs)
    for held, streamed in zip(evaluate(held_plan, *arrays), evaluate(streamed_plan, *arrays), strict=True):
        np.testing.assert_array_equal(held.view(np.uint8), streamed.view(np.uint8))


def test_a_held_row_kernel_refuses_a_row_of_another_length():
    (launch,) = schedule("softmax", [f32[2, 1100]], {}, HELD).launches
    x = np.ones((2, 1102), np.float32)
    with pytest.raises(LaunchError, match=r"parameter x .* expects shape \(2, 1100\)"):
        interpret(launch.kernel, 2, 1102, x, x[0, :1], x[0, :1], np.empty_like(x))


def test_a_row_beyond_the_cache_is_streamed():
    assert HELD.norm_layout(1100, 2) == ("block", 128, 1100)
    assert HELD.norm_layout(8192, 2) == ("block", 256, 8192)            # 16 chunks of 2 a thread
    assert HELD.norm_layout(8194, 2) == ("block", 256, 0)               # 17 chunks: streamed
    assert HELD.norm_layout(200, 2) == ("warp", 64, 200) and RowPoint(cache=0).norm_layout(4096, 8)[2] == 0


def test_a_norm_block_takes_the_fewest_threads_giving_each_its_share():
    assert [RowPoint().norm_layout(n, 4)[:2] for n in (1024, 4096, 8192, 32768)] == \
        [("block", 128), ("block", 256), ("block", 512), ("block", 512)]
    assert RowPoint().layout(4096) == ("block", 512)                      # reductions: the whole block
