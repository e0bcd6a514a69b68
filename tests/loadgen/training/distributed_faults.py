"""``python tests/loadgen/training/distributed_faults.py FAULT MODULE ARGS...``: MODULE's ``__main__`` under
torchrun with a fault on rank 1, for tests/loadgen/training/test_distributed.py.

- ``crash``:  rank 1 dies abruptly (``os._exit(3)``, no clean-up) at its second optimizer step.
- ``nosync``: no rank wraps its model in DDP, so each trains on its own share of the batch (for DLRM's sharded
  model, TorchRec's DistributedModelParallel leaves its MLPs unwrapped).
"""

import os
import runpy
import sys

if __name__ == "__main__":
    fault = sys.argv[1]
    if fault == "crash" and os.environ.get("RANK") == "1":
        import torch

        original = torch.optim.SGD.step
        calls = []

        def step(self, *args, **kwargs):
            calls.append(1)
            if len(calls) == 2:
                os._exit(3)
            return original(self, *args, **kwargs)

        torch.optim.SGD.step = step
    elif fault == "nosync":
        from loadgen.training import distributed

        distributed.wrap = lambda world, model: model
        if sys.argv[2] == "recommendation.train":
            from torchrec.distributed import model_parallel

            model_parallel.DefaultDataParallelWrapper.wrap = lambda self, dmp, env, device: None
    sys.argv = sys.argv[2:]
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
