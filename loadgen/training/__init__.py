"""Training: the workload contract and its one driver, the mllog wrapper, torchrun helpers, checkpoints.

- ``workload``: :class:`~loadgen.training.workload.Workload`, what a benchmark's ``train.py`` declares.
- ``driver``: the rest of a training run, written once (flags, seeding, the mllog skeleton, the loop, sharded
  evaluation, checkpoints and ``--resume``, the curve, ``train_result.json``, the RESULT line, exit codes).
- ``timing``: :class:`~loadgen.training.timing.MLLog`, the only wrapper over ``mlperf_logging.mllog``.
- ``distributed``: torchrun, DDP, rank-0 decisions, gathering evaluation shards.
- ``checkpoint``: safetensors checkpoints that never unpickle.

Importing this package imports nothing else: ``timing`` and ``checkpoint`` stay free of torch at import, as
the framework-neutral modules must; ``workload``, ``driver`` and ``distributed`` need torch.
"""
