"""Shared command-line pieces: the reference harness's flags, ``--profile`` and one-line errors.

Every benchmark's ``infer.py`` builds its parser with :class:`ArgumentParser`, adds :func:`add_inference_args`
and its own flags, and calls :func:`parse_args` so a profile fills in whatever the user did not type.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

# Exit codes: 2 is argparse's own for bad usage; 1 for a run that failed; 130 is the shell's code for SIGINT.
EXIT_USAGE = 2
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM


class UsageError(ValueError):
    """Bad input from the user: printed as one line, exit status 2."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with errors on one line (``prog: error: ...``) instead of usage plus error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def demo_parser(prog: str, description: str | None, default_output: str, add_help: bool = True,
                submission_runs: str | None = None) -> ArgumentParser:
    """The parser of every benchmark's ``demo``: one ``--output`` folder for everything the demo writes, and, for
    a benchmark whose demo also makes the runs of a submission tree, ``--submission`` (``submission_runs`` says
    which runs)."""
    parser = ArgumentParser(prog=prog, description=description, add_help=add_help,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default=default_output,
                        help=f"where everything goes (default: {default_output})")
    if submission_runs is not None:
        parser.add_argument("--submission", action="store_true",
                            help=f"instead, the runs of a submission tree into <output>/submission-runs "
                                 f"({submission_runs}), on the demo's model (trained first if there is none); "
                                 "shortened by user.conf, so not valid for submission (default: False)")
    return parser


def demo_steps(name: str, steps: Sequence[tuple[str, Callable[[], int]]]) -> int:
    """Run a demo's ``(step, call)`` pairs in turn, each announced as ``== <name> demo: <step>``. The first call
    that returns a non-zero exit status stops the demo with one line naming the step; that status is the demo's."""
    for step, call in steps:
        print(f"== {name} demo: {step}", flush=True)
        status = call()
        if status:
            print(f"{name} demo: {step} failed (exit {status})", file=sys.stderr, flush=True)
            return status
    return 0


def demo_command(module, argv: Sequence[str]) -> Callable[[], int]:
    """A demo step that runs a benchmark's command (``module.get_args_parser()`` / ``module.main(args)``) in this
    process on ``argv``, as its command line would; the step returns its exit status."""
    return lambda: module.main(module.get_args_parser().parse_args([str(a) for a in argv]))


def demo_loadgen_run(module: str, profile: str, model_dir: str | os.PathLike, dataset: str | os.PathLike,
                     scenario: str, qps: str, user_conf: str | os.PathLike, output: str | os.PathLike,
                     accuracy: bool, extra: Sequence[str] = ()) -> int:
    """One LoadGen run of a demo: ``python -m <module>`` (a benchmark's infer) in a process of its own, because
    LoadGen accepts one user.conf per process; ``extra`` flags after the others. Its exit status."""
    import subprocess

    cmd = [sys.executable, "-m", module, "--profile", profile, "--model-dir", str(model_dir), "--dataset-path",
           str(dataset), "--scenario", scenario, "--qps", qps, "--user-conf", str(user_conf), "--output", str(output)]
    return subprocess.call(cmd + (["--accuracy"] if accuracy else []) + list(extra))


def demo_loadgen_steps(module: str, profile: str, model_dir: str | os.PathLike, dataset: str | os.PathLike,
                       runs: Sequence[tuple[str, str, bool]], user_conf: str | os.PathLike,
                       output: str | os.PathLike) -> list[tuple[str, Callable[[], int]]]:
    """A demo's LoadGen steps for :func:`demo_steps`: one :func:`demo_loadgen_run` per ``(scenario, qps,
    accuracy)`` of ``runs``, named ``"<scenario> performance"`` or ``"<scenario> accuracy"``."""
    import functools

    return [(f"{scenario} {'accuracy' if accuracy else 'performance'}",
             functools.partial(demo_loadgen_run, module, profile, model_dir, dataset, scenario, qps, user_conf,
                               output, accuracy))
            for scenario, qps, accuracy in runs]


def demo_submission_steps(module: str, profile: str, model_dir: str | os.PathLike, dataset: str | os.PathLike,
                          runs: Sequence[tuple[str, str]], tests: Sequence[str], user_conf: str | os.PathLike,
                          output: str | os.PathLike, rng_seeds: str = "v6.0") -> list[tuple[str, Callable[[], int]]]:
    """The LoadGen runs a submission tree takes (``python -m loadgen.submission``), as demo steps: for each
    ``(scenario, qps)``, a performance run, an accuracy run and each compliance test of ``tests``, all with the
    RNG seeds of ``rng_seeds``. Shortened by ``user_conf``, so they show the tree, not a result to submit."""
    import functools
    from pathlib import Path

    def compliance(scenario: str, qps: str, test: str) -> int:
        # A test that ran and was verified is the tree's to record, passed or failed (a 3 s run on a shared
        # machine can miss TEST01's 10 % by noise alone): the demo goes on, and says so.
        status = demo_loadgen_run(module, profile, model_dir, dataset, scenario, qps, user_conf, output, False,
                                  ("--rng-seeds", rng_seeds, "--compliance", test))
        if status == EXIT_FAILURE and (Path(output) / scenario / test / "verify_performance.txt").is_file():
            print(f"  (the demo goes on: {scenario} {test} failed a verification, which its verify_*.txt records)")
            return 0
        return status

    steps = []
    for scenario, qps in runs:
        for mode, accuracy in (("performance", False), ("accuracy", True)):
            steps.append((f"{scenario} {mode}",
                          functools.partial(demo_loadgen_run, module, profile, model_dir, dataset, scenario, qps,
                                            user_conf, output, accuracy, ("--rng-seeds", rng_seeds))))
        steps += [(f"{scenario} {test}", functools.partial(compliance, scenario, qps, test)) for test in tests]
    return steps


def demo_files(train_dir: str | os.PathLike, infer_dir: str | os.PathLike, scenario: str = "<scenario>") -> str:
    """The demo summary's last two lines: where the training run's and the LoadGen runs' files are."""
    from pathlib import Path

    return (f"files: mllog log, checkpoint, training curve in {train_dir}/; models in {Path(train_dir) / 'export'}/;\n"
            f"       LoadGen logs, results.json and latency histograms in {infer_dir}/{scenario}/<mode>/")


@dataclasses.dataclass(frozen=True)
class TrainServeDemo:
    """The demo most benchmarks run: train on the mini set to its target, export, then LoadGen runs on the export
    with onnxruntime, and a summary. ``train_argv`` is train.py's flags besides --output, --data-dir and --quiet;
    ``runs`` the ``(scenario, qps, accuracy)`` of each LoadGen run; ``metric`` (shown as ``label``) the training
    metric of the summary, ``accuracy`` the text of an accuracy run's figures."""

    name: str  # the benchmark: the steps' and summary's titles
    train: Any  # the train module (get_args_parser / main)
    train_argv: tuple[str, ...]
    export: Any  # the export module
    profile: str  # the infer profile, e.g. "gnmt-onnxruntime"
    runs: tuple[tuple[str, str, bool], ...]
    user_conf: str | os.PathLike
    metric: str
    accuracy: Callable[[dict], str]
    label: str | None = None

    def submission_runs(self, root: str | os.PathLike, train_dir: str | os.PathLike, runs_dir: str | os.PathLike,
                        runs: Sequence[tuple[str, str]], tests: Sequence[str]) -> int:
        """The runs of a submission tree (:func:`demo_submission_steps`) on the demo's exported model, trained and
        exported first if ``train_dir`` has none. Its exit status."""
        from pathlib import Path

        train_dir = Path(train_dir)
        steps = []
        if not (train_dir / "export" / "export.json").is_file():
            steps = [("train", demo_command(self.train, [*self.train_argv, "--output", train_dir, "--data-dir", root,
                                                         "--quiet"])),
                     ("export", demo_command(self.export, ["--checkpoint", train_dir]))]
        steps += demo_submission_steps(f"{self.name}.infer", self.profile, train_dir / "export", root, runs, tests,
                                       self.user_conf, runs_dir)
        return demo_steps(f"{self.name} submission", steps)

    def run(self, root: str | os.PathLike, train_dir: str | os.PathLike, infer_dir: str | os.PathLike) -> int:
        """The steps, stopping at the first failure (its exit status), then the summary; 0 when all ran."""
        from pathlib import Path

        train_dir = Path(train_dir)
        print(f"== {self.name} demo: mini set at {root}", flush=True)
        steps = [(f"train {self.train_argv[-1] if self.train_argv else ''}".strip(),
                  demo_command(self.train, [*self.train_argv, "--output", train_dir, "--data-dir", root, "--quiet"])),
                 ("export", demo_command(self.export, ["--checkpoint", train_dir]))]
        steps += demo_loadgen_steps(f"{self.name}.infer", self.profile, train_dir / "export", root, self.runs,
                                    self.user_conf, infer_dir)
        code = demo_steps(self.name, steps)
        if code:
            return code
        scenarios = list(dict.fromkeys(scenario for scenario, _, _ in self.runs))
        print(f"\n== {self.name} demo summary ==")
        print(demo_train_line(train_dir, self.metric, self.label))
        for scenario in scenarios:
            print(demo_summary_line(infer_dir, scenario, self.accuracy))
        print(demo_files(train_dir, infer_dir, scenarios[0] if len(scenarios) == 1 else "<scenario>"))
        return 0


def demo_train_line(train_dir: str | os.PathLike, metric: str, label: str | None = None) -> str:
    """A demo's summary of its training run, from ``train_dir/train_result.json`` (the training driver's):
    time to train, epochs, and ``metric`` (shown as ``label``) against its target."""
    import json
    from pathlib import Path

    trained = json.loads((Path(train_dir) / "train_result.json").read_text())
    return (f"time to train: {trained['time_to_train_s']:.1f} s, {trained['epochs']:g} epochs, {label or metric} "
            f"{trained['metrics'][metric]:.4f} (target {trained['targets'][metric]})")


def demo_summary_line(run_dir: str | os.PathLike, scenario: str, accuracy: Callable[[dict], str]) -> str:
    """A demo's summary of one scenario from its two results.json (``run_dir/<scenario>/{performance,accuracy}``):
    validity, samples/s, p50/p90/p99 latencies, and ``accuracy`` of the accuracy run's figures."""
    import json
    from pathlib import Path

    folder = Path(run_dir) / scenario
    perf = json.loads((folder / "performance" / "results.json").read_text())
    acc = json.loads((folder / "accuracy" / "results.json").read_text())
    tiles = ", ".join(f"p{p}={1e3 * v:.2f} ms" for p, v in perf["figures"]["tiles_s"].items()
                      if p in ("50.0", "90.0", "99.0"))
    return (f"{scenario}: {perf['validity']}, {perf['figures']['qps']:.1f} samples/s, {tiles}; "
            f"{accuracy(acc['figures']['accuracy'])}")


def die(prog: str, message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print ``prog: error: message`` on one line and exit."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def csv_list(kind: type, allowed: Sequence[str] | None = None):
    """An argparse type for comma-separated lists such as ``--scenario Offline,Server``."""

    def parse(text: str) -> list:
        items = [t.strip() for t in text.split(",") if t.strip()]
        if not items:
            raise argparse.ArgumentTypeError("empty list")
        out = []
        for item in items:
            if allowed is not None and item not in allowed:
                raise argparse.ArgumentTypeError(f"{item!r} is not one of {', '.join(allowed)}")
            try:
                out.append(kind(item))
            except ValueError as exc:  # kind may also be an argparse type, whose own message passes through
                raise argparse.ArgumentTypeError(f"{item!r} is not a valid {kind.__name__}") from exc
        return out

    parse.__name__ = f"{kind.__name__} list"
    return parse


def positive(kind: type, allow_zero: bool = False):
    """An argparse type that refuses negative (and, unless allowed, zero) numbers, and NaN or infinity."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid {kind.__name__}") from exc
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text} is not a finite number")
        if value < 0 or (value == 0 and not allow_zero):
            bound = ">= 0" if allow_zero else "> 0"
            raise argparse.ArgumentTypeError(f"{text} must be {bound}")
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


def existing_file(text: str) -> str:
    """An argparse type for a path that must be a file: a missing one is a usage error (exit 2)."""
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return text


def existing_dir(text: str) -> str:
    """An argparse type for a path that must be a folder: a missing one is a usage error (exit 2)."""
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"no such folder: {text}")
    return text


def existing_path(text: str) -> str:
    """An argparse type for a path that must exist, file or folder (a model file or a SavedModel folder)."""
    if not os.path.exists(text):
        raise argparse.ArgumentTypeError(f"no such file or folder: {text}")
    return text


def add_inference_args(parser: argparse.ArgumentParser, backends: Sequence[str],
                       model_name_default: str = "from --profile") -> None:
    """The reference harness's flags, shared by every benchmark's inference entry point.

    Defaults are ``None`` where a ``--profile`` may supply the value; :func:`parse_args` fills them in.
    ``model_name_default`` says in ``--model-name``'s help where its value comes from when not typed.
    """
    # here, so that this module needs only the standard library
    from loadgen.settings import RNG_SEEDS, SCENARIOS, SUBMISSION_ROUND

    g = parser.add_argument_group("LoadGen harness")
    g.add_argument("--profile", default=None, help="preset of backend/model/dataset flags (default: None)")
    g.add_argument("--backend", choices=list(backends), default=None,
                   help="inference backend (default: from --profile, else onnxruntime)")
    g.add_argument("--model", default=None, help="model file or SavedModel folder (default: from --profile)")
    g.add_argument("--model-name", default=None,
                   help=f"name LoadGen's mlperf.conf knows the model by, e.g. resnet50 (default: {model_name_default})")
    g.add_argument("--device", choices=["cpu", "gpu"], default="cpu", help="device to run on (default: cpu)")
    g.add_argument("--scenario", type=csv_list(str, SCENARIOS), default=["SingleStream"],
                   help=f"comma list of scenarios run in turn, from {','.join(SCENARIOS)} (default: SingleStream)")
    g.add_argument("--accuracy", action="store_true", help="run in accuracy mode (default: False)")
    g.add_argument("--find-peak-performance", action="store_true",
                   help="LoadGen's FindPeakPerformance mode, Server only (default: False)")
    g.add_argument("--find-server-qps", action="store_true",
                   help="search for the highest Server target QPS LoadGen judges VALID at the model's latency bound: "
                        "an Offline run, short Server runs, then confirming runs under the other flags' settings "
                        "(LoadGen's rules unless shortened); needs --scenario Server (default: False)")
    g.add_argument("--search-time", type=positive(float), default=10.0,
                   help="seconds of each Offline and short Server run of --find-server-qps (default: 10)")
    g.add_argument("--search-precision", type=positive(float), default=0.02,
                   help="--find-server-qps stops when a VALID and an INVALID rate are within this fraction "
                        "(default: 0.02)")
    g.add_argument("--count", type=positive(int), default=None,
                   help="dataset items to use, and the query count of a quick run (default: all)")
    g.add_argument("--time", type=positive(float, allow_zero=True), default=None,
                   help="min and max duration of a quick run in seconds (default: mlperf.conf)")
    g.add_argument("--max-time", type=positive(float, allow_zero=True), default=None,
                   help="max duration in seconds when it should differ from --time; 0 for none (default: --time)")
    g.add_argument("--qps", type=positive(float), default=None,
                   help="target QPS for Server, expected QPS for Offline/SingleStream/MultiStream (default: conf)")
    g.add_argument("--max-latency", type=csv_list(positive(float)), default=None,
                   help="comma list of latency bounds in seconds, each run in turn (default: mlperf.conf)")
    g.add_argument("--samples-per-query", type=positive(int), default=None,
                   help="MultiStream samples per query (default: mlperf.conf, 8)")
    g.add_argument("--performance-sample-count", type=positive(int), default=None,
                   help="samples held in memory for performance runs (default: mlperf.conf or the dataset size)")
    g.add_argument("--max-batchsize", type=positive(int), default=32,
                   help="largest batch sent to the backend (default: 32)")
    g.add_argument("--threads", type=positive(int), default=os.cpu_count() or 1,
                   help="CPU threads for the whole harness, split between the workers' backend sessions "
                        f"(default: {os.cpu_count()}, the core count)")
    g.add_argument("--workers", type=positive(int), default=1,
                   help="worker threads that call the backend, non-SingleStream scenarios (default: 1)")
    g.add_argument("--inputs", type=csv_list(str), default=None,
                   help="comma list of input tensor names, for graphs without usable names (default: the model's)")
    g.add_argument("--outputs", type=csv_list(str), default=None,
                   help="comma list of output tensor names, in the order post-processing expects (default: all)")
    g.add_argument("--config", type=existing_file, default=None,
                   help="development override in mlperf.conf format, applied over the built-in rules (default: None)")
    g.add_argument("--user-conf", "--user_conf", dest="user_conf", type=existing_file, default=None,
                   help="LoadGen user.conf (default: None)")
    g.add_argument("--audit-config", "--audit_conf", dest="audit_config", default="audit.config",
                   help="compliance audit.config; LoadGen applies it if the file exists (default: audit.config)")
    g.add_argument("--submission", action="store_true",
                   help="a run for a submission: LoadGen's own rules with nothing shortened (600 s, the full "
                        "accuracy set, mlperf.conf's sample counts; flags that shorten a run are refused) and the "
                        "RNG seeds of --rng-seeds (default: False)")
    g.add_argument("--rng-seeds", choices=list(RNG_SEEDS), default=None,
                   help="the inference round whose RNG seeds LoadGen uses; its submission checker accepts only "
                        f"those (default: {SUBMISSION_ROUND} with --submission, else LoadGen's built-in, v6.1)")
    g.add_argument("--compliance", choices=["TEST01", "TEST04"], default=None,
                   help="run a compliance test into <output>/<scenario>/<TEST>/ and verify it against the "
                        "scenario's performance run (and, TEST01, its accuracy run), which must be there "
                        "(default: None)")
    g.add_argument("--output", default="results", help="folder for LoadGen logs and results (default: results)")
    g.add_argument("--framework-logs", action="store_true",
                   help="show TensorFlow's and TFLite's start-up notices, hidden by default; the same as "
                        "MLPERF_TF_VERBOSE=1 (default: False)")
    g.add_argument("--no-trace", dest="trace", action="store_false",
                   help="skip LoadGen's per-sample trace (about 275 bytes a sample); the 80th-percentile tile "
                        "and the histogram need it (default: trace on)")


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None,
               profiles: Mapping[str, Mapping[str, Any]] | None = None,
               fallbacks: Mapping[str, Any] | None = None) -> argparse.Namespace:
    """Parse ``argv``; a ``--profile`` supplies defaults that flags typed by the user override.

    ``fallbacks`` fill whatever is still unset after the profile.
    """
    args = parser.parse_args(argv)
    profiles = profiles or {}
    if args.profile is not None:
        if args.profile not in profiles:
            known = ", ".join(sorted(profiles)) or "none"
            parser.error(f"unknown --profile {args.profile!r} (known: {known})")
        parser.set_defaults(**profiles[args.profile])
        args = parser.parse_args(argv)
    for key, value in (fallbacks or {}).items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if getattr(args, "framework_logs", False):
        # Read by loadgen.backends.quiet when a TensorFlow backend is first imported, which a benchmark may do
        # before execute (to learn the backend's input layout), so it is set as soon as the flag is known.
        os.environ["MLPERF_TF_VERBOSE"] = "1"
    return args


def execute(args: argparse.Namespace, make_task: Callable[[argparse.Namespace], Any], prog: str) -> int:
    """Run every scenario the flags ask for; print the reference's line for each. Returns the exit status.

    ``make_task(args)`` builds the benchmark's :class:`~loadgen.harness.Task`. It is called once per run, in the
    process that runs it: a plan of several runs starts one child process per run (see :func:`_run_in_children`),
    so the factory must be picklable: a module-level function or a ``functools.partial`` of one. The children
    get ``args`` and the factory, never the command line, so a library caller's own ``sys.argv`` is not re-run.
    The one loop every benchmark's ``infer.py`` ends in.
    """
    return _guarded(prog, _execute, args, make_task, prog)


def resolve_and_execute(args: argparse.Namespace, resolve: Callable[[argparse.Namespace], Any],
                        make_task: Callable[[argparse.Namespace], Any], prog: str,
                        data_errors: tuple[type[BaseException], ...] | None = None) -> int:
    """The end of every benchmark's ``infer.main``: ``resolve(args)`` fills in what the user left out (the model
    file, settings from its export.json), then :func:`execute`. A model that cannot be found is a usage error
    (exit 2); an export.json that does not parse is a data error (exit 1); so is a dataset problem ``make_task``
    raises (``data_errors``, default ``loadgen.data.DataError``: a missing image or annotation file), one line."""
    from loadgen.backends import BackendError
    from loadgen.data.errors import DataError

    try:
        resolve(args)
    except BackendError as exc:
        die(prog, str(exc))
    except ValueError as exc:
        die(prog, str(exc), EXIT_FAILURE)
    return execute(args, functools.partial(_task_or_die, make_task, prog, data_errors or (DataError,)), prog)


def _task_or_die(make_task: Callable[[argparse.Namespace], Any], prog: str,
                 data_errors: tuple[type[BaseException], ...], args: argparse.Namespace) -> Any:
    """``make_task(args)``, a data problem ending the process with one line (a partial of it stays picklable)."""
    try:
        return make_task(args)
    except data_errors as exc:
        die(prog, str(exc), EXIT_FAILURE)


def _guarded(prog: str, body: Callable[..., int], *body_args) -> int:
    """Run ``body`` with SIGTERM taken as Ctrl-C, and Ctrl-C outside a run's own handling ending the process."""
    import signal
    import threading

    # SIGTERM (docker stop, a scheduler, a killed parent) ends a run as Ctrl-C does: every query answered and
    # the failure report written, instead of an abrupt end. Only the main thread may set a handler.
    previous = None
    try:  # the handler is set inside the try: a Ctrl-C that lands while it is being set is handled too
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
        return body(*body_args)
    except KeyboardInterrupt:
        # Ctrl-C outside a run's own handling (loading the model, a third one while the failure report is written).
        # LoadGen's native threads may exist, and Python cannot shut down under them: leave at once.
        print(f"{prog}: error: interrupted by the user (Ctrl-C)", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(EXIT_INTERRUPTED)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _plan(args: argparse.Namespace, prog: str):
    from loadgen.harness import plan_runs

    if not getattr(args, "model_name", None):
        die(prog, "--model-name is required: the name LoadGen's mlperf.conf knows the model by")
    try:
        return plan_runs(args, args.model_name)
    except ValueError as exc:
        die(prog, str(exc))


def _execute(args: argparse.Namespace, make_task, prog: str) -> int:
    runs = _plan(args, prog)
    if getattr(args, "find_server_qps", False):
        return _find_server_qps(args, make_task, prog, runs)
    if len(runs) > 1:
        return _run_in_children(args, make_task, prog, runs)
    return _execute_one(args, make_task, prog, runs[0])


def _find_server_qps(args: argparse.Namespace, make_task, prog: str, runs) -> int:
    """--find-server-qps: :func:`loadgen.server_qps.search`, each run in a process of its own; the record
    (``server_qps_search.json``) and its plot in ``<output>/Server-qps-search/``."""
    import dataclasses
    import math
    from pathlib import Path

    from loadgen import server_qps
    from loadgen.report import write_json_atomic

    if [rs.scenario for rs, _ in runs] != ["Server"] or args.accuracy or args.find_peak_performance:
        die(prog, "--find-server-qps runs performance runs of the Server scenario alone: use --scenario Server "
                  "without --accuracy, --find-peak-performance or several --max-latency values")
    try:
        knobs = server_qps.SearchSettings(search_s=args.search_time, precision=args.search_precision)
    except ValueError as exc:
        die(prog, str(exc))
    server, _ = runs[0]
    folder = Path(args.output) / "Server-qps-search"

    def measure(phase: str, qps: float, seconds: float | None, name: str) -> server_qps.Step:
        scenario = "Offline" if phase == "offline" else "Server"
        if seconds is None:  # a confirming run: the user's own settings at this rate
            rs = dataclasses.replace(server, qps=qps)
        else:  # a short run with no cap on its time. Offline's sample count is sized to fill it (mlperf.conf's
            # 24,576 would take minutes); a Server run ends when it has lasted `seconds` (and met --count, if given).
            count = max(1, math.ceil(qps * seconds * 1.1)) if scenario == "Offline" else server.count
            rs = dataclasses.replace(server, scenario=scenario, qps=qps, time_s=seconds, max_time_s=0, count=count,
                                     submission=False)
        out = folder / name
        code = _run_planned_in_child(args, make_task, prog, (rs, out))
        if code in (EXIT_INTERRUPTED, EXIT_TERMINATED):
            raise KeyboardInterrupt
        return server_qps.step_from_run(phase, qps, out)

    def progress(step: server_qps.Step) -> None:
        if step.phase == "coarse":
            verdict = "within the latency bound" if step.within_bound else "over the latency bound"
        else:
            verdict = "VALID" if step.valid else "INVALID"
        achieved = "n/a" if step.qps is None else f"{step.qps:.1f}"
        latency = "" if step.percentile_latency_s is None else f", latency {1e3 * step.percentile_latency_s:.2f} ms"
        print(f"  {step.phase} run at {step.target_qps:.1f} QPS: {verdict}, {achieved}/s{latency}", flush=True)

    try:
        found = server_qps.search(measure, knobs, progress)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    from loadgen import results
    from loadgen.environment import environment

    record = found.as_json(knobs) | {"model": server.model, "backend": args.backend, "model_file": args.model,
                                     "environment": environment()}
    write_json_atomic(folder / "server_qps_search.json", record)
    bound = next((s for s in reversed(found.steps) if s.phase != "offline"), None)
    bound_s = None
    if bound is not None:
        from loadgen.report import parse_detail

        detail = Path(bound.folder) / "mlperf_log_detail.txt"
        if detail.is_file():
            bound_s = parse_detail(detail).get("effective_target_latency_ns", 0) / 1e9 or None
    server_qps.plot(folder / "server_qps_search.png", found, f"{server.model} Server QPS search ({args.backend})",
                    bound_s)
    results.record_run("qps-search", record | {"files": {"record": str(folder / "server_qps_search.json"),
                                                         "plot": str(folder / "server_qps_search.png")}},
                       folder / "server_qps_search.json")
    if found.server_qps is None:
        print(f"{prog}: no Server rate was confirmed VALID (Offline {found.offline_qps:.1f} samples/s); "
              f"record in {folder}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"Server QPS {found.server_qps:.1f} (VALID, confirmed), Offline {found.offline_qps:.1f} samples/s, "
          f"Server/Offline {found.ratio:.3f}; record and plot in {folder}", flush=True)
    return 0


def _execute_one(args: argparse.Namespace, make_task, prog: str, planned) -> int:
    from loadgen.backends import BackendConfig, BackendError, backend_class
    from loadgen.harness import RunAborted, run

    rs, out = planned
    if rs.compliance is not None:
        needed = [out.parent / "performance" / "mlperf_log_detail.txt"]
        if rs.compliance == "TEST01":
            needed.append(out.parent / "accuracy" / "mlperf_log_accuracy.json")
        missing = [str(path) for path in needed if not path.is_file()]
        if missing:
            die(prog, f"{rs.compliance} is verified against this scenario's runs; run them first with the same "
                      f"--output (missing: {', '.join(missing)})")
    try:
        cls = backend_class(args.backend)
        if cls.needs_model and not args.model:
            raise ValueError(f"--model is required for backend {args.backend!r}")
        config = BackendConfig(device=args.device, threads=max(1, args.threads // args.workers),
                               inputs=tuple(args.inputs) if args.inputs else None,
                               outputs=tuple(args.outputs) if args.outputs else None)
        backend = cls(config).load(args.model)
    except (BackendError, ValueError) as exc:
        die(prog, str(exc))
    task = make_task(args)
    try:
        result = run(task, backend, rs, out, max_batchsize=args.max_batchsize, workers=args.workers,
                     trace=args.trace, extra={"backend_flag": args.backend, "model": args.model})
    except RunAborted as exc:
        print(f"{prog}: error: {exc} (details: {out / 'results.json'})", file=sys.stderr)
        if exc.loadgen_running:
            # LoadGen's own threads are still running; Python cannot shut down under them.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(exc.exit_code)
        return exc.exit_code
    except ValueError as exc:
        die(prog, str(exc))
    print(result.line())
    for error in result.loadgen_errors:
        print(f"  LoadGen error: {error}", file=sys.stderr)
    verdict = "accuracy run" if result.valid is None else ("VALID" if result.valid else "INVALID")
    acc = f" {result.accuracy.text()}" if result.accuracy is not None else ""
    print(f"  {verdict}{acc}; logs and results.json in {out}", flush=True)
    if rs.compliance is not None:
        return _verify_compliance(rs.compliance, out, task, prog)
    return 0


def _verify_compliance(test: str, out, task, prog: str) -> int:
    """Verify a compliance run (:func:`loadgen.compliance.verify`) and print its verdicts; 1 if it failed."""
    from loadgen import compliance

    def metric(log):
        result = task.accuracy(log)
        if result is None:
            raise ValueError("the task has no accuracy metric")
        return task.accuracy_text(result), result.metrics[0].value

    try:
        report = compliance.verify(test, out.parent, metric)
    except (OSError, ValueError) as exc:
        print(f"{prog}: error: {test} could not be verified: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    if report.accuracy is not None:
        print(f"  {test} accuracy: {report.accuracy.lines[-1]} (verify_accuracy.txt)")
        if report.accuracy_fallback is not None:
            print(f"  {test} accuracy, second path: {report.accuracy_fallback}")
    print(f"  {test} performance: {report.performance.lines[-1]} (verify_performance.txt)")
    print(f"  {test} {'passed' if report.passed else 'FAILED'}; files in {out}", flush=True)
    return 0 if report.passed else EXIT_FAILURE


def _child(args: argparse.Namespace, make_task, prog: str, planned, parent: int) -> None:
    """One run of the plan, in a child process started by :func:`_run_in_children` (spawn: a fresh interpreter)."""
    import signal

    from loadgen.data import end_with_parent

    # A group of its own, so a terminal's Ctrl-C reaches it once, forwarded by the parent; and SIGTERM, not
    # SIGKILL, when the parent ends however it ends, so this run still ends cleanly (see _guarded).
    os.setpgid(0, 0)
    end_with_parent(signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the kernel was told
        os._exit(EXIT_FAILURE)
    code = _guarded(prog, lambda: _execute_one(args, make_task, prog, planned))
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)


def _importable(factory):
    """``factory``, named by its module's import name where it was defined in the ``__main__`` module.

    Pickle names a function of the script being run as ``__main__.name``, and a spawned child does not import a
    ``python -m pkg`` package's ``__main__`` again, so it could not find it there; ``pkg.__main__.name`` it can.
    """
    import functools
    import importlib

    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    target = factory.func if isinstance(factory, functools.partial) else factory
    if spec is None or getattr(target, "__module__", None) != "__main__":
        return factory
    found = getattr(importlib.import_module(spec.name), target.__qualname__, None)
    if found is None:
        return factory
    if isinstance(factory, functools.partial):
        return functools.partial(found, *factory.args, **factory.keywords)
    return found


def _run_in_children(args: argparse.Namespace, make_task, prog: str, runs) -> int:
    """Run each entry of the plan in a fresh process, in turn, as the reference harness did.

    LoadGen keeps state per process (it reads its built-in mlperf.conf once and flags a second user conf as
    invalid for submission), so one process per run keeps every run's logs as clean as a lone run's.

    Each child runs in its own process group, so a signal reaches it once, from here: Ctrl-C at a terminal and
    a SIGINT or SIGTERM sent to this process alone (``kill``, a scheduler, ``timeout``) are forwarded to the
    running child, which ends its run cleanly and writes its failure report; no later run starts.
    """
    status = 0
    for planned in runs:
        code = _run_planned_in_child(args, make_task, prog, planned)
        if code in (EXIT_INTERRUPTED, EXIT_TERMINATED):
            return code
        status = status or code
    return status


def _run_planned_in_child(args: argparse.Namespace, make_task, prog: str, planned) -> int:
    """One ``(RunSettings, folder)`` run in a fresh process (see :func:`_run_in_children`): its exit status,
    130 if it or this process was interrupted, 143 if it ended on SIGTERM."""
    import multiprocessing
    import signal

    spawn = multiprocessing.get_context("spawn")  # not fork: LoadGen's and the frameworks' threads do not survive it
    child = spawn.Process(target=_child, args=(args, _importable(make_task), prog, planned, os.getpid()),
                          name=f"{prog} {planned[0].scenario} {planned[0].mode}")

    def forward(signum, frame):
        if child.pid is not None:
            os.kill(child.pid, signum)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        try:
            child.start()
            child.join()
        except KeyboardInterrupt:
            if child.pid is not None:
                os.kill(child.pid, signal.SIGINT)
            child.join()
            return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
    code = child.exitcode
    if code in (EXIT_INTERRUPTED, -signal.SIGINT):
        return EXIT_INTERRUPTED
    if code == -signal.SIGTERM:
        return EXIT_TERMINATED
    return code
