"""The MLPerf OpenImages subset's download and verify (object_detection.data.openimages_files) against an
OpenImages-shaped mirror on 127.0.0.1: the three CSV files under their own names, and real JPEGs (crops of a
scikit-learn sample photo) in the public bucket's validation/<ImageID>.jpg layout."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from object_detection.data import cli, openimages_files
from object_detection.data.layout import OPENIMAGES_MANIFEST
from object_detection.data.openimages import CLASSES, FLAGS, Box, subset_json
from tests.coco_mirror import REPO, SCRIPT_ENV, WEIGHTS, mirroring

DOWNLOAD = str(REPO / "object_detection" / "download_dataset.sh")
VERIFY = str(REPO / "object_detection" / "verify_dataset.sh")
OTHER = {"/m/01g317": "Person", "/m/0k4j": "Car"}  # OpenImages classes that are not among the MLPerf 264
LABELS = {f"/m/t{i:03d}": name for i, name in enumerate(CLASSES)} | OTHER
MID = {name: mid for mid, name in LABELS.items()}
IMAGES = {"000a1b2c3d4e5f60": (64, 48), "0b1c2d3e4f506172": (40, 56), "1c2d3e4f50617283": (72, 40),
          "2d3e4f5061728394": (48, 48), "3e4f506172839405": (56, 32)}  # the image list: ImageID -> (width, height)
A, B, C, D, E = IMAGES
UNLISTED = "4f50617283940516"  # a box of an MLPerf class on an image the list does not hold
BOXES = [  # ImageID, class, XMin, XMax, YMin, YMax, then the five flags; not in ImageID order
    (B, "Dog", 0.1, 0.5, 0.2, 0.9, 1, 0, 0, 0, 0),
    (A, "Airplane", 0.25, 0.75, 0.5, 1.0, 0, 1, 0, 0, 0),
    (A, "Person", 0.0, 0.5, 0.0, 0.5, 0, 0, 0, 0, 0),
    (C, "Person", 0.1, 0.2, 0.1, 0.2, 0, 0, 0, 0, 0),  # C has only a box of another class: left out
    (B, "Cat", 0.5, 1.0, 0.0, 0.5, 0, 0, 1, 0, 0),
    (D, "Car", 0.0, 1.0, 0.0, 1.0, 0, 0, 0, 0, 0),
    (D, "Zebra", 0.125, 0.625, 0.25, 0.75, 0, 0, 0, 1, 0),
    (UNLISTED, "Cat", 0.0, 0.5, 0.0, 0.5, 0, 0, 0, 0, 0),
    (B, "Dog", 0.0, 0.25, 0.0, 0.25, 0, 0, 1, 0, 1),
]  # E has no box at all
SUBSET = [A, B, D]
BOX_HEADER = ["ImageID", "Source", "LabelName", "Confidence", "XMin", "XMax", "YMin", "YMax", *FLAGS]
# The weights the mirror serves, named as torchvision names its files: <name>-<its sha256 prefix>.pth.
WEIGHTS_FILE = f"resnext50_32x4d-{hashlib.sha256(WEIGHTS).hexdigest()[:8]}.pth"
IMAGE_HEADER = ["ImageID", "Subset", "OriginalURL", "OriginalLandingURL", "License", "AuthorProfileURL", "Author",
                "Title", "OriginalSize", "OriginalMD5", "Thumbnail300KURL", "Rotation"]


def write_csv(path: Path, header: list[str] | None, rows: list[list]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerows(([header] if header else []) + rows)


def box_rows() -> list[list]:
    return [[image, "xclick", MID[name], 1, *values] for image, name, *values in BOXES]


def photos() -> dict[str, bytes]:
    """A real JPEG per image of the list: crops of scikit-learn's china.jpg, at the listed sizes."""
    from sklearn.datasets import load_sample_image

    china = load_sample_image("china.jpg")
    served = {}
    for k, (image, (width, height)) in enumerate(IMAGES.items()):
        y, x = 60 + 50 * k, 100 + 70 * k
        buf = io.BytesIO()
        Image.fromarray(china[y:y + height, x:x + width]).save(buf, "JPEG", quality=90)
        served[image] = buf.getvalue()
    return served


@pytest.fixture
def mirror(tmp_path):
    """The CSVs under <url>/csv/ (--base-url) and the images under <url>/bucket/validation/ (--images-url)."""
    folder = tmp_path / "mirror"
    (folder / "csv").mkdir(parents=True)
    (folder / "bucket" / "validation").mkdir(parents=True)
    write_csv(folder / "csv" / "validation-annotations-bbox.csv", BOX_HEADER, box_rows())
    write_csv(folder / "csv" / "class-descriptions-boxable.csv", None, [[mid, name] for mid, name in LABELS.items()])
    write_csv(folder / "csv" / "validation-images-with-rotation.csv", IMAGE_HEADER,
              [[i, "validation", f"https://farm.example/{i}.jpg", "", "", "", "someone", "A title, with a comma",
                1000, "base64md5==", "", 0] for i in IMAGES])
    served = photos()
    for image, payload in served.items():
        (folder / "bucket" / "validation" / f"{image}.jpg").write_bytes(payload)
    (folder / WEIGHTS_FILE).write_bytes(WEIGHTS)
    with mirroring(folder) as server:
        server.base_url, server.images_url, server.served = f"{server.url}/csv", f"{server.url}/bucket/", served
        server.weights_url = f"{server.url}/{WEIGHTS_FILE}"
        yield server


def flags(server) -> list[str]:
    return ["--base-url", server.base_url, "--images-url", server.images_url, "--weights-url", server.weights_url]


def run(*argv) -> int:
    """``python -m object_detection.data ARGV`` in this process."""
    return cli.main(cli.get_args_parser().parse_args([str(a) for a in argv]))


def test_the_manifest_names_the_reference_sources():
    files = openimages_files.OpenImagesFiles.load(OPENIMAGES_MANIFEST)
    assert files.csv == {
        "boxes": "https://storage.googleapis.com/openimages/v5/validation-annotations-bbox.csv",
        "classes": "https://storage.googleapis.com/openimages/v5/class-descriptions-boxable.csv",
        "images": "https://storage.googleapis.com/openimages/2018_04/validation/validation-images-with-rotation.csv"}
    assert (files.split, files.images_url) == ("validation", "https://s3.amazonaws.com/open-images-dataset")
    assert files.weights_url == "https://download.pytorch.org/models/resnext50_32x4d-7cdf4587.pth"


def test_download_through_the_scripts_then_verify(mirror, tmp_path):
    data_dir = tmp_path / "openimages"
    proc = subprocess.run([DOWNLOAD, "openimages", str(data_dir), *flags(mirror)], capture_output=True, text=True,
                          env=SCRIPT_ENV, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"./verify_dataset.sh openimages {data_dir} --expected-count 3" in proc.stdout
    assert "note: 1 images with boxes of the classes are not in validation-images-with-rotation.csv" in proc.stdout
    folder = data_dir / "validation" / "data"
    assert sorted(p.name for p in folder.iterdir()) == [f"{i}.jpg" for i in SUBSET]
    assert all((folder / f"{i}.jpg").read_bytes() == mirror.served[i] for i in SUBSET)
    assert sorted(p.name for p in (data_dir / "annotations").iterdir()) == [
        "class-descriptions-boxable.csv", "openimages-mlperf.json", "validation-annotations-bbox.csv",
        "validation-images-with-rotation.csv"]
    # images of other classes only, without boxes, or not in the list are never fetched
    assert sorted(mirror.paths()) == sorted(["/csv/validation-annotations-bbox.csv",
                                             "/csv/class-descriptions-boxable.csv",
                                             "/csv/validation-images-with-rotation.csv", f"/{WEIGHTS_FILE}",
                                             *(f"/bucket/validation/{i}.jpg" for i in SUBSET)])
    assert (data_dir / "pretrained" / WEIGHTS_FILE).read_bytes() == WEIGHTS  # the backbone, sha256 prefix checked

    subset = json.loads((data_dir / "annotations" / "openimages-mlperf.json").read_text())
    boxes = [Box(b[0], b[1], *b[2:6], flags=dict(zip(FLAGS, b[6:], strict=True))) for b in BOXES]
    assert subset == subset_json({i: IMAGES[i] for i in SUBSET}, boxes)
    assert [c["name"] for c in subset["categories"]] == list(CLASSES)
    assert [c["id"] for c in subset["categories"]] == list(range(264))
    assert [(m["id"], m["file_name"], m["width"], m["height"]) for m in subset["images"]] == [
        (1, f"{A}.jpg", 64, 48), (2, f"{B}.jpg", 40, 56), (3, f"{D}.jpg", 48, 48)]
    named = [(a["image_id"], CLASSES[a["category_id"]], a["iscrowd"]) for a in subset["annotations"]]
    assert sorted(named) == [(1, "Airplane", 0), (2, "Cat", 1), (2, "Dog", 0), (2, "Dog", 1), (3, "Zebra", 0)]
    airplane = next(a for a in subset["annotations"] if a["category_id"] == CLASSES.index("Airplane"))
    assert airplane["bbox"] == [16.0, 24.0, 32.0, 24.0] and airplane["area"] == 32.0 * 24.0
    assert (airplane["IsTruncated"], airplane["IsOccluded"]) == (1, 0)

    verify = subprocess.run([VERIFY, "openimages", str(data_dir), "--expected-count", "3"], capture_output=True,
                            text=True, env=SCRIPT_ENV, timeout=120)
    assert verify.returncode == 0 and f"{data_dir}: OK" in verify.stdout, verify.stderr


def test_a_second_run_fetches_nothing_and_resumes_a_cut_image(mirror, tmp_path, capsys):
    data_dir = tmp_path / "openimages"
    assert run("download-openimages", "--data-dir", data_dir, *flags(mirror)) == 0
    mirror.requests.clear()
    assert run("download-openimages", "--data-dir", data_dir, *flags(mirror)) == 0
    assert mirror.requests == []  # every CSV and image already there: not one request
    assert "0 images downloaded, 3 already there" in capsys.readouterr().out

    folder = data_dir / "validation" / "data"
    half = len(mirror.served[A]) // 2
    (folder / f"{A}.jpg").unlink()
    (folder / f"{A}.jpg.part").write_bytes(mirror.served[A][:half])  # a download cut off: resumed
    (folder / f"{B}.jpg").write_bytes(mirror.served[B][:-60])  # a cut file under its name: fetched again whole
    assert run("download-openimages", "--data-dir", data_dir, *flags(mirror)) == 0
    assert sorted(mirror.requests) == [(f"/bucket/validation/{A}.jpg", f"bytes={half}-"),
                                       (f"/bucket/validation/{B}.jpg", None)]
    assert sorted(p.name for p in folder.iterdir()) == [f"{i}.jpg" for i in SUBSET]
    assert all((folder / f"{i}.jpg").read_bytes() == mirror.served[i] for i in SUBSET)
    assert run("verify-openimages", "--data-dir", data_dir, "--expected-count", 3) == 0


def test_max_images_fetches_the_first_in_imageid_order(mirror, tmp_path, capsys):
    data_dir = tmp_path / "openimages"
    assert run("download-openimages", "--data-dir", data_dir, "--max-images", 2, *flags(mirror)) == 0
    out = capsys.readouterr().out
    assert "fetching the first 2 only: not the benchmark's set" in out and "--expected-count 2" in out
    subset = json.loads((data_dir / "annotations" / "openimages-mlperf.json").read_text())
    assert [m["file_name"] for m in subset["images"]] == [f"{A}.jpg", f"{B}.jpg"]
    assert subset["info"]["dataset"] == "openimages_mlperf (the first 2 images only)"


def test_verify_names_every_bad_and_missing_file(mirror, tmp_path):
    data_dir = tmp_path / "openimages"
    assert run("download-openimages", "--data-dir", data_dir, *flags(mirror)) == 0
    folder = data_dir / "validation" / "data"
    corrupt, missing, stray = folder / f"{D}.jpg", folder / f"{B}.jpg", folder / f"{E}.jpg"
    corrupt.write_bytes(corrupt.read_bytes()[:-40])
    missing.unlink()
    stray.write_bytes(mirror.served[E])
    proc = subprocess.run([VERIFY, "openimages", str(data_dir), "--expected-count", "3"], capture_output=True,
                          text=True, env=SCRIPT_ENV, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"{data_dir}: 3 problem(s)" in proc.stdout
    assert f"bad: {corrupt}: cannot decode image (" in proc.stderr
    assert f"bad: {missing}: listed in openimages-mlperf.json, missing" in proc.stderr
    assert f"bad: {stray}: not listed in openimages-mlperf.json" in proc.stderr
    # the benchmark's count unless told otherwise
    problems = openimages_files.check(data_dir, progress=False)
    assert f"{data_dir / 'annotations' / 'openimages-mlperf.json'}: lists 3 images, expected 24781" in problems


@pytest.mark.parametrize(("header", "rows", "named"), [
    ([c for c in BOX_HEADER if c != "XMax"], [r[:5] + r[6:] for r in box_rows()], "line 1: no XMax column"),
    (BOX_HEADER, box_rows()[:1] + [[A, "xclick", MID["Cat"], 1, "left", 1, 0, 1, 0, 0, 0, 0, 0]],
     "line 3: XMin is 'left', not a number"),
    (BOX_HEADER, box_rows()[:2] + [[A, "xclick", MID["Cat"], 1, 0.0, 0.5]], "line 4: 6 fields, expected 13"),
    (BOX_HEADER, [["../../etc/passwd", "xclick", MID["Cat"], 1, 0, 1, 0, 1, 0, 0, 0, 0, 0]],
     "line 2: ImageID '../../etc/passwd' is not 16 hex digits"),
], ids=["missing-column", "bad-number", "short-row", "bad-image-id"])
def test_a_bad_box_file_is_one_line_naming_file_and_line(mirror, tmp_path, capsys, header, rows, named):
    write_csv(mirror.folder / "csv" / "validation-annotations-bbox.csv", header, rows)
    assert run("download-openimages", "--data-dir", tmp_path / "oi", *flags(mirror)) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("python -m object_detection.data: error: "), err
    assert f"{tmp_path / 'oi' / 'annotations' / 'validation-annotations-bbox.csv'}: {named}" in err


def test_an_image_the_bucket_lacks_is_named_and_the_others_kept(mirror, tmp_path, capsys):
    (mirror.folder / "bucket" / "validation" / f"{D}.jpg").unlink()
    assert run("download-openimages", "--data-dir", tmp_path / "oi", *flags(mirror)) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert f"1 of 3 images not fetched, e.g. {mirror.images_url}validation/{D}.jpg: HTTP 404" in err
    assert sorted(p.name for p in (tmp_path / "oi" / "validation" / "data").iterdir()) == [f"{A}.jpg", f"{B}.jpg"]
    assert not (tmp_path / "oi" / "annotations" / "openimages-mlperf.json").exists()


@pytest.mark.parametrize(("script", "argv", "usage"), [
    (DOWNLOAD, ["openimages"], "usage: download_dataset.sh openimages DATA_DIR [--base-url URL] [--images-url URL]"),
    (DOWNLOAD, [], "| download_dataset.sh openimages DATA_DIR"),  # both forms
    (VERIFY, ["openimages", "--expected-count", "3"], "usage: verify_dataset.sh openimages DATA_DIR"),
], ids=["download", "download-no-args", "verify"])
def test_openimages_without_data_dir_is_a_usage_line_and_exit_2(script, argv, usage):
    proc = subprocess.run([script, *argv], capture_output=True, text=True, env=SCRIPT_ENV, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and usage in proc.stderr and "error:" in proc.stderr, proc.stderr
