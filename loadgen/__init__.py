"""Shared code of the suite: our binding over the official MLPerf LoadGen (``mlperf_loadgen``).

Modules, by role:

- ``harness``   QSL + SUT over ``mlperf_loadgen`` and ``run()``, one runner for all scenarios.
- ``settings``  scenario/mode config -> ``mlperf_loadgen.TestSettings`` (built-in mlperf.conf, retired-model
                rules, ``--config``, user.conf, audit.config, quick flags).
- ``backends``  ``pytorch``, ``onnxruntime``, ``tf``, ``tflite`` and ``null`` behind a lazy registry.
- ``report``    LoadGen's logs -> the reference's one-line summary, a results JSON and a latency histogram.
- ``timing``    the only wrapper over ``mlperf_logging.mllog`` (training logs).
- ``data/``     download, safe extraction, manifests and verification, whole-or-nothing files and folders,
                preprocessing caches, worker pools (one module each).
- ``cli``       the reference harness's flags, ``--profile`` and one-line usage errors.
- ``distributed`` data-parallel training under torchrun (DDP, seed broadcast, rank-0 decisions).
- ``checkpoint`` safetensors checkpoints.
- ``deploy/``   where a benchmark runs, standard library only: ``scripts`` (every folder's shell scripts),
                ``launch`` (Docker or native), ``Dockerfile`` (the base image), ``backendai`` (a Backend.AI
                variant of a benchmark's image), ``slurm_train.sh`` (the ``sbatch`` example).

``harness``, ``settings``, ``report``, ``timing``, ``data`` and ``cli`` import no ML framework. Importing this
package has no side effects.
"""

__version__ = "0.1.0"
