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
from image_classification.data import images

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
    # ImageList decodes through its own module's load_image.
    monkeypatch.setattr(images, "load_image", lambda p: decodes.append(p) or real(p))
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


# ------------------------------------------------- verify without a manifest, readers, cache identity, usage errors
def _bmp(path: Path, colour: tuple[int, int, int]) -> Path:
    """A BMP image: same size on disk for any colour, so replacing one keeps the file size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (24, 20), colour).save(path, "BMP")
    return path


def _imagenet_tree(root: Path) -> Path:
    wnids = ["n01", "n02", "n03"]
    (root / "synset_words.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "synset_words.txt").write_text("".join(f"{w} class {w}\n" for w in wnids))
    for w in wnids:
        for k in range(2):
            (root / "train" / w).mkdir(parents=True, exist_ok=True)
            (root / "train" / w / f"{w}_{k}.JPEG").write_bytes(_jpeg("RGB"))
    for k in range(1, 5):
        (root / "val").mkdir(exist_ok=True)
        (root / "val" / f"v{k}.JPEG").write_bytes(_jpeg("RGB"))
    return root


def test_verify_without_manifest_names_every_bad_image_and_line(tmp_path):
    root = _imagenet_tree(tmp_path / "imagenet")
    (root / "train" / "n02" / "n02_0.JPEG").write_bytes(_jpeg("RGB")[:200])  # truncated
    (root / "train" / "n03" / "n03_1.JPEG").write_bytes(b"")  # empty
    (root / "val" / "v4.JPEG").write_bytes(b"GIF89a not really")  # corrupt
    (root / "val" / "unlisted.JPEG").write_bytes(_jpeg("RGB"))
    lines = ["v1.JPEG 0", "v2.JPEG 2", "gone.JPEG 1", "v3.JPEG 3", "v1.JPEG 0", "v4.JPEG", "", "v4.JPEG 1"]
    (root / "val_map.txt").write_bytes("\r\n".join(lines).encode() + b"\r\n")  # CRLF endings are fine
    proc = subprocess.run([sys.executable, "-m", "image_classification.data", "verify", "--data-dir", str(root),
                           "--workers", "2"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    bad = [line for line in proc.stderr.splitlines() if line.startswith("bad: ")]
    vm = root / "val_map.txt"
    expected = [f"{vm}:3: {root / 'val' / 'gone.JPEG'} is missing",
                f"{vm}:4: label 3 of v3.JPEG is outside 0..2",
                f"{vm}:5: v1.JPEG is listed again (first on line 1)",
                f"{vm}:6: expected '<file> <label>', got 'v4.JPEG'",
                f"{root / 'val' / 'unlisted.JPEG'}: not listed in val_map.txt",
                f"{root / 'train' / 'n02' / 'n02_0.JPEG'}: cannot decode image",
                f"{root / 'train' / 'n03' / 'n03_1.JPEG'}: cannot decode image (empty file)",
                f"{root / 'val' / 'v4.JPEG'}: cannot decode image"]
    for fragment in expected:
        assert any(fragment in line for line in bad), (fragment, bad)
    for good in (":1:", ":2:", ":8:", "v1.JPEG: cannot", "v2.JPEG: cannot", "n01_0"):
        assert not any(good in line for line in bad), (good, bad)
    assert sum("expected 1281167" in line or "expected 50000" in line for line in bad) == 2  # the counts too
    assert len(bad) == len(expected) + 2


def test_val_map_problems_and_a_missing_explicit_val_map_are_errors(mini_copy, tmp_path):
    with pytest.raises(data.DataError, match="nope.txt: no such file"):
        data.val_samples(mini_copy, tmp_path / "nope.txt")
    vm = mini_copy / "val_map.txt"
    good = vm.read_text().splitlines()
    for lines, fragment in [(good + [good[0]], f"{vm}:{len(good) + 1}: .* listed again \\(first on line 1\\)"),
                            ([good[0].split()[0] + " 10"] + good[1:], f"{vm}:1: label 10 .* outside 0..9"),
                            (good[:2] + ["missing.JPEG 1"], f"{vm}:3: .*missing.JPEG is missing")]:
        vm.write_text("\n".join(lines) + "\n")
        with pytest.raises(data.DataError, match=fragment):
            data.val_samples(mini_copy)
    vm.write_text("\r\n".join(good) + "\r\n")
    assert len(data.val_samples(mini_copy, vm)) == len(good)
    import shutil as sh

    sh.rmtree(mini_copy / "train" / "n90000003")
    with pytest.raises(data.DataError, match="n90000003: missing"):
        data.train_samples(mini_copy)


def test_a_missing_image_is_reported_as_missing(tmp_path):
    with pytest.raises(data.BadImageError, match="gone.JPEG: missing"):
        data.load_image(str(tmp_path / "gone.JPEG"))
    with pytest.raises(data.BadImageError, match="gone.JPEG: missing") as err:
        data.build_cache([(str(tmp_path / "gone.JPEG"), 0)], data.presets(16)["torchvision"], tmp_path / "c",
                         workers=1, progress=False)
    assert "\n" not in str(err.value)


def test_a_replaced_image_of_the_same_size_is_read_again(tmp_path):
    a, b = _bmp(tmp_path / "a.bmp", (200, 10, 10)), _bmp(tmp_path / "b.bmp", (10, 200, 10))
    preset = data.presets(16)["torchvision"]
    samples = [(str(a), 0), (str(b), 1)]
    first = np.load(data.build_cache(samples, preset, tmp_path / "cache", workers=1, progress=False) / "images.npy")
    size, mtime = a.stat().st_size, a.stat().st_mtime_ns
    _bmp(a, (10, 10, 200))  # rewritten in place: same path, label and size
    os.utime(a, ns=(mtime + 10**9, mtime + 10**9))  # a later time, whatever the file system's clock resolution
    assert a.stat().st_size == size
    second = np.load(data.build_cache(samples, preset, tmp_path / "cache", workers=1, progress=False) / "images.npy")
    assert first[0, 0, 0].tolist() == [200, 10, 10] and second[0, 0, 0].tolist() == [10, 10, 200]
    assert np.array_equal(first[1], second[1])


def test_sigkill_of_a_cache_build_leaves_no_worker_and_the_next_build_no_partial_folder(tmp_path):
    from tests.loadgen.data_helpers import alive, children, kill_when

    paths = [str(_bmp(tmp_path / "img" / f"{i}.bmp", (i, i, i))) for i in range(64)]
    code = ("import sys, time; from image_classification import data\n"
            "real = data.load_image\n"
            "data.load_image = lambda p: (time.sleep(0.2), real(p))[1]  # slow enough to be killed midway\n"
            "paths = sys.argv[2:]\n"
            "data.build_cache([(p, 0) for p in paths], data.presets(16)['torchvision'], sys.argv[1], workers=2,"
            " progress=False)\n")
    cache = tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, "-c", code, str(cache), *paths], cwd=REPO)
    workers = kill_when(proc, lambda: cache.is_dir() and any(".partial-" in p.name for p in cache.iterdir())
                        and len(children(proc.pid)) >= 2)
    assert alive(workers, wait_s=10) == [], "worker processes outlived their killed parent"
    assert [p for p in cache.iterdir() if ".partial-" in p.name]
    done = data.build_cache([(p, 0) for p in paths[:4]], data.presets(16)["torchvision"], cache, workers=1,
                            progress=False)
    assert sorted(p.name for p in cache.iterdir()) == [done.name]


@pytest.mark.parametrize("module, argv, fragment", [
    ("data", ["verify", "--data-dir", "MISSING"], "no such folder"),
    ("data", ["verify", "--data-dir", "DIR", "--workers", "0"], "--workers"),
    ("data", ["download", "--data-dir", "DIR", "--manifest", "MISSING"], "no such file"),
    ("data", ["download", "--data-dir", "DIR", "--archives-dir", "MISSING"], "no such folder"),
    ("data", ["download", "--data-dir", "DIR", "--base-url", "mirror.example.org/imagenet"], "--base-url"),
    ("mini", ["--size", "0"], "--size"),
    ("mini", ["--val-per-class", "500"], "--val-per-class"),
    ("accuracy", ["--mlperf-accuracy-file", "MISSING", "--imagenet-val-file", "DIR"], "no such file"),
])
def test_bad_usage_is_one_line_and_exit_2(module, argv, fragment, tmp_path, capsys):
    import importlib

    from tests.loadgen.data_helpers import assert_one_line_error, run_cli

    mod = importlib.import_module(f"image_classification.{module}")
    names = {"MISSING": tmp_path / "missing", "DIR": tmp_path}
    code, lines = run_cli(mod, [str(names.get(a, a)) for a in argv], capsys)
    assert_one_line_error(code, lines, 2, fragment)
