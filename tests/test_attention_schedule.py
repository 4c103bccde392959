"""The fused attention schedule (refimpl/schedules/attention*.py) against the NumPy reference.

The registry's examples run in the operator table (tests/test_ops_schedules.py); these are
the shapes that reach the schedule's edges: several query and key tiles (so the online
softmax rescales), causal masks with S ≠ T and tiles skipped, boolean and additive masks of
every broadcast pattern, rows that lose every key (0, as torch), head dimensions that are
not multiples of 16 or of the copy width (padded tiles, synchronous copies), grouped-query
heads, every dtype.
The interpreter runs them with every check on; the `gpu` cases run larger shapes on the
device through the same plans.
"""
from __future__ import annotations

import numpy as np
import pytest

from taskmap.lang import bf16, boolean, f16, f32
from taskmap.refimpl import compute_eval, empty
from taskmap.refimpl.schedules import evaluate, schedule, template_for
from taskmap.refimpl.schedules.attention import SIMT_TEMPLATE, TC_TEMPLATE, AttentionPoint
from taskmap.refimpl.traps import KernelTrap
from taskmap.spec.ops import get

from tests.test_cuda_compile import assert_compile_for_sm90, cc
from tests.test_ops_schedules import check_operator

SMALL_TILES = AttentionPoint(warps=2, block_n=16)      # 32 query rows, 16 keys: many tiles at small sizes


def _qkv(t, b, h, s, tl, d, e):
    return [t[b, h, s, d], t[b, h, tl, d], t[b, h, tl, e]]


CASES = [   # (id, types, attributes, point)
    ("f16-tiles", _qkv(f16, 1, 2, 37, 45, 16, 16), {}, SMALL_TILES),
    ("f16-causal-s<t", _qkv(f16, 1, 1, 40, 71, 32, 24), {"is_causal": 1}, SMALL_TILES),
    ("f16-causal-s>t", _qkv(f16, 2, 1, 50, 19, 16, 8), {"is_causal": 1}, SMALL_TILES),
    ("bf16-d48-causal", _qkv(bf16, 1, 2, 33, 33, 48, 40), {"is_causal": 1}, None),
    ("bf16-d5-sync", _qkv(bf16, 1, 1, 20, 35, 5, 3), {"scale": 0.3}, SMALL_TILES),
    ("f16-d64-default", _qkv(f16, 1, 1, 70, 70, 64, 64), {"is_causal": 1}, None),
    ("f32-tiles", _qkv(f32, 1, 2, 35, 50, 12, 20), {}, SMALL_TILES),
    ("f32-causal-odd", _qkv(f32, 1, 1, 33, 29, 7, 9), {"is_causal": 1}, SMALL_TILES),
    ("f16-bool-key-mask", _qkv(f16, 2, 2, 9, 40, 16, 16) + [boolean[2, 1, 1, 40]], {}, SMALL_TILES),
    ("f32-bool-full-mask", _qkv(f32, 1, 2, 18, 21, 8, 8) + [boolean[1, 2, 18, 21]], {"is_causal": 1},
     SMALL_TILES),
    ("bf16-additive-2d", _qkv(bf16, 2, 1, 17, 23, 16, 16) + [bf16[17, 23]], {}, SMALL_TILES),
    ("f16-additive-head", _qkv(f16, 1, 3, 20, 20, 32, 32) + [f16[3, 1, 20]], {"is_causal": 1}, None),
    ("f16-grouped-query", [f16[2, 6, 19, 16], f16[2, 2, 27, 16], f16[2, 2, 27, 8]], {"is_causal": 1}, SMALL_TILES),
    ("f32-grouped-query-mask", [f32[1, 4, 9, 8], f32[1, 1, 12, 8], f32[1, 1, 12, 8], boolean[1, 4, 9, 12]], {},
     SMALL_TILES),
]


@pytest.mark.parametrize("types,attrs,point", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_attention_matches_reference(types, attrs, point):
    check_operator("attention", types, attrs, point)


def _masked_rows(types, rows, attrs):
    """Inputs where query rows `rows` of every (batch, head) keep no key, the schedule's result
    and the reference's."""
    op = get("attention")
    q, k, v, keep = op.sample(np.random.default_rng(5), types, **attrs)
    keep = np.ones_like(keep)
    keep[..., rows, :] = False
    (y,) = evaluate(schedule("attention", types, attrs, SMALL_TILES), q, k, v, keep)
    return (q, k, v, keep), y, op.reference(q, k, v, keep, **attrs)[0]


@pytest.mark.parametrize("t", [f32, f16], ids=lambda t: t.short)
def test_a_row_without_keys_is_zero(t):
    """softmax over no key gives 0 (torch's safe softmax, ONNX's reference), not 0 / 0; the
    other rows are unaffected."""
    types = _qkv(t, 1, 2, 20, 37, 16, 8) + [boolean[1, 1, 20, 37]]
    arrays, y, want = _masked_rows(types, [3, 19], {})
    (defined,) = compute_eval.evaluate(get("attention").task(types), *arrays)
    for got in (y, defined):
        values = got.astype(np.float32)
        assert (values[:, :, [3, 19]] == 0).all() and (want.astype(np.float32)[:, :, [3, 19]] == 0).all()
        np.testing.assert_allclose(values, want.astype(np.float32), rtol=2 ** -9, atol=2 ** -9)


def test_templates_by_dtype():
    assert template_for("attention", _qkv(f16, 1, 1, 4, 4, 8, 8)) is TC_TEMPLATE
    assert template_for("attention", _qkv(bf16, 1, 1, 4, 4, 8, 8)) is TC_TEMPLATE
    assert template_for("attention", _qkv(f32, 1, 1, 4, 4, 8, 8)) is SIMT_TEMPLATE


def _keys_written_up_to(array: np.ndarray, count: int):
    """`array` (b, h, t, d) as an interpreter array whose keys from `count` on were never written."""
    out = empty(array.shape, f16)
    out[..., :count, :] = array[..., :count, :]
    out.initialized[..., :count, :] = True
    return out


def test_causal_tiles_above_the_diagonal_are_not_read():
    """With S = 32 < T = 64 causal queries see keys 0..31 only: keys 32.. stay unwritten, and
    reading one (loading its tile) would trap "uninitialized global read"."""
    types = _qkv(f16, 1, 2, 32, 64, 16, 16)
    q, k, v = get("attention").sample(np.random.default_rng(3), types, is_causal=1)
    plan = schedule("attention", types, {"is_causal": 1}, SMALL_TILES)
    (y,) = evaluate(plan, q, _keys_written_up_to(k, 32), _keys_written_up_to(v, 32))
    (want,) = get("attention").reference(q, k, v, is_causal=1)
    np.testing.assert_allclose(y.astype(np.float32), want.astype(np.float32), rtol=2 ** -9, atol=2 ** -9)
    with pytest.raises(KernelTrap, match="uninitialized global read"):       # without is_causal it reads them
        evaluate(schedule("attention", types, {}, SMALL_TILES), q, _keys_written_up_to(k, 32), v)


@pytest.mark.skipif(cc.nvcc() is None, reason="nvcc not found")
def test_attention_variants_compile_for_sm90():
    assert_compile_for_sm90([k for _, types, attrs, point in CASES
                             for k in schedule("attention", types, attrs, point).kernels])


@pytest.mark.slow
@pytest.mark.skipif(cc.nvcc() is None, reason="nvcc not found")
@pytest.mark.parametrize("template", [TC_TEMPLATE, SIMT_TEMPLATE], ids=lambda t: t.name)
def test_every_space_point_compiles_at_head_dim_128(template):
    t = f16 if template is TC_TEMPLATE else f32
    assert_compile_for_sm90([k for point in template.space
                             for k in schedule("attention", _qkv(t, 1, 2, 256, 256, 128, 128), {}, point).kernels])


GPU_CASES = [pytest.param(_qkv(t, b, h, s, s, d, d), {"is_causal": c}, id=f"{t.short}-b{b}h{h}s{s}d{d}-c{c}")
             for t, b, h, s, d in ((f16, 2, 4, 128, 64), (bf16, 1, 4, 1000, 128), (f16, 1, 2, 2048, 128),
                                   (f32, 1, 2, 300, 64))
             for c in (0, 1)]


@pytest.mark.gpu
@pytest.mark.parametrize("types,attrs", GPU_CASES)
def test_attention_on_gpu_matches_reference(types, attrs):
    from taskmap import gpu
    check_operator("attention", types, attrs, launch=gpu.launch)


@pytest.mark.gpu
def test_attention_on_gpu_with_masks():
    from taskmap import gpu
    for types, attrs, point in [c[1:] for c in CASES]:
        check_operator("attention", types, attrs, point, launch=gpu.launch)
