"""COCO 2017 download and verify (single_stage_detector.data) against COCO-shaped archives served from 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
from pathlib import Path

import pytest

from single_stage_detector import data
from single_stage_detector.data import cli
from tests.coco_mirror import REPO, SCRIPT_ENV, TRAIN, VAL, WEIGHTS, coco_tree, instances, jpeg, serving, write_zip
from tests.loadgen.data_helpers import assert_one_line_error, run_cli


@pytest.fixture
def mirror(tmp_path):
    with serving(data.FILES_MANIFEST, tmp_path) as server:
        yield server


def download(mirror, data_dir: Path, *extra: str, capsys):
    return run_cli(cli, ["download", "--data-dir", str(data_dir), "--manifest", str(mirror.manifest),
                         "--base-url", mirror.url, "--weights-url", mirror.weights_url, *extra], capsys)


def test_the_manifest_holds_the_published_checksums():
    files = data.FilesManifest.load(data.FILES_MANIFEST)
    assert {k: a.md5 for k, a in files.archives.items()} == {
        "annotations": "f4bbac642086de4f52a3fdda2de5fa2c", "train2017": "cced6f7f71b7629ddf16f17bbcfab6b2",
        "val2017": "442b8da7639aecaf257c1dceb8ba8c80"}
    assert {a.extracts_to for a in files.archives.values()} == {"annotations", "train2017", "val2017"}
    assert all(a.url.startswith("http://images.cocodataset.org/") for a in files.archives.values())
    assert data.sha256_prefix(files.weights_url) == "333f7ec4"


def test_download_through_the_scripts_and_verify(mirror, tmp_path):
    data_dir = tmp_path / "coco"
    proc = subprocess.run([str(REPO / "single_stage_detector" / "download_dataset.sh"), str(data_dir), "--manifest",
                           str(mirror.manifest), "--base-url", mirror.url + "/", "--weights-url", mirror.weights_url],
                          capture_output=True, text=True, env=SCRIPT_ENV, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in data_dir.iterdir()) == ["annotations", "archives", "pretrained", "train2017",
                                                          "val2017"], "no partial folders left behind"
    assert sorted(p.name for p in (data_dir / "val2017").iterdir()) == sorted(VAL)
    assert sorted(p.name for p in (data_dir / "annotations").iterdir()) == ["instances_train2017.json",
                                                                             "instances_val2017.json"]
    assert (data_dir / "pretrained" / Path(mirror.weights_url).name).read_bytes() == WEIGHTS
    assert sorted(mirror.paths()) == sorted(["/annotations_trainval2017.zip", "/train2017.zip", "/val2017.zip",
                                             "/" + Path(mirror.weights_url).name]), "every file from the mirror"
    verify = [str(REPO / "single_stage_detector" / "verify_dataset.sh"), str(data_dir), "--manifest",
              str(mirror.manifest), "--weights-dir", str(data_dir / "pretrained")]
    ok = subprocess.run([*verify, "--expected-counts", "annotations"], capture_output=True, text=True, env=SCRIPT_ENV,
                        timeout=120)
    assert ok.returncode == 0 and f"{data_dir}: OK" in ok.stdout, ok.stderr
    # COCO 2017's own counts are the default: this tiny set is not COCO.
    real = subprocess.run(verify, capture_output=True, text=True, env=SCRIPT_ENV, timeout=120)
    assert real.returncode == 1 and "3 .jpg files, expected 118287" in real.stderr
    assert "2 .jpg files, expected 5000" in real.stderr
    corrupt = data_dir / "val2017" / "000000000285.jpg"
    corrupt.write_bytes(corrupt.read_bytes()[:-40])
    bad = subprocess.run([*verify, "--expected-counts", "annotations"], capture_output=True, text=True, env=SCRIPT_ENV,
                         timeout=120)
    lines = bad.stderr.splitlines()
    assert bad.returncode == 1 and len(lines) == 1 and lines[0].startswith(f"bad: {corrupt}: cannot decode image ("), \
        bad.stderr


def test_a_second_run_requests_nothing(mirror, tmp_path, capsys):
    data_dir = tmp_path / "coco"
    assert download(mirror, data_dir, capsys=capsys)[0] == 0
    before = len(mirror.requests)
    code, _ = download(mirror, data_dir, capsys=capsys)
    assert code == 0 and len(mirror.requests) == before
    assert sorted(p.name for p in (data_dir / "train2017").iterdir()) == sorted(TRAIN)


def test_only_the_named_parts_from_the_manifest_urls(mirror, tmp_path, capsys):
    # Without --base-url the manifest's URLs are used: here they point at the local server.
    spec = json.loads(mirror.manifest.read_text())
    for item in spec["archives"].values():
        item["url"] = f"{mirror.url}/{item['file']}"
    mirror.manifest.write_text(json.dumps(spec))
    data_dir = tmp_path / "coco"
    code, err = run_cli(cli, ["download", "--data-dir", str(data_dir), "--manifest", str(mirror.manifest),
                              "--only", "val2017,annotations", "--delete-archives"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in data_dir.iterdir()) == ["annotations", "archives", "val2017"]
    assert not list((data_dir / "archives").iterdir()), "--delete-archives removes each once extracted"
    assert sorted(mirror.paths()) == ["/annotations_trainval2017.zip", "/val2017.zip"]


def test_a_wrong_checksum_is_refused_in_one_line(mirror, tmp_path, capsys):
    spec = json.loads(mirror.manifest.read_text())
    spec["archives"]["val2017"]["md5"] = "0" * 32
    mirror.manifest.write_text(json.dumps(spec))
    data_dir = tmp_path / "coco"
    code, err = download(mirror, data_dir, "--only", "val2017", capsys=capsys)
    assert_one_line_error(code, err, 1, "val2017.zip", "md5", "0" * 32)
    assert not (data_dir / "val2017").exists() and not (data_dir / "archives" / "val2017.zip").exists()
    assert not list((data_dir / "archives").iterdir()), "the refused bytes are not kept to resume from"


def test_a_partial_file_is_resumed(mirror, tmp_path, capsys):
    data_dir = tmp_path / "coco"
    whole = (mirror.folder / "val2017.zip").read_bytes()
    (data_dir / "archives").mkdir(parents=True)
    (data_dir / "archives" / "val2017.zip.part").write_bytes(whole[:1000])
    code, err = download(mirror, data_dir, "--only", "val2017", capsys=capsys)
    assert code == 0, err
    assert mirror.requests == [("/val2017.zip", "bytes=1000-")]
    assert (data_dir / "archives" / "val2017.zip").read_bytes() == whole
    assert sorted(p.name for p in (data_dir / "val2017").iterdir()) == sorted(VAL)


def test_weights_whose_hash_does_not_match_their_name_are_refused(mirror, tmp_path, capsys):
    (mirror.folder / "resnet34-333f7ec4.pth").write_bytes(WEIGHTS)
    data_dir = tmp_path / "coco"
    code, err = download(mirror, data_dir, "--only", "weights", "--weights-url",
                         f"{mirror.url}/resnet34-333f7ec4.pth", capsys=capsys)
    assert_one_line_error(code, err, 1, "resnet34-333f7ec4.pth", "expected it to start with 333f7ec4")
    assert not list((data_dir / "pretrained").iterdir())


def test_an_archive_without_its_folder_or_beyond_the_disk_is_refused(mirror, tmp_path, capsys):
    write_zip(mirror.folder / "val2017.zip", {"images/000000000139.jpg": b"x"})
    spec = json.loads(mirror.manifest.read_text())
    spec["archives"]["val2017"]["md5"] = hashlib.md5((mirror.folder / "val2017.zip").read_bytes()).hexdigest()
    spec["archives"]["train2017"]["bytes"] = 10**18
    mirror.manifest.write_text(json.dumps(spec))
    data_dir = tmp_path / "coco"
    code, err = download(mirror, data_dir, "--only", "val2017", capsys=capsys)
    assert_one_line_error(code, err, 1, "val2017.zip", "no val2017/ folder", "images")
    assert sorted(p.name for p in data_dir.iterdir()) == ["archives"], "no partial folder left"
    code, err = download(mirror, data_dir, "--only", "train2017", capsys=capsys)
    assert_one_line_error(code, err, 1, "GB more are needed for train2017.zip")
    assert "/train2017.zip" not in mirror.paths()


def test_verify_names_every_bad_file(tmp_path, capsys):
    root = coco_tree(tmp_path / "coco")
    corrupt = root / "val2017" / "000000000139.jpg"
    corrupt.write_bytes(corrupt.read_bytes()[:200])
    (root / "train2017" / "000000000025.jpg").unlink()
    (root / "train2017" / "000000000777.jpg").write_bytes(jpeg((8, 8), 0))
    (root / "train2017" / "000000000030.jpg").write_bytes(jpeg((31, 32), 0))
    code, err = run_cli(cli, ["verify", "--data-dir", str(root), "--expected-counts", "3,2", "--workers", "1"], capsys)
    assert code == 1
    bad = "\n".join(err)
    assert f"{corrupt}: cannot decode image" in bad
    assert f"{root / 'train2017' / '000000000025.jpg'}: listed in instances_train2017.json, missing" in bad
    assert f"{root / 'train2017' / '000000000777.jpg'}: not listed in instances_train2017.json" in bad
    assert f"{root / 'train2017' / '000000000030.jpg'}: 31x32 pixels, listed as 32x32" in bad
    assert len(err) == 4, err


def test_verify_reads_the_annotation_files(tmp_path, capsys):
    root = coco_tree(tmp_path / "coco")
    (root / "annotations" / "instances_val2017.json").write_text('{"images": [')
    spec = instances(TRAIN)
    spec["annotations"][0]["category_id"] = 99
    (root / "annotations" / "instances_train2017.json").write_text(json.dumps(spec))
    code, err = run_cli(cli, ["verify", "--data-dir", str(root), "--expected-counts", "annotations"], capsys)
    assert code == 1
    assert any("instances_val2017.json: not JSON" in line for line in err), err
    assert any("instances_train2017.json: 1 annotations refer to a category it does not list (e.g. category_id 99)"
               in line for line in err), err


def test_verify_a_built_set_by_its_manifest(tmp_path, capsys):
    # A built set (the mini set) carries a manifest.json: its files' sha256 are checked, and the image counts are
    # the annotation files' own. Weights present are checked by the sha256 prefix in their name.
    from loadgen.data import Manifest

    root = coco_tree(tmp_path / "mini")
    Manifest.of_folder(root).dump(root / "manifest.json")
    code, err = run_cli(cli, ["verify", "--data-dir", str(root)], capsys)
    assert code == 0, err
    (root / "pretrained").mkdir()
    (root / "pretrained" / "resnet34-333f7ec4.pth").write_bytes(WEIGHTS)
    instances_val = root / "annotations" / "instances_val2017.json"
    instances_val.write_text(instances_val.read_text().replace('"person"', '"people"', 1))
    code, err = run_cli(cli, ["verify", "--data-dir", str(root), "--weights-dir", str(root / "pretrained")], capsys)
    assert code == 1
    assert any(line.startswith(f"bad: {instances_val}: sha256 is ") for line in err), err
    assert any(f"resnet34-333f7ec4.pth: sha256 is {hashlib.sha256(WEIGHTS).hexdigest()}, expected it to start "
               "with 333f7ec4" in line for line in err), err


def test_decoding_in_parallel_names_the_bad_image(tmp_path):
    good = jpeg((16, 16), 100)
    items = []
    for k in range(70):  # more than one task's worth, so two worker processes share them
        path = tmp_path / f"{k:012d}.jpg"
        path.write_bytes(good if k != 41 else good[:100])
        items.append((str(path), 16, 16))
    problems = data.decode_problems(items, workers=2, progress=False)
    assert len(problems) == 1 and problems[0].startswith(f"{tmp_path / '000000000041.jpg'}: cannot decode")


def test_backbone_weights_load_only_plain_tensors(tmp_path):
    import torch

    def saved(obj) -> Path:
        buf = io.BytesIO()
        torch.save(obj, buf)
        path = tmp_path / f"resnet34-{hashlib.sha256(buf.getvalue()).hexdigest()[:8]}.pth"
        path.write_bytes(buf.getvalue())
        return path

    state = data.load_backbone_weights(saved({"conv1.weight": torch.arange(6.0).reshape(2, 3)}))
    assert torch.equal(state["conv1.weight"], torch.arange(6.0).reshape(2, 3))
    with pytest.raises(data.DataError, match="not a plain weights file"):
        data.load_backbone_weights(saved({"conv1.weight": torch.zeros(1), "code": Path("x")}))
    renamed = tmp_path / "resnet34-00000000.pth"
    renamed.write_bytes(b"not these bytes")
    with pytest.raises(data.DataError, match="expected it to start with 00000000"):
        data.load_backbone_weights(renamed)


@pytest.mark.parametrize("argv", [["download", "--data-dir", "d", "--only", "val2017,test2017"],
                                  ["download", "--data-dir", "d", "--base-url", "mirror.example/coco"],
                                  ["verify", "--data-dir", "/nonexistent/path"],
                                  ["verify", "--data-dir", ".", "--expected-counts", "5000"],
                                  ["verify", "--data-dir", ".", "--workers", "0"]],
                         ids=["only", "base-url", "data-dir", "counts", "workers"])
def test_bad_usage_is_one_line_and_exit_2(argv, capsys):
    code, err = run_cli(cli, argv, capsys)
    assert_one_line_error(code, err, 2)
