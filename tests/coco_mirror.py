"""COCO 2017 archives served from 127.0.0.1 for the detection benchmarks' download and verify tests: tiny
COCO-shaped archives, a weights file named by its sha256 prefix, and a file server that honours Range requests
(:func:`mirroring`, which the OpenImages tests serve their own folder with)."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import io
import json
import os
import sys
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SCRIPT_ENV = dict(os.environ, PYTHON=sys.executable)  # the folders' scripts run $PYTHON: this interpreter
TRAIN = {"000000000009.jpg": (24, 16), "000000000025.jpg": (20, 30), "000000000030.jpg": (32, 32)}
VAL = {"000000000139.jpg": (40, 24), "000000000285.jpg": (16, 16)}
MINIVAL = ("instances_minival2014.json", "instances_valminusminival2014.json")
WEIGHTS = b"pretend weights: only the sha256 prefix in the name is checked by download"


def jpeg(size: tuple[int, int], shade: int) -> bytes:
    buf = io.BytesIO()
    pixels = np.full((size[1], size[0], 3), shade, np.uint8)
    pixels[::2, ::3] = 255 - shade  # some detail, so the stream is not trivially short
    Image.fromarray(pixels).save(buf, "JPEG")
    return buf.getvalue()


def instances(images: dict[str, tuple[int, int]]) -> dict:
    listed = [{"id": int(name[:12]), "file_name": name, "width": w, "height": h}
              for name, (w, h) in images.items()]
    return {"images": listed, "categories": [{"id": 1, "name": "person", "supercategory": "person"}],
            "annotations": [{"id": n + 1, "image_id": img["id"], "category_id": 1, "bbox": [1, 1, 4, 4], "area": 16,
                             "iscrowd": 0} for n, img in enumerate(listed)]}


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, payload in members.items():
            zf.writestr(name, payload)
    return path


def write_tgz(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
    return path


def coco_tree(root: Path) -> Path:
    """A small COCO folder as extraction leaves it: images, and annotation files listing them."""
    for split, images in (("train2017", TRAIN), ("val2017", VAL)):
        (root / split).mkdir(parents=True)
        for k, (name, size) in enumerate(images.items()):
            (root / split / name).write_bytes(jpeg(size, 40 * k))
    (root / "annotations").mkdir()
    for split, images in (("train2017", TRAIN), ("val2017", VAL)):
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(instances(images)))
    return root


class Mirror:
    """A 127.0.0.1 file server over ``folder`` that honours Range requests and records every request."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.requests = folder, []
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                mirror.requests.append((self.path, self.headers.get("Range")))
                path = mirror.folder / self.path.lstrip("/")
                if not path.is_file():
                    self.send_error(404)
                    return
                body = path.read_bytes()
                start = int(self.headers["Range"].split("=")[1].split("-")[0]) if self.headers.get("Range") else 0
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                self.wfile.write(body[start:])

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]


@contextlib.contextmanager
def mirroring(folder: Path):
    """A :class:`Mirror` of ``folder`` for the length of the ``with`` block."""
    server = Mirror(folder)
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


@contextlib.contextmanager
def serving(files_manifest: Path, tmp_path: Path):
    """A :class:`Mirror` of the three COCO archives (tiny), a weights file named by its sha256 prefix, and a copy of
    ``files_manifest`` with their md5s that keeps the official URLs, so only --base-url can reach them."""
    folder = tmp_path / "mirror"
    tree = coco_tree(tmp_path / "source")
    folder.mkdir()
    members = {
        "annotations_trainval2017.zip": {f"annotations/{p.name}": p.read_bytes()
                                         for p in (tree / "annotations").iterdir()},
        "train2017.zip": {f"train2017/{p.name}": p.read_bytes() for p in (tree / "train2017").iterdir()},
        "val2017.zip": {f"val2017/{p.name}": p.read_bytes() for p in (tree / "val2017").iterdir()},
        # Detectron's COCO 2014 minival annotations (object_detection's optional part): two small instances files
        "coco_annotations_minival.tgz": {f"annotations/{name}": json.dumps(instances(VAL)).encode()
                                         for name in MINIVAL},
    }
    spec = json.loads(files_manifest.read_text())
    for item in spec["archives"].values():
        write = write_tgz if item["file"].endswith(".tgz") else write_zip
        archive = write(folder / item["file"], members[item["file"]])
        item["md5"] = hashlib.md5(archive.read_bytes()).hexdigest()
        item.pop("bytes", None)
    weights = f"{spec['weights']['file'].split('-')[0]}-{hashlib.sha256(WEIGHTS).hexdigest()[:8]}.pth"
    (folder / weights).write_bytes(WEIGHTS)
    (tmp_path / "coco_files.json").write_text(json.dumps(spec))
    with mirroring(folder) as server:
        server.manifest, server.weights_url = tmp_path / "coco_files.json", f"{server.url}/{weights}"
        yield server
