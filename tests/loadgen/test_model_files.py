"""Hostile model files: loading one must never run code from it, and a broken one is one BackendError line.

The proof that no code ran is a marker file that the payload would create (``os.system("touch ...")`` through
a pickle's ``__reduce__``, ``exec`` of guard code, a TF init op that writes a file). Every file is crafted here
in tmp_path from a tiny model; no binary blob is committed.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from loadgen.backends import BackendError, create_backend
from loadgen.training.checkpoint import CheckpointError, load_state, save_state

ROOT = Path(__file__).resolve().parents[2]


class Payload:
    """Unpickling this runs ``touch marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def one_line(exc: BaseException, path) -> str:
    text = str(exc)
    assert "\n" not in text, text
    assert str(path) in text
    return text


def rewrite_zip(src: Path, dst: Path, replace: dict[str, bytes], add: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(src) as old, zipfile.ZipFile(dst, "w") as new:
        for name in old.namelist():
            new.writestr(name, replace.get(name, old.read(name)))
        for name, data in (add or {}).items():
            new.writestr(name, data)
    return dst


@pytest.fixture(scope="module")
def tiny_pt2(tmp_path_factory) -> Path:
    import torch

    path = tmp_path_factory.mktemp("pt2") / "tiny.pt2"
    model = torch.nn.Linear(4, 2).eval()
    torch.export.save(torch.export.export(model, (torch.zeros(2, 4),)), path)
    return path


def member(path: Path, suffix: str) -> str:
    return next(n for n in zipfile.ZipFile(path).namelist() if n.endswith(suffix))


# --- .pt2 ----------------------------------------------------------------------------------------------------

def test_tiny_pt2_still_loads(tiny_pt2):
    backend = create_backend("pytorch").load(str(tiny_pt2))
    assert backend.predict([np.zeros((2, 4), np.float32)])[0].shape == (2, 2)


def test_pt2_with_a_pickle_payload_never_runs_it(tiny_pt2, tmp_path):
    import torch

    marker = tmp_path / "marker"
    payload = io.BytesIO()
    torch.save({"x": Payload(marker)}, payload)  # a valid torch.save archive whose pickle calls os.system
    bad = rewrite_zip(tiny_pt2, tmp_path / "bad.pt2", {member(tiny_pt2, "sample_inputs/model.pt"): payload.getvalue()})
    with pytest.raises(BackendError, match="refused.*unpickling") as err:
        create_backend("pytorch").load(str(bad))
    one_line(err.value, bad)
    assert not marker.exists()


def test_pt2_guards_code_is_never_executed(tiny_pt2, tmp_path):
    marker = tmp_path / "marker"
    name = member(tiny_pt2, "models/model.json")
    program = json.loads(zipfile.ZipFile(tiny_pt2).read(name))
    program["guards_code"] = [f"__import__('os').system('touch {marker}') == 0"]
    bad = rewrite_zip(tiny_pt2, tmp_path / "bad.pt2", {name: json.dumps(program).encode()})
    with pytest.raises(BackendError, match="guards_code"):
        create_backend("pytorch").load(str(bad))
    assert not marker.exists()


@pytest.mark.parametrize("edit", ["os-target", "sympy-eval", "pickled-weight", "legacy-weights", "aoti-library"])
def test_pt2_payloads_that_torch_would_run_are_refused(edit, tiny_pt2, tmp_path):
    zf = zipfile.ZipFile(tiny_pt2)
    root = zf.namelist()[0].split("/")[0]
    model_json, weights_json = member(tiny_pt2, "models/model.json"), member(tiny_pt2, "_weights_config.json")
    program, weights = json.loads(zf.read(model_json)), json.loads(zf.read(weights_json))
    replace, add = {}, {}
    if edit == "os-target":
        program["graph_module"]["graph"]["nodes"][0]["target"] = "torch.os.system"
    elif edit == "sympy-eval":
        program["graph_module"]["graph"]["nodes"][0]["inputs"].append(
            {"name": "n", "arg": {"as_sym_int": {"as_expr": {"expr_str": "__import__('os').getpid()"}}}})
    elif edit == "pickled-weight":
        next(iter(weights["config"].values()))["use_pickle"] = True
    elif edit == "legacy-weights":
        add[f"{root}/data/weights/model.pt"] = pickle.dumps(Payload(tmp_path / "marker"))
    else:
        add[f"{root}/data/aotinductor/model/model.so"] = b"\x7fELF"
    replace = {model_json: json.dumps(program).encode(), weights_json: json.dumps(weights).encode()}
    bad = rewrite_zip(tiny_pt2, tmp_path / "bad.pt2", replace, add)
    with pytest.raises(BackendError, match="refused") as err:
        create_backend("pytorch").load(str(bad))
    one_line(err.value, bad)
    assert not (tmp_path / "marker").exists()


@pytest.mark.parametrize("damage", ["garbage", "empty", "truncated", "tail-cut", "bad-json"])
@pytest.mark.parametrize("suffix", [".pt2", ".pt"])
def test_corrupt_torch_files_are_one_line_errors(damage, suffix, tiny_pt2, tmp_path):
    import torch

    if suffix == ".pt2":
        good = tiny_pt2.read_bytes()
    else:
        buf = io.BytesIO()
        torch.jit.save(torch.jit.script(torch.nn.Linear(4, 2)), buf)
        good = buf.getvalue()
    path = tmp_path / f"bad{suffix}"
    if damage == "bad-json" and suffix == ".pt2":
        rewrite_zip(tiny_pt2, path, {member(tiny_pt2, "models/model.json"): b"{not json"})
    else:
        path.write_bytes({"garbage": b"not a model " * 20, "empty": b"", "truncated": good[: len(good) // 2],
                          "tail-cut": good[:-30], "bad-json": good[: len(good) // 3]}[damage])
    with pytest.raises(BackendError) as err:
        create_backend("pytorch").load(str(path))
    one_line(err.value, path)


def test_torchscript_unpickler_does_not_run_pickled_code(tmp_path):
    import torch

    marker = tmp_path / "marker"
    good = tmp_path / "good.pt"
    torch.jit.script(torch.nn.Linear(4, 2)).save(str(good))
    bad = rewrite_zip(good, tmp_path / "bad.pt", {member(good, "/data.pkl"): pickle.dumps(Payload(marker), 2)})
    with pytest.raises(BackendError, match="torch cannot load it") as err:
        create_backend("pytorch").load(str(bad))
    one_line(err.value, bad)
    assert not marker.exists()


def test_cli_reports_a_bad_pt2_on_one_line_with_exit_2(tmp_path):
    bad = tmp_path / "bad.pt2"
    bad.write_bytes(b"garbage")
    proc = subprocess.run([sys.executable, "-m", "loadgen", "--backend", "pytorch", "--model", str(bad),
                           "--input-shape", "3,8,8", "--count", "4", "--time", "0.2"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m loadgen: error: ") and str(bad) in lines[0], lines


# --- ONNX ----------------------------------------------------------------------------------------------------

def tiny_onnx(path: Path, location: str | None = None) -> Path:
    import onnx
    from onnx import TensorProto, helper

    weight = helper.make_tensor("W", TensorProto.FLOAT, [4, 2], vals=np.ones(8, np.float32).tobytes(), raw=True)
    if location is not None:
        weight.ClearField("raw_data")
        weight.data_location = TensorProto.EXTERNAL
        weight.external_data.add(key="location", value=location)
        weight.external_data.add(key="length", value="32")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, path)
    return path


def test_onnx_with_its_own_external_data_loads(tmp_path):
    (tmp_path / "w.bin").write_bytes(np.full(8, 2, np.float32).tobytes())
    backend = create_backend("onnxruntime").load(str(tiny_onnx(tmp_path / "m.onnx", "w.bin")))
    np.testing.assert_allclose(backend.predict([np.ones((1, 4), np.float32)])[0], [[8.0, 8.0]])


@pytest.mark.parametrize("where", ["parent", "absolute", "symlink"])
def test_onnx_external_data_outside_the_model_folder_is_refused(where, tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"s" * 64)
    folder = tmp_path / "model"
    folder.mkdir()
    location = {"parent": "../secret.bin", "absolute": str(secret), "symlink": "link.bin"}[where]
    if where == "symlink":
        (folder / "link.bin").symlink_to(secret)
    path = tiny_onnx(folder / "m.onnx", location)
    with pytest.raises(BackendError, match="outside the model's folder") as err:
        create_backend("onnxruntime").load(str(path))
    one_line(err.value, path)


@pytest.mark.parametrize("damage", ["garbage", "empty", "truncated"])
def test_corrupt_onnx_is_a_one_line_error(damage, tmp_path):
    good = tiny_onnx(tmp_path / "good.onnx").read_bytes()
    path = tmp_path / "bad.onnx"
    path.write_bytes({"garbage": b"\xff" * 64, "empty": b"", "truncated": good[: len(good) // 2]}[damage])
    with pytest.raises(BackendError) as err:
        create_backend("onnxruntime").load(str(path))
    one_line(err.value, path)


# --- safetensors checkpoints, .npy ---------------------------------------------------------------------------

@pytest.mark.parametrize("damage", ["lying-offsets", "huge-header", "truncated", "empty", "bad-json", "json-list"])
def test_corrupt_checkpoint_is_a_checkpoint_error(damage, tmp_path):
    import torch

    save_state({"w": torch.zeros(4, 4)}, {"model": "x"}, tmp_path)
    weights, meta = tmp_path / "model.safetensors", tmp_path / "model.json"
    blob = weights.read_bytes()
    size = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + size])
    if damage == "lying-offsets":
        header["w"]["data_offsets"] = [0, 10 ** 9]
        text = json.dumps(header).encode()
        weights.write_bytes(struct.pack("<Q", len(text)) + text + blob[8 + size:])
    elif damage == "huge-header":
        weights.write_bytes(struct.pack("<Q", 1 << 60) + b"{}")
    elif damage == "truncated":
        weights.write_bytes(blob[:-10])
    elif damage == "empty":
        weights.write_bytes(b"")
    else:
        meta.write_text("{oops" if damage == "bad-json" else "[1, 2]")
    with pytest.raises(CheckpointError) as err:
        load_state(tmp_path)
    assert "\n" not in str(err.value) and str(tmp_path) in str(err.value)


def test_object_npy_is_refused_without_unpickling(tmp_path):
    # The suite's np.load calls (image cache, DLRM counts) leave allow_pickle at numpy's default, False.
    marker = tmp_path / "marker"
    np.save(tmp_path / "obj.npy", np.array([Payload(marker)], dtype=object), allow_pickle=True)
    for mode in (None, "r"):
        with pytest.raises(ValueError, match="allow_pickle=False|Python objects") as err:
            np.load(tmp_path / "obj.npy", mmap_mode=mode)
        assert "\n" not in str(err.value)
    assert not marker.exists()


# --- TF SavedModel, TFLite -----------------------------------------------------------------------------------

def test_savedmodel_init_op_that_writes_a_file_is_refused(tmp_path):
    import importlib

    from loadgen.backends.tf import tf  # first: it orders TensorFlow after Triton and quiets it

    saved_model_pb2 = importlib.import_module("tensorflow.core.protobuf.saved_model_pb2")
    marker = tmp_path / "marker"
    graph = tf.Graph()
    with graph.as_default():
        write = tf.io.write_file(str(marker), "x")
    saved = saved_model_pb2.SavedModel()
    meta = saved.meta_graphs.add()
    meta.graph_def.CopyFrom(graph.as_graph_def())
    meta.meta_info_def.tags.append("serve")
    meta.signature_def["__saved_model_init_op"].outputs["__saved_model_init_op"].name = write.name
    folder = tmp_path / "crafted"
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(saved.SerializeToString())
    with pytest.raises(BackendError, match="refused.*WriteFile"):
        create_backend("tf").load(str(folder))
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["garbage-pb", "empty-pb", "no-pb", "variables-missing"])
def test_broken_savedmodel_is_a_one_line_error(damage, tmp_path):
    from loadgen.backends.tf import tf

    folder = tmp_path / "sm"
    if damage == "variables-missing":
        module = tf.Module()
        module.v = tf.Variable(2.0)
        module.f = tf.function(lambda x: {"y": x * module.v},
                               input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        tf.saved_model.save(module, str(folder), signatures={"serving_default": module.f})
        for f in (folder / "variables").iterdir():
            f.write_bytes(b"junk")
    else:
        folder.mkdir()
        if damage != "no-pb":
            (folder / "saved_model.pb").write_bytes(b"\x12\x34garbage" if damage == "garbage-pb" else b"")
    with pytest.raises(BackendError) as err:
        create_backend("tf").load(str(folder))
    assert "\n" not in str(err.value) and str(folder) in str(err.value)


@pytest.mark.parametrize("damage", ["garbage", "empty", "truncated"])
def test_corrupt_tflite_is_a_one_line_error(damage, tmp_path):
    # A valid flatbuffer header followed by nothing stands in for a cut-off model.
    path = tmp_path / "bad.tflite"
    path.write_bytes({"garbage": b"garbage" * 10, "empty": b"", "truncated": b"\x1c\x00\x00\x00TFL3" + b"\x00" * 8}
                     [damage])
    with pytest.raises(BackendError) as err:
        create_backend("tflite").load(str(path))
    one_line(err.value, path)


def test_tensorflow_start_up_chatter_is_quiet(tmp_path):
    script = (
        "import sys\n"
        "from loadgen.backends.tf import tf\n"
        "from loadgen.backends import create_backend\n"
        "m = tf.Module()\n"
        "spec = [tf.TensorSpec([None, 4], tf.float32, name='x')]\n"
        "m.f = tf.function(lambda x: {'y': x * 2.0}, input_signature=spec)\n"
        f"tf.saved_model.save(m, {str(tmp_path / 'sm')!r}, signatures={{'serving_default': m.f}})\n"
        f"create_backend('tf').load({str(tmp_path / 'sm')!r})\n"
        "print('loaded')\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "MLPERF_TF_VERBOSE")}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=300)
    assert proc.returncode == 0 and "loaded" in proc.stdout, proc.stderr
    for noise in ("oneDNN", "cpu_feature_guard", "absl::InitializeLog"):
        assert noise not in proc.stderr, proc.stderr


@pytest.mark.parametrize(("env", "level"), [({}, "2"), ({"TF_CPP_MIN_LOG_LEVEL": "0"}, "0"),
                                            ({"MLPERF_TF_VERBOSE": "1"}, None)])
def test_quiet_tensorflow_keeps_the_users_choice(env, level, monkeypatch):
    from loadgen.backends.quiet import quiet_tensorflow

    for key in ("TF_CPP_MIN_LOG_LEVEL", "MLPERF_TF_VERBOSE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    quiet_tensorflow()
    assert os.environ.get("TF_CPP_MIN_LOG_LEVEL") == level


# --- export entry points -------------------------------------------------------------------------------------

@pytest.mark.parametrize("module", ["image_classification.export", "recommendation.export"])
def test_export_with_a_missing_checkpoint_is_a_usage_error(module, tmp_path):
    proc = subprocess.run([sys.executable, "-m", module, "--checkpoint", str(tmp_path / "MISSING")],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0] and "MISSING" in lines[0], lines


@pytest.mark.parametrize("module", ["image_classification.export", "recommendation.export"])
@pytest.mark.parametrize("damage", ["weights", "meta"])
def test_export_with_a_corrupt_checkpoint_fails_in_one_line(module, damage, tmp_path, capsys):
    import importlib

    import torch

    save_state({"w": torch.zeros(2)}, {"model": "resnet50", "num_classes": 4}, tmp_path)
    if damage == "weights":
        (tmp_path / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    else:
        (tmp_path / "model.json").write_text("{broken")
    export = importlib.import_module(module)
    assert export.main(export.get_args_parser().parse_args(["--checkpoint", str(tmp_path)])) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("export: error: ") and str(tmp_path) in err[0], err


@pytest.mark.parametrize("shown", [False, True], ids=["default", "framework-logs"])
def test_framework_logs_flag_shows_what_is_hidden_by_default(tmp_path, shown):
    from loadgen.backends.tf import tf  # TensorFlow through the backend, which loads Triton first (see tf.py)

    m = tf.Module()
    m.f = tf.function(lambda x: {"y": x * 2.0}, input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
    tf.saved_model.save(m, str(tmp_path / "sm"), signatures={"serving_default": m.f})
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "MLPERF_TF_VERBOSE")}
    proc = subprocess.run([sys.executable, "-m", "loadgen", "--backend", "tf", "--model", str(tmp_path / "sm"),
                           "--model-name", "m", "--input-shape", "4", "--scenario", "Offline", "--accuracy",
                           "--count", "8", "--output", str(tmp_path / "out"),
                           *(["--framework-logs"] if shown else [])],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert ("oneDNN" in proc.stderr) == shown, proc.stderr
