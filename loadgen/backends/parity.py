"""Export parity: every exported model run on the same inputs through the harness's own backends, so an export is
checked the way LoadGen will run it (input layout, thread settings, the backend's own loading checks).

Each benchmark's ``export.py`` compares these outputs with PyTorch's by its own measure (top-1 agreement for a
classifier, the largest difference of a click probability for DLRM); the detectors share one,
:func:`detection_parity`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from loadgen.backends import BackendConfig, create_backend


def exported_outputs(exported: Mapping[str, str | os.PathLike], feeds: Sequence[np.ndarray], *,
                     images_nchw: bool = False, batch: int = 64, threads: int = 2) -> dict[str, np.ndarray]:
    """{backend name: its first output on ``feeds``}, run ``batch`` samples at a time.

    ``exported`` maps a backend name to its model file; ``feeds`` are the model inputs with the samples on axis 0.
    With ``images_nchw`` the first feed is an NCHW image batch, transposed to NHWC for backends that take that.
    """
    outputs = {}
    for name, path in exported.items():
        backend = create_backend(name, BackendConfig(threads=threads)).load(str(path))
        inputs = list(feeds)
        if images_nchw and backend.input_layout == "NHWC":
            inputs[0] = np.ascontiguousarray(inputs[0].transpose(0, 2, 3, 1))
        n = len(inputs[0])
        outputs[name] = np.concatenate([backend.predict([x[i:i + batch] for x in inputs])[0]
                                        for i in range(0, n, batch)])
    return outputs


def backend_outputs(name: str, path: str | os.PathLike, images: np.ndarray, *, batch: int = 8,
                    threads: int = 2) -> list[np.ndarray]:
    """Every output of the model at ``path`` run by backend ``name`` on NCHW ``images`` (transposed for a backend
    that takes NHWC), ``batch`` images at a time, concatenated along the batch: a detector's several heads."""
    backend = create_backend(name, BackendConfig(threads=threads)).load(str(path))
    if backend.input_layout == "NHWC":
        images = np.ascontiguousarray(images.transpose(0, 2, 3, 1))
    parts = [backend.predict([images[i:i + batch]]) for i in range(0, len(images), batch)]
    return [np.concatenate([part[k] for part in parts]) for k in range(len(parts[0]))]


def eager_outputs(model, images: np.ndarray, batch: int = 8) -> list[np.ndarray]:
    """Every output of the PyTorch ``model`` on NCHW ``images``, ``batch`` at a time, concatenated: the eager
    reference an export is checked against."""
    import torch

    with torch.inference_mode():
        parts = [model(torch.from_numpy(images[i:i + batch])) for i in range(0, len(images), batch)]
    return [torch.cat([part[k] for part in parts]).numpy() for k in range(len(parts[0]))]


DETECTION_MAP_TOLERANCE = 0.5  # mAP points an export may differ from PyTorch by
DETECTION_MATCHED = 0.99  # share of PyTorch's detections an export must reproduce
# The largest difference of a raw head output (a logit, a box offset) within which an export is PyTorch's model up
# to float rounding: ONNX Runtime differs by about 1e-6. Detections can still differ then, where an untrained
# model's scores tie around the score threshold, the top-k cut or NMS, and the shared post-processing breaks the
# ties by rounding; the detections measure alone would fail such an export.
RAW_OUTPUT_TOLERANCE = 1e-4


def max_abs_difference(reference: Sequence[np.ndarray], other: Sequence[np.ndarray]) -> float:
    """The largest absolute difference between two lists of output arrays; inf when their shapes differ."""
    if len(reference) != len(other) or any(np.shape(a) != np.shape(b) for a, b in zip(reference, other, strict=True)):
        return float("inf")
    return max((float(np.max(np.abs(np.asarray(a, np.float64) - b), initial=0.0))
                for a, b in zip(reference, other, strict=True)), default=0.0)


def detection_parity(prog: str, out: Path, record: Mapping, coco, reference_outputs: Sequence[np.ndarray],
                     targets: Mapping[str, Path], outputs_of: Callable[[str], Sequence[np.ndarray]],
                     respond: Callable[[Sequence[np.ndarray]], Sequence[np.ndarray]]) -> int:
    """A detector export's check: each format's raw outputs (``outputs_of(format)``) and its responses
    (``respond(outputs)``: rows of 7 per sample as LoadGen logs them, through the one post-processing every backend
    shares) against eager PyTorch's (``reference_outputs``) on the same images of ``coco``. A format passes when
    its mAP is within :data:`DETECTION_MAP_TOLERANCE` points and it matches >= :data:`DETECTION_MATCHED` of the
    detections (``coco_accuracy.matched_share``), or when its raw outputs are within :data:`RAW_OUTPUT_TOLERANCE`
    of PyTorch's. Writes ``out/export.json`` (``record`` plus the files and what was measured), prints a line per
    format; returns the exit status, 1 naming the formats that differ."""
    from loadgen import exported, report
    from loadgen.data.coco_accuracy import accuracy_from_responses, matched_share

    def count(responses: Sequence[np.ndarray]) -> int:
        return int(sum(len(r) for r in responses) // 7)

    reference = respond(reference_outputs)
    ref_map = accuracy_from_responses(dict(enumerate(reference)), coco)[0]["mAP"]
    parity = {}
    for fmt in targets:
        outputs = outputs_of(fmt)
        got = respond(outputs)
        parity[fmt] = {"mAP": accuracy_from_responses(dict(enumerate(got)), coco)[0]["mAP"],
                       "matched": matched_share(reference, got), "detections": count(got),
                       "max_abs_difference": max_abs_difference(reference_outputs, outputs)}
    report.write_json_atomic(out / exported.METADATA, {
        **record, "files": {f: Path(t).name for f, t in targets.items()}, "images": len(reference),
        "pytorch_mAP": ref_map, "pytorch_detections": count(reference), "parity": parity})
    print(f"export: pytorch (eager)  mAP {ref_map:.3f} on {len(reference)} images")
    bad = []
    for fmt, p in parity.items():
        print(f"export: {fmt:12s} {targets[fmt]}  mAP {p['mAP']:.3f}, {100 * p['matched']:.2f} % of detections "
              f"matched, raw outputs within {p['max_abs_difference']:.1e}")
        detections_agree = abs(p["mAP"] - ref_map) <= DETECTION_MAP_TOLERANCE and p["matched"] >= DETECTION_MATCHED
        if not detections_agree and p["max_abs_difference"] > RAW_OUTPUT_TOLERANCE:
            bad.append(fmt)
    if bad:
        print(f"{prog}: error: {', '.join(bad)} differ from PyTorch (mAP beyond {DETECTION_MAP_TOLERANCE} points "
              f"or under {100 * DETECTION_MATCHED:.0f} % of detections matched, and raw outputs beyond "
              f"{RAW_OUTPUT_TOLERANCE:g}); see {out / exported.METADATA}", file=sys.stderr)
        return 1
    return 0
