"""Kernel IR -> one readable CUDA C `extern "C" __global__` function per kernel.

The kernel first runs through `gpu.passes.PIPELINE` (the shared lowering, then the vector-copy
and shared-memory placement the emitter reads off the IR).
Statements carry `#line N "file.py"` directives (toggleable) so compiler messages, profilers
and debuggers point at the DSL source; `Emitted.line_locs` maps each emitted line back to
its DSL location when the directives are off.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

from taskmap.spec import dtypes as dt
from taskmap.spec import ir
from taskmap.spec.passes import run
from taskmap.spec.verify_launch import block_shape
from taskmap.spec.verify_mbarrier import tma_box, tma_swizzle

from . import emit_wgmma
from .emit_expr import FULL_MASK, ExprEmitter, cname, convert, ctype, offset, strip_parens
from .passes import PIPELINE
from .prelude import PRELUDE


@dataclass(frozen=True)
class Emitted:
    name: str                               # the C symbol
    kernel: ir.Kernel                       # the kernel after PIPELINE, the source was made from
    source: str                             # a complete translation unit (prelude + kernel)
    line_locs: tuple[ir.Loc | None, ...]    # DSL location of each source line (index = line - 1)
    dynamic_shared: tuple[ir.Buffer, ...]   # carved from `extern __shared__`, in this order
    tensor_maps: tuple[tuple[ir.Buffer, tuple[int, ...], int], ...] = ()   # (tensor, box, swizzle): the first parameters (§5.11)
    shared_align: int = 16                  # each dynamic buffer starts at a multiple of this

    def loc_of_line(self, line: int) -> ir.Loc | None:
        return self.line_locs[line - 1] if 0 < line <= len(self.line_locs) else None

    @property
    def code_digest(self) -> str:
        """A digest of the code without its `#line` directives: equal for kernels that compile
        to the same machine code wherever their DSL files are (saved programs key cubins by it)."""
        code = "\n".join(line for line in self.source.splitlines() if not line.startswith("#line "))
        return hashlib.sha256(code.encode()).hexdigest()[:32]

    def dynamic_shared_bytes(self, shapes: dict) -> int:
        """The `extern __shared__` bytes a launch requests for these shapes (name -> shape, as
        spec.binding evaluates them): each dynamic buffer rounded up to 16 bytes, in order."""
        return sum(shared_bytes(b, shapes[b.name], self.shared_align) for b in self.dynamic_shared)


def cuda_source(k: ir.Kernel | ir.Module, line_directives: bool = True) -> str:
    """The CUDA C translation unit for a kernel (or every kernel of a module)."""
    kernels = k.kernels if isinstance(k, ir.Module) else (k,)
    parts = [emit_kernel(x, line_directives, prelude=i == 0).source for i, x in enumerate(kernels)]
    return "\n".join(parts)


def emit_kernel(k: ir.Kernel, line_directives: bool = True, prelude: bool = True) -> Emitted:
    lowered = run(PIPELINE, k)
    out = _Writer(line_directives)
    if prelude:
        for line in PRELUDE.strip("\n").split("\n"):
            out.raw(line)
        out.raw("")
    for line in emit_wgmma.helpers(lowered):
        out.raw(line)
    dynamic = tuple(n.buffer for n in ir.walk(lowered) if isinstance(n, ir.DeclareBuffer) and n.dynamic)
    emitter = _Kernel(lowered, out, dynamic)
    emitter.emit()
    return Emitted(cname(k.name), lowered, "\n".join(out.lines) + "\n", tuple(out.locs), dynamic,
                   tuple(emitter.maps), emitter.shared_align)


def shared_bytes(buf: ir.Buffer, shape: tuple[int, ...], align: int = 16) -> int:
    """Bytes a dynamic shared buffer takes, rounded up to `align` so the next one stays aligned."""
    return (math.prod(shape) * buf.dtype.nbytes + align - 1) // align * align


TMA_SHARED_ALIGN = 128          # cp.async.bulk.tensor: shared boxes start at 128-byte aligned addresses
SWIZZLED_SHARED_ALIGN = 1024    # swizzles (wgmma descriptors, TMA maps) act on address bits 4-9: tiles on 1 KiB


def _map_key(tensor: ir.Ref, shared: ir.Ref) -> tuple:
    """What one tensor map describes: the global tensor, the box, the shared swizzle mode."""
    return tensor.buffer.name, tma_box(shared), tma_swizzle(shared.buffer)


def _tensor_maps(k: ir.Kernel) -> dict:
    """_map_key -> (tensor-map parameter index, global tensor), in order of first use."""
    maps: dict = {}
    for n in ir.walk(k):
        if isinstance(n, (ir.TmaLoad, ir.TmaStore)):
            shared, tensor = (n.dst, n.src) if isinstance(n, ir.TmaLoad) else (n.src, n.dst)
            maps.setdefault(_map_key(tensor, shared), (len(maps), tensor.buffer))
    return maps


class _Writer:
    def __init__(self, line_directives: bool):
        self.directives = line_directives
        self.lines: list[str] = []
        self.locs: list[ir.Loc | None] = []
        self.mapped: tuple[str, int] | None = None    # (file, line) the next line maps to

    def raw(self, text: str, loc: ir.Loc | None = None):
        self.lines.append(text)
        self.locs.append(loc)
        if self.mapped:
            self.mapped = (self.mapped[0], self.mapped[1] + 1)

    def line(self, depth: int, text: str, loc: ir.Loc | None):
        if self.directives and loc is not None and self.mapped != (loc.file, loc.line):
            self.raw(f"#line {loc.line} {json.dumps(loc.file)}", loc)
            self.mapped = (loc.file, loc.line)
        self.raw("    " * depth + text, loc)


class _Kernel:
    def __init__(self, k: ir.Kernel, out: _Writer, dynamic: tuple[ir.Buffer, ...]):
        self.k, self.out, self.dynamic = k, out, dynamic
        self.block_shape = block_shape(k)
        self.threads = math.prod(self.block_shape) if self.block_shape else None
        self.mask = FULL_MASK if self.threads is not None and self.threads % 32 == 0 else "tm_warp_mask()"
        self.x = ExprEmitter(self.mask)
        self.map_index = _tensor_maps(k)
        self.maps = [(b, box, swizzle) for (_, box, swizzle), (_, b) in self.map_index.items()]
        self.tma_shared = {n.dst.buffer.name if isinstance(n, ir.TmaLoad) else n.src.buffer.name
                           for n in ir.walk(k) if isinstance(n, (ir.TmaLoad, ir.TmaStore))}
        self.wgmma_shared = {r.buffer.name for n in ir.walk(k) if isinstance(n, ir.Wgmma) for r in (n.a, n.b)
                             if r.buffer.scope == "shared"}
        self.swizzled_shared = self.wgmma_shared | {
            r.buffer.name for n in ir.walk(k) if isinstance(n, (ir.TmaLoad, ir.TmaStore))
            for r in (n.dst if isinstance(n, ir.TmaLoad) else n.src,) if tma_swizzle(r.buffer)}
        self.shared_align = SWIZZLED_SHARED_ALIGN if self.swizzled_shared else TMA_SHARED_ALIGN if self.tma_shared else 16
        # shared writes a TMA store or a wgmma (the async proxy) may read after the barrier
        self.fenced_barriers = any(isinstance(n, (ir.TmaStore, ir.Wgmma)) for n in ir.walk(k))
        self.wgmma_registers = emit_wgmma.fenced_registers(k)
        self.in_scope: list[ir.Buffer] = []          # register tensors declared in the enclosing blocks

    # ---------------------------------------------------------------- kernel
    def emit(self):
        k, out = self.k, self.out
        written = ir.written_buffers(k)
        params = [f"const __grid_constant__ tm_tensor_map tm_map{i}" for i in range(len(self.maps))]
        for p in k.params:
            if isinstance(p, ir.Var):
                params.append(f"{ctype(p.dtype)} {cname(p.name)}")
            else:
                const = "" if p.name in written else "const "
                params.append(f"{const}{ctype(p.dtype)}* __restrict__ {cname(p.name)}")
        bounds = f"__launch_bounds__({self.threads}) " if self.threads else ""
        out.line(0, f'extern "C" __global__ void {bounds}{cname(k.name)}({", ".join(params)}) {{', k.loc)
        if self.threads:      # lets nvcc prove register-tensor indices constant after unrolling
            for axis, extent in zip("xyz", self.block_shape):
                out.line(1, f"__builtin_assume(threadIdx.{axis} < {extent}u);", k.loc)
        if self.dynamic:
            out.line(1, f"extern __shared__ __align__({self.shared_align}) unsigned char tm_smem[];", k.loc)
        self.block(k.body, 1)
        out.raw("}")

    def block(self, body, depth: int):
        outer = len(self.in_scope)
        for s in body:
            self.stmt(s, depth)
        del self.in_scope[outer:]

    def value(self, e: ir.Expr, t: dt.DType) -> str:
        return strip_parens(convert(self.x.emit(e), e.dtype, t))

    def ref(self, r: ir.Ref) -> str:
        off = offset(r.buffer, r.indices, self.x.emit)
        return cname(r.buffer.name) if off == "0" else f"{cname(r.buffer.name)} + {off}"

    # ---------------------------------------------------------------- statements
    def stmt(self, s: ir.Stmt, d: int):
        line = lambda text: self.out.line(d, text, s.loc)   # noqa: E731
        x = self.x
        match s:
            case ir.DeclareVar(var=v, init=init):
                value = "" if init is None else f" = {self.value(init, v.dtype)}"
                line(f"{ctype(v.dtype)} {cname(v.name)}{value};")
            case ir.Assign(var=v, value=e):
                line(f"{cname(v.name)} = {self.value(e, v.dtype)};")
            case ir.DeclareBuffer(buffer=b):
                line(self.declare(b))
                self.in_scope.append(b)
            case ir.Store(buffer=b, indices=idx, value=e):
                line(f"{cname(b.name)}[{offset(b, idx, x.emit)}] = {self.value(e, b.dtype)};")
            case ir.For():
                self.for_loop(s, d)
            case ir.If(cond=c, then=then, orelse=orelse):
                line(f"if ({x(c)}) {{")
                self.block(then, d + 1)
                if orelse:
                    self.out.line(d, "} else {", s.loc)
                    self.block(orelse, d + 1)
                self.out.raw("    " * d + "}", s.loc)
            case ir.While(cond=c, body=body):
                line(f"while ({x(c)}) {{")
                self.block(body, d + 1)
                self.out.raw("    " * d + "}", s.loc)
            case ir.SyncThreads() if self.fenced_barriers:
                line("tm_fence_proxy_async(); __syncthreads();")
            case ir.SyncThreads():
                line("__syncthreads();")
            case ir.SyncWarp():
                line(f"__syncwarp({self.mask});")
            case ir.CpAsync(dst=dst, src=src, elems=n, valid=v):
                valid = "true" if v is None else x(v)
                line(f"tm_cp_async<{n * dst.buffer.dtype.nbytes}>({self.ref(dst)}, {self.ref(src)}, {valid});")
            case ir.CpAsyncCommit():
                line("tm_cp_async_commit();")
            case ir.CpAsyncWait(pending=n):
                line(f"tm_cp_async_wait<{n}>();")
            case ir.MbarrierInit(bar=b, count=c):
                line(f"tm_mbarrier_init({self.ref(b)}, {self.value(c, dt.int32)});")
            case ir.MbarrierArrive(bar=b, tx=None):
                line(f"tm_mbarrier_arrive({self.ref(b)});")
            case ir.MbarrierArrive(bar=b, tx=tx):
                line(f"tm_mbarrier_arrive_expect_tx({self.ref(b)}, {self.value(tx, dt.int32)});")
            case ir.MbarrierWait(bar=b, parity=p):
                line(f"tm_mbarrier_wait({self.ref(b)}, {self.value(p, dt.int32)});")
            case ir.BulkCopy(dst=dst, src=src, elems=n, bar=b):
                line(f"tm_bulk_copy({self.ref(dst)}, {self.ref(src)}, {n * dst.buffer.dtype.nbytes}u, {self.ref(b)});")
            case ir.TmaLoad(dst=dst, src=src, bar=b):
                line(f"tm_tma_load<{src.buffer.ndim}>({self.ref(dst)}, &{self.tensor_map(src, dst)}, {self.ref(b)}, "
                     f"{self.coords(src)});")
            case ir.TmaStore(dst=dst, src=src):
                line(f"tm_tma_store<{dst.buffer.ndim}>(&{self.tensor_map(dst, src)}, {self.ref(src)}, {self.coords(dst)});")
            case ir.LdMatrix(dst=dst, src=src, num=n, trans=t):
                line(f"tm_ldmatrix<{n}, {'true' if t else 'false'}>({self.ref(dst)}, {self.ref(src)});")
            case ir.MmaSync(shape=shape, a=a, b=b, acc=acc):
                line(f"tm_mma_{shape}({self.ref(a)}, {self.ref(b)}, {self.ref(acc)});")
            case ir.Wgmma(acc=acc, a=a, b=b):
                da = self.ref(a) if s.a_in_registers else self.descriptor(a, s.a_lbo, s.a_sbo, s.a_swizzle)
                line(f"{emit_wgmma.helper_name(s)}({self.ref(acc)}, {da}, "
                     f"{self.descriptor(b, s.b_lbo, s.b_sbo, s.b_swizzle)});")
            case ir.WgmmaFence():
                self.fence_wgmma_registers(line)
                line("tm_wgmma_fence();")
            case ir.WgmmaCommit():
                line("tm_wgmma_commit();")
            case ir.WgmmaWait(pending=n):
                line(f"tm_wgmma_wait<{n}>();")
                self.fence_wgmma_registers(line)
            case ir.Atomic(op=op, target=t, value=v, compare=c, result=r):
                ty = t.buffer.dtype
                args = [self.ref(t)] + ([convert(x.emit(c), c.dtype, ty)] if c is not None else [])
                call = f"tm_atomic_{op}({', '.join(args + [convert(x.emit(v), v.dtype, ty)])})"
                line(f"{cname(r.name)} = {convert(call, ty, r.dtype)};" if r is not None else f"{call};")
            case ir.Assert(cond=c, message=m):
                where = json.dumps(f"{s.loc}: " if s.loc else "")
                line(f"if (!({x(c)})) {{ printf(\"%sassertion failed: %s\\n\", {where}, {json.dumps(m)}); __trap(); }}")
            case _:
                raise TypeError(f"the CUDA emitter cannot emit {type(s).__name__} (lower the kernel first)")

    def descriptor(self, r: ir.Ref, lbo: ir.Expr, sbo: ir.Expr, swizzle: int) -> str:
        return (f"tm_wgmma_desc({self.ref(r)}, {self.value(lbo, dt.int32)}, {self.value(sbo, dt.int32)}, "
                f"{emit_wgmma.SWIZZLE_CODE[swizzle]})")

    def fence_wgmma_registers(self, line):
        for b in self.in_scope:
            if b.name in self.wgmma_registers:
                line(emit_wgmma.fence_registers(b, cname(b.name)))

    def tensor_map(self, tensor: ir.Ref, shared: ir.Ref) -> str:
        return f"tm_map{self.map_index[_map_key(tensor, shared)][0]}"

    def coords(self, tensor: ir.Ref) -> str:
        """A TMA copy's box coordinates, innermost first (the PTX order)."""
        return ", ".join(self.value(c, dt.int32) for c in reversed(tensor.indices))

    def declare(self, b: ir.Buffer) -> str:
        t, name = ctype(b.dtype), cname(b.name)
        if b in self.dynamic:
            offset_bytes = " + ".join(self.dynamic_size(o) for o in self.dynamic[:self.dynamic.index(b)]) or "0"
            return f"{t}* {name} = ({t}*)(tm_smem + {offset_bytes});"
        size = math.prod(s.value for s in b.shape)
        scope = "__shared__ " if b.scope == "shared" else ""
        align = SWIZZLED_SHARED_ALIGN if b.name in self.swizzled_shared else TMA_SHARED_ALIGN if b.name in self.tma_shared \
            else 16
        return f"{scope}__align__({align}) {t} {name}[{size}];"

    def dynamic_size(self, b: ir.Buffer) -> str:
        elems = ir.const(1)
        for s in b.shape:
            elems = ir.binary("*", elems, s)
        a = self.shared_align
        return f"(({self.x.emit(elems)} * {b.dtype.nbytes} + {a - 1}) & ~{a - 1})"

    def for_loop(self, s: ir.For, d: int):
        if s.vector:
            return self.vector_copy(s, d)
        self.scalar_loop(s, d)

    def vector_copy(self, s: ir.For, d: int):
        """A copy loop marked by mark_vector_copies: one vector access when both addresses are
        aligned at run time, else the loop as written."""
        store, nbytes = s.body[0], s.vector
        load = store.value
        src = self.ref(ir.Ref(load.buffer, _first(load.indices, s.var)))
        dst = self.ref(ir.Ref(store.buffer, _first(store.indices, s.var)))
        word = "uint4" if nbytes == 16 else "uint2"
        self.out.line(d, f"if ((((uintptr_t)({dst}) | (uintptr_t)({src})) & {nbytes - 1}) == 0) {{", s.loc)
        self.out.line(d + 1, f"*({word}*)({dst}) = *(const {word}*)({src});", s.loc)
        self.out.line(d, "} else {", s.loc)
        self.scalar_loop(s, d + 1)
        self.out.raw("    " * d + "}", s.loc)

    def scalar_loop(self, s: ir.For, d: int):
        x, v = self.x, cname(s.var.name)
        t = s.var.dtype
        init = [f"{ctype(t)} {v} = {convert(x.emit(s.start), s.start.dtype, t)}"]
        stop, step = (self.hoist(e, f"{v}_{what}", t, init) for e, what in ((s.stop, "stop"), (s.step, "step")))
        if isinstance(s.step, ir.Const):
            cond = f"{v} {'<' if s.step.value > 0 else '>'} {stop}"
        else:
            cond = f"({step} > 0 ? {v} < {stop} : {v} > {stop})"
        if s.unroll:
            self.out.line(d, "#pragma unroll" if s.unroll is True else f"#pragma unroll {int(s.unroll)}", s.loc)
        self.out.line(d, f"for ({', '.join(init)}; {cond}; {v} += {step}) {{", s.loc)
        self.block(s.body, d + 1)
        self.out.raw("    " * d + "}", s.loc)

    def hoist(self, e: ir.Expr, name: str, t: dt.DType, init: list) -> str:
        """Loop bounds are evaluated once, before the first iteration (SPEC §5.2)."""
        code = convert(self.x.emit(e), e.dtype, t)
        if isinstance(e, ir.Const):
            return code
        init.append(f"{name} = {code}")
        return name


def _first(idx, var: ir.Var):
    """The indices at var = 0 (`base + var` -> `base`)."""
    return idx[:-1] + ((ir.const(0, var.dtype) if idx[-1] == var else idx[-1].a),)
