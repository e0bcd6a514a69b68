"""download_dataset.sh against ILSVRC2012-shaped archives served from 127.0.0.1."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
# The scripts run $PYTHON (default: the checkout's .venv): this interpreter, wherever the tests run from.
ENV = dict(os.environ, PYTHON=sys.executable)
# ILSVRC ids are not in wnid order in the real devkit; labels must follow the sorted wnids.
SYNSETS = [(1, "n03000003", "third"), (2, "n01000001", "first"), (3, "n02000002", "second"),
           (1001, "n00000000", "not a leaf")]
VAL_IDS = [3, 1, 2, 2, 1, 3]


def _jpeg(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((20, 30, 3), seed * 20, np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def _add(tf: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tf.addfile(info, io.BytesIO(payload))


def make_archives(folder: Path) -> dict[str, Path]:
    folder.mkdir()
    with tarfile.open(folder / "ILSVRC2012_img_train.tar", "w") as outer:
        for _, wnid, _ in SYNSETS[:3]:
            inner = io.BytesIO()
            with tarfile.open(fileobj=inner, mode="w") as tf:
                for k in range(2):
                    _add(tf, f"{wnid}_{k}.JPEG", _jpeg(k))
            _add(outer, f"{wnid}.tar", inner.getvalue())
    with tarfile.open(folder / "ILSVRC2012_img_val.tar", "w") as tf:
        for i in range(len(VAL_IDS)):
            _add(tf, f"ILSVRC2012_val_{i + 1:08d}.JPEG", _jpeg(i))
    meta = io.BytesIO()
    records = np.array([(i, w, words) for i, w, words in SYNSETS],
                       dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O")])
    scipy.io.savemat(meta, {"synsets": records})
    with tarfile.open(folder / "ILSVRC2012_devkit_t12.tar.gz", "w:gz") as tf:
        _add(tf, "ILSVRC2012_devkit_t12/data/meta.mat", meta.getvalue())
        _add(tf, "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt",
             "".join(f"{i}\n" for i in VAL_IDS).encode())
    return {"train": folder / "ILSVRC2012_img_train.tar", "val": folder / "ILSVRC2012_img_val.tar",
            "devkit": folder / "ILSVRC2012_devkit_t12.tar.gz"}


@pytest.fixture
def mirror(tmp_path):
    files = make_archives(tmp_path / "mirror")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "mirror"))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    manifest = {"archives": {k: {"file": p.name, "url": f"https://image-net.org/data/ILSVRC/2012/{p.name}",
                                 "md5": hashlib.md5(p.read_bytes()).hexdigest()} for k, p in files.items()}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", tmp_path / "manifest.json"
    httpd.shutdown()
    httpd.server_close()


def download(data_dir, base_url, manifest):
    return subprocess.run([str(REPO / "image_classification" / "download_dataset.sh"), str(data_dir), "--base-url",
                           base_url, "--manifest", str(manifest)], capture_output=True, text=True, env=ENV, timeout=300)


def test_download_builds_the_imagenet_layout(mirror, tmp_path):
    base_url, manifest = mirror
    data_dir = tmp_path / "imagenet"
    proc = download(data_dir, base_url, manifest)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (data_dir / "train").iterdir()) == ["n01000001", "n02000002", "n03000003"]
    assert sorted(p.name for p in data_dir.iterdir()) == ["archives", "synset_words.txt", "train", "val",
                                                          "val_map.txt"], "no helper folders left behind"
    assert len(list((data_dir / "train").glob("*/*.JPEG"))) == 6
    assert [line.split()[0] for line in (data_dir / "synset_words.txt").read_text().splitlines()] == \
        ["n01000001", "n02000002", "n03000003"]
    # ILSVRC id 3 is n02000002, the second wnid in sorted order: label 1.
    labels = [int(line.split()[1]) for line in (data_dir / "val_map.txt").read_text().splitlines()]
    assert labels == [1, 2, 0, 0, 2, 1]
    from image_classification import data

    assert len(data.val_samples(data_dir)) == 6 and len(data.train_samples(data_dir)) == 6
    # The real counts are checked: this tiny set is not ImageNet.
    verify = subprocess.run([str(REPO / "image_classification" / "verify_dataset.sh"), str(data_dir)],
                            capture_output=True, text=True, env=ENV, timeout=120)
    assert verify.returncode == 1 and "6 files, expected 1281167" in verify.stderr


def test_wrong_checksum_is_refused(mirror, tmp_path):
    base_url, manifest = mirror
    spec = json.loads(manifest.read_text())
    spec["archives"]["val"]["md5"] = "0" * 32
    manifest.write_text(json.dumps(spec))
    proc = download(tmp_path / "imagenet", base_url, manifest)
    assert proc.returncode == 1 and "ILSVRC2012_img_val.tar" in proc.stderr and "md5" in proc.stderr
    assert not (tmp_path / "imagenet" / "archives" / "ILSVRC2012_img_val.tar").exists()
    assert not (tmp_path / "imagenet" / "val").exists()


def test_a_killed_download_is_finished_by_the_next_run(mirror, tmp_path):
    # Killed after val/ and one class were extracted, with the dead run's partial folder still there: the rerun
    # skips what is done, reclaims the partial folder and ends with the same layout as an uninterrupted run.
    base_url, manifest = mirror
    data_dir = tmp_path / "imagenet"
    assert download(data_dir, base_url, manifest).returncode == 0
    shutil.rmtree(data_dir / "train" / "n02000002")
    (data_dir / "val_map.txt").unlink()
    # A partial folder of a process that has ended, as a killed run leaves it.
    stale = Path(subprocess.run([sys.executable, "-c", "import sys; from loadgen.data import partial_folder; "
                                 "print(partial_folder(sys.argv[1], 'imagenet-archives'))", str(data_dir)],
                                capture_output=True, text=True, check=True, env=ENV).stdout.strip())
    (stale / "train_tars").mkdir()
    proc = download(data_dir, base_url, manifest)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in data_dir.iterdir()) == ["archives", "synset_words.txt", "train", "val",
                                                          "val_map.txt"]
    assert len(list((data_dir / "train").glob("*/*.JPEG"))) == 6
    assert len((data_dir / "val_map.txt").read_text().splitlines()) == 6
