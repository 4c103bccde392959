"""Matmul, batched matmul and gemm: the problem (`Gemm`), its plan, and the two templates.

A plan is one main kernel — SIMT (f32, `matmul_simt`) or tensor-core (f16/bf16 in, f32
accumulation: `mma_sync` in `matmul_tc`, or Hopper's TMA + wgmma in `matmul_wgmma`) — writing `alpha · A·B` straight into the output; with split-K
or a C operand (gemm's `beta · C`) the main kernel writes f32 partial products to a
temporary instead and an injective epilogue kernel sums the splits in a fixed order, scales,
adds `beta · C` (broadcast as ONNX Gemm allows) and rounds to the output dtype once.
Batch operands that broadcast other than all-or-nothing are first expanded by an injective
kernel. The tensor-core template's space holds points of both tensor-core kernels; wgmma
reads B K-major, so an N-major B is first transposed by an injective kernel (about 5% of a
4096³ product's time), and it needs K-major A rows of 16 bytes (K a multiple of 8).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from taskmap.spec import dtypes as dt
from taskmap.spec import ir

from . import matmul_simt, matmul_tc, matmul_wgmma
from .injective import injective_kernel
from .plan import Launch, Plan, Tensor, View
from .space import Resources, k_splits, product, register_estimate
from .template import Template


@dataclass(frozen=True)
class Gemm:
    """y[batch..., M, N] = alpha · op(a) @ op(b) + beta · c, op = transpose where asked.
    a: [*a_batch, M, K] ([*a_batch, K, M] with trans_a), likewise b; `batch` the broadcast
    batch shape; c broadcastable to [M, N] (None: no C)."""
    M: int
    N: int
    K: int
    batch: tuple[int, ...] = ()
    a_batch: tuple[int, ...] = ()
    b_batch: tuple[int, ...] = ()
    trans_a: bool = False
    trans_b: bool = False
    dtype: dt.DType = dt.float32
    out: dt.DType = dt.float32
    alpha: float = 1.0
    beta: float = 1.0
    c_shape: tuple[int, ...] | None = None
    out_shape: tuple[int, ...] | None = None     # the operator's output shape (1-d operands drop M or N)
    a_given: tuple[int, ...] | None = None       # the operands' shapes as given (a 1-d a is [1, K] here)
    b_given: tuple[int, ...] | None = None

    @property
    def acc(self) -> dt.DType:
        return dt.float32 if self.dtype.is_float else self.dtype

    @property
    def a_shape(self):
        return self.a_batch + ((self.K, self.M) if self.trans_a else (self.M, self.K))

    @property
    def b_shape(self):
        return self.b_batch + ((self.N, self.K) if self.trans_b else (self.K, self.N))


def _batch_count(own: tuple, full: tuple) -> int | None:
    """How many matrices an operand contributes: 1 (broadcast to all), all, or None (needs an expand)."""
    if math.prod(own) == 1:
        return 1
    padded = (1,) * (len(full) - len(own)) + own
    return math.prod(full) if padded == full else None


def plan_gemm(g: Gemm, make_main, splits: int, names=("a", "b", "c", "y")) -> Plan:
    """The plan for `g` whose main kernel is `make_main(batch, batch_a, batch_b, splits, alpha, out)`;
    `names`: of the a, b, c and output buffers (conv2d's plan embeds this one)."""
    B = math.prod(g.batch)
    a_name, b_name, c_name, y_name = names
    inputs = [Tensor(a_name, g.a_given or g.a_shape, g.dtype), Tensor(b_name, g.b_given or g.b_shape, g.dtype)]
    if g.c_shape is not None:
        inputs.append(Tensor(c_name, g.c_shape, g.out))
    out = Tensor(y_name, g.out_shape or g.batch + (g.M, g.N), g.out)
    temps, launches, operands = [], [], []
    for name, shape, own in ((a_name, g.a_shape, g.a_batch), (b_name, g.b_shape, g.b_batch)):
        count = _batch_count(own, g.batch)
        rows, cols = shape[-2:]
        if count is None:                       # materialize the broadcast
            full = Tensor(f"{name}_full", g.batch + (rows, cols), g.dtype)
            temps.append(full)
            launches.append(Launch(_expand_kernel(Tensor(name, shape, g.dtype), full), (View(name, shape), full.name)))
            name, count = full.name, B
        operands.append((View(name, (count * rows, cols)), count))
    (a_view, batch_a), (b_view, batch_b) = operands
    direct = splits == 1 and g.c_shape is None
    main = make_main(B, batch_a, batch_b, splits, g.alpha if direct else 1.0, g.out if direct else g.acc)
    if direct:
        launches.append(Launch(main, (g.M, g.N, g.K, a_view, b_view, View(y_name, (B * g.M, g.N)))))
        return Plan(tuple(inputs), (out,), tuple(temps), tuple(launches))
    partial = Tensor("partial", (splits * B * g.M, g.N), g.acc)
    launches.append(Launch(main, (g.M, g.N, g.K, a_view, b_view, partial.name)))
    epilogue, args = _epilogue(g, splits, B, partial, c_name, y_name)
    launches.append(Launch(epilogue, args))
    return Plan(tuple(inputs), (out,), tuple(temps) + (partial,), tuple(launches))


def _global(name, shape, dtype) -> ir.Buffer:
    return ir.Buffer(name, dtype, tuple(ir.const(s) for s in shape), "global")


def _axes(n):
    return tuple(ir.Var(f"i{d}", dt.int32) for d in range(n))


def _expand_kernel(src: Tensor, dst: Tensor) -> ir.Kernel:
    """dst = src broadcast to dst's shape (NumPy rules)."""
    s, d = _global("src", src.shape, src.dtype), _global("dst", dst.shape, dst.dtype)
    axes = _axes(len(dst.shape))
    lead = len(dst.shape) - len(src.shape)
    index = tuple(ir.const(0) if n == 1 else axes[lead + k] for k, n in enumerate(src.shape))
    return injective_kernel(f"expand_{src.name}", d, axes, ir.Load(s, index))


def _epilogue(g: Gemm, splits: int, B: int, partial: Tensor, c_name: str, y_name: str):
    """y = alpha · Σ_s partial[s] (in order) + beta · c, rounded to g.out: an injective kernel."""
    rows = B * g.M
    p = _global("partial", partial.shape, g.acc)
    y = _global("y", (rows, g.N), g.out)
    r, n = _axes(2)
    total = ir.Load(p, (r, n))
    for s in range(1, splits):
        total = ir.binary("+", total, ir.Load(p, (ir.binary("+", r, s * rows), n)))
    if g.alpha != 1.0:
        total = ir.binary("*", ir.const(float(g.alpha)), total)
    args = ("partial",)
    if g.c_shape is not None:
        cm, cn = ((1,) * (2 - len(g.c_shape)) + tuple(g.c_shape))[-2:]
        c = _global("c", (cm, cn), g.out)
        m = ir.binary("%", r, g.M)
        value = ir.Load(c, (m if cm > 1 else ir.const(0), n if cn > 1 else ir.const(0)))
        if g.out != g.acc:
            value = ir.Cast(value, g.acc)
        total = ir.binary("+", total, ir.binary("*", ir.const(float(g.beta)), value))
        args += (View(c_name, (cm, cn)),)
    body = total if g.out == g.acc else ir.Cast(total, g.out)
    return injective_kernel(f"gemm_epilogue_k{splits}", y, (r, n), body), args + (View(y_name, (rows, g.N)),)


# ---------------------------------------------------------------- the SIMT template

@dataclass(frozen=True)
class SimtPoint:
    warps: tuple[int, int] = (8, 1)
    lanes: tuple[int, int] = (2, 16)
    micro: tuple[int, int] = (4, 4)
    repeats: tuple[int, int] = (2, 2)
    bk: int = 8
    split_k: int | None = None      # None: as many splits as fill the GPU (space.k_splits)


def simt_resources(p: SimtPoint) -> Resources | None:
    threads = p.warps[0] * p.warps[1] * 32
    bm, bn = matmul_simt.tile_shape(p.warps, p.lanes, p.micro, p.repeats)
    try:
        for shape in ((bm, p.bk), (p.bk, bm), (p.bk, bn), (bn, p.bk)):
            matmul_simt.load_map(*shape, threads)
    except ValueError:
        return None
    if p.lanes[0] * p.lanes[1] != 32:
        return None
    fm, fn = p.repeats[0] * p.micro[0], p.repeats[1] * p.micro[1]
    shared = 4 * 2 * p.bk * (bm + bn + 8)
    return Resources(threads, shared, register_estimate(fm * fn, 2 * fm, 2 * fn, (bm + bn) * p.bk // threads))


def simt_plan(g: Gemm, p: SimtPoint, names=("a", "b", "c", "y")) -> Plan:
    def make(batch, batch_a, batch_b, splits, alpha, out):
        return matmul_simt.make_kernel(p.warps, p.lanes, p.micro, p.repeats, p.bk, dtype=g.dtype, trans_a=g.trans_a,
                                       trans_b=g.trans_b, batch=batch, batch_a=batch_a, batch_b=batch_b,
                                       splits=splits, alpha=alpha)
    tile = matmul_simt.tile_shape(p.warps, p.lanes, p.micro, p.repeats) + (p.bk,)
    return plan_gemm(g, make, k_splits(p.split_k, tile, g.M, g.N, g.K, math.prod(g.batch)), names)


# the block's shape options (conv2d's implicit GEMM on the SIMT machinery takes the same)
SIMT_OPTIONS = {"warps": ((8, 1), (4, 2), (2, 4), (2, 2)), "lanes": ((2, 16), (4, 8), (8, 4)),
                "micro": ((4, 4), (2, 2)), "repeats": ((1, 1), (2, 2)), "bk": (8, 16)}
SIMT_CANDIDATES = tuple(product(SimtPoint, **SIMT_OPTIONS, split_k=(None, 1, 4)))


# ---------------------------------------------------------------- the tensor-core template

@dataclass(frozen=True)
class TcPoint:
    tile: tuple[int, int, int] = (128, 128, 64)      # bm, bn, bk
    warps: tuple[int, int] = (2, 2)
    stages: int = 3
    split_k: int | None = None      # None: as many splits as fill the GPU (space.k_splits)


def tc_resources(p: TcPoint) -> Resources | None:
    bm, bn, bk = p.tile
    wtm, wtn = bm // p.warps[0], bn // p.warps[1]
    if bm % p.warps[0] or bn % p.warps[1] or wtm % 16 or wtn % 16:
        return None
    threads = p.warps[0] * p.warps[1] * 32
    if (bm * bk // 8) % threads and threads % (bm * bk // 8) or (bk * bn // 8) % threads and threads % (bk * bn // 8):
        return None
    shared = 2 * p.stages * (bm * bk + bk * bn)
    mt, nt = wtm // 16, wtn // 8
    return Resources(threads, shared, register_estimate(4 * mt * nt, 4 * mt, 2 * nt))


def copy_width(g: Gemm) -> int:
    """Elements per cp_async: the largest of 8, 4, 2 dividing the rows of A and B, else 1
    (synchronous loads)."""
    rows = (g.M if g.trans_a else g.K, g.K if g.trans_b else g.N)
    return next((v for v in (8, 4, 2) if all(r % v == 0 for r in rows)), 1)


def tc_plan(g: Gemm, p: TcPoint, names=("a", "b", "c", "y")) -> Plan:
    bm, bn, bk = p.tile
    vec = copy_width(g)

    def make(batch, batch_a, batch_b, splits, alpha, out):
        return matmul_tc.make_kernel(g.dtype, bm, bn, bk, p.warps, p.stages, vec, out=out, trans_a=g.trans_a,
                                     trans_b=g.trans_b, batch=batch, batch_a=batch_a, batch_b=batch_b,
                                     splits=splits, alpha=alpha)
    return plan_gemm(g, make, k_splits(p.split_k, p.tile, g.M, g.N, g.K, math.prod(g.batch)), names)


@dataclass(frozen=True)
class WgmmaPoint:
    """A point of the Hopper kernel (matmul_wgmma): a (64·warpgroups) × bn tile, `stages` TMA stages."""
    bn: int = 128
    warpgroups: int = 2
    stages: int = 4
    arch = "sm_90"                  # the only arch with wgmma (the tuner tries these points there alone)


def wgmma_resources(p: WgmmaPoint) -> Resources | None:
    try:
        matmul_wgmma.check_shape(dt.float16, p.bn, p.stages)
    except ValueError:
        return None
    return Resources(128 * p.warpgroups, matmul_wgmma.shared_bytes(dt.float16, p.bn, p.warpgroups, p.stages),
                     register_estimate(p.bn // 2))


def wgmma_plan(g: Gemm, p: WgmmaPoint, names=("a", "b", "c", "y")) -> Plan:
    """The wgmma plan of `g`: B transposed to [N, K] first unless given so (trans_b)."""
    if g.trans_a or g.K % 8 or (not g.trans_b and _batch_count(g.b_batch, g.batch) is None):
        raise ValueError(f"matmul_wgmma point {p}: needs A K-major (no trans_a) with K a multiple of 8 "
                         f"(16-byte rows for TMA) and B's batch 1 or the whole batch, got trans_a={g.trans_a}, "
                         f"K={g.K}, b batch {g.b_batch} of {g.batch}; use a TcPoint")

    def make(batch, batch_a, batch_b, splits, alpha, out):
        return matmul_wgmma.make_kernel(g.dtype, p.bn, p.warpgroups, p.stages, out=out, batch=batch,
                                        batch_a=batch_a, batch_b=batch_b, alpha=alpha)
    plan = plan_gemm(replace(g, trans_b=True), make, 1, names)
    return plan if g.trans_b else _with_b_transposed(plan, g, names[1])


def _with_b_transposed(plan: Plan, g: Gemm, b_name: str) -> Plan:
    """`plan` (made for a [*, N, K] B named b_name) reading instead the given [*, K, N] B through
    a temporary it transposes first: b_t[z·N + n, k] = b[z·K + k, n]."""
    rows = _batch_count(g.b_batch, g.batch)
    given = Tensor(b_name, g.b_given or g.b_shape, g.dtype)
    t = Tensor(f"{b_name}_t", (rows * g.N, g.K), g.dtype)
    src, dst = _global("b", (rows * g.K, g.N), g.dtype), _global("b_t", t.shape, g.dtype)
    r, k = _axes(2)
    z, n = ir.binary("/", r, g.N), ir.binary("%", r, g.N)
    body = ir.Load(src, (ir.binary("+", ir.binary("*", z, g.K), k), n))
    transpose = Launch(injective_kernel(f"transpose_{b_name}", dst, (r, k), body),
                       (View(b_name, (rows * g.K, g.N)), t.name))
    launches = tuple(_retarget(x, b_name, t.name) for x in plan.launches)
    inputs = tuple(given if x.name == b_name else x for x in plan.inputs)
    return replace(plan, inputs=inputs, temps=(t,) + plan.temps, launches=(transpose,) + launches)


def _retarget(launch: Launch, old: str, new: str) -> Launch:
    """`launch` reading buffer `new` where it read a view of `old` (the same shape)."""
    args = tuple(View(new, a.shape) if isinstance(a, View) and a.name == old else a for a in launch.args)
    return replace(launch, args=args)


def tensor_core_plan(g: Gemm, p, names=("a", "b", "c", "y")) -> Plan:
    return wgmma_plan(g, p, names) if isinstance(p, WgmmaPoint) else tc_plan(g, p, names)


def tensor_core_resources(p) -> Resources | None:
    return wgmma_resources(p) if isinstance(p, WgmmaPoint) else tc_resources(p)


TC_CANDIDATES = tuple(product(TcPoint, tile=((64, 64, 32), (128, 128, 32), (128, 128, 64), (128, 256, 32),
                                             (256, 128, 32), (128, 64, 32), (64, 128, 64)),
                              warps=((2, 2), (2, 4), (4, 2)), stages=(2, 3, 4), split_k=(None, 1, 4)))
# the tuner weighs each kind's first point against the others at every level: WgmmaPoint() (the
# 128 x 128 tile of examples/matmul_wgmma, the measured best) goes first
WGMMA_CANDIDATES = (WgmmaPoint(),) + tuple(p for p in product(WgmmaPoint, bn=(64, 128, 256), warpgroups=(1, 2),
                                                              stages=(3, 4)) if p != WgmmaPoint())


# ---------------------------------------------------------------- the operators

def problem(op, types, attrs) -> Gemm:
    """The Gemm of a matmul / batch_matmul / gemm operator at these input types."""
    (y,) = op.infer(types, **attrs)
    a, b = types[0].shape, types[1].shape
    if op.name == "gemm":
        ta, tb = bool(attrs["trans_a"]), bool(attrs["trans_b"])
        M, K = a[::-1] if ta else a
        N = b[0] if tb else b[1]
        return Gemm(M, N, K, trans_a=ta, trans_b=tb, dtype=types[0].dtype, out=y.dtype, alpha=float(attrs["alpha"]),
                    beta=float(attrs["beta"]), c_shape=types[2].shape if len(types) > 2 else None)
    sa = (1,) + a if len(a) == 1 else a
    sb = b + (1,) if len(b) == 1 else b
    batch = y.shape[:len(y.shape) - (len(a) > 1) - (len(b) > 1)]
    return Gemm(sa[-2], sb[-1], sa[-1], batch, sa[:-2], sb[:-2], dtype=types[0].dtype, out=y.dtype,
                out_shape=y.shape, a_given=a, b_given=b)


MATMUL_OPS = ("matmul", "batch_matmul", "gemm")
SIMT_TEMPLATE = Template("matmul_simt", MATMUL_OPS, lambda types, attrs: not types[0].dtype.is_float or
                         types[0].dtype == dt.float32, SIMT_CANDIDATES, SimtPoint(), simt_resources,
                         lambda op, types, attrs, point: simt_plan(problem(op, types, attrs), point))
TC_TEMPLATE = Template("matmul_tc", MATMUL_OPS, lambda types, attrs: types[0].dtype in (dt.float16, dt.bfloat16),
                       TC_CANDIDATES + WGMMA_CANDIDATES, TcPoint(), tensor_core_resources,
                       lambda op, types, attrs, point: tensor_core_plan(problem(op, types, attrs), point))
TEMPLATES: tuple[Template, ...] = (SIMT_TEMPLATE, TC_TEMPLATE)
