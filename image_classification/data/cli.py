"""``python -m image_classification.data``: ``download`` (archives -> the layout) and ``verify``."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from image_classification.data.layout import ARCHIVES_MANIFEST, TRAIN_IMAGES, VAL_IMAGES
from image_classification.data.verify import check_tree
from loadgen.data import DataError, Manifest, download, extract, partial_folder, report, verify, write_atomic


def prepare_from_archives(data_dir: Path, archives: dict[str, Path]) -> None:
    """Extract ILSVRC2012 train/val tars and the devkit into the layout above; build val_map.txt and synsets.

    Resumable: every step's output appears whole or not at all (each folder is extracted beside its final name
    and renamed), so a run killed at any point is finished by the next one, which skips what is done and
    reclaims the dead run's partial folders (loadgen.data.partial_folder).
    """
    import scipy.io

    work = partial_folder(data_dir, "imagenet-archives")
    try:
        devkit = extract(archives["devkit"], work / "devkit")
        meta = scipy.io.loadmat(str(next(devkit.rglob("meta.mat"))), squeeze_me=True)["synsets"]
        # ILSVRC ids 1..1000 are the leaf synsets; their wnids sorted give the label order both layouts use.
        leaves = sorted((str(s["WNID"]), int(s["ILSVRC2012_ID"]), str(s["words"])) for s in meta
                        if int(s["ILSVRC2012_ID"]) <= 1000)
        label_of_id = {ilsvrc_id: label for label, (_, ilsvrc_id, _) in enumerate(leaves)}
        write_atomic(data_dir / "synset_words.txt", "".join(f"{w} {words}\n" for w, _, words in leaves))
        truth = next(devkit.rglob("ILSVRC2012_validation_ground_truth.txt")).read_text().split()
        if not (data_dir / "val").is_dir():
            extract(archives["val"], data_dir / "val")
        names = sorted(p.name for p in (data_dir / "val").iterdir())
        write_atomic(data_dir / "val_map.txt", "".join(
            f"{n} {label_of_id[int(t)]}\n" for n, t in zip(names, truth, strict=True)))
        # The train tar holds one tar per class, each extracted to train/<wnid> and then deleted, so the peak
        # extra space is one copy; classes a killed run finished are skipped.
        outer = extract(archives["train"], work / "train_tars")
        for inner in sorted(outer.glob("*.tar")):
            if not (data_dir / "train" / inner.stem).is_dir():
                extract(inner, data_dir / "train" / inner.stem)
            inner.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def get_args_parser(add_help: bool = True):
    from loadgen.cli import ArgumentParser, existing_dir, existing_file, positive
    from loadgen.data import download_url

    parser = ArgumentParser(prog="python -m image_classification.data", add_help=add_help, description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("download", help="fetch or take the ILSVRC2012 archives, check md5, extract (default: -)")
    d.add_argument("--data-dir", required=True, help="dataset root to create (default: required)")
    d.add_argument("--archives-dir", type=existing_dir, default=None,
                   help="folder holding already-downloaded ILSVRC2012_*.tar files (default: <data-dir>/archives)")
    d.add_argument("--base-url", type=download_url, default=os.environ.get("IMAGENET_URL") or None,
                   help="mirror holding the archive files; ImageNet itself needs an account "
                        "(default: $IMAGENET_URL, else the official URLs)")
    d.add_argument("--manifest", type=existing_file, default=str(ARCHIVES_MANIFEST),
                   help=f"archive names, URLs and md5 sums (default: {ARCHIVES_MANIFEST.name} beside this file)")
    v = sub.add_parser("verify", help="check images, val_map.txt and checksums; exit 1 naming every bad file and "
                                      "line (default: -)")
    v.add_argument("--data-dir", required=True, type=existing_dir, help="dataset root (default: required)")
    v.add_argument("--no-checksums", dest="checksums", action="store_false",
                   help="check file counts and sizes only (default: checksums on)")
    v.add_argument("--workers", type=positive(int), default=os.cpu_count() or 1,
                   help=f"processes that decode images, without a manifest (default: {os.cpu_count()})")
    return parser


def main(args) -> int:
    prog = "python -m image_classification.data"
    try:
        data_dir = Path(args.data_dir)
        if args.command == "download":
            try:
                spec = json.loads(Path(args.manifest).read_text())
                if not all({"file", "url", "md5"} <= set(item) for item in spec["archives"].values()):
                    raise KeyError("file, url and md5 of every archive")
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise DataError(f"{args.manifest}: not an archive manifest ({type(exc).__name__}: {exc})") from exc
            archives_dir = Path(args.archives_dir or data_dir / "archives")
            archives = {}
            for key, item in spec["archives"].items():
                archives[key] = download(item["url"], archives_dir / item["file"], md5=item["md5"],
                                         mirror=args.base_url)
            prepare_from_archives(data_dir, archives)
            print(f"{data_dir}: ImageNet ready; check it with ./verify_dataset.sh {data_dir}")
            return 0
        if (data_dir / "manifest.json").is_file():
            problems = verify(data_dir, Manifest.load(data_dir / "manifest.json"), checksums=args.checksums)
        else:
            rules = ({"glob": "train/*/*.JPEG", "count": TRAIN_IMAGES},
                     {"glob": "val/*.JPEG", "count": VAL_IMAGES})
            problems = verify(data_dir, Manifest(files={}, counts=rules), checksums=False)
            problems += check_tree(data_dir, workers=args.workers)
            archives_dir = data_dir / "archives"
            if args.checksums and archives_dir.is_dir():
                spec = json.loads(ARCHIVES_MANIFEST.read_text())["archives"].values()
                files = {f"archives/{a['file']}": {"md5": a["md5"]} for a in spec
                         if (archives_dir / a["file"]).exists()}
                problems += verify(data_dir, Manifest(files=files), extras=False)
        return report(data_dir, problems)
    except (DataError, OSError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
