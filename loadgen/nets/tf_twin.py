"""A PyTorch model replayed in TensorFlow with its trained weights (the "twin"), saved as a SavedModel and TFLite.

The model is traced with ``torch.fx`` and each node becomes the equivalent TF op, with the PyTorch weights copied
in as constants. We wrote it because no maintained torch-to-TF converter co-installs with the pinned stack (onnx2tf
pins numpy 1.26 and TF 2.19; nobuco needs Keras 2 internals). TFLite is converted from the SavedModel, float32.

What is twinned: ``Conv2d`` (any stride, PyTorch's symmetric zero padding, plain, depthwise or depthwise with a
channel multiplier), ``BatchNorm2d`` in inference form (running statistics), ``ReLU``, ``MaxPool2d``, global
``AdaptiveAvgPool2d``, ``Linear``, ``Flatten``/``torch.flatten``, the residual add, ``reshape``/``view``,
``permute``/``transpose``, ``torch.cat`` and shape queries (``x.shape[0]``). Anything else is refused by name
(``NotImplementedError``), never approximated.

Layouts. The twin takes **NHWC** input (TF's native layout, and the only one TF's CPU convolutions run): an
``(N, H, W, 3)`` float32 batch, the same values PyTorch takes as ``(N, 3, H, W)``. Feature maps stay NHWC while
they go through convolutions, pooling, batch norm and element-wise ops. The moment an op depends on the order of
the elements (reshape, view, flatten, permute, cat on any axis but the channels, a shape query) the map is first
transposed to NCHW, so that the op sees exactly the tensor PyTorch sees. Every output therefore has PyTorch's
layout and element order: an SSD head's ``(N, A*4, H, W)`` viewed as ``(N, 4, A*H*W)`` numbers its boxes (box shape,
row, column) as PyTorch does, not (row, column, box shape) as a reshape of the NHWC map would.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

INPUT_NAME = "input"


@dataclass(frozen=True)
class _Nhwc:
    """A 4-D feature map held NHWC in TF; PyTorch's view of the same map is its NCHW transpose."""

    t: object


class _Tracer(torch.fx.Tracer):
    """``torch.fx``'s tracer, also through containers made during ``forward`` (``self.features[:k](x)``: the slice
    is a new ``nn.Sequential``, not a named submodule, but its layers are, so it is traced through)."""

    def path_of_module(self, mod: torch.nn.Module) -> str:
        try:
            return super().path_of_module(mod)
        except NameError:
            if type(mod) in (torch.nn.Sequential, torch.nn.ModuleList):
                return ""
            raise


def _tensorflow():
    from loadgen.backends.tf import tf  # ordered after Triton, see loadgen/backends/tf.py

    return tf


class TfTwin:
    """The PyTorch graph (torch.fx) replayed with TF ops, with PyTorch's weights; call it on an NHWC batch.

    Batch norm uses the running statistics (the model's inference form) whatever ``model.training`` says.
    """

    def __init__(self, model: torch.nn.Module, tf=None) -> None:
        self.tf = tf if tf is not None else _tensorflow()
        self.graph = _Tracer().trace(model)
        self.modules = dict(model.named_modules())
        self.consts: dict[str, object] = {}
        for name, module in self.modules.items():
            self._prepare(name, module)

    # --- weights ---------------------------------------------------------------------------------------------

    def _const(self, key: str, value: np.ndarray):
        self.consts[key] = self.tf.constant(np.ascontiguousarray(value, dtype=np.float32))
        return self.consts[key]

    def _prepare(self, name: str, m: torch.nn.Module) -> None:
        if isinstance(m, torch.nn.Conv2d):
            if isinstance(m.padding, str) or m.padding_mode != "zeros" or tuple(m.dilation) != (1, 1):
                raise NotImplementedError(f"{name}: convolution with padding={m.padding!r}, "
                                          f"padding_mode={m.padding_mode!r}, dilation={m.dilation}")
            w = m.weight.detach().cpu().numpy()
            if m.groups == 1:
                self._const(f"{name}.w", w.transpose(2, 3, 1, 0))  # out,in,kh,kw -> kh,kw,in,out
            elif m.groups == m.in_channels and m.out_channels % m.in_channels == 0:
                # Depthwise: PyTorch's output channel i*k + j is input channel i's j-th filter, TF's too, so
                # (in*k, 1, kh, kw) -> (in, k, kh, kw) -> (kh, kw, in, k).
                k = m.out_channels // m.in_channels
                self._const(f"{name}.w", w.reshape(m.in_channels, k, *w.shape[2:]).transpose(2, 3, 0, 1))
            else:
                raise NotImplementedError(f"{name}: grouped convolution with groups={m.groups}")
            if m.bias is not None:
                self._const(f"{name}.b", m.bias.detach().cpu().numpy())
        elif isinstance(m, torch.nn.BatchNorm2d):
            if m.running_var is None:
                raise NotImplementedError(f"{name}: batch norm without running statistics")
            var, mean = m.running_var.cpu().numpy(), m.running_mean.cpu().numpy()
            weight = m.weight.detach().cpu().numpy() if m.affine else np.ones_like(var)
            bias = m.bias.detach().cpu().numpy() if m.affine else np.zeros_like(var)
            scale = weight / np.sqrt(var + m.eps)
            self._const(f"{name}.scale", scale)
            self._const(f"{name}.shift", bias - mean * scale)
        elif isinstance(m, torch.nn.Linear):
            self._const(f"{name}.w", m.weight.detach().cpu().numpy().T)
            if m.bias is not None:
                self._const(f"{name}.b", m.bias.detach().cpu().numpy())

    # --- layouts ---------------------------------------------------------------------------------------------

    def _torch(self, v):
        """``v`` in PyTorch's layout: an NHWC map transposed to NCHW; anything else as it is."""
        if not isinstance(v, _Nhwc):
            return v
        c = v.t.shape[3]
        if v.t.shape[1] == 1 and v.t.shape[2] == 1 and c is not None:
            return self.tf.reshape(v.t, [-1, c, 1, 1])  # after global pooling both layouts hold the same order
        return self.tf.transpose(v.t, [0, 3, 1, 2])

    def _shape(self, v) -> tuple:
        """PyTorch's ``x.shape`` of ``v``: ints where TF knows them when tracing, scalar tensors elsewhere."""
        t = v.t if isinstance(v, _Nhwc) else v
        static, dynamic = t.shape.as_list(), self.tf.shape(t)
        dims = tuple(d if d is not None else dynamic[i] for i, d in enumerate(static))
        return (dims[0], dims[3], dims[1], dims[2]) if isinstance(v, _Nhwc) else dims

    def _dims(self, dims: Sequence):
        """A shape for ``tf.reshape`` from PyTorch's arguments: a list of ints, or one tensor when any is dynamic."""
        if all(isinstance(d, int) for d in dims):
            return list(dims)
        return self.tf.stack([self.tf.cast(d, self.tf.int32) for d in dims])

    # --- ops -------------------------------------------------------------------------------------------------

    def _module(self, name: str, x):
        tf, m = self.tf, self.modules[name]
        if isinstance(m, torch.nn.Identity):
            return x
        if isinstance(m, torch.nn.ReLU):
            return self._relu(x)
        if isinstance(m, torch.nn.Linear):
            y = tf.matmul(self._torch(x), self.consts[f"{name}.w"])
            return y + self.consts[f"{name}.b"] if m.bias is not None else y
        if isinstance(m, torch.nn.Flatten):
            return self._flatten(x, m.start_dim, m.end_dim)
        if not isinstance(x, _Nhwc):
            raise NotImplementedError(f"{name}: {type(m).__name__} on a tensor that is not a 4-D feature map")
        return _Nhwc(self._spatial(name, m, x.t))

    def _spatial(self, name: str, m: torch.nn.Module, x):
        tf = self.tf
        if isinstance(m, torch.nn.Conv2d):
            (ph, pw), (sh, sw) = m.padding, m.stride
            # PyTorch pads both sides by the same amount; TF's "SAME" pads asymmetrically at stride 2, so pad here.
            x = tf.pad(x, [[0, 0], [ph, ph], [pw, pw], [0, 0]]) if ph or pw else x
            if m.groups == 1:
                y = tf.nn.conv2d(x, self.consts[f"{name}.w"], [1, sh, sw, 1], "VALID")
            else:
                y = tf.nn.depthwise_conv2d(x, self.consts[f"{name}.w"], [1, sh, sw, 1], "VALID")
            return y + self.consts[f"{name}.b"] if m.bias is not None else y
        if isinstance(m, torch.nn.BatchNorm2d):
            return x * self.consts[f"{name}.scale"] + self.consts[f"{name}.shift"]
        if isinstance(m, torch.nn.MaxPool2d):
            if m.ceil_mode or m.dilation not in (1, (1, 1)):
                raise NotImplementedError(f"{name}: max pooling with ceil_mode or dilation")
            (kh, kw), (sh, sw), (ph, pw) = (v if isinstance(v, tuple) else (v, v)
                                            for v in (m.kernel_size, m.stride, m.padding))
            x = tf.pad(x, [[0, 0], [ph, ph], [pw, pw], [0, 0]], constant_values=-np.inf) if ph or pw else x
            return tf.nn.max_pool2d(x, [kh, kw], [sh, sw], "VALID")
        if isinstance(m, torch.nn.AdaptiveAvgPool2d):
            if tuple(np.atleast_1d(m.output_size)) not in ((1,), (1, 1)):
                raise NotImplementedError(f"{name}: adaptive pooling to {m.output_size}")
            return tf.reduce_mean(x, axis=[1, 2], keepdims=True)
        raise NotImplementedError(f"{name}: no TF twin for {type(m).__name__}")

    def _relu(self, x):
        return _Nhwc(self.tf.nn.relu(x.t)) if isinstance(x, _Nhwc) else self.tf.nn.relu(x)

    def _flatten(self, x, start_dim: int = 0, end_dim: int = -1):  # PyTorch's argument names, for keywords
        dims = self._shape(x)
        start, end = start_dim % len(dims), end_dim % len(dims)
        if start == end:
            return self._torch(x)
        return self.tf.reshape(self._torch(x), self._dims([*dims[:start], -1, *dims[end + 1:]]))

    def _elementwise(self, fn, a, b):
        """``fn`` on two operands (tensors or numbers), in NHWC when no tensor operand is in PyTorch's layout."""
        tensors = [v for v in (a, b) if not isinstance(v, (int, float))]
        if all(isinstance(v, _Nhwc) for v in tensors):
            return _Nhwc(fn(*(v.t if isinstance(v, _Nhwc) else v for v in (a, b))))
        return fn(self._torch(a), self._torch(b))

    def _cat(self, tensors: Sequence, dim: int = 0):
        if all(isinstance(v, _Nhwc) for v in tensors) and dim % 4 == 1:  # channels: NHWC's last axis
            return _Nhwc(self.tf.concat([v.t for v in tensors], axis=3))
        parts = [self._torch(v) for v in tensors]
        return self.tf.concat(parts, axis=dim % len(parts[0].shape))

    def _method(self, name: str, x, args: list, kwargs: dict):
        tf = self.tf
        if name in ("reshape", "view"):
            dims = args[0] if len(args) == 1 and isinstance(args[0], (tuple, list)) else args
            return tf.reshape(self._torch(x), self._dims(dims))
        if name == "permute":
            dims = args[0] if len(args) == 1 and isinstance(args[0], (tuple, list)) else args
            return tf.transpose(self._torch(x), list(dims))
        if name == "transpose":
            t = self._torch(x)
            order = list(range(len(t.shape)))
            a, b = (d % len(order) for d in args)
            order[a], order[b] = order[b], order[a]
            return tf.transpose(t, order)
        if name == "flatten":
            return self._flatten(x, *args, **kwargs)
        if name == "contiguous":
            return x
        if name == "size":
            dims = self._shape(x)
            return dims[args[0]] if args else dims
        raise NotImplementedError(f"no TF twin for the tensor method .{name}()")

    def _function(self, fn, args: list, kwargs: dict):
        tf = self.tf
        if fn in (operator.add, operator.iadd, torch.add):
            return self._elementwise(tf.add, *args)
        if fn in (operator.mul, operator.imul, torch.mul):
            return self._elementwise(tf.multiply, *args)
        if fn is torch.flatten:
            return self._flatten(*args, **kwargs)
        if fn is torch.cat:
            return self._cat(*args, **kwargs)
        if fn in (torch.relu, torch.nn.functional.relu):
            return self._relu(args[0])
        if fn is getattr and args[1] == "shape":
            return self._shape(args[0])
        if fn is operator.getitem and isinstance(args[0], (tuple, list)):  # an item of a shape or of a list
            return args[0][args[1]]
        raise NotImplementedError(f"no TF twin for {getattr(fn, '__name__', fn)}")

    def __call__(self, x):
        """The model's outputs, in PyTorch's layout, for the NHWC batch ``x``."""
        env: dict[str, object] = {}
        placeholders = [n for n in self.graph.nodes if n.op == "placeholder"]
        if len(placeholders) != 1:
            raise NotImplementedError(f"the twin takes one input, the model {len(placeholders)}")
        for node in self.graph.nodes:
            args = torch.fx.node.map_arg(node.args, lambda n: env[n.name])
            kwargs = torch.fx.node.map_arg(node.kwargs, lambda n: env[n.name])
            if node.op == "placeholder":
                env[node.name] = _Nhwc(self.tf.convert_to_tensor(x, self.tf.float32))
            elif node.op == "call_module":
                env[node.name] = self._module(node.target, args[0])
            elif node.op == "call_method":
                env[node.name] = self._method(node.target, args[0], list(args[1:]), dict(kwargs))
            elif node.op == "call_function":
                env[node.name] = self._function(node.target, list(args), dict(kwargs))
            elif node.op == "output":
                return torch.fx.node.map_aggregate(args[0], self._torch)
            else:
                raise NotImplementedError(f"no TF twin for {node.op} {node.target}")
        raise ValueError("graph without output")


def save(model: torch.nn.Module, size: int, saved_model_dir: str | Path, tflite_path: str | Path | None = None, *,
         output_names: Sequence[str] = ("output",), channels: int = 3) -> None:
    """Write the twin of ``model`` as a SavedModel (``serving_default``: input ``input``, NHWC float32
    ``(batch, size, size, channels)``, any batch; outputs named ``output_names`` in the order the model returns
    them) and, unless ``tflite_path`` is None, the float32 TFLite converted from it."""
    tf = _tensorflow()
    twin = TfTwin(model, tf)
    names = list(output_names)

    def serve(x):
        outputs = twin(x)
        outputs = list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]
        if len(outputs) != len(names):
            raise ValueError(f"the model returns {len(outputs)} outputs, named {names}")
        return dict(zip(names, outputs, strict=True))

    module = tf.Module()
    module.consts = list(twin.consts.values())
    module.serve = tf.function(serve, input_signature=[
        tf.TensorSpec([None, size, size, channels], tf.float32, name=INPUT_NAME)])
    tf.saved_model.save(module, str(saved_model_dir), signatures={"serving_default": module.serve})
    if tflite_path is not None:
        # Default converter settings: no quantization, so the TFLite model computes in float32 as the SavedModel.
        Path(tflite_path).write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir)).convert())
