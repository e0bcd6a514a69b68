"""COCO 2017 download and verify for object_detection (the shared loadgen.data.coco_cli command with this folder's
manifest) against COCO-shaped archives served from 127.0.0.1, through the folder's own scripts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from loadgen.data.coco_files import FilesManifest, sha256_prefix
from object_detection import data
from object_detection.data import cli
from tests.coco_mirror import MINIVAL, REPO, SCRIPT_ENV, VAL, WEIGHTS, serving


@pytest.fixture
def mirror(tmp_path):
    with serving(data.FILES_MANIFEST, tmp_path) as server:
        yield server


def test_the_manifest_holds_the_published_checksums_and_the_resnet50():
    files = FilesManifest.load(data.FILES_MANIFEST)
    assert {k: a.md5 for k, a in files.archives.items()} == {
        "annotations": "f4bbac642086de4f52a3fdda2de5fa2c", "train2017": "cced6f7f71b7629ddf16f17bbcfab6b2",
        "val2017": "442b8da7639aecaf257c1dceb8ba8c80", "minival": "2d2b9d2283adb5e3b8d25eec88e65064"}
    assert files.archives["minival"].optional and files.archives["minival"].files == MINIVAL
    assert files.weights_url == "https://download.pytorch.org/models/resnet50-0676ba61.pth"
    assert sha256_prefix(files.weights_url) == "0676ba61"
    assert cli.COMMAND.parts == ("annotations", "train2017", "val2017", "minival", "weights")
    assert cli.COMMAND.default_parts == ("annotations", "train2017", "val2017", "weights")  # minival on request


def test_minival_joins_the_annotations_folder_on_request(mirror, tmp_path):
    data_dir = tmp_path / "coco"
    argv = ["download", "--data-dir", data_dir, "--manifest", mirror.manifest, "--base-url", mirror.url + "/",
            "--weights-url", mirror.weights_url]
    assert cli.main(cli.get_args_parser().parse_args([str(a) for a in argv])) == 0
    assert not any((data_dir / "annotations" / name).exists() for name in MINIVAL)  # not fetched by default
    only = [*argv, "--only", "minival"]
    assert cli.main(cli.get_args_parser().parse_args([str(a) for a in only])) == 0
    names = sorted(p.name for p in (data_dir / "annotations").iterdir())
    assert names == sorted(["instances_train2017.json", "instances_val2017.json", *MINIVAL])
    mirror.requests.clear()
    assert cli.main(cli.get_args_parser().parse_args([str(a) for a in only])) == 0
    assert mirror.requests == []  # both files there: not a request


def test_download_through_the_scripts_and_verify(mirror, tmp_path):
    data_dir = tmp_path / "coco"
    proc = subprocess.run([str(REPO / "object_detection" / "download_dataset.sh"), str(data_dir), "--manifest",
                           str(mirror.manifest), "--base-url", mirror.url + "/", "--weights-url", mirror.weights_url],
                          capture_output=True, text=True, env=SCRIPT_ENV, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in data_dir.iterdir()) == ["annotations", "archives", "pretrained", "train2017",
                                                          "val2017"]
    assert sorted(p.name for p in (data_dir / "val2017").iterdir()) == sorted(VAL)
    assert (data_dir / "pretrained" / Path(mirror.weights_url).name).read_bytes() == WEIGHTS
    assert Path(mirror.weights_url).name.startswith("resnet50-")
    verify = [str(REPO / "object_detection" / "verify_dataset.sh"), str(data_dir), "--manifest",
              str(mirror.manifest), "--weights-dir", str(data_dir / "pretrained"), "--expected-counts", "annotations"]
    ok = subprocess.run(verify, capture_output=True, text=True, env=SCRIPT_ENV, timeout=120)
    assert ok.returncode == 0 and f"{data_dir}: OK" in ok.stdout, ok.stderr
    corrupt = data_dir / "val2017" / "000000000285.jpg"
    corrupt.write_bytes(corrupt.read_bytes()[:-40])
    (data_dir / "archives" / "val2017.zip").write_bytes(b"not the archive")
    bad = subprocess.run(verify, capture_output=True, text=True, env=SCRIPT_ENV, timeout=120)
    assert bad.returncode == 1, bad.stderr
    assert f"bad: {corrupt}: cannot decode image (" in bad.stderr  # every bad file named
    assert "val2017.zip" in bad.stderr


def test_verify_defaults_to_the_mini_set(tmp_path):
    from object_detection import mini

    mini.ensure()  # what training and the demo build on first use
    proc = subprocess.run([str(REPO / "object_detection" / "verify_dataset.sh"), "--no-checksums"],
                          capture_output=True, text=True, env=SCRIPT_ENV, timeout=300)
    assert proc.returncode == 0 and "build/object_detection/mini: OK" in proc.stdout, proc.stdout + proc.stderr
