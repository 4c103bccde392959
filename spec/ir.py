"""The kernel IR: one small, immutable node vocabulary (SPEC.md §3–§6).

Every node is a frozen dataclass; children are nodes or tuples of nodes. Every node
carries `loc`, the DSL source position it came from (not part of equality).
Passes are pure functions IR -> IR built on `rewrite` (one generic traversal, no
per-node visitor classes).
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Callable, Iterator

from . import dtypes as dt
from .dtypes import DType


@dataclass(frozen=True)
class Loc:
    file: str
    line: int
    col: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Node:
    loc: Loc | None = field(default=None, compare=False, repr=False, kw_only=True)


# ---------------------------------------------------------------- expressions (§4)

class Expr(Node):
    """Base of all expressions. Arithmetic operators build IR (used for grid/block lambdas)."""

    @property
    def dtype(self) -> DType:
        raise NotImplementedError

    def __add__(self, o): return binary("+", self, o)
    def __radd__(self, o): return binary("+", o, self)
    def __sub__(self, o): return binary("-", self, o)
    def __rsub__(self, o): return binary("-", o, self)
    def __mul__(self, o): return binary("*", self, o)
    def __rmul__(self, o): return binary("*", o, self)
    def __floordiv__(self, o): return binary("/", self, o)
    def __rfloordiv__(self, o): return binary("/", o, self)
    def __truediv__(self, o): return binary("/", self, o)
    def __mod__(self, o): return binary("%", self, o)
    def __rmod__(self, o): return binary("%", o, self)


@dataclass(frozen=True)
class Const(Expr):
    value: int | float | bool
    type: DType

    @property
    def dtype(self) -> DType:
        return self.type


# `origin` of a Var or Buffer: the name the DSL source wrote for it, None for one the compiler
# made (a lowered loop counter). Metadata like `loc`, not identity: `name` is only unique in
# the kernel (the parser renames a shadowing `x` to `x_1`; fusion renames freely), so
# messages and traces show the origin.

@dataclass(frozen=True)
class Var(Expr):
    """A scalar: kernel parameter, local variable or loop variable."""
    name: str
    type: DType
    origin: str | None = field(default=None, compare=False, repr=False, kw_only=True)

    @property
    def dtype(self) -> DType:
        return self.type


SPECIALS = tuple(f"{g}.{a}" for g in ("threadIdx", "blockIdx", "blockDim", "gridDim") for a in "xyz")


@dataclass(frozen=True)
class Special(Expr):
    """A built-in index register: threadIdx.x, blockIdx.y, blockDim.z, gridDim.x, ..."""
    name: str

    @property
    def dtype(self) -> DType:
        return dt.int32


UNARY_OPS = ("neg", "not", "invert")
ARITH_OPS = ("+", "-", "*", "/", "%")
COMPARE_OPS = ("<", "<=", ">", ">=", "==", "!=")
LOGIC_OPS = ("&&", "||")
BIT_OPS = ("&", "|", "^", "<<", ">>")
MINMAX_OPS = ("min", "max")
BINARY_OPS = ARITH_OPS + COMPARE_OPS + LOGIC_OPS + BIT_OPS + MINMAX_OPS


@dataclass(frozen=True)
class Unary(Expr):
    op: str
    a: Expr

    @property
    def dtype(self) -> DType:
        return dt.boolean if self.op == "not" else self.a.dtype


@dataclass(frozen=True)
class Binary(Expr):
    op: str
    a: Expr
    b: Expr

    @property
    def dtype(self) -> DType:
        if self.op in COMPARE_OPS or self.op in LOGIC_OPS:
            return dt.boolean
        if self.op in ("<<", ">>"):
            return self.a.dtype
        return dt.promote(self.a.dtype, self.b.dtype)


@dataclass(frozen=True)
class Select(Expr):
    cond: Expr
    a: Expr
    b: Expr

    @property
    def dtype(self) -> DType:
        return dt.promote(self.a.dtype, self.b.dtype)


@dataclass(frozen=True)
class Cast(Expr):
    a: Expr
    type: DType

    @property
    def dtype(self) -> DType:
        return self.type


MATH_FUNCS = {  # name -> arity; all take and return floats of one dtype (§4.6)
    "exp": 1, "exp2": 1, "log": 1, "log2": 1, "sqrt": 1, "rsqrt": 1, "tanh": 1, "erf": 1,
    "sin": 1, "cos": 1, "abs": 1, "floor": 1, "ceil": 1, "pow": 2, "fma": 3,
}


@dataclass(frozen=True)
class Call(Expr):
    """A math intrinsic (MATH_FUNCS); `abs` also accepts signed integers."""
    fn: str
    args: tuple[Expr, ...]

    @property
    def dtype(self) -> DType:
        out = self.args[0].dtype
        for a in self.args[1:]:
            out = dt.promote(out, a.dtype)
        return out


@dataclass(frozen=True)
class Load(Expr):
    buffer: Buffer
    indices: tuple[Expr, ...]

    @property
    def dtype(self) -> DType:
        return self.buffer.dtype


SHUFFLE_KINDS = ("xor", "down", "up", "idx")


@dataclass(frozen=True)
class Shuffle(Expr):
    """Warp shuffle (§5.6): every active lane of the warp must execute it together."""
    kind: str
    value: Expr
    lane: Expr       # xor mask, delta or source lane
    width: int = 32

    @property
    def dtype(self) -> DType:
        return self.value.dtype


# ---------------------------------------------------------------- buffers (§3)

SCOPES = ("global", "shared", "register")


@dataclass(frozen=True)
class RowMajor(Node):
    pass


@dataclass(frozen=True)
class Strided(Node):
    strides: tuple[Expr, ...]


@dataclass(frozen=True)
class Swizzle(Node):
    """Row-major offset o mapped to o ^ ((o & (((1<<bits)-1) << (base+shift))) >> shift).

    The CUTLASS Swizzle<bits, base, shift> family: conflict-free shared-memory tiles.
    """
    bits: int
    base: int
    shift: int

    @property
    def mask(self) -> int:
        """The offset bits (the "yyy" field) that are xor-ed, shifted right by `shift`, into the lower ones."""
        return ((1 << self.bits) - 1) << (self.base + self.shift)


Layout = RowMajor | Strided | Swizzle


DIRECTIONS = ("in", "out", "inout")


@dataclass(frozen=True)
class Buffer(Node):
    name: str
    dtype: DType
    shape: tuple[Expr, ...]
    scope: str
    layout: Layout = RowMajor()
    direction: str | None = None    # a tensor parameter's declared direction (DIRECTIONS); None: inferred
    origin: str | None = field(default=None, compare=False, repr=False, kw_only=True)

    @property
    def ndim(self) -> int:
        return len(self.shape)


@dataclass(frozen=True)
class Ref(Node):
    """Address of buffer[indices..., 0, ...]: an element, or the sub-tensor it starts."""
    buffer: Buffer
    indices: tuple[Expr, ...]


# ---------------------------------------------------------------- statements (§5)

class Stmt(Node):
    pass


@dataclass(frozen=True)
class DeclareVar(Stmt):
    var: Var
    init: Expr | None


@dataclass(frozen=True)
class Assign(Stmt):
    var: Var
    value: Expr


@dataclass(frozen=True)
class DeclareBuffer(Stmt):
    """Allocates a shared (per block) or register (per thread) tensor."""
    buffer: Buffer
    dynamic: bool = False        # CUDA placement (gpu.passes): carved from dynamic shared memory


@dataclass(frozen=True)
class Store(Stmt):
    buffer: Buffer
    indices: tuple[Expr, ...]
    value: Expr


@dataclass(frozen=True)
class For(Stmt):
    var: Var
    start: Expr
    stop: Expr
    step: Expr
    body: tuple[Stmt, ...]
    unroll: int | bool = False   # hint only: True = fully, int = factor
    vector: int = 0              # CUDA hint (gpu.passes): the loop copies this many contiguous bytes


@dataclass(frozen=True)
class ForTask(Stmt):
    """`for vars in mapping.on(worker)`: the worker's tasks in mapping order (§7)."""
    vars: tuple[Var, ...]
    mapping: object           # spec.mapping.TaskMapping (kept untyped to avoid an import cycle)
    worker: Expr
    body: tuple[Stmt, ...]


@dataclass(frozen=True)
class If(Stmt):
    cond: Expr
    then: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...] = ()


@dataclass(frozen=True)
class While(Stmt):
    cond: Expr
    body: tuple[Stmt, ...]


@dataclass(frozen=True)
class SyncThreads(Stmt):
    pass


@dataclass(frozen=True)
class SyncWarp(Stmt):
    pass


@dataclass(frozen=True)
class CpAsync(Stmt):
    """Asynchronous copy of `elems` contiguous elements global -> shared (§5.4).

    If `valid` is given and false, the destination is zero-filled instead (src-size 0).
    """
    dst: Ref
    src: Ref
    elems: int
    valid: Expr | None = None


@dataclass(frozen=True)
class CpAsyncCommit(Stmt):
    pass


@dataclass(frozen=True)
class CpAsyncWait(Stmt):
    pending: int


@dataclass(frozen=True)
class LdMatrix(Stmt):
    """ldmatrix.sync.aligned.m8n8.x{num}[.trans].b16 (§5.7): dst is a register view of 2*num b16."""
    dst: Ref
    src: Ref
    num: int
    trans: bool = False


@dataclass(frozen=True)
class MmaSync(Stmt):
    """acc += a @ b on one warp's fragments (§5.7); shape m16n8k16 (f16/bf16) or m16n8k8 (tf32)."""
    shape: str
    a: Ref
    b: Ref
    acc: Ref


@dataclass(frozen=True)
class MbarrierInit(Stmt):
    """mbarrier.init (§5.9): `bar` (an element of a shared i64 tensor) expects `count` arrivals per phase."""
    bar: Ref
    count: Expr


@dataclass(frozen=True)
class MbarrierArrive(Stmt):
    """mbarrier.arrive (§5.9); with `tx`, arrive.expect_tx: also expect `tx` more bytes of bulk copies."""
    bar: Ref
    tx: Expr | None = None


@dataclass(frozen=True)
class MbarrierWait(Stmt):
    """mbarrier.try_wait.parity in a loop (§5.9): wait until the phase of parity `parity` completed."""
    bar: Ref
    parity: Expr


@dataclass(frozen=True)
class BulkCopy(Stmt):
    """cp.async.bulk global -> shared of `elems` contiguous elements (§5.10), completing its bytes on `bar`."""
    dst: Ref
    src: Ref
    elems: int
    bar: Ref


@dataclass(frozen=True)
class TmaLoad(Stmt):
    """cp.async.bulk.tensor global -> shared (§5.11): the box `dst` views (its trailing dimensions,
    one per dimension of `src`'s tensor) from the element `src` names onwards, elements outside
    the tensor read as zero; completes its bytes on `bar`. `src`'s indices are box coordinates
    and may lie outside the tensor."""
    dst: Ref
    src: Ref
    bar: Ref


@dataclass(frozen=True)
class TmaStore(Stmt):
    """cp.async.bulk.tensor shared -> global (§5.11): the box `src` views, written to `dst`'s tensor
    from the element `dst` names onwards; elements outside the tensor are not written."""
    dst: Ref
    src: Ref


MBARRIER_STMTS = (MbarrierInit, MbarrierArrive, MbarrierWait)


WGMMA_SWIZZLES = (0, 32, 64, 128)    # a matrix descriptor's swizzle mode, in bytes (0: none) (§5.12)


@dataclass(frozen=True)
class Wgmma(Stmt):
    """wgmma.mma_async m64nNk16 of one warpgroup (§5.12): acc += A·B, A 64×16 and B 16×n, f16 or
    bf16, acc n/2 f32 per thread. `a` is a register fragment (8 elements) or, like `b`, a shared
    element read through a matrix descriptor: the element starts the operand (A: [row, k] of
    its tensor, B: [col, k], both K-major), `*_lbo`/`*_sbo` are the leading/stride byte offsets
    and `*_swizzle` the mode (WGMMA_SWIZZLES). Issued asynchronously: its operands and
    accumulator are in use until a wgmma_wait_group retires its group."""
    acc: Ref
    a: Ref
    b: Ref
    n: int
    b_lbo: Expr
    b_sbo: Expr
    b_swizzle: int
    a_lbo: Expr | None = None       # None: `a` is a register fragment
    a_sbo: Expr | None = None
    a_swizzle: int = 0

    @property
    def a_in_registers(self) -> bool:
        return self.a_lbo is None


@dataclass(frozen=True)
class WgmmaFence(Stmt):
    """wgmma.fence (§5.12): orders the thread's register accesses before the wgmmas that follow."""


@dataclass(frozen=True)
class WgmmaCommit(Stmt):
    """wgmma.commit_group (§5.12): closes the group of the wgmmas issued since the last commit."""


@dataclass(frozen=True)
class WgmmaWait(Stmt):
    """wgmma.wait_group (§5.12): waits until at most `pending` committed groups are in flight."""
    pending: int


WGMMA_STMTS = (Wgmma, WgmmaFence, WgmmaCommit, WgmmaWait)


ATOMIC_OPS = ("add", "max", "min", "cas", "exch")


@dataclass(frozen=True)
class Atomic(Stmt):
    op: str
    target: Ref
    value: Expr
    compare: Expr | None = None    # cas only
    result: Var | None = None      # receives the old value when given


@dataclass(frozen=True)
class Assert(Stmt):
    cond: Expr
    message: str


# ---------------------------------------------------------------- kernels (§6)

Param = Var | Buffer


@dataclass(frozen=True)
class Kernel(Node):
    name: str
    params: tuple[Param, ...]
    grid: tuple[Expr, Expr, Expr]
    block: tuple[Expr, Expr, Expr]
    body: tuple[Stmt, ...]

    def __str__(self) -> str:
        from .printer import print_kernel
        return print_kernel(self)

    def verify(self) -> Kernel:
        from .verifier import verify
        verify(self)
        return self

    @property
    def buffer_params(self) -> tuple[Buffer, ...]:
        return tuple(p for p in self.params if isinstance(p, Buffer))

    @property
    def scalar_params(self) -> tuple[Var, ...]:
        return tuple(p for p in self.params if isinstance(p, Var))

    @functools.cached_property
    def directions(self) -> dict[str, str]:
        """Each tensor parameter's direction (§6.1): as declared (In/Out/InOut), else inferred
        from the body: written and read -> "inout", written only -> "out", else "in"."""
        written, read = written_buffers(self), read_buffers(self)
        return {b.name: b.direction or ("in" if b.name not in written else "inout" if b.name in read else "out")
                for b in self.buffer_params}

    @property
    def outputs(self) -> tuple[Buffer, ...]:
        """The tensor parameters the kernel may write ("out" and "inout")."""
        return tuple(b for b in self.buffer_params if self.directions[b.name] != "in")

    @property
    def inputs(self) -> tuple[Param, ...]:
        """The parameters whose values the kernel reads: scalars, "in" and "inout" tensors."""
        return tuple(p for p in self.params if isinstance(p, Var) or self.directions[p.name] != "out")


@dataclass(frozen=True)
class Module(Node):
    name: str
    kernels: tuple[Kernel, ...]

    def __str__(self) -> str:
        return "\n\n".join(str(k) for k in self.kernels)

    def verify(self) -> Module:
        """Every kernel verifies, and kernel names are unique (they share one CUDA translation unit)."""
        from .errors import VerifyError
        seen = set()
        for k in self.kernels:
            if k.name in seen:
                raise VerifyError("duplicate name", f"module {self.name!r} holds two kernels named "
                                  f"{k.name!r}; pass name= to @kernel to rename one", node=k, kernel=k.name)
            seen.add(k.name)
            k.verify()
        return self


# ---------------------------------------------------------------- construction helpers

def source_name(node: Var | Buffer) -> str:
    """The name to show a user: what the DSL source wrote, else the IR name."""
    return node.origin or node.name


def const(value, dtype: DType | None = None) -> Const:
    if dtype is None:
        if isinstance(value, bool):
            dtype = dt.boolean
        elif isinstance(value, int):
            dtype = dt.int32 if -2**31 <= value < 2**31 else dt.int64
        elif isinstance(value, float):
            dtype = dt.float32
        else:
            raise TypeError(f"cannot make a constant of {value!r}")
    if dtype.is_float:
        value = float(value)
    elif dtype is dt.boolean:
        value = bool(value)
    else:
        value = int(value)
    return Const(value, dtype)


def as_expr(x, like: DType | None = None) -> Expr:
    """A Python literal adopts the dtype of the expression it meets (weak typing, §4.2)."""
    if isinstance(x, Expr):
        return x
    if like is not None and not isinstance(x, bool):
        if like.is_float or (like.is_integer and isinstance(x, int)):
            return const(x, like)
    return const(x)


def binary(op: str, a, b, loc: Loc | None = None) -> Expr:
    la = a.dtype if isinstance(a, Expr) else None
    lb = b.dtype if isinstance(b, Expr) else None
    a, b = as_expr(a, lb), as_expr(b, la)
    if isinstance(a, Const) and isinstance(b, Const):
        folded = fold(op, a, b)
        if folded is not None:
            return folded
    return _identity(op, a, b) or Binary(op, a, b, loc=loc)


def _identity(op: str, a: Expr, b: Expr) -> Expr | None:
    """x+0, x-0, x*1, x/1, x*0, x%1 on same-typed integers: keeps lowered index arithmetic
    readable. The last two drop `x`, so they apply only where evaluating `x` cannot trap
    (SPEC §2.3: the operand is still evaluated, and its load may trap). Calls are kept too:
    index arithmetic never calls an intrinsic, and no identity should depend on which do trap."""
    if not (a.dtype.is_integer and a.dtype == b.dtype):
        return None
    def is_(x, v):
        return isinstance(x, Const) and x.value == v
    if (op == "+" and is_(b, 0)) or (op in ("*", "/") and is_(b, 1)) or (op == "-" and is_(b, 0)):
        return a
    if (op == "+" and is_(a, 0)) or (op == "*" and is_(a, 1)):
        return b
    dropped = b if op == "*" and is_(a, 0) else a if (op == "*" and is_(b, 0)) or (op == "%" and is_(b, 1)) else None
    if dropped is not None and not any(may_trap(n) or isinstance(n, Call) for n in walk(dropped)):
        return Const(0, a.dtype)
    return None


def may_trap(node) -> bool:
    """Whether evaluating `node` itself (not counting its operands) can trap: a load (out of
    bounds, uninitialized, racing: §3, §10), a shuffle (divergent collective, §5.6), integer
    `/` and `%` unless the divisor is a non-zero constant, shifts unless the amount is a
    constant in range (§2.3). A variable counts as initialized: the DSL declares every variable
    with a value (an atomic's result by its atomic); IR built by hand with an uninitialized one
    uses the `Binary` constructor, which never simplifies."""
    match node:
        case Load() | Shuffle():
            return True
        case Binary(op="/" | "%", b=b) if node.dtype.is_integer:
            return not (isinstance(b, Const) and b.value != 0)
        case Binary(op="<<" | ">>", b=b):
            return not (isinstance(b, Const) and 0 <= b.value < node.dtype.bits)
    return False


def fold(op: str, a: Const, b: Const) -> Const | None:
    """Constant folding of integer arithmetic with the semantics of §2.3 (spec.semantics: C
    division, wrapping); None where the operation traps, which is left to run time."""
    if not (a.dtype.is_integer and a.dtype == b.dtype and op in ARITH_OPS + MINMAX_OPS):
        return None
    from . import semantics              # semantics evaluates IR, so it imports this module
    try:
        return Const(semantics.binary(op, a.value, b.value, a.dtype), a.dtype)
    except semantics.Trap:
        return None


def written_buffers(node) -> set[str]:
    """Names of the buffers some statement under `node` writes (stores, atomics, async and bulk
    copy, ldmatrix, mma and wgmma destinations, mbarriers): what a launch must copy back or race-track."""
    out = set()
    for n in walk(node):
        match n:
            case Store(buffer=b) | Atomic(target=Ref(buffer=b)) | CpAsync(dst=Ref(buffer=b)) \
                    | LdMatrix(dst=Ref(buffer=b)) | MmaSync(acc=Ref(buffer=b)) | BulkCopy(dst=Ref(buffer=b)) \
                    | MbarrierInit(bar=Ref(buffer=b)) | MbarrierArrive(bar=Ref(buffer=b)) \
                    | TmaLoad(dst=Ref(buffer=b)) | TmaStore(dst=Ref(buffer=b)) | Wgmma(acc=Ref(buffer=b)):
                out.add(b.name)
    return out


def read_buffers(node) -> set[str]:
    """Names of the buffers some expression or statement under `node` reads from global memory
    (loads, atomics' read-modify-write targets, async-copy sources) or, for shared tensors, loads."""
    out = set()
    for n in walk(node):
        match n:
            case Load(buffer=b) | Atomic(target=Ref(buffer=b)) | CpAsync(src=Ref(buffer=b)) | BulkCopy(src=Ref(buffer=b)) \
                    | TmaLoad(src=Ref(buffer=b)):
                out.add(b.name)
    return out


# ---------------------------------------------------------------- generic traversal

@functools.cache
def _fields(cls) -> tuple[str, ...]:
    """A node class's field names but `loc`, in order: looked up once per class, as the
    traversals below run millions of times per compilation."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.name != "loc")


def children(node) -> Iterator:
    """Direct child nodes (through tuples), in field order."""
    return iter(_children(node))


def _children(node) -> list:
    out = []
    for name in _fields(type(node)):
        v = getattr(node, name)
        if isinstance(v, Node):
            out.append(v)
        elif isinstance(v, tuple):
            out.extend(x for x in v if isinstance(x, Node))
    return out


def walk(node) -> Iterator:
    """Pre-order walk of every node under (and including) `node`; a stack of the nodes still
    to visit, not nested generators, whose cost grows with the tree's depth."""
    pending = [node]
    while pending:
        n = pending.pop()
        yield n
        pending.extend(reversed(_children(n)))


def rewrite(node, fn: Callable):
    """Bottom-up rebuild: children first, then `fn(new_node)`; fn returns a node (or tuple of
    statements, spliced into the enclosing statement tuple)."""
    changes = {}
    for name in _fields(type(node)):
        v = getattr(node, name)
        if isinstance(v, Node):
            nv = rewrite(v, fn)
            if nv is not v:
                changes[name] = nv
        elif isinstance(v, tuple) and any(isinstance(x, Node) for x in v):
            out = []
            for x in v:
                nx = rewrite(x, fn) if isinstance(x, Node) else x
                out.extend(nx if isinstance(nx, tuple) and isinstance(x, Stmt) else (nx,))
            if any(a is not b for a, b in zip(out, v)) or len(out) != len(v):
                changes[name] = tuple(out)
    if changes:
        node = dataclasses.replace(node, **changes)
    return fn(node)
