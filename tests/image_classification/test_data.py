"""ImageNet layouts, bad images, the inference cache and verify_dataset.sh."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from image_classification import data

REPO = Path(__file__).resolve().parents[2]
# The scripts run $PYTHON (default: the checkout's .venv): this interpreter, wherever the tests run from.
ENV = dict(os.environ, PYTHON=sys.executable)


def _jpeg(mode: str) -> bytes:
    buf = io.BytesIO()
    colour = {"CMYK": (10, 200, 30, 5), "L": 128, "RGB": (1, 2, 3)}[mode]
    Image.new(mode, (40, 30), colour).save(buf, "JPEG")
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["cmyk", "grayscale", "png-behind-jpeg"])
def test_unusual_images_are_converted(kind, tmp_path):
    path = tmp_path / "x.JPEG"
    if kind == "png-behind-jpeg":
        Image.new("RGBA", (40, 30), (5, 6, 7, 255)).save(path, "PNG")
    else:
        path.write_bytes(_jpeg("CMYK" if kind == "cmyk" else "L"))
    img = data.load_image(str(path))
    assert img.mode == "RGB" and img.size == (40, 30)
    assert data.presets(16)["torchvision"](img).shape == (3, 16, 16)


@pytest.mark.parametrize("kind", ["truncated", "empty"])
def test_broken_images_are_refused_naming_the_file(kind, tmp_path):
    path = tmp_path / f"{kind}.JPEG"
    path.write_bytes(_jpeg("RGB")[:200] if kind == "truncated" else b"")
    with pytest.raises(data.BadImageError, match=str(path)):
        data.load_image(str(path))


def test_cache_reports_bad_images_from_workers(tmp_path):
    good = tmp_path / "good.JPEG"
    good.write_bytes(_jpeg("RGB"))
    bad = tmp_path / "bad.JPEG"
    bad.write_bytes(b"")
    preset = data.presets(16)["torchvision"]
    with pytest.raises(data.BadImageError, match="bad.JPEG: cannot decode image \\(empty file\\)"):
        data.build_cache([(str(good), 0), (str(bad), 1)], preset, tmp_path / "cache", workers=2, progress=False)
    assert [p for p in (tmp_path / "cache").iterdir()] == [], "no half-built cache entry"


def test_cache_equals_direct_preprocessing(mini_root, tmp_path):
    samples = data.val_samples(mini_root)[:40]
    preset = data.presets(32)["torchvision"]
    folder = data.build_cache(samples, preset, tmp_path / "cache", workers=2, progress=False)
    images = np.load(folder / "images.npy")
    direct = np.stack([preset.geometry(data.load_image(p)) for p, _ in samples])
    assert np.array_equal(images, direct)
    assert np.load(folder / "labels.npy").tolist() == [label for _, label in samples]
    assert data.build_cache(samples, preset, tmp_path / "cache", progress=False) == folder  # reused


def test_both_val_layouts_read_the_same(mini_copy):
    flat = data.val_samples(mini_copy)
    wnids = data.read_synsets(mini_copy)
    folders = mini_copy / "folders"
    for path, label in flat:
        dest = folders / "val" / wnids[label] / Path(path).name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, dest)
    shutil.copy(mini_copy / "synset_words.txt", folders / "synset_words.txt")
    by_folder = data.val_samples(folders)
    assert sorted((Path(p).name, label) for p, label in by_folder) == sorted((Path(p).name, label) for p, label in flat)


def test_mini_set_is_in_imagenet_format(mini_root):
    assert len(data.read_synsets(mini_root)) == 10
    assert len(data.train_samples(mini_root)) == 1497 and len(data.val_samples(mini_root)) == 300
    assert all(p.suffix == ".JPEG" for p in (mini_root / "train").glob("*/*"))
    assert (mini_root / "val" / "ILSVRC2012_val_00000001.JPEG").is_file()


def test_verify_dataset_sh_names_the_corrupted_file(mini_copy):
    script = REPO / "image_classification" / "verify_dataset.sh"
    ok = subprocess.run([str(script), str(mini_copy)], capture_output=True, text=True, env=ENV, timeout=120)
    assert ok.returncode == 0, ok.stderr
    victim = sorted((mini_copy / "val").glob("*.JPEG"))[7]
    raw = bytearray(victim.read_bytes())
    raw[100] ^= 0xFF
    victim.write_bytes(bytes(raw))
    bad = subprocess.run([str(script), str(mini_copy)], capture_output=True, text=True, env=ENV, timeout=120)
    assert bad.returncode == 1
    assert f"{victim.name}: sha256" in bad.stderr


def test_decoded_images_are_kept_only_within_the_budget(mini_root, monkeypatch):
    samples = data.train_samples(mini_root)[:20]
    decodes = []
    real = data.load_image
    monkeypatch.setattr(data, "load_image", lambda p: decodes.append(p) or real(p))
    kept = data.ImageList(samples, np.asarray, keep_decoded_bytes=64 * 64 * 3 * 20)
    for _ in range(2):
        for i in range(len(kept)):
            kept[i]
    assert len(decodes) == 20, "decoded once each, then kept"
    decodes.clear()
    too_small = data.ImageList(samples, np.asarray, keep_decoded_bytes=64 * 64 * 3 * 19)
    for _ in range(2):
        for i in range(len(too_small)):
            too_small[i]
    assert len(decodes) == 40 and too_small.decoded is None
