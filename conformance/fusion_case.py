"""The `fusion` case kind: a kernel with element-wise registry operators fused into its loads
(prologues) and stores (epilogues) by spec.passes.replace_tensor (SPEC.md §6.3).

    kernel: ../../examples/vector_add.py::vector_add
    prologue: {a: {op: relu, inputs: [a2]}}                    # a[i]  := relu(a2[i])
    epilogue: {c: {op: add, inputs: [c, bias], output: c2}}    # c2[i] := c[i] + bias[i]

The operator's compute definition (taskmap.spec.ops, its Task) is inlined at each access.
The fused kernel runs on the backend (the interpreter with every check on) and is compared
with the unfused kernel run on the interpreter, its inputs made and its outputs finished by
the operators' NumPy references. Schema: conformance/README.md.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from taskmap.spec import ir
from taskmap.spec.lang import TensorType
from taskmap.spec.ops import OpError, get
from taskmap.spec.ops.registry import Operator
from taskmap.spec.passes import replace_tensor

from . import arrays, graph_fusion_case
from .backends import BACKENDS
from .cases import Case, CaseInfo, CaseKind, Outcome, register
from .kernel_args import check_arg, check_memory_limit, check_seed, check_sizes, make_launch
from .kernel_case import interp_empty, load_kernel
from .kernelref import KernelRef, parse_ref
from .op_case import DEFAULT_TOLERANCE
from .schema import CaseError, Where, YMap, check_keys, get as get_key, ymap

FUSION_KEYS = {"op", "inputs", "attrs", "output"}


@dataclass(frozen=True)
class Fused:
    """One operator fused at tensor `tensor` of the kernel (a prologue or an epilogue)."""
    tensor: str
    op: Operator
    attrs: dict
    inputs: tuple[str, ...]      # the operator's inputs: new tensors (and, for an epilogue, `tensor`)
    output: str | None           # epilogue: the new output tensor
    where: Where


@dataclass
class FusionCase(Case):
    ref: KernelRef | None = None
    sizes: YMap | None = None
    args: YMap | None = None
    seed: int = 0
    memory_limit_mib: int = 0
    prologues: tuple[Fused, ...] = ()
    epilogues: tuple[Fused, ...] = ()
    refused: str | None = None          # the fusion must be refused with a message containing this

    def run(self, backend: str) -> Outcome:
        start = time.perf_counter()
        try:
            if self.refused is not None:
                return self._check_refused()
            reason = BACKENDS[backend].unavailable()
            if reason:
                return Outcome("skipped", reason)
            anchor = self._anchor()
            fused = self.fused_kernel(anchor)
            launch = make_launch(fused, self.sizes, self._args(fused), self.seed, self.memory_limit_mib,
                                 self.where, interp_empty if backend == "interp" else arrays.garbage)
            inputs = {p.name: np.array(a) for p, a in zip(fused.params, launch.args) if isinstance(p, ir.Buffer)}
            want = self._expected(anchor, launch, inputs)
            start = time.perf_counter()
            try:
                BACKENDS[backend].launch(fused, *launch.args)
            except Exception as e:  # noqa: BLE001 — a trap in the fused kernel is a wrong answer
                return Outcome("failed", f"fused kernel {fused.name}: {type(e).__name__}: {e}",
                               seconds=time.perf_counter() - start)
            seconds = time.perf_counter() - start
            return self._compare(fused, launch, want, seconds)
        except CaseError as e:
            return Outcome("error", str(e), seconds=time.perf_counter() - start)

    def _check_refused(self) -> Outcome:
        anchor = self._anchor()
        try:
            fused = self.fused_kernel(anchor)
        except CaseError as e:
            if self.refused in str(e):
                return Outcome("passed")
            return Outcome("failed", f"refused, but not with `{self.refused}`: {e}")
        return Outcome("failed", f"expected the fusion to be refused (`{self.refused}`), got kernel {fused.name}")

    def _anchor(self) -> ir.Kernel:
        return load_kernel(self.ref)

    def fused_kernel(self, anchor: ir.Kernel) -> ir.Kernel:
        k = anchor
        for f in self.prologues + self.epilogues:
            old = next((p for p in k.buffer_params if p.name == f.tensor), None)
            if old is None:
                raise f.where.error(f"kernel {anchor.name} has no tensor parameter {f.tensor!r}; its tensors: "
                                    f"{', '.join(b.name for b in anchor.buffer_params)}")
            taken = {p.name for p in k.params} - {f.tensor}
            new = [n for n in f.inputs if n != f.tensor] + ([f.output] if f.output else [])
            clash = [n for n in new if n in taken]
            if clash:
                raise f.where.error(f"{clash[0]!r} is already a parameter of kernel {k.name}; name it otherwise")
            buffers = {n: ir.Buffer(n, old.dtype, old.shape, "global") for n in new}
            body = _inlined(f, len(old.shape), old.dtype)
            try:
                if f.output is None:
                    k = replace_tensor(k, f.tensor, tuple(buffers.values()), load=lambda idx, b=body, bs=buffers, f=f:
                                       b([ir.Load(bs[n], idx) for n in f.inputs], idx))
                else:
                    k = replace_tensor(k, f.tensor, tuple(buffers.values()), store=lambda idx, v, b=body, bs=buffers, f=f:
                                       ir.Store(bs[f.output], idx, b([v if n == f.tensor else ir.Load(bs[n], idx)
                                                                      for n in f.inputs], idx)))
            except ValueError as e:
                raise f.where.error(f"cannot fuse {f.op.name} at {f.tensor}: {e}") from None
        try:
            return k.verify()
        except Exception as e:  # noqa: BLE001 — a VerifyError of the fused kernel is the case's answer
            raise self.where.error(f"the fused kernel does not verify: {e}") from None

    def _args(self, fused: ir.Kernel) -> YMap:
        """The case's `args`, with every output the kernel only writes starting `empty`."""
        extra = {b.name: "empty" for b in fused.outputs
                 if fused.directions[b.name] == "out" and b.name not in self.args}
        return ymap({**self.args, **extra}, self.args.where, dict(self.args.wheres))

    def _expected(self, anchor: ir.Kernel, launch, inputs: dict) -> dict:
        """The fused kernel's outputs as the unfused kernel (interpreter) + NumPy references give them."""
        from taskmap.refimpl import empty, interpret
        scalars = launch.namespace
        produced = {f.tensor: f.op.reference(*(inputs[n] for n in f.inputs), **f.attrs)[0] for f in self.prologues}
        finished = {f.tensor for f in self.epilogues}
        args = []
        for p in anchor.params:
            if isinstance(p, ir.Var):
                args.append(scalars[p.name])
            elif p.name in produced:
                args.append(produced[p.name])
            elif p.name in finished:
                args.append(empty(inputs[next(f.output for f in self.epilogues if f.tensor == p.name)].shape, p.dtype))
            else:
                args.append(inputs[p.name].copy())
        try:
            interpret(anchor, *args)
        except Exception as e:  # noqa: BLE001
            raise self.where.error(f"the unfused kernel {anchor.name} fails on these inputs: {e}") from None
        by_name = {p.name: np.asarray(a) for p, a in zip(anchor.params, args) if isinstance(p, ir.Buffer)}
        want = {name: by_name[name] for name in by_name if name not in produced and name not in finished}
        for f in self.epilogues:
            values = [by_name[f.tensor] if n == f.tensor else inputs[n] for n in f.inputs]
            want[f.output] = f.op.reference(*values, **f.attrs)[0]
        return want

    def _compare(self, fused: ir.Kernel, launch, want: dict, seconds: float) -> Outcome:
        problems, max_abs, max_rel = [], 0.0, 0.0
        for p, got in zip(fused.params, launch.args):
            if not isinstance(p, ir.Buffer) or p.name not in want:
                continue
            tol = DEFAULT_TOLERANCE.get(p.dtype, 0.0)
            expected = arrays.as_values(np.asarray(want[p.name]).astype(p.dtype.storage), p.dtype)
            result = arrays.compare(p.name, np.asarray(got), expected, p.dtype, not p.dtype.is_float, tol, tol)
            max_abs, max_rel = max(max_abs, result.max_abs), max(max_rel, result.max_rel)
            if not result.ok:
                problems.append(result.message)
        message = f"fused kernel {fused.name}: " + "; ".join(problems) if problems else ""
        return Outcome("failed" if problems else "passed", message, max_abs, max_rel, seconds)


def _inlined(f: Fused, rank: int, dtype):
    """body(operands, indices): the operator's element-wise compute definition with its input
    loads replaced by `operands` (expressions of the fused access)."""
    types = [TensorType(dtype, (2,) * rank)] * len(f.inputs)
    try:
        task = f.op.task(types, **f.attrs)
    except OpError as e:
        raise f.where.error(str(e)) from None
    out = task.output_computes
    if len(out) != 1 or len(task.computes) != 1 or not task.is_injective:
        raise f.where.error(f"{f.op.name} is not one element-wise computation; only those fuse into loads "
                            "and stores")
    (compute,) = out
    if f.op.infer(types, **f.attrs)[0].dtype != dtype:
        raise f.where.error(f"{f.op.name} changes the dtype ({dtype.short} -> "
                            f"{f.op.infer(types, **f.attrs)[0].dtype.short}); the fused tensor keeps its dtype")
    names = [t.name for t in task.inputs]
    for n in ir.walk(compute.body):
        if isinstance(n, ir.Load) and tuple(n.indices) != tuple(compute.axes):
            raise f.where.error(f"{f.op.name} does not read its inputs element-wise; it cannot be fused")

    def body(operands, indices):
        def replace(n):
            if isinstance(n, ir.Load) and n.buffer.name in names:
                return operands[names.index(n.buffer.name)]
            return n
        return ir.rewrite(compute.body, replace)
    return body


# ---------------------------------------------------------------- building from YAML

def build(m: YMap, info: CaseInfo) -> Case:
    if "nodes" in m:                              # the graph form (graph_fusion_case.py)
        graph_fusion_case.check_no_kernel_keys(m)
        return graph_fusion_case.build(m, info)
    ref = parse_ref(get_key(m, "kernel", "str"), info.base_dir, m.at("kernel"))
    sizes = get_key(m, "sizes", "map", None) or ymap({}, m.where, {})
    check_sizes(sizes)
    args = get_key(m, "args", "map", None) or ymap({}, m.where, {})
    for name, spec in args.items():
        check_arg(args, name, spec)
    prologues, epilogues = _fusions(m, "prologue"), _fusions(m, "epilogue")
    if not prologues and not epilogues:
        raise m.where.error("a fusion case needs `prologue:` or `epilogue:` (an operator fused at a tensor)")
    refused = get_key(m, "refused", "str", None)
    backends = info.allowed_backends(("interp",), "a refused fusion is checked once, in the interp column") \
        if refused is not None else info.allowed_backends(("interp", "cuda"), "")
    return FusionCase(info, backends=backends, ref=ref, sizes=sizes, args=args, seed=check_seed(m, "case"),
                      memory_limit_mib=check_memory_limit(m), prologues=prologues, epilogues=epilogues,
                      refused=refused)


def _fusions(m: YMap, key: str) -> tuple[Fused, ...]:
    table = get_key(m, key, "map", None) or {}
    out = []
    for tensor, spec in table.items():
        where = table.at(tensor)
        if not isinstance(spec, YMap):
            raise where.error(f"`{key}: {tensor}:` must be a mapping with " + ", ".join(sorted(FUSION_KEYS)))
        what = f"{key} {tensor}"
        check_keys(spec, FUSION_KEYS, what)
        try:
            op = get(get_key(spec, "op", "str", what=what))
        except OpError as e:
            raise spec.at("op").error(str(e)) from None
        inputs = tuple(get_key(spec, "inputs", "str-list", what=what))
        attrs = dict(get_key(spec, "attrs", "map", None, what=what) or {})
        try:
            attrs = op.attributes(attrs)
            op.check_types([TensorType(op.dtypes[0], (1,))] * len(inputs))
        except OpError as e:
            raise spec.at("inputs").error(str(e)) from None
        if key == "epilogue":
            output = get_key(spec, "output", "str", what=what)
            if inputs.count(tensor) != 1:
                raise spec.at("inputs").error(f"an epilogue's inputs name the kernel's value {tensor!r} once "
                                              f"(where the operator takes it), got {list(inputs)}")
        else:
            if "output" in spec:
                raise spec.at("output").error("a prologue has no `output:`: the operator's result replaces "
                                              f"the loads of {tensor}")
            output = None
            if tensor in inputs:
                raise spec.at("inputs").error(f"a prologue reads new tensors in place of {tensor}; name them otherwise")
        out.append(Fused(str(tensor), op, attrs, inputs, output, where))
    return tuple(out)


register(CaseKind("fusion", frozenset({"kernel", "sizes", "args", "seed", "memory_limit_mib", "prologue",
                                       "epilogue", "refused"}) | graph_fusion_case.GRAPH_KEYS, ("interp", "cuda"), build))
