"""PyTorch backend: a ``torch.export`` program (``.pt2``) or TorchScript (``.pt``/``.ts``), CPU or CUDA.

The reference loaded a whole pickled model. Here neither format may run code from the file: a ``.pt2`` passes
:func:`loadgen.backends.model_files.check_pt2` first (torch.export.load itself would unpickle, exec and eval
parts of a crafted archive), and TorchScript's unpickler resolves TorchScript types only. Whatever torch raises
for a corrupt, truncated or empty file becomes one :class:`BackendError` naming the file.
"""

from __future__ import annotations

import io
import logging
import pickle
import warnings
from collections.abc import Sequence

import numpy as np
import torch

from loadgen.backends.base import Backend, BackendError, require_file
from loadgen.backends.model_files import check_pt2, refuse


def load_pt2(path: str) -> torch.export.ExportedProgram:
    """``torch.export.load`` of a file that passed :func:`check_pt2`, with every pickle proven safe first.

    The file is read once, and the bytes that were checked are the bytes torch loads: a file swapped on disk
    between the check and the load cannot slip through.
    """
    with open(path, "rb") as f:
        archive = io.BytesIO(f.read())
    for member, data in check_pt2(path, archive).items():
        # torch.export.load tries weights_only=True and, on failure, unpickles fully. Trying it here first
        # means that any payload torch gets to load is one the safe unpickler already accepted.
        try:
            torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
        except (pickle.UnpicklingError, RuntimeError, ValueError, EOFError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise refuse(path, f"{member} needs full unpickling, which could run code ({first})") from None
    # torch logs a multi-line traceback of its own before raising; the BackendError says it on one line.
    logger = logging.getLogger("torch.export")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        archive.seek(0)
        return torch.export.load(archive)
    finally:
        logger.setLevel(level)


class PytorchBackend(Backend):
    name = "pytorch"
    input_layout = "NCHW"

    def version(self) -> str:
        return torch.__version__

    def load(self, path: str) -> PytorchBackend:
        require_file(path)
        if self.config.device == "gpu":
            if not torch.cuda.is_available():
                raise BackendError("device gpu needs a CUDA GPU; torch.cuda.is_available() is False")
            self.device = torch.device("cuda")
        else:
            self.device = torch.device("cpu")
        # torch's intra-op pool is per process; the harness gives it the share of the cores it owns.
        torch.set_num_threads(self.config.threads)
        try:
            if path.endswith(".pt2"):
                self.model = load_pt2(path).module()
            else:
                with warnings.catch_warnings():  # its deprecation notice: TorchScript is what some graphs need
                    warnings.simplefilter("ignore", FutureWarning)
                    self.model = torch.jit.load(path, map_location=self.device)
        except BackendError:
            raise
        except Exception as exc:  # torch raises RuntimeError, zipfile, JSON, serde and assertion errors alike
            first = (str(exc).strip().splitlines() or [""])[0]
            raise BackendError(f"{path}: torch cannot load it: {type(exc).__name__}: {first}") from exc
        self.model.to(self.device)
        if hasattr(self.model, "eval") and not path.endswith(".pt2"):
            self.model.eval()
        return self

    def predict(self, feeds: Sequence[np.ndarray]) -> list[np.ndarray]:
        with torch.inference_mode():
            tensors = [torch.from_numpy(np.ascontiguousarray(f)).to(self.device, non_blocking=True) for f in feeds]
            out = self.model(*tensors)
        if isinstance(out, torch.Tensor):
            out = [out]
        elif isinstance(out, dict):
            names = self.config.outputs or list(out)
            out = [out[n] for n in names]
        return [o.detach().cpu().numpy() for o in out]
