"""ONNX models built with onnx.helper and seeded random weights (no downloads).

    model = mlp()                  # reduced sizes, for the interpreter
    model = resnet50()             # full size (same builder as resnet())
    operator_model("softmax", [f32[4, 10]], {"axis": -1})    # one registry operator as ONNX

Reduced models: mlp, cnn (conv / batch norm / relu / max pool / global pool / gemm),
transformer_encoder (one BERT-style block: matmul, layer norm, softmax attention, gelu).
Full sizes: resnet50, mobilenet_v2, inception_v3 (Inception-V3-style), bert_base, gpt2_small,
from the same builders. Weights are
drawn from a generator seeded by `seed`, scaled by 1/sqrt(fan-in) so activations stay O(1).
"""
from __future__ import annotations

import math

import numpy as np

from taskmap.spec import dtypes as dt
from taskmap.spec.ops import get

from .onnx_import import MIN_OPSET, need_onnx

OPSET = 20                                  # Gelu is opset 20


class Builder:
    """Accumulates nodes and initializers; names are generated per op type."""

    def __init__(self, name: str, seed: int = 0):
        self.name, self.rng = name, np.random.default_rng(seed)
        self.nodes, self.inits, self.count = [], [], {}

    def fresh(self, hint: str) -> str:
        self.count[hint] = self.count.get(hint, 0) + 1
        return f"{hint}_{self.count[hint]}"

    def const(self, array, hint: str = "c") -> str:
        onnx = need_onnx()
        name = self.fresh(hint)
        self.inits.append(onnx.numpy_helper.from_array(np.asarray(array), name))
        return name

    def weight(self, *shape: int, fan_in: int | None = None, hint: str = "w") -> str:
        scale = 1.0 / math.sqrt(fan_in or shape[0])
        return self.const(self.rng.uniform(-scale, scale, shape).astype(np.float32), hint)

    def ints(self, values, hint: str = "shape") -> str:
        return self.const(np.array(values, np.int64), hint)

    def op(self, op_type: str, *inputs: str, n_out: int = 1, **attrs):
        onnx = need_onnx()
        outs = [self.fresh(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(onnx.helper.make_node(op_type, list(inputs), outs, name=self.fresh(op_type), **attrs))
        return outs[0] if n_out == 1 else outs

    def model(self, inputs: list[tuple[str, int, list]], outputs: list[str]):
        onnx = need_onnx()
        h = onnx.helper
        graph = h.make_graph(self.nodes, self.name, [h.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                             [h.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in outputs],
                             self.inits)
        model = h.make_model(graph, opset_imports=[h.make_opsetid("", OPSET)], producer_name="taskmap")
        model.ir_version = min(model.ir_version, 10)          # what onnxruntime reads
        return onnx.shape_inference.infer_shapes(model)

    # layers
    def linear(self, x: str, n_in: int, n_out: int) -> str:
        return self.op("Add", self.op("MatMul", x, self.weight(n_in, n_out)), self.weight(n_out, fan_in=n_in, hint="b"))

    def conv_bn(self, x: str, c_in: int, c_out: int, k, stride: int = 1, group: int = 1, relu: str | None = "Relu",
                pad: bool = True):
        """Conv + BatchNormalization (+ activation); `k` an int or (kh, kw); `pad`: 'same' padding."""
        kh, kw = (k, k) if isinstance(k, int) else k
        fan = c_in // group * kh * kw
        pads = [kh // 2, kw // 2] * 2 if pad else [0] * 4
        y = self.op("Conv", x, self.weight(c_out, c_in // group, kh, kw, fan_in=fan), strides=[stride, stride],
                    pads=pads, group=group)
        r = self.rng
        y = self.op("BatchNormalization", y, self.const(r.uniform(0.5, 1.5, c_out).astype(np.float32), "gamma"),
                    self.const(r.uniform(-0.2, 0.2, c_out).astype(np.float32), "beta"),
                    self.const(r.uniform(-0.2, 0.2, c_out).astype(np.float32), "mean"),
                    self.const(r.uniform(0.5, 1.5, c_out).astype(np.float32), "var"), epsilon=1e-5)
        if relu == "Relu6":
            return self.op("Clip", y, self.const(np.float32(0), "lo"), self.const(np.float32(6), "hi"))
        return self.op(relu, y) if relu else y

    def layer_norm(self, x: str, d: int) -> str:
        r = self.rng
        return self.op("LayerNormalization", x, self.const(r.uniform(0.5, 1.5, d).astype(np.float32), "ln_g"),
                       self.const(r.uniform(-0.1, 0.1, d).astype(np.float32), "ln_b"), axis=-1, epsilon=1e-5)


F32 = 1      # onnx.TensorProto.FLOAT
I64 = 7      # onnx.TensorProto.INT64


def mlp(batch="N", sizes=(16, 32, 32, 8), seed: int = 0):
    b = Builder("mlp", seed)
    x = "x"
    for k, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        x = b.linear(x, n_in, n_out)
        if k < len(sizes) - 2:
            x = b.op("Relu", x)
    return b.model([("x", F32, [batch, sizes[0]])], [b.op("Softmax", x, axis=-1)])


def cnn(batch=1, channels=(3, 8, 16), image=12, classes=10, seed: int = 0):
    b = Builder("cnn", seed)
    x = "x"
    for c_in, c_out in zip(channels, channels[1:]):
        x = b.op("MaxPool", b.conv_bn(x, c_in, c_out, 3), kernel_shape=[2, 2], strides=[2, 2])
    x = b.op("Flatten", b.op("GlobalAveragePool", x), axis=1)
    y = b.op("Gemm", x, b.weight(classes, channels[-1], fan_in=channels[-1]), b.weight(classes, fan_in=channels[-1]),
             transB=1)
    return b.model([("x", F32, [batch, channels[0], image, image])], [y])


def _attention(b: Builder, x: str, seq, d: int, heads: int, mask: str | None) -> str:
    hd = d // heads

    def split_heads(t):          # [B, S, D] -> [B, H, S, hd]
        return b.op("Transpose", b.op("Reshape", t, b.ints([0, 0, heads, hd])), perm=[0, 2, 1, 3])

    q, k, v = (split_heads(b.linear(x, d, d)) for _ in range(3))
    scores = b.op("Div", b.op("MatMul", q, b.op("Transpose", k, perm=[0, 1, 3, 2])),
                  b.const(np.float32(math.sqrt(hd)), "scale"))
    if mask is not None:
        scores = b.op("Add", scores, mask)
    ctx = b.op("MatMul", b.op("Softmax", scores, axis=-1), v)
    return b.linear(b.op("Reshape", b.op("Transpose", ctx, perm=[0, 2, 1, 3]), b.ints([0, 0, d])), d, d)


def _block(b: Builder, x: str, seq, d: int, heads: int, ff: int, pre_norm: bool, mask=None, gelu="none") -> str:
    """A post-norm (BERT) or pre-norm (GPT-2) encoder/decoder block."""
    if pre_norm:
        x = b.op("Add", x, _attention(b, b.layer_norm(x, d), seq, d, heads, mask))
        h = b.linear(b.op("Gelu", b.linear(b.layer_norm(x, d), d, ff), approximate=gelu), ff, d)
        return b.op("Add", x, h)
    x = b.layer_norm(b.op("Add", x, _attention(b, x, seq, d, heads, mask)), d)
    h = b.linear(b.op("Gelu", b.linear(x, d, ff), approximate=gelu), ff, d)
    return b.layer_norm(b.op("Add", x, h), d)


def transformer_encoder(batch=1, seq=8, d=16, heads=2, ff=32, seed: int = 0):
    b = Builder("transformer_encoder", seed)
    return b.model([("x", F32, [batch, seq, d])], [_block(b, "x", seq, d, heads, ff, pre_norm=False)])


def _language_model(name, layers, d, heads, ff, seq, vocab, batch, causal: bool, seed: int):
    b = Builder(name, seed)
    x = b.op("Gather", b.weight(vocab, d, fan_in=1, hint="tok_emb"), "ids", axis=0)
    x = b.op("Add", x, b.weight(seq, d, fan_in=1, hint="pos_emb"))
    mask = None
    if causal:
        mask = b.const(np.triu(np.full((seq, seq), -1e4, np.float32), 1), "causal_mask")
    for _ in range(layers):
        x = _block(b, x, seq, d, heads, ff, pre_norm=causal, mask=mask, gelu="tanh" if causal else "none")
    if causal:
        x = b.op("MatMul", b.layer_norm(x, d), b.weight(d, vocab, hint="lm_head"))
    return b.model([("ids", I64, [batch, seq])], [x])


def bert(layers=2, d=16, heads=2, ff=32, seq=8, vocab=50, batch=1, seed: int = 0):
    return _language_model("bert", layers, d, heads, ff, seq, vocab, batch, False, seed)


def gpt2(layers=2, d=16, heads=2, ff=64, seq=8, vocab=50, batch=1, seed: int = 0):
    return _language_model("gpt2", layers, d, heads, ff, seq, vocab, batch, True, seed)


def bert_base(seq=128, batch=1, seed: int = 0):
    return bert(12, 768, 12, 3072, seq, 30522, batch, seed)


def gpt2_small(seq=128, batch=1, seed: int = 0):
    return gpt2(12, 768, 12, 3072, seq, 50257, batch, seed)


def resnet(blocks=(1, 1), width=8, image=16, classes=10, batch=1, seed: int = 0):
    """Bottleneck ResNet (ResNet-50: blocks (3, 4, 6, 3), width 64, image 224)."""
    b = Builder("resnet", seed)
    x = b.op("MaxPool", b.conv_bn("x", 3, width, 7, stride=2), kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4)
    c_in = width
    for stage, n in enumerate(blocks):
        mid = width * 2 ** stage
        for k in range(n):
            stride = 2 if k == 0 and stage > 0 else 1
            h = b.conv_bn(b.conv_bn(x, c_in, mid, 1), mid, mid, 3, stride)
            h = b.conv_bn(h, mid, mid * 4, 1, relu=None)
            skip = b.conv_bn(x, c_in, mid * 4, 1, stride, relu=None) if k == 0 else x
            x, c_in = b.op("Relu", b.op("Add", h, skip)), mid * 4
    x = b.op("Flatten", b.op("GlobalAveragePool", x))
    y = b.op("Gemm", x, b.weight(classes, c_in, fan_in=c_in), b.weight(classes, fan_in=c_in), transB=1)
    return b.model([("x", F32, [batch, 3, image, image])], [y])


def resnet50(batch=1, seed: int = 0):
    return resnet((3, 4, 6, 3), 64, 224, 1000, batch, seed)


MOBILENET_V2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1))           # (expansion, channels, repeats, first stride)


def mobilenet_v2(settings=MOBILENET_V2, width=32, last=1280, image=224, classes=1000, batch=1, seed: int = 0):
    b = Builder("mobilenet_v2", seed)
    x, c_in = b.conv_bn("x", 3, width, 3, stride=2, relu="Relu6"), width
    for t, c, n, s in settings:
        for k in range(n):
            h = b.conv_bn(x, c_in, c_in * t, 1, relu="Relu6") if t != 1 else x
            h = b.conv_bn(h, c_in * t, c_in * t, 3, s if k == 0 else 1, group=c_in * t, relu="Relu6")
            h = b.conv_bn(h, c_in * t, c, 1, relu=None)
            x, c_in = (b.op("Add", x, h) if k > 0 else h), c
    x = b.op("Flatten", b.op("GlobalAveragePool", b.conv_bn(x, c_in, last, 1, relu="Relu6")))
    y = b.op("Gemm", x, b.weight(classes, last, fan_in=last), b.weight(classes, fan_in=last), transB=1)
    return b.model([("x", F32, [batch, 3, image, image])], [y])


def mobilenet_v2_small(batch=1, seed: int = 0):
    return mobilenet_v2(((1, 8, 1, 1), (2, 8, 2, 2), (2, 16, 1, 2)), 8, 32, 16, 10, batch, seed)


def _inception_a(b: Builder, x: str, c_in: int, w: int, pool: int) -> tuple[str, int]:
    b1 = b.conv_bn(x, c_in, 4 * w, 1)
    b5 = b.conv_bn(b.conv_bn(x, c_in, 3 * w, 1), 3 * w, 4 * w, 5)
    b3 = b.conv_bn(b.conv_bn(b.conv_bn(x, c_in, 4 * w, 1), 4 * w, 6 * w, 3), 6 * w, 6 * w, 3)
    bp = b.conv_bn(b.op("AveragePool", x, kernel_shape=[3, 3], strides=[1, 1], pads=[1] * 4), c_in, pool, 1)
    return b.op("Concat", b1, b5, b3, bp, axis=1), 14 * w + pool


def _reduction(b: Builder, x: str, c_in: int, w: int) -> tuple[str, int]:
    b3 = b.conv_bn(x, c_in, 12 * w, 3, stride=2, pad=False)
    bd = b.conv_bn(b.conv_bn(b.conv_bn(x, c_in, 4 * w, 1), 4 * w, 6 * w, 3), 6 * w, 6 * w, 3, stride=2, pad=False)
    bp = b.op("MaxPool", x, kernel_shape=[3, 3], strides=[2, 2])
    return b.op("Concat", b3, bd, bp, axis=1), 18 * w + c_in


def _inception_b(b: Builder, x: str, c_in: int, w: int, mid: int) -> tuple[str, int]:
    """The factorized 7x7 block: 1x7 and 7x1 convolutions in place of a 7x7."""
    b1 = b.conv_bn(x, c_in, 12 * w, 1)
    b7 = b.conv_bn(b.conv_bn(b.conv_bn(x, c_in, mid, 1), mid, mid, (1, 7)), mid, 12 * w, (7, 1))
    bd = b.conv_bn(x, c_in, mid, 1)
    for k in ((7, 1), (1, 7), (7, 1)):
        bd = b.conv_bn(bd, mid, mid, k)
    bd = b.conv_bn(bd, mid, 12 * w, (1, 7))
    bp = b.conv_bn(b.op("AveragePool", x, kernel_shape=[3, 3], strides=[1, 1], pads=[1] * 4), c_in, 12 * w, 1)
    return b.op("Concat", b1, b7, bd, bp, axis=1), 48 * w


def inception_v3(width=16, blocks=(3, 4), image=299, classes=1000, batch=1, seed: int = 0):
    """Inception-V3-style network (width 16, blocks (3, 4), image 299: Inception-V3's stem, three
    A blocks, a grid reduction, four factorized-7x7 B blocks; C blocks and the auxiliary head
    left out). Channel counts scale with `width` (Inception-V3's are width 16's)."""
    b = Builder("inception_v3", seed)
    x = b.conv_bn("x", 3, 2 * width, 3, stride=2, pad=False)
    x = b.conv_bn(b.conv_bn(x, 2 * width, 2 * width, 3, pad=False), 2 * width, 4 * width, 3)
    x = b.op("MaxPool", x, kernel_shape=[3, 3], strides=[2, 2])
    x = b.conv_bn(b.conv_bn(x, 4 * width, 5 * width, 1), 5 * width, 12 * width, 3, pad=False)
    x, c = b.op("MaxPool", x, kernel_shape=[3, 3], strides=[2, 2]), 12 * width
    for k in range(blocks[0]):
        x, c = _inception_a(b, x, c, width, 2 * width if k == 0 else 4 * width)
    x, c = _reduction(b, x, c, width)
    for k in range(blocks[1]):
        x, c = _inception_b(b, x, c, width, 8 * width if k == 0 else 10 * width)
    x = b.op("Flatten", b.op("GlobalAveragePool", x))
    y = b.op("Gemm", x, b.weight(classes, c, fan_in=c), b.weight(classes, fan_in=c), transB=1)
    return b.model([("x", F32, [batch, 3, image, image])], [y])


def inception_v3_small(batch=1, seed: int = 0):
    return inception_v3(2, (1, 1), 75, 10, batch, seed)


REDUCED = {"mlp": mlp, "cnn": cnn, "transformer_encoder": transformer_encoder, "resnet": resnet,
           "mobilenet_v2": mobilenet_v2_small, "inception_v3": inception_v3_small, "bert": bert, "gpt2": gpt2}
BUILDERS = {f.__name__: f for f in (mlp, cnn, transformer_encoder, resnet, resnet50, mobilenet_v2, mobilenet_v2_small,
                                   inception_v3, inception_v3_small, bert, bert_base, gpt2, gpt2_small)}
FULL = {"resnet50": resnet50, "mobilenet_v2": mobilenet_v2, "inception_v3": inception_v3, "bert_base": bert_base,
        "gpt2_small": gpt2_small}


def operator_model(op_name: str, types, attrs: dict | None = None):
    """One registry operator as a one-node ONNX model (inputs in0, in1, ...; outputs out0, ...),
    from the operator's `onnx_node` (its ONNX op type, attributes and constant inputs)."""
    onnx = need_onnx()
    h = onnx.helper
    op = get(op_name)
    attrs = attrs or {}
    node = op.onnx_node(types, **attrs)
    if node is None:
        raise ValueError(f"operator {op_name} has no ONNX equivalent")
    enum = lambda t: onnx.TensorProto.BFLOAT16 if t is dt.bfloat16 else h.np_dtype_to_tensor_dtype(np.dtype(t.storage))
    inputs = [h.make_tensor_value_info(f"in{k}", enum(t.dtype), t.shape) for k, t in enumerate(types)]
    names = [f"in{k}" for k in (node.order or range(len(types)))]
    inits = []
    for pos, const in node.inputs:
        if const is None:
            names.insert(pos, "")
        else:
            inits.append(onnx.numpy_helper.from_array(np.asarray(const), f"const{pos}"))
            names.insert(pos, f"const{pos}")
    outs = [h.make_tensor_value_info(f"out{k}", enum(o.dtype), o.shape)
            for k, o in enumerate(op.infer(types, **attrs))]
    onnx_attrs = {k: enum(v) if isinstance(v, dt.DType) else v for k, v in node.attrs.items()}
    graph = h.make_graph([h.make_node(node.op_type, names, [o.name for o in outs], domain=node.domain, **onnx_attrs)],
                         op_name, inputs, outs, inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid(node.domain, max(node.opset, MIN_OPSET))])
    model.ir_version = min(model.ir_version, 10)
    return model


def random_feeds(model, rng: np.random.Generator, batch: int = 2) -> dict[str, np.ndarray]:
    """Seeded inputs of `model` by name: floats standard normal, int64 ids in [0, 20) (every
    built-in vocabulary holds them), symbolic dimensions `batch`."""
    onnx = need_onnx()
    out = {}
    for vi in model.graph.input:
        shape = [d.dim_value or batch for d in vi.type.tensor_type.shape.dim]
        out[vi.name] = (rng.integers(0, 20, shape) if vi.type.tensor_type.elem_type == onnx.TensorProto.INT64
                        else rng.standard_normal(shape).astype(np.float32))
    return out


class NoOrtKernel(Exception):
    """onnxruntime's CPU provider has no kernel for an operator/dtype of the model."""


def onnxruntime_outputs(model, feeds: dict) -> list[np.ndarray]:
    """The model run by onnxruntime's CPU provider (the independent reference for imports)."""
    import onnxruntime
    try:
        session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as e:
        text = str(e)
        if "NOT_IMPLEMENTED" in text or "Could not find an implementation" in text:
            raise NoOrtKernel(text.splitlines()[0][:120]) from None
        raise
    return session.run(None, feeds)
