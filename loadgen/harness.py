"""QSL and SUT over the official ``mlperf_loadgen``, and :func:`run`, one runner for every scenario.

Design:

- The QSL is a :class:`Task`. LoadGen's load/unload callbacks go straight to it, so only the performance
  sample set LoadGen picked is in memory.
- The SUT uses LoadGen's fast issue callback (ids and indices as plain lists, no ``QuerySample`` objects).
  SingleStream runs the batch inline, on LoadGen's issue thread: no hand-off on the latency path. The other
  scenarios queue work to ``workers`` threads; each takes what is queued up to ``max_batchsize`` (dynamic
  batching), so the backend is never idle while work waits.
- LoadGen waits forever for a missing response, so every sample is answered, also when the backend raises or
  a sample cannot be loaded (an exception escaping LoadGen's load callback would abort the whole process).
  After the first failure the rest are answered empty at once, and :func:`run` raises :class:`RunAborted`
  within ``abort_grace_s`` seconds whether LoadGen has finished or not. Ctrl-C takes the same path.
- ``StartTest`` runs on its own thread so that the main thread stays free to take Ctrl-C.
"""

from __future__ import annotations

import abc
import queue
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import mlperf_loadgen as lg
import numpy as np

from loadgen import report
from loadgen.accuracy import Accuracy
from loadgen.backends.base import Backend
from loadgen.settings import RunSettings, build_test_settings


class Task(abc.ABC):
    """One benchmark's side of the QSL: its samples, its forward pass and its post-processing.

    ``load``/``unload`` are LoadGen's callbacks: hold exactly the samples loaded. For each batch the harness calls,
    from worker threads and for loaded samples only::

        for positions in task.order(indices):          # default: the whole batch, in arrival order
            idx = indices[positions]
            outputs = task.predict(backend, task.inputs(idx))
            responses[positions] = task.postprocess(outputs, idx)

    and answers every sample with its own response, whatever order the groups ran in.
    """

    @property
    @abc.abstractmethod
    def total_count(self) -> int:
        """Samples in the dataset (LoadGen's total sample count)."""

    @property
    def performance_count(self) -> int:
        """Samples that fit in memory at once; LoadGen's performance_sample_count unless a conf overrides it."""
        return self.total_count

    @abc.abstractmethod
    def load(self, indices: Sequence[int]) -> None: ...

    @abc.abstractmethod
    def unload(self, indices: Sequence[int]) -> None: ...

    @abc.abstractmethod
    def inputs(self, indices: np.ndarray) -> Sequence[np.ndarray]:
        """One batch: an array per model input, the samples on axis 0, in the order of ``indices``."""

    def order(self, indices: np.ndarray) -> Sequence[np.ndarray]:
        """Positions into ``indices``, in groups: each group is one forward pass, run in turn.

        The default is one group in arrival order. Translation sorts a batch by source length and cuts it into
        buckets of similar length (less padding); the harness puts every response back with its own sample.
        The groups must cover every position exactly once.
        """
        return [np.arange(len(indices))]

    def predict(self, backend: Backend, inputs: Sequence[np.ndarray]) -> Any:
        """The forward pass of one batch; whatever it returns goes to :meth:`postprocess` unchanged.

        The default is the backend's one graph. A task overrides it for several graphs (an encoder run once, then
        a decoder loop with greedy or beam search that stops when every sample has ended), or to run a graph with
        no batch axis sample by sample, or when the model returns structured outputs (a list of dicts per sample,
        as torchvision's detection models do).
        """
        return backend.predict(inputs)

    def postprocess(self, outputs: Any, indices: np.ndarray) -> np.ndarray | list[np.ndarray]:
        """Per-sample responses: one array with the samples on axis 0 (row i answers sample i), or a list with one
        array per sample when responses differ in size (detections, tokens, a sample that aggregates rows)."""
        return outputs[0]

    def accuracy(self, accuracy_log: Path) -> Accuracy | None:
        """The task's named metrics from ``mlperf_log_accuracy.json``; None where it has none."""
        return None

    def accuracy_text(self, result: Accuracy) -> str:
        """The line the benchmark's accuracy tool prints for ``result``: an accuracy run writes it to
        ``accuracy.txt`` beside its log, where a submission's checker reads it (``accuracy=76.456%``, ``mAP=…``)."""
        return result.text()


def pad(arrays: Sequence[np.ndarray], value: float | int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stack arrays that differ in length on axis 0: ``(batch, longest, ...)`` filled with ``value``, and the
    int64 length of each. The other axes must agree."""
    if not arrays:
        raise ValueError("nothing to pad")
    lengths = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
    first = np.asarray(arrays[0])
    out = np.full((len(arrays), int(lengths.max()), *first.shape[1:]), value, dtype=first.dtype)
    for row, a in enumerate(arrays):
        out[row, : len(a)] = a
    return out, lengths


class RaggedTask(Task):
    """Samples of different sizes (sentences, images of their own size, runs of rows), built by
    ``make_sample(index)`` when LoadGen loads them and held one by one; :meth:`collate` makes a batch.

    A sample is an array or a tuple of arrays (its fields). :meth:`sample` gives a loaded sample back, so
    ``postprocess`` can read what it needs (lengths, labels, original sizes).
    """

    def __init__(self, make_sample: Callable[[int], np.ndarray | Sequence[np.ndarray]], total_count: int,
                 performance_count: int | None = None) -> None:
        if total_count < 1:
            raise ValueError(f"total_count must be >= 1, got {total_count}")
        self._make = make_sample
        self._total = total_count
        self._perf = min(performance_count or total_count, total_count)
        self._samples: dict[int, tuple[np.ndarray, ...]] = {}

    @property
    def total_count(self) -> int:
        return self._total

    @property
    def performance_count(self) -> int:
        return self._perf

    @property
    def loaded(self) -> frozenset[int]:
        return frozenset(self._samples)

    def load(self, indices: Sequence[int]) -> None:
        for i in indices:
            if i not in self._samples:
                sample = self._make(i)
                self._samples[i] = (sample,) if isinstance(sample, np.ndarray) else tuple(sample)

    def unload(self, indices: Sequence[int]) -> None:
        for i in indices:
            self._samples.pop(i, None)

    def sample(self, index: int) -> tuple[np.ndarray, ...]:
        """A loaded sample's fields; KeyError for one LoadGen has not loaded."""
        try:
            return self._samples[index]
        except KeyError:
            raise KeyError(f"sample {index} was not loaded by LoadGen") from None

    def inputs(self, indices: np.ndarray) -> Sequence[np.ndarray]:
        return self.collate([self.sample(i) for i in indices.tolist()])

    def collate(self, samples: Sequence[tuple[np.ndarray, ...]]) -> Sequence[np.ndarray]:
        """The model's inputs for these samples. The default pads each field to the longest sample (zeros) and
        appends the lengths of the first field: ``[field0 (B, L, ...), field1 ..., lengths (B,)]``."""
        fields = [pad(column)[0] for column in zip(*samples, strict=True)]
        return [*fields, pad([s[0] for s in samples])[1]]


class InMemoryTask(RaggedTask):
    """A :class:`RaggedTask` whose samples share one shape: loaded samples are also kept stacked, so a batch is
    one fancy-indexing copy per input instead of a collate."""

    def __init__(self, make_sample: Callable[[int], np.ndarray | Sequence[np.ndarray]], total_count: int,
                 performance_count: int | None = None) -> None:
        super().__init__(make_sample, total_count, performance_count)
        self._stacked: list[np.ndarray] = []
        self._row = np.full(total_count, -1, dtype=np.int64)

    def load(self, indices: Sequence[int]) -> None:
        super().load(indices)
        self._restack()

    def unload(self, indices: Sequence[int]) -> None:
        super().unload(indices)
        self._restack()

    def _restack(self) -> None:
        self._row[:] = -1
        order = list(self._samples)
        self._row[order] = np.arange(len(order))
        columns = zip(*(self._samples[i] for i in order), strict=True) if order else []
        self._stacked = [np.stack(col) for col in columns]

    def inputs(self, indices: np.ndarray) -> Sequence[np.ndarray]:
        rows = self._row[indices]
        if rows.min(initial=0) < 0:
            missing = indices[rows < 0][:5].tolist()
            raise KeyError(f"samples {missing} were not loaded by LoadGen")
        return [col[rows] for col in self._stacked]


class RunAborted(RuntimeError):
    """The run could not finish: the backend failed, or the user pressed Ctrl-C.

    ``loadgen_running`` is True when LoadGen's threads were still running after the grace period; the process
    must then exit with ``os._exit`` because Python cannot shut down under them.
    """

    def __init__(self, message: str, exit_code: int = 1, loadgen_running: bool = False) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.loadgen_running = loadgen_running


def _checked(result, n: int) -> np.ndarray | list[np.ndarray]:
    """``postprocess``'s result as contiguous arrays, refused unless it answers exactly ``n`` samples."""
    if isinstance(result, np.ndarray):
        result = np.ascontiguousarray(result)
        if result.shape[:1] != (n,):
            raise ValueError(f"post-processing returned {result.shape[:1]} rows for {n} samples")
        return result
    result = [np.ascontiguousarray(r) for r in result]
    if len(result) != n:
        raise ValueError(f"post-processing returned {len(result)} responses for {n} samples")
    return result


class _SUT:
    """Answers LoadGen's queries with ``backend`` on ``task``'s samples."""

    def __init__(self, task: Task, backend: Backend, inline: bool, max_batchsize: int, workers: int) -> None:
        self.task = task
        self.backend = backend
        self.inline = inline
        self.max_batchsize = max_batchsize
        self.failed = threading.Event()
        self.error: str | None = None
        self.error_detail: str | None = None
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._workers = [] if inline else [
            threading.Thread(target=self._work, name=f"sut-worker-{n}", daemon=True) for n in range(workers)
        ]
        for w in self._workers:
            w.start()

    # LoadGen callbacks -------------------------------------------------------------------------------------
    def issue(self, ids: list[int], indices: list[int]) -> None:
        step = self.max_batchsize
        for start in range(0, len(ids), step):
            chunk = (ids[start:start + step], indices[start:start + step])
            if self.inline:
                self._run_batch(*chunk)
            else:
                self._queue.put(chunk)

    def flush(self) -> None:
        pass

    # workers -------------------------------------------------------------------------------------------
    def _work(self) -> None:
        get, get_nowait, limit = self._queue.get, self._queue.get_nowait, self.max_batchsize
        carry = None
        while True:
            item, carry = (carry if carry is not None else get()), None
            if item is None:
                return
            ids, indices = item
            if len(ids) < limit:
                ids, indices = list(ids), list(indices)
                while len(ids) < limit:
                    try:
                        nxt = get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        self._queue.put(None)  # keep the stop signal for the next loop
                        break
                    room = limit - len(ids)
                    ids += nxt[0][:room]
                    indices += nxt[1][:room]
                    if len(nxt[0]) > room:
                        carry = (nxt[0][room:], nxt[1][room:])
            self._run_batch(ids, indices)

    def stop(self) -> None:
        for _ in self._workers:
            self._queue.put(None)
        for w in self._workers:
            w.join(timeout=10)

    # one batch ------------------------------------------------------------------------------------------
    def _run_batch(self, ids: list[int], indices: list[int]) -> None:
        if self.failed.is_set():
            self._complete_empty(ids)
            return
        try:
            idx = np.asarray(indices, dtype=np.int64)
            result = self._answer(idx)
        except Exception as exc:  # noqa: BLE001 - whatever the backend raised, LoadGen must get its answers
            self.fail(f"backend {self.backend.name!r} failed on a batch of {len(ids)} samples: "
                      f"{type(exc).__name__}: {exc}", traceback.format_exc())
            self._complete_empty(ids)
            return
        qsr = lg.QuerySampleResponse
        if isinstance(result, list):  # LoadGen copies what it logs before QuerySamplesComplete returns
            lg.QuerySamplesComplete([qsr(i, r.__array_interface__["data"][0], r.nbytes)
                                     for i, r in zip(ids, result, strict=True)])
            return
        size = result.nbytes // len(ids)
        base = result.__array_interface__["data"][0]
        pointers = range(base, base + size * len(ids), size)
        lg.QuerySamplesComplete([qsr(i, p, size) for i, p in zip(ids, pointers, strict=True)])

    def _answer(self, idx: np.ndarray) -> np.ndarray | list[np.ndarray]:
        """The responses to the samples ``idx``, in that order: one array (row per sample) or one per sample."""
        task = self.task
        groups = [np.asarray(g, dtype=np.int64) for g in task.order(idx)]
        if len(groups) == 1 and np.array_equal(groups[0], np.arange(len(idx))):
            return _checked(task.postprocess(task.predict(self.backend, task.inputs(idx)), idx), len(idx))
        covered = np.sort(np.concatenate(groups)) if groups else np.empty(0, np.int64)
        if not np.array_equal(covered, np.arange(len(idx))):
            raise ValueError(f"order() must cover the {len(idx)} positions of the batch exactly once")
        responses: list[np.ndarray | None] = [None] * len(idx)
        for positions in groups:
            sub = idx[positions]
            part = _checked(task.postprocess(task.predict(self.backend, task.inputs(sub)), sub), len(sub))
            for pos, response in zip(positions.tolist(), part, strict=True):
                responses[pos] = np.ascontiguousarray(response)
        return responses

    def _complete_empty(self, ids: list[int]) -> None:
        qsr = lg.QuerySampleResponse
        lg.QuerySamplesComplete([qsr(i, 0, 0) for i in ids])

    # QSL callbacks --------------------------------------------------------------------------------------
    def load(self, indices: list[int]) -> None:
        """LoadGen's load callback. An exception must not escape into LoadGen (it aborts the process), so a
        sample that cannot be loaded fails the run the way a failing backend does: every query is then
        answered empty, and :func:`run` reports the error and writes the failure report."""
        if self.failed.is_set():
            return
        try:
            self.task.load(indices)
        except Exception as exc:  # noqa: BLE001 - whatever the task raised, LoadGen must not see it
            self.fail(f"loading samples failed: {type(exc).__name__}: {exc}", traceback.format_exc())

    def unload(self, indices: list[int]) -> None:
        try:
            self.task.unload(indices)
        except Exception as exc:  # noqa: BLE001 - as in load
            self.fail(f"unloading samples failed: {type(exc).__name__}: {exc}", traceback.format_exc())

    def fail(self, message: str, detail: str | None = None) -> None:
        with self._lock:
            if self.error is None:
                self.error, self.error_detail = message, detail
        self.failed.set()


def run(task: Task, backend: Backend, rs: RunSettings, output_dir: str | Path, *, max_batchsize: int = 32,
        workers: int = 1, trace: bool = True, abort_grace_s: float = 5.0, command: Sequence[str] | None = None,
        extra: dict | None = None) -> report.Result:
    """Run one scenario in one mode under LoadGen; LoadGen's logs and the results go into ``output_dir``.

    Raises RunAborted when the backend fails or on Ctrl-C (at any point: before LoadGen starts, during the run,
    or during the grace period), and ValueError for settings LoadGen rejects.
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    done = threading.Event()
    loadgen_error: list[BaseException] = []
    tester: threading.Thread | None = None
    exit_code = 1
    audit_config = rs.audit_config
    if rs.compliance is not None:
        from loadgen.compliance import audit_config as compliance_audit

        audit_config = str(out / "audit.config")
        Path(audit_config).write_text(compliance_audit(rs.compliance, rs.model))
    try:
        settings = build_test_settings(rs, out)
        total = task.total_count
        if rs.count is not None:
            total = min(total, rs.count)
        perf_count = min(task.performance_count, total)
        if settings.performance_sample_count_override > total:
            if rs.submission:
                raise ValueError(f"--submission: the dataset holds {total} samples, fewer than the performance "
                                 f"sample count of {settings.performance_sample_count_override} that "
                                 f"{rs.model}'s rules require")
            # mlperf.conf's count is for the full dataset; a reduced set holds fewer samples than that.
            settings.performance_sample_count_override = total

        log_settings = lg.LogSettings()
        log_settings.log_output.outdir = str(out)
        log_settings.log_output.copy_summary_to_stdout = False
        log_settings.enable_trace = trace

        sut = _SUT(task, backend, inline=rs.scenario == "SingleStream", max_batchsize=max_batchsize,
                   workers=workers)
        sut_handle = lg.ConstructFastSUT(sut.issue, sut.flush)
        qsl_handle = lg.ConstructQSL(total, perf_count, sut.load, sut.unload)

        def start_test() -> None:
            try:
                lg.StartTestWithLogSettings(sut_handle, qsl_handle, settings, log_settings, audit_config)
            except Exception as exc:  # noqa: BLE001 - reported on the main thread
                loadgen_error.append(exc)
            finally:
                done.set()

        started = time.perf_counter()
        tester = threading.Thread(target=start_test, name="loadgen", daemon=True)
        tester.start()
        while not done.wait(0.05):
            if sut.failed.is_set():
                break
    except KeyboardInterrupt:
        if tester is None:  # LoadGen's test never started: nothing to answer
            raise RunAborted("interrupted by the user (Ctrl-C)", exit_code=130) from None
        sut.fail("interrupted by the user (Ctrl-C)")
        exit_code = 130
    def teardown() -> None:
        sut.stop()
        lg.DestroyQSL(qsl_handle)
        lg.DestroySUT(sut_handle)

    if sut.failed.is_set():
        try:
            done.wait(abort_grace_s)
        except KeyboardInterrupt:  # a second Ctrl-C or SIGTERM: stop waiting for LoadGen, still write the report
            exit_code = 130
        running = not done.is_set()
        if not running:
            teardown()
        report.write_failure(out, rs, sut.error or "failed", sut.error_detail, command)
        raise RunAborted(sut.error or "failed", exit_code=exit_code, loadgen_running=running)
    wall_s = time.perf_counter() - started
    teardown()
    if loadgen_error:
        raise RunAborted(f"LoadGen failed: {loadgen_error[0]}")
    return report.summarize(out, rs, task=task, backend=backend, wall_s=wall_s, command=command,
                            extra=dict(extra or {}, max_batchsize=max_batchsize, workers=workers,
                                       threads=backend.config.threads, trace=trace))


def plan_runs(args, model_name: str) -> list[tuple[RunSettings, Path]]:
    """The runs one command line asks for, in turn: every scenario at every --max-latency, with output folders."""
    latencies = args.max_latency or [None]
    runs = []
    for scenario in args.scenario:
        for latency in latencies:
            rs = RunSettings(
                model=model_name, scenario=scenario, accuracy=args.accuracy,
                find_peak_performance=args.find_peak_performance, count=args.count, time_s=args.time,
                max_time_s=args.max_time,
                qps=args.qps, max_latency_s=latency, samples_per_query=args.samples_per_query,
                performance_sample_count=args.performance_sample_count, config=args.config,
                user_conf=args.user_conf, audit_config=args.audit_config,
                rng_seeds=getattr(args, "rng_seeds", None), submission=getattr(args, "submission", False),
                compliance=getattr(args, "compliance", None))
            name = scenario if latency is None or len(latencies) == 1 else f"{scenario}-max-latency-{latency:g}s"
            runs.append((rs, Path(args.output) / name / rs.mode))
    return runs
