"""PyTorch backend: a ``torch.export`` program (``.pt2``) or TorchScript (``.pt``/``.ts``), CPU or CUDA.

Neither format unpickles arbitrary objects, unlike the reference, which loaded a whole pickled model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from loadgen.backends.base import Backend, BackendError, require_file


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
                self.model = torch.export.load(path).module()
            else:
                self.model = torch.jit.load(path, map_location=self.device)
        except (RuntimeError, ValueError, OSError) as exc:
            raise BackendError(f"{path}: torch cannot load it: {exc}") from exc
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
