"""Every benchmark's run_and_time.sh, inference form (loadgen/deploy/launch.py): with a fake ``docker`` first on PATH
that records its arguments, check the build and run command lines; and the native paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = sorted(p.parent.name for p in REPO.glob("*/run_and_time.sh"))
# Each benchmark's positional inference arguments, device last (run_local.sh's order).
EXAMPLE = {"image_classification": ["onnxruntime", "resnet50"], "recommendation": ["onnxruntime", "dlrm", "terabyte"],
           "single_stage_detector": ["onnxruntime", "ssd-mobilenet"], "object_detection": ["onnxruntime", "retinanet"],
           "translation": ["onnxruntime", "gnmt"]}

FAKE_DOCKER = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["FAKE_DOCKER_LOG"], "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
sys.exit(0 if sys.argv[1:2] != ["info"] or os.environ.get("FAKE_DOCKER_UP") == "1" else 1)
"""


def test_every_benchmark_has_an_example():
    assert BENCHMARKS and set(BENCHMARKS) == set(EXAMPLE)


def launch(tmp_path: Path, bench: str, args: list[str], docker_up: bool, **env: str):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    log = tmp_path / "docker.log"
    full_env = {k: v for k, v in os.environ.items() if k not in ("DATA_DIR", "MODEL_DIR", "MLPERF_LAUNCH")}
    full_env.update(PATH=f"{bin_dir}:{os.environ['PATH']}", FAKE_DOCKER_LOG=str(log),
                    FAKE_DOCKER_UP="1" if docker_up else "0", **env)
    proc = subprocess.run([str(REPO / bench / "run_and_time.sh"), *args], capture_output=True, text=True,
                          timeout=60, env=full_env)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return proc, calls


def mounts(run: list[str]) -> dict[str, str]:
    """container path -> host path[:ro] of each -v."""
    out = {}
    for i, a in enumerate(run):
        if a == "-v":
            host, container, *mode = run[i + 1].split(":")
            out[container] = host + (":" + mode[0] if mode else "")
    return out


@pytest.mark.parametrize("device", ["cpu", "gpu"])
@pytest.mark.parametrize("bench", BENCHMARKS)
def test_docker_build_and_run_command_lines(bench, device, tmp_path):
    data, models = tmp_path / "data", tmp_path / "models"
    data.mkdir()
    models.mkdir()
    args = [*EXAMPLE[bench], device, "--scenario", "Offline", "--count", "8"]
    proc, calls = launch(tmp_path, bench, args, docker_up=True, DATA_DIR=str(data), MODEL_DIR=str(models))
    assert proc.returncode == 0, proc.stderr
    assert [c[0] for c in calls] == ["info", "build", "build", "run"]
    base, build, run = calls[1], calls[2], calls[3]
    image = f"mlperf-{bench}:{device}"
    # The suite's base image first, then the benchmark's layer on it; the context of both is the repo root.
    assert base[base.index("-f") + 1] == "loadgen/deploy/Dockerfile" and base[-1] == "."
    assert f"VARIANT={device}" in base and base[base.index("-t") + 1] == f"mlperf-suite:{device}"
    assert build[build.index("-f") + 1] == f"{bench}/Dockerfile" and build[-1] == "."
    assert f"VARIANT={device}" in build and build[build.index("-t") + 1] == image
    assert run[run.index(image) + 1:] == args  # the arguments pass through unchanged, after the image
    assert run[run.index("-u") + 1] == f"{os.getuid()}:{os.getgid()}"
    assert mounts(run) == {"/work/results": str(REPO / "results"), "/data": f"{data}:ro", "/models": f"{models}:ro"}
    assert "DATA_DIR=/data" in run and "MODEL_DIR=/models" in run
    assert (run[run.index("--gpus") + 1] == "all") if device == "gpu" else "--gpus" not in run
    assert f"running in Docker, image {image}" in proc.stderr


@pytest.mark.parametrize("bench", BENCHMARKS)
def test_native_is_forced_by_flag_or_inside_the_image(bench, tmp_path):
    # Too few arguments for run_local.sh: it answers with its usage line, which shows it was reached.
    for args, env in ((["--native", "onnxruntime"], {}), (["onnxruntime"], {"MLPERF_LAUNCH": "native"})):
        proc, calls = launch(tmp_path, bench, args, docker_up=True, **env)
        assert proc.returncode == 2 and "usage:" in proc.stderr
        assert not [c for c in calls if c[0] in ("build", "run")]
        assert "no Docker engine" not in proc.stderr


@pytest.mark.parametrize("bench", BENCHMARKS)
def test_without_an_engine(bench, tmp_path):
    proc, calls = launch(tmp_path, bench, ["--docker", *EXAMPLE[bench], "cpu"], docker_up=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "run_and_time.sh: error: --docker given, but no Docker engine answers `docker info`"
    proc, calls = launch(tmp_path, bench, ["onnxruntime"], docker_up=False)
    assert proc.stderr.splitlines()[0] == "run_and_time.sh: no Docker engine reachable, running natively"
    assert proc.returncode == 2 and "usage:" in proc.stderr


@pytest.mark.parametrize("bench", BENCHMARKS)
def test_explicit_verbs_and_the_known_forms(bench, tmp_path):
    # Each form reaches its entry point, shown by that entry point's own usage error (exit 2, one line).
    train = f"python -m {bench}.train: error: argument --epochs"
    for args, expected in ((["train", "--epochs", "-1"], train), (["--epochs", "-1"], train),
                           (["infer", "--native", "onnxruntime"], "run_and_time.sh: error: usage: run_local.sh"),
                           (["--native", "onnxruntime"], "run_and_time.sh: error: usage: run_local.sh")):
        proc, _ = launch(tmp_path, bench, args, docker_up=False)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith(expected), (args, proc.stderr)


@pytest.mark.parametrize("script", ["run_local.sh", "download_dataset.sh"])
@pytest.mark.parametrize("bench", BENCHMARKS)
def test_scripts_without_their_arguments_print_usage(bench, script):
    if script == "download_dataset.sh" and json.loads((REPO / bench / "launch.json").read_text()).get(
            "data_dir_optional"):
        pytest.skip("its download has a default folder (test_download_without_a_folder_takes_the_commands_default)")
    proc = subprocess.run([str(REPO / bench / script)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith(f"{script}: error: usage: {script} "), proc.stderr


def test_download_without_a_folder_takes_the_commands_default():
    # translation's users run `cd translation && ./download_dataset.sh`: no folder, the download's own default.
    from loadgen.deploy import scripts

    assert scripts.download_command("translation", [])[-2:] == ["translation.data", "download"]
    assert scripts.download_command("translation", ["--dataset", "wmt17"])[-3:] == ["download", "--dataset", "wmt17"]
    assert scripts.download_command("translation", ["d"])[-3:] == ["download", "--data-dir", "d"]
    with pytest.raises(scripts.Usage):  # a folder without the flag still needs one
        scripts.download_command("object_detection", ["--only", "annotations"])


def test_the_launcher_needs_only_the_standard_library():
    # A Docker host runs run_and_time.sh with any python3, without the suite's virtual environment.
    code = ("import sys; import loadgen.deploy.scripts, loadgen.deploy.launch, loadgen.deploy.backendai; "
            "print(sorted({m.split('.')[0] for m in sys.modules} - set(sys.stdlib_module_names)"
            " - {'loadgen', '__main__'}))")
    proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr
