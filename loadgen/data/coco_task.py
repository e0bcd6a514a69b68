"""The LoadGen task of a detector on a COCO-format set (COCO 2017, the MLPerf OpenImages subset): the QSL is the
annotation file's images in its order (``coco_accuracy.qsl_images``), loaded as uint8 squares of the model's input,
normalised per batch; the benchmark gives the function from its graph's raw outputs to per-sample responses (its
one post-processing), and accuracy is COCO mAP of those responses.

numpy, PIL and pycocotools only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from loadgen.accuracy import Accuracy, read_log
from loadgen.data.coco import read_rgb
from loadgen.data.coco_accuracy import accuracy_from_responses, qsl_images
from loadgen.data.errors import DataError
from loadgen.data.pixels import SquarePreset
from loadgen.harness import InMemoryTask

# (the graph's outputs for a batch, the batch's sample indices) -> one float32 response per sample
Decode = Callable[[Sequence[np.ndarray], np.ndarray], list[np.ndarray]]


class DetectionTask(InMemoryTask):
    """The images of ``coco`` (a pycocotools COCO) under ``folder``, resized to the square input as uint8 when
    LoadGen loads them; normalised per batch into ``layout``; ``decode`` makes the responses."""

    def __init__(self, coco, folder: Path, preset: SquarePreset, layout: str, decode: Decode,
                 count: int | None = None, remove_empty: bool = False) -> None:
        self.coco, self.preset, self.layout, self.decode = coco, preset, layout, decode
        self.remove_empty = remove_empty
        self.images = qsl_images(coco, remove_empty)[: count or None]
        if not self.images:
            raise DataError(f"{folder}: the annotation file lists no images")
        missing = [img["file_name"] for img in self.images if not (folder / img["file_name"]).is_file()]
        if missing:
            raise DataError(f"{folder / missing[0]}: missing ({len(missing)} of {len(self.images)} images are)")

        def make(i: int) -> np.ndarray:
            return preset.geometry(read_rgb(folder / self.images[i]["file_name"]))

        super().__init__(make, total_count=len(self.images))

    def inputs(self, indices: np.ndarray):
        return [self.preset.normalize(super().inputs(indices)[0], self.layout)]

    def postprocess(self, outputs, indices):
        return self.decode(outputs, indices)

    def accuracy(self, accuracy_log: Path) -> Accuracy:
        found = read_log(accuracy_log, np.float32)
        return accuracy_from_responses(found, self.coco, remove_empty=self.remove_empty,
                                       source=str(accuracy_log))[0]

    def accuracy_text(self, result: Accuracy) -> str:
        from loadgen.data.coco_accuracy import line

        return line(result)
