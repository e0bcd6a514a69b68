"""One tiny model, built here and exported to every format, through LoadGen on each real backend.

The outputs of every backend must agree with PyTorch's within float tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest

from loadgen.backends import BACKENDS, BackendConfig, BackendError, create_backend
from loadgen.harness import InMemoryTask, run
from loadgen.settings import RunSettings
from tests.loadgen.conftest import accuracy_entries, decode

FEATURES, HIDDEN, CLASSES, SAMPLES = 8, 16, 4, 40
REAL_BACKENDS = [b for b in BACKENDS if b != "null"]


def sample(i: int) -> np.ndarray:
    return np.random.default_rng([7, i]).standard_normal(FEATURES).astype(np.float32)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """{backend: model path} for a 2-layer MLP exported from PyTorch, plus PyTorch's own outputs."""
    import torch

    from loadgen.backends.tf import tf  # imported through the backend, which orders it after Triton

    root = tmp_path_factory.mktemp("tiny")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(FEATURES, HIDDEN), torch.nn.ReLU(),
                                torch.nn.Linear(HIDDEN, CLASSES)).eval()
    x = torch.from_numpy(np.stack([sample(i) for i in range(SAMPLES)]))
    with torch.no_grad():
        expected = model(x).numpy()

    batch = torch.export.Dim("batch", min=1, max=1024)
    torch.export.save(torch.export.export(model, (x[:2],), dynamic_shapes=({0: batch},)), root / "tiny.pt2")
    torch.onnx.export(model, (x[:2],), root / "tiny.onnx", dynamo=False, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})

    # TensorFlow twin with the same weights (torch Linear stores W as out x in; TF computes x @ W).
    w1, b1, w2, b2 = (p.detach().numpy() for p in model.parameters())

    class Twin(tf.Module):
        def __init__(self):
            super().__init__()
            self.w1, self.b1 = tf.Variable(w1.T), tf.Variable(b1)
            self.w2, self.b2 = tf.Variable(w2.T), tf.Variable(b2)

        @tf.function(input_signature=[tf.TensorSpec([None, FEATURES], tf.float32, name="x")])
        def __call__(self, x):
            return {"y": tf.nn.relu(x @ self.w1 + self.b1) @ self.w2 + self.b2}

    twin = Twin()
    tf.saved_model.save(twin, str(root / "tiny_savedmodel"), signatures={"serving_default": twin.__call__})
    converter = tf.lite.TFLiteConverter.from_saved_model(str(root / "tiny_savedmodel"))
    (root / "tiny.tflite").write_bytes(converter.convert())
    paths = {"pytorch": root / "tiny.pt2", "onnxruntime": root / "tiny.onnx", "tf": root / "tiny_savedmodel",
             "tflite": root / "tiny.tflite"}
    return {k: str(v) for k, v in paths.items()}, expected


@pytest.mark.parametrize(("scenario", "backend_name"),
                         [(s, b) for b in REAL_BACKENDS for s in ("Offline", "SingleStream")],
                         ids=[f"cpu-{s}-{b}-tiny" for b in REAL_BACKENDS for s in ("Offline", "SingleStream")])
def test_backend_through_loadgen_matches_pytorch(backend_name, scenario, tiny_models, tmp_path):
    paths, expected = tiny_models
    backend = create_backend(backend_name, BackendConfig(device="cpu", threads=1)).load(paths[backend_name])
    task = InMemoryTask(sample, SAMPLES, SAMPLES)
    rs = RunSettings(model="resnet50", scenario=scenario, accuracy=True)
    run(task, backend, rs, tmp_path, max_batchsize=16)
    entries = accuracy_entries(tmp_path / "mlperf_log_accuracy.json")
    assert sorted(e["qsl_idx"] for e in entries) == list(range(SAMPLES))
    got = np.stack([decode(e, np.float32) for e in sorted(entries, key=lambda e: e["qsl_idx"])])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend_name", REAL_BACKENDS)
def test_missing_model_is_a_clear_error(backend_name, tmp_path):
    with pytest.raises(BackendError, match="not found"):
        create_backend(backend_name).load(str(tmp_path / "absent.model"))


def test_unknown_output_name_is_refused(tiny_models):
    paths, _ = tiny_models
    with pytest.raises(BackendError, match="no output named logits"):
        create_backend("onnxruntime", BackendConfig(outputs=("logits",))).load(paths["onnxruntime"])


@pytest.mark.parametrize("backend_name", ["onnxruntime", "tf"])
def test_named_inputs_and_outputs_are_selected(backend_name, tiny_models):
    paths, expected = tiny_models
    names = {"onnxruntime": ("x", "y"), "tf": ("x", "y")}[backend_name]
    backend = create_backend(backend_name, BackendConfig(inputs=names[:1], outputs=names[1:]))
    out = backend.load(paths[backend_name]).predict([np.stack([sample(i) for i in range(3)])])
    assert len(out) == 1
    np.testing.assert_allclose(out[0], expected[:3], rtol=1e-4, atol=1e-5)


def test_threads_reach_onnxruntime(tiny_models):
    paths, _ = tiny_models
    backend = create_backend("onnxruntime", BackendConfig(threads=3)).load(paths["onnxruntime"])
    assert backend.session.get_session_options().intra_op_num_threads == 3


def test_gpu_without_cuda_is_refused(tiny_models):
    paths, _ = tiny_models
    with pytest.raises(BackendError, match="gpu"):
        create_backend("onnxruntime", BackendConfig(device="gpu")).load(paths["onnxruntime"])


def test_tflite_outputs_follow_the_signature_keys(tmp_path):
    # Two outputs of different shapes: the backend lists them by the serving signature's sorted keys, as the tf
    # backend does, whatever order the converter gave the flat tensor list (SSD's came out scores first).
    from loadgen.backends.tf import tf

    class TwoOutputs(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="image")])
        def __call__(self, x):
            return {"scores": tf.concat([x, x + 1.0, x + 2.0], axis=1), "locs": x * 2.0}

    module = TwoOutputs()
    tf.saved_model.save(module, str(tmp_path / "sm"), signatures={"serving_default": module.__call__})
    (tmp_path / "two.tflite").write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "sm")).convert())
    backend = create_backend("tflite", BackendConfig()).load(str(tmp_path / "two.tflite"))
    assert backend.input_names == ["image"] and backend.output_names == ["locs", "scores"]
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    locs, scores = backend.predict([x])
    np.testing.assert_array_equal(locs, x * 2)
    assert scores.shape == (3, 12)
    only = create_backend("tflite", BackendConfig(outputs=("scores",))).load(str(tmp_path / "two.tflite"))
    assert only.predict([x[:1]])[0].shape == (1, 12)
