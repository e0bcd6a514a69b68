"""RetinaNet's shared post-processing against torchvision's own forward, the anchors' level sizes against the real
feature maps, and the OpenImages-format mini set."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from loadgen.data import load_annotations
from object_detection import boxes, infer, models
from object_detection.data import openimages

from .conftest import lively_retinanet


@pytest.mark.parametrize("size", [128, 200])
def test_level_sizes_are_the_feature_maps(size):
    net = models.RetinaNetHeads(models.build_retinanet(size)).eval()
    with torch.no_grad():
        features = net.backbone(torch.zeros(1, 3, size, size))
    assert [f.shape[-1] for f in features.values()] == boxes.level_sizes(size)
    assert boxes.level_sizes(800) == [100, 50, 25, 13, 7]
    assert boxes.anchor_count(800) == 120_087  # 9 anchors on 13,343 cells


def test_postprocess_is_the_models_own(openimages_root):
    """Raw heads + boxes.postprocess give what torchvision's RetinaNet returns from the same pixels."""
    size = 128
    model = lively_retinanet(size, openimages_root)
    net = models.RetinaNetHeads(model)
    from loadgen.data import read_rgb

    files = sorted(openimages.image_folder(openimages_root).iterdir())[:3]
    pixels = np.stack([infer.preset(size).geometry(read_rgb(f)) for f in files])
    with torch.no_grad():
        logits, offsets = net(torch.from_numpy(infer.preset(size).normalize(pixels)))
        own = model([torch.from_numpy(p).permute(2, 0, 1).float() / 255 for p in pixels])
    found = boxes.postprocess(logits.numpy(), offsets.numpy(), size)
    for rows, theirs in zip(found, own, strict=True):
        assert 0 < len(rows) <= boxes.MAX_DETECTIONS
        assert len(rows) == len(theirs["boxes"])
        np.testing.assert_allclose(rows[:, [1, 0, 3, 2]] * size, theirs["boxes"].numpy(), atol=1e-2)
        np.testing.assert_allclose(rows[:, 4], theirs["scores"].numpy(), atol=1e-5)
        np.testing.assert_array_equal(rows[:, 5], theirs["labels"].numpy())
    with pytest.raises(ValueError, match="expected cls_logits"):
        boxes.postprocess(logits.numpy()[:, :-1], offsets.numpy(), size)


def test_openimages_mini_is_the_subsets_format(openimages_root):
    data = json.loads(openimages.annotation_file(openimages_root).read_text())
    assert [c["name"] for c in data["categories"]] == list(openimages.CLASSES)
    assert [c["id"] for c in data["categories"]] == list(range(264))
    names = [img["file_name"] for img in data["images"]]
    assert names == sorted(names) and [img["id"] for img in data["images"]] == list(range(1, len(names) + 1))
    assert sorted(p.name for p in openimages.image_folder(openimages_root).iterdir()) == names
    assert all(len(n) == len("0123456789abcdef.jpg") for n in names)
    used = {openimages.CLASSES[a["category_id"]] for a in data["annotations"]}
    assert used <= {"Human body", "Bottle", "Chair", "Kitchen & dining room table", "Book"} and len(used) >= 3
    for ann in data["annotations"]:
        assert set(openimages.FLAGS) <= set(ann) and ann["iscrowd"] == ann["IsGroupOf"]
    load_annotations(openimages.annotation_file(openimages_root, "train"))  # pycocotools reads both splits
    assert (openimages.image_folder(openimages_root, "train")).is_dir()


def test_subset_json_keeps_the_264_classes_and_their_images():
    sizes = {"b": (100, 50), "a": (10, 10), "c": (20, 20)}
    found = openimages.subset_json(sizes, [
        openimages.Box("b", "Zucchini", 0.1, 0.5, 0.2, 0.4, {"IsGroupOf": 1, "IsOccluded": -1}),
        openimages.Box("a", "Person", 0, 1, 0, 1),  # not one of the 264: image "a" is left out
        openimages.Box("c", "Apple", 0, 0.5, 0, 0.5), openimages.Box("gone", "Apple", 0, 1, 0, 1)])
    assert [(i["id"], i["file_name"]) for i in found["images"]] == [(1, "b.jpg"), (2, "c.jpg")]
    first = found["annotations"][0]
    assert first["category_id"] == 263 and first["bbox"] == pytest.approx([10, 10, 40, 10])
    assert first["iscrowd"] == 1 and first["IsOccluded"] == -1 and first["area"] == pytest.approx(400)
    assert [a["image_id"] for a in found["annotations"]] == [1, 2]
