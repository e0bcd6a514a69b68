"""Backend registry: a name maps to a ``"module:Class"`` string, imported only when that backend is used.

A new backend is one module beside this file plus one line in :data:`BACKENDS`. A missing framework costs
nothing until its backend is asked for, and then fails with the package to install.
"""

from __future__ import annotations

import importlib

from loadgen.backends.base import Backend, BackendConfig, BackendError

BACKENDS: dict[str, str] = {
    "null": "loadgen.backends.null:NullBackend",
    "pytorch": "loadgen.backends.pytorch:PytorchBackend",
    "onnxruntime": "loadgen.backends.onnxruntime:OnnxRuntimeBackend",
    "tf": "loadgen.backends.tf:TensorflowBackend",
    "tflite": "loadgen.backends.tflite:TfliteBackend",
}

# The PyPI package that provides each framework, for the error a missing one gets.
_PACKAGES = {"pytorch": "torch", "onnxruntime": "onnxruntime", "tf": "tensorflow-cpu", "tflite": "ai-edge-litert"}


def backend_class(name: str) -> type[Backend]:
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r} (choose from {', '.join(BACKENDS)})")
    module_name, _, class_name = BACKENDS[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        package = _PACKAGES.get(name, exc.name)
        raise BackendError(f"backend {name!r} needs {package}: pip install -c constraints.txt {package}") from exc
    return getattr(module, class_name)


def create_backend(name: str, config: BackendConfig | None = None) -> Backend:
    return backend_class(name)(config or BackendConfig())


__all__ = ["BACKENDS", "Backend", "BackendConfig", "BackendError", "backend_class", "create_backend"]
