"""Default boxes, the box coder and the one post-processing (decode, softmax, per-class NMS, caps)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from single_stage_detector import boxes


def test_resnet34_boxes_at_300_are_the_reference_set():
    d = boxes.r34_default_boxes(300, [38, 19, 10, 5, 3, 1])
    assert boxes.r34_boxes_per_cell() == [4, 6, 6, 6, 4, 4]
    assert d.shape == (8732, 4) and d.dtype == np.float32
    assert d.min() >= 0.0 and d.max() <= 1.0  # the reference clamps every coordinate
    # First box: the 21-pixel square at the first 38x38 cell, centres 8 pixels apart (300 / 8 = 37.5 cells).
    np.testing.assert_allclose(d[0], [0.5 / 37.5, 0.5 / 37.5, 21 / 300, 21 / 300], rtol=1e-6)
    np.testing.assert_allclose(d[1, 0], 1.5 / 37.5, rtol=1e-6)
    # Second shape of the first map: the square between scales 21 and 45.
    np.testing.assert_allclose(d[38 * 38, 2:], [np.sqrt(21 * 45) / 300] * 2, rtol=1e-6)
    # The 1x1 map's last box: aspect ratio 1/2 at scale 261, its height clamped to 1.
    np.testing.assert_allclose(d[-1], [0.5, 0.5, 261 / 300 / np.sqrt(2), 1.0], rtol=1e-6)


def test_resnet34_boxes_at_1200_follow_the_inference_rule():
    d = boxes.r34_default_boxes(1200, [50, 25, 13, 7, 3, 3])
    assert len(d) == 4 * 50 * 50 + 6 * (25 * 25 + 13 * 13 + 7 * 7) + 4 * (3 * 3 + 3 * 3) == 15130
    # Steps 1200 // 50 = 24, so cells 1200 // 24 = 50 apart; scale 21 * 1200 / 300 = 84 pixels.
    np.testing.assert_allclose(d[0], [0.5 / 50, 0.5 / 50, 84 / 1200, 84 / 1200], rtol=1e-6)
    level1 = d[4 * 2500:4 * 2500 + 625]  # first shape of the 25x25 map
    np.testing.assert_allclose(np.unique(level1[:, 0]), (np.arange(25) + 0.5) / 25, rtol=1e-6)


def test_mobilenet_anchors_are_tensorflows():
    d = boxes.mobilenet_default_boxes([19, 10, 5, 3, 2, 1])
    assert boxes.mobilenet_boxes_per_cell() == [3, 6, 6, 6, 6, 6]
    assert d.shape == (1917, 4)
    np.testing.assert_allclose(d[0], [0.5 / 19, 0.5 / 19, 0.1, 0.1], rtol=1e-6)  # the lowest map's small square
    np.testing.assert_allclose(d[361, 2:], [0.2 * np.sqrt(2), 0.2 / np.sqrt(2)], rtol=1e-6)  # scale 0.2, ratio 2
    np.testing.assert_allclose(d[-1], [0.5, 0.5, np.sqrt(0.95), np.sqrt(0.95)], rtol=1e-6)  # sqrt(0.95 * 1.0)


def test_grid_order_is_shape_then_row_then_column():
    d = boxes.grid_boxes([2], [[(0.1, 0.1), (0.3, 0.2)]])
    np.testing.assert_allclose(d[:, :2], [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]] * 2)
    np.testing.assert_allclose(d[4:, 2:], [[0.3, 0.2]] * 4)


def test_encode_then_decode_gives_the_boxes_back():
    g = torch.Generator().manual_seed(0)
    defaults = torch.from_numpy(boxes.r34_default_boxes(300, [38, 19, 10, 5, 3, 1]))
    lt = torch.rand(len(defaults), 2, generator=g) * 0.6
    ltrb = torch.cat([lt, lt + 0.05 + torch.rand(len(defaults), 2, generator=g) * 0.3], 1)
    offsets = boxes.encode(ltrb, defaults)
    assert offsets.shape == ltrb.shape and torch.isfinite(offsets).all()
    torch.testing.assert_close(boxes.decode(offsets, defaults), ltrb, atol=1e-5, rtol=1e-5)
    # A box equal to its default box encodes to zero.
    assert boxes.encode(boxes.xywh_to_ltrb(defaults), defaults).abs().max() < 1e-5


def test_match_thresholds_and_forces_the_best_default_box():
    defaults = torch.tensor([[0.25, 0.25, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5], [0.75, 0.25, 0.2, 0.2]])
    gt = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.7, 0.2, 0.72, 0.22]])  # the first default box; a tiny one
    matched, labels = boxes.match(gt, torch.tensor([7, 9]), defaults)
    assert labels.tolist() == [7, 0, 9]  # the tiny box's IoU is far below 0.5, yet it claims its best default box
    torch.testing.assert_close(matched[0], gt[0])
    torch.testing.assert_close(matched[1], boxes.xywh_to_ltrb(defaults[1]))  # background keeps its own box
    empty, none = boxes.match(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), defaults)
    assert none.tolist() == [0, 0, 0]


def _logits(probs: np.ndarray) -> np.ndarray:
    """Scores (N, C, B) whose softmax over the classes is ``probs``."""
    return np.log(probs).astype(np.float32)


def _case(boxes_xywh, classes, probs, num_classes=4):
    """One image: zero offsets (so detections are the default boxes), box b scoring probs[b] on classes[b] and
    the rest on the background (other classes get 1e-6)."""
    n = len(boxes_xywh)
    p = np.full((num_classes, n), 1e-6)
    for b, (c, s) in enumerate(zip(classes, probs, strict=True)):
        p[0, b] = 0.0
        p[c, b] = s
        p[0, b] = 1.0 - p[:, b].sum()
    return np.zeros((1, 4, n), np.float32), _logits(p)[None], np.asarray(boxes_xywh, np.float32)


def test_overlapping_boxes_of_one_class_keep_the_best():
    locs, scores, defaults = _case([[0.5, 0.5, 0.4, 0.4], [0.52, 0.5, 0.4, 0.4]], [2, 2], [0.9, 0.8])
    (det,) = boxes.postprocess(locs, scores, defaults)
    assert det.shape == (1, 6) and det.dtype == np.float32
    np.testing.assert_allclose(det[0], [0.3, 0.3, 0.7, 0.7, 0.9, 2], atol=1e-5)  # [ymin, xmin, ymax, xmax, s, l]


def test_overlapping_boxes_of_different_classes_are_both_kept():
    locs, scores, defaults = _case([[0.5, 0.5, 0.4, 0.4], [0.52, 0.5, 0.4, 0.4]], [2, 3], [0.9, 0.8])
    (det,) = boxes.postprocess(locs, scores, defaults)
    assert det[:, 5].tolist() == [2, 3] and det[:, 4] == pytest.approx([0.9, 0.8], abs=1e-5)


def test_scores_below_the_threshold_are_dropped_and_boxes_clamped():
    locs, scores, defaults = _case([[0.2, 0.2, 0.1, 0.1], [0.7, 0.9, 0.4, 0.4]], [1, 1], [0.049, 0.051])
    (det,) = boxes.postprocess(locs, scores, defaults)
    assert len(det) == 1
    np.testing.assert_allclose(det[0], [0.7, 0.5, 1.0, 0.9, 0.051, 1], atol=1e-5)  # ymax 1.1 clamped to 1


def test_background_is_never_a_detection():
    locs, scores, defaults = _case([[0.5, 0.5, 0.4, 0.4]], [0], [0.99])
    (det,) = boxes.postprocess(locs, scores, defaults)
    assert len(det) == 0


def _separate_boxes(count):
    side = int(np.ceil(np.sqrt(count)))
    centres = (np.arange(side) + 0.5) / side
    return [[x, y, 0.5 / side, 0.5 / side] for y in centres for x in centres][:count]  # no two overlap


def test_at_most_200_detections_best_first():
    probs = np.linspace(0.9, 0.3, 300)
    locs, scores, defaults = _case(_separate_boxes(300), [1 + b % 2 for b in range(300)], probs)
    (det,) = boxes.postprocess(locs, scores, defaults)
    assert len(det) == 200
    np.testing.assert_allclose(det[:, 4], probs[:200], atol=1e-5)


def test_each_class_keeps_at_most_200_candidates():
    locs, scores, defaults = _case(_separate_boxes(250), [1] * 250, np.linspace(0.9, 0.3, 250))
    (det,) = boxes.postprocess(locs, scores, defaults, max_detections=1000)
    assert len(det) == 200 and det[-1, 4] == pytest.approx(np.linspace(0.9, 0.3, 250)[199], abs=1e-5)


def test_decoded_offsets_move_the_box_and_images_are_separate():
    defaults = np.array([[0.5, 0.5, 0.2, 0.2]], np.float32)
    locs = np.zeros((2, 4, 1), np.float32)
    locs[1, :, 0] = [1.0, 0.0, np.log(2) / 0.2, 0.0]  # centre +0.1 * 0.2 in x, twice as wide
    p = np.array([[0.1], [0.9]])
    scores = np.stack([_logits(p), _logits(p)])
    first, second = boxes.postprocess(locs, scores, defaults)
    np.testing.assert_allclose(first[0, :4], [0.4, 0.4, 0.6, 0.6], atol=1e-5)
    np.testing.assert_allclose(second[0, :4], [0.4, 0.32, 0.6, 0.72], atol=1e-5)


def test_shapes_that_do_not_fit_the_default_boxes_are_refused():
    with pytest.raises(ValueError, match=r"expected locs \(N, 4, 3\)"):
        boxes.postprocess(np.zeros((1, 4, 2)), np.zeros((1, 5, 2)), np.zeros((3, 4)))
