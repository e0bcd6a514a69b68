"""Shared code of the suite: our binding over the official MLPerf LoadGen (``mlperf_loadgen``), and one room for
each other job two benchmarks share.

The LoadGen binding, at the top:

- ``harness``     the ``Task`` contract (QSL side), the SUT, ``run()`` for one scenario in one mode.
- ``settings``    scenario/mode config -> ``mlperf_loadgen.TestSettings`` (built-in mlperf.conf, retired-model
                  rules, ``--config``, user.conf, audit.config, quick flags).
- ``backends/``   ``pytorch``, ``onnxruntime``, ``tf``, ``tflite`` and ``null`` behind a lazy registry; model-file
                  checks; export parity.
- ``cli``         the reference harness's flags, ``--profile``, one-line usage errors, ``execute``.
- ``report``      LoadGen's logs -> the reference's one-line summary and a results JSON.
- ``accuracy``    the one reader of ``mlperf_log_accuracy.json``; named metrics with their scale.
- ``exported``    where inference finds an exported model and its ``export.json``.
- ``environment`` command, revision, packages and hardware, for every results file.
- ``plots``       the latency histogram and the training curve.

The other rooms:

- ``training/``   the training contract (``workload``), its one ``driver``, ``timing`` (mllog), ``distributed``
                  (torchrun), ``checkpoint`` (safetensors).
- ``data/``       download, safe extraction, manifests and verification, whole-or-nothing files and folders,
                  preprocessing caches, worker pools (one module each).
- ``nets/``       networks two benchmarks share (torch): MobileNet-v1 (image_classification, SSD-MobileNet-v1).
- ``deploy/``     where a benchmark runs, standard library only: ``scripts`` (every folder's shell scripts),
                  ``launch`` (Docker or native), ``Dockerfile`` (the base image), ``backendai``, ``slurm_train.sh``.

Only ``backends/`` (each backend module), ``nets/`` and ``training/`` (but ``timing``) import an ML framework; a
test imports the rest with torch, tensorflow and onnxruntime blocked. Importing this package has no side effects.
"""

__version__ = "0.1.0"
