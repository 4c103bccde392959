"""ONNX -> graph IR: `load(model)` takes a `ModelProto` or a path and returns a verified Graph.

Steps: a default-domain opset older than 13 is upgraded to 13 (`onnx.version_converter`);
`onnx.shape_inference.infer_shapes` types every value it can (its dim_params become symbols, unknown dimensions fresh symbols);
initializers and Constant nodes become constants; each node is converted by its entry in
`onnx_ops.CONVERTERS` onto registry operators (attributes with ONNX's schema defaults filled
in; constant inputs such as Reshape's shape read from constants, folded on demand through the
operators' references); what ONNX could not type is derived by passes.infer_shapes, and the
result is verified, so ONNX's types are checked against the registry's `infer`.

Nothing is imported partially: every unsupported operator (type, opset, node name) and every
node that cannot be converted is collected into ONE `UnsupportedModel` error.
"""
from __future__ import annotations

import os
from typing import Callable

import numpy as np

from taskmap.spec import dtypes as dt
from taskmap.spec.errors import TaskmapError
from taskmap.spec.graph import Constant, Graph, GraphError, Node, Value, verify
from taskmap.spec.graph.passes import infer_shapes
from taskmap.spec.graph.passes.constant_fold import fold_node
from taskmap.spec.lang import TensorType

MIN_OPSET = 13


class UnsupportedModel(GraphError):
    """The model uses operators (or operator features) the frontend cannot map; lists them all."""


class ConvertError(Exception):
    """One node's conversion failed (collected into UnsupportedModel)."""


def need_onnx():
    try:
        import onnx
        return onnx
    except ImportError:
        raise GraphError("the ONNX frontend needs the onnx package: pip install 'taskmap[onnx]'") from None


def dtype_of(elem_type: int) -> dt.DType:
    onnx = need_onnx()
    if elem_type == onnx.TensorProto.BFLOAT16:
        return dt.bfloat16
    try:
        return dt.from_numpy(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, ValueError, TypeError):
        raise ConvertError(f"tensor element type {onnx.TensorProto.DataType.Name(elem_type)} is not supported") from None


def array_of(tensor) -> np.ndarray:
    """An initializer as a storage array (bf16 as uint16 bits)."""
    onnx = need_onnx()
    a = onnx.numpy_helper.to_array(tensor)
    if tensor.data_type == onnx.TensorProto.BFLOAT16:
        return np.ascontiguousarray(a).view(np.uint16)
    return a


class OnnxNode:
    """One ONNX node as the converters see it: attributes with schema defaults filled in."""

    def __init__(self, proto, opset: int, index: int):
        onnx = need_onnx()
        self.proto, self.op_type, self.opset = proto, proto.op_type, opset
        self.name = proto.name or f"{proto.op_type}_{index}"
        self.inputs, self.outputs = list(proto.input), list(proto.output)
        self.given = {a.name: onnx.helper.get_attribute_value(a) for a in proto.attribute}
        self.attrs = {}
        try:
            schema = onnx.defs.get_schema(proto.op_type, opset, proto.domain)
            for name, a in schema.attributes.items():
                if a.default_value.type:
                    self.attrs[name] = onnx.helper.get_attribute_value(a.default_value)
        except onnx.defs.SchemaError:
            pass
        self.attrs.update(self.given)
        self.attrs = {k: v.decode() if isinstance(v, bytes) else v for k, v in self.attrs.items()}

    def only(self, *handled: str, **required) -> None:
        """Attributes other than `handled` must be absent or at these `required` values."""
        for k, v in self.given.items():
            v = v.decode() if isinstance(v, bytes) else v
            if k in required and v != required[k]:
                raise ConvertError(f"attribute {k}={v!r} is not supported (only {required[k]!r})")
            if k not in handled and k not in required:
                raise ConvertError(f"attribute {k!r} is not supported")

    def input(self, k: int) -> str:
        return self.inputs[k] if k < len(self.inputs) else ""


class Importer:
    """The state of one import: values' ONNX types, constants, emitted nodes, aliases."""

    def __init__(self, types: dict[str, TensorType | None], used: set[str]):
        self.types = types
        self.used = used
        self.constants: dict[str, np.ndarray] = {}
        self.nodes: list[Node] = []
        self.rename: dict[str, str] = {}
        self.node_names: set[str] = set()
        self.made: dict[str, Node] = {}
        self.fresh = 0

    def name(self, hint: str) -> str:
        self.fresh += 1
        return f"{hint}#{self.fresh}"

    def resolve(self, name: str) -> str:
        return self.rename.get(name, name)

    def type_of(self, name: str) -> TensorType | None:
        name = self.resolve(name)
        if name in self.constants:
            a = self.constants[name]
            return TensorType(dt.bfloat16 if a.dtype == np.uint16 else dt.from_numpy(a.dtype), a.shape)
        if name in self.made:
            return next(v.type for v in self.made[name].outputs if v.name == name)
        return self.types.get(name)

    def emit(self, node: OnnxNode, op: str, inputs, attrs: dict | None = None, outputs=None, n_out: int = 1) -> list[str]:
        """A registry node; outputs named `outputs` (ONNX names, typed by ONNX) or fresh names."""
        onnx_named = outputs is not None
        outputs = list(outputs) if onnx_named else [self.name(node.name) for _ in range(n_out)]
        name = node.name if onnx_named and node.name not in self.node_names else \
            outputs[0] if not onnx_named else self.name(node.name)
        self.node_names.add(name)
        n = Node.make(name, op, [self.resolve(i) for i in inputs],
                      [Value(o, self.types.get(o)) for o in outputs], attrs)
        self.nodes.append(n)
        self.made.update((o, n) for o in outputs)
        return outputs

    def alias(self, onnx_name: str, value: str) -> None:
        self.rename[onnx_name] = self.resolve(value)

    def add_constant(self, array, name: str | None = None) -> str:
        name = name or self.name("const")
        self.constants[name] = np.asarray(array)
        return name

    def constant(self, name: str, what: str) -> np.ndarray:
        """The value of input `name`, which must be a constant (folded on demand)."""
        name = self.resolve(name)
        if name in self.constants:
            return self.constants[name]
        n = self.made.get(name)
        if n is not None:
            try:
                arrays = [self.constant(i, what) for i in n.inputs]
            except ConvertError:
                arrays = None
            if arrays is not None:
                for v, a in zip(n.outputs, fold_node(n, arrays)):
                    self.constants[v.name] = a
                    del self.made[v.name]
                self.nodes.remove(n)
                return self.constants[name]
        raise ConvertError(f"input {what} must be a constant (an initializer, a Constant node or computable "
                           f"from them); {name!r} is computed at run time")


Converter = Callable[[Importer, OnnxNode], None]


def _value_type(vi, symbols: dict) -> TensorType | None:
    t = vi.type
    if not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
        return None
    dims = []
    for k, d in enumerate(t.tensor_type.shape.dim):
        if d.HasField("dim_value"):
            if d.dim_value < 0:
                raise ConvertError(f"value {vi.name} has a dimension of size {d.dim_value}")
            dims.append(int(d.dim_value))
        else:
            dims.append(d.dim_param or symbols.setdefault((vi.name, k), f"{vi.name}.{k}"))
    return TensorType(dtype_of(t.tensor_type.elem_type), tuple(dims))


def read_model(model):
    onnx = need_onnx()
    if isinstance(model, (str, os.PathLike)):
        if not os.path.exists(model):
            raise GraphError(f"{model}: no such ONNX file")
        model = onnx.load(os.fspath(model))
    if not isinstance(model, onnx.ModelProto):
        raise GraphError(f"expected an onnx.ModelProto or a path to a .onnx file, got {type(model).__name__}")
    return model


def opset_of(model) -> int:
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return o.version
    raise UnsupportedModel("the model imports no default-domain (ai.onnx) opset, only "
                           + ", ".join(f"{o.domain} {o.version}" for o in model.opset_import))


def upgrade(model, opset: int):
    """The model at opset MIN_OPSET (onnx.version_converter), or UnsupportedModel saying why not."""
    from onnx import version_converter
    try:
        return version_converter.convert_version(model, MIN_OPSET)
    except Exception as e:  # noqa: BLE001 — the converter raises bare RuntimeErrors/ValueErrors of its own
        raise UnsupportedModel(f"model opset {opset} is older than {MIN_OPSET} and onnx.version_converter "
                               f"cannot upgrade it: {str(e).strip().splitlines()[0]}") from None


def bind_dims(model, dims: dict[str, int]):
    """A copy of the model whose symbolic dimensions named in `dims` are those sizes."""
    bound = type(model)()
    bound.CopyFrom(model)
    g = bound.graph
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_param") and d.dim_param in dims:
                d.dim_value = dims[d.dim_param]
    return bound


def model_inputs(model) -> list[Value]:
    """The graph inputs (initializers excluded) with their types, symbols kept."""
    inits = {t.name for t in model.graph.initializer}
    try:
        return [Value(vi.name, _value_type(vi, {})) for vi in model.graph.input if vi.name not in inits]
    except ConvertError as e:
        raise UnsupportedModel(str(e)) from None


def load(model, name: str | None = None, dims: dict[str, int] | None = None) -> Graph:
    """A verified Graph from an ONNX ModelProto or .onnx path (UnsupportedModel lists every gap);
    `dims` fixes symbolic input dimensions first, so that shape computations on them fold."""
    from .onnx_ops import CONVERTERS, supported
    onnx = need_onnx()
    model = read_model(model)
    if dims:
        model = bind_dims(model, dims)
    opset = opset_of(model)
    if opset < MIN_OPSET:
        model, opset = upgrade(model, opset), MIN_OPSET
    model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    g = model.graph
    missing: dict[tuple[str, str], list[str]] = {}
    for k, n in enumerate(g.node):
        if n.domain not in ("", "ai.onnx") or not supported(n.op_type):
            missing.setdefault((n.op_type, n.domain), []).append(n.name or f"{n.op_type}_{k}")
    if missing:
        lines = [f"  {t}{' (domain ' + d + ')' if d not in ('', 'ai.onnx') else ''}, opset {opset}: "
                 f"{len(names)} node{'s' if len(names) > 1 else ''} ({', '.join(names[:8])}"
                 f"{', ...' if len(names) > 8 else ''})" for (t, d), names in missing.items()]
        raise UnsupportedModel(f"unsupported ONNX operators ({len(missing)} types); nothing was imported:\n"
                               + "\n".join(lines))
    symbols: dict = {}
    try:
        types = {vi.name: _value_type(vi, symbols) for vi in list(g.input) + list(g.value_info) + list(g.output)}
    except ConvertError as e:
        raise UnsupportedModel(str(e)) from None
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    imp = Importer(types, used)
    for t in g.initializer:
        imp.add_constant(array_of(t), t.name)
    inputs = [Value(vi.name, types[vi.name]) for vi in g.input if vi.name not in imp.constants]
    for v in inputs:
        if v.type is None:
            raise UnsupportedModel(f"graph input {v.name} has no tensor type with a shape")
    failures = []
    for k, proto in enumerate(g.node):
        node = OnnxNode(proto, opset, k)
        try:
            CONVERTERS[proto.op_type](imp, node)
        except (ConvertError, TaskmapError) as e:    # TaskmapError: an operator refused a folded constant
            failures.append(f"  {proto.op_type} (opset {opset}) at node {node.name}: {e}")
    if failures:
        raise UnsupportedModel(f"cannot import {len(failures)} nodes; nothing was imported:\n" + "\n".join(failures))
    graph = Graph(name or g.name or "model", tuple(inputs), tuple(imp.resolve(o.name) for o in g.output),
                  tuple(imp.nodes), tuple(Constant.of(k, a) for k, a in imp.constants.items()))
    try:
        graph = verify(infer_shapes(graph))
    except TaskmapError as e:       # an operator refuses a dtype or shape ONNX allows (i8 add, a rank-0 result)
        raise UnsupportedModel(f"the registry operators do not take this model as converted: {e}") from None
    _refuse_zero_sized(graph)
    return graph


def _refuse_zero_sized(graph: Graph) -> None:
    """Zero-sized constants are data (the empty shape of a scalar ConstantOfShape, an empty `axes`)
    and fold away; a zero-sized tensor computed at run time has no kernel."""
    for v in (*graph.inputs, *(o for n in graph.nodes for o in n.outputs)):
        if v.type is not None and 0 in v.type.shape:
            raise UnsupportedModel(f"value {v.name} has a dimension of size 0; zero-sized tensors are not supported")

