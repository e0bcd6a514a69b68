"""Export parity: every exported model run on the same inputs through the harness's own backends, so an export is
checked the way LoadGen will run it (input layout, thread settings, the backend's own loading checks).

Each benchmark's ``export.py`` compares these outputs with PyTorch's by its own measure (top-1 agreement for a
classifier, the largest difference of a click probability for DLRM).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

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
