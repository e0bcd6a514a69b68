"""Finished LoadGen runs -> an MLPerf inference submission tree that the official submission checker reads.

A run folder is what one benchmark's ``infer.py --output DIR`` leaves: ``DIR/<Scenario>/{performance, accuracy,
TEST01, TEST04}/`` with LoadGen's logs and ``results.json``. :func:`build` lays them out as checker version v6.0
expects (v5.1 with ``version="v5.1"``)::

    <division>/<org>/systems/<system>.json                      the system description (loadgen.submission.system)
    <division>/<org>/src/                                       (code/ in v5.1) the code: a pointer and a copy
    <division>/<org>/results/<system>/<model>/<Scenario>/
        performance/run_1/mlperf_log_{summary,detail}.txt
        accuracy/mlperf_log_{summary,detail}.txt, mlperf_log_accuracy.json (truncated), accuracy.txt (+ hash)
        measurements.json, user.conf, README.md                 (v5.1: under measurements/<system>/<model>/<Scenario>/)
        TEST01/verify_{accuracy,performance}.txt, performance/run_1/…, accuracy/…   (v5.1: under compliance/…)
        TEST04/verify_performance.txt, performance/run_1/…
    <division>/<org>/model_mapping.json                         open division: tree names -> the checker's names

The accuracy log is cut as the official truncation tool does: a log over 10 KiB keeps its first and last 4 KiB, and
``accuracy.txt`` gets ``hash=<sha256 of the whole log>``, so a reviewer can match it against the full log.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from loadgen.environment import copy_tracked
from loadgen.settings import SCENARIOS

VERSIONS = ("v6.0", "v5.1")
# The names the checker knows our mlperf.conf models by (its get_mlperf_model maps "resnet50" to "resnet").
CHECKER_MODEL: Mapping[str, str] = {"resnet50": "resnet", "retinanet": "retinanet"}
# The scenarios each checker version requires of a model per system type (its required-scenarios tables).
REQUIRED_SCENARIOS: Mapping[str, Mapping[str, Mapping[str, tuple[str, ...]]]] = {
    "v6.0": {
        "resnet": {"edge": ("SingleStream", "MultiStream", "Offline"), "datacenter,edge": SCENARIOS},
        "retinanet": {"datacenter,edge": SCENARIOS},  # v6.0 lists retinanet for this system type alone
    },
    "v5.1": {
        model: {"datacenter": ("Server", "Offline"), "edge": ("SingleStream", "MultiStream", "Offline"),
                "datacenter,edge": SCENARIOS}
        for model in ("resnet", "retinanet")
    },
}
MAX_ACCURACY_LOG = 10 * 1024  # the checker's limit on a submitted mlperf_log_accuracy.json
KEPT = 4096  # bytes kept from each end of a longer log, as the official truncation tool keeps
LOGS = ("mlperf_log_summary.txt", "mlperf_log_detail.txt")
# measurements.json: the fields the checker requires, with the values of a model trained by this suite.
MEASUREMENTS_FIELDS = ("input_data_types", "retraining", "starting_weights_filename", "weight_data_types",
                       "weight_transformations")


class SubmissionError(ValueError):
    """A run folder that cannot go into a submission: names the folder and what is missing."""


@dataclasses.dataclass(frozen=True)
class Run:
    """One benchmark's run folder for the tree: its mlperf.conf model name and the tree's name for it."""

    folder: Path
    model: str  # as the runs logged it (results.json "model"): resnet50, retinanet, ...
    name: str  # the model's folder in the tree

    @property
    def checker_model(self) -> str | None:
        return CHECKER_MODEL.get(self.model)


def find_run(folder: str | Path, name: str | None = None) -> Run:
    """A run folder, its model read from the results.json of its runs; ``name`` overrides the tree's name."""
    folder = Path(folder)
    models = {json.loads(path.read_text()).get("model") for path in folder.glob("*/*/results.json")}
    models.discard(None)
    if not models:
        raise SubmissionError(f"{folder}: no runs (expected <Scenario>/<mode>/results.json, as infer.py writes)")
    if len(models) > 1:
        raise SubmissionError(f"{folder}: runs of several models ({', '.join(sorted(models))}); one folder a model")
    model = models.pop()
    return Run(folder, model, name or CHECKER_MODEL.get(model, model))


def truncate_accuracy_log(source: Path, target: Path) -> str:
    """Copy LoadGen's accuracy log to ``target``, cut to its first and last 4 KiB if over 10 KiB; the sha256 of
    the whole log, for accuracy.txt's ``hash=`` line."""
    digest = hashlib.sha256()
    with open(source, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    size = source.stat().st_size
    if size <= MAX_ACCURACY_LOG:
        shutil.copyfile(source, target)
    else:
        with open(source, "rb") as fh:
            head = fh.read(KEPT)
            fh.seek(size - KEPT)
            tail = fh.read(KEPT)
        target.write_bytes(head + b"\n\n...\n\n" + tail)
    return digest.hexdigest()


def _copy_logs(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in LOGS:
        if not (source / name).is_file():
            raise SubmissionError(f"{source}: no {name}")
        shutil.copyfile(source / name, target / name)


def _results(folder: Path) -> dict[str, Any]:
    path = folder / "results.json"
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SubmissionError(f"{path}: not readable ({exc})") from exc
    if record.get("status") != "ok":
        raise SubmissionError(f"{path}: the run failed ({record.get('error', 'no figures')})")
    return record


def _accuracy(run_dir: Path, target: Path) -> None:
    """accuracy/: LoadGen's logs, the truncated accuracy log, and accuracy.txt with the tool's line and the hash."""
    _copy_logs(run_dir, target)
    line_file = run_dir / "accuracy.txt"
    if not line_file.is_file():
        raise SubmissionError(f"{run_dir}: no accuracy.txt (the accuracy tool's line, which accuracy runs write): "
                              "run the accuracy run again")
    digest = truncate_accuracy_log(run_dir / "mlperf_log_accuracy.json", target / "mlperf_log_accuracy.json")
    (target / "accuracy.txt").write_text(line_file.read_text().rstrip("\n") + f"\nhash={digest}\n")


def _compliance(test_dir: Path, target: Path, test: str) -> None:
    """TEST01/TEST04 as the checker reads them: the verification files, the run's logs under performance/run_1,
    and (TEST01) its accuracy log, truncated, with the second path's accuracy files where it ran."""
    names = ["verify_performance.txt"] + (["verify_accuracy.txt"] if test == "TEST01" else [])
    for name in names:
        if not (test_dir / name).is_file():
            raise SubmissionError(f"{test_dir}: no {name} (run infer.py with --compliance {test}, which writes it)")
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(test_dir / name, target / name)
    _copy_logs(test_dir, target / "performance" / "run_1")
    if test == "TEST01":
        accuracy = target / "accuracy"
        accuracy.mkdir(exist_ok=True)
        digest = truncate_accuracy_log(test_dir / "mlperf_log_accuracy.json", accuracy / "mlperf_log_accuracy.json")
        (accuracy / "accuracy.txt").write_text(f"hash={digest}\n")
        for name in ("baseline_accuracy.txt", "compliance_accuracy.txt"):
            if (test_dir / "accuracy" / name).is_file():
                shutil.copyfile(test_dir / "accuracy" / name, accuracy / name)


def _readme(scenario: str, run: Run, records: Mapping[str, Mapping[str, Any]]) -> str:
    lines = [f"# {run.name}, {scenario}", "",
             f"LoadGen runs of `{run.model}` (mlperf.conf's name) by this suite, one command each:", ""]
    for mode, record in records.items():
        env = record.get("environment") or {}
        command = " ".join(env.get("command") or ["(not recorded)"])
        lines += [f"- {mode}: `{command}`", f"  (revision {env.get('git_revision') or 'unknown'}, "
                                           f"validity {record.get('validity') or 'n/a'})"]
    shortened = [mode for mode, record in records.items() if not (record.get("settings") or {}).get("submission")]
    if shortened:
        lines += ["", f"**Not valid for submission**: the {', '.join(shortened)} runs were not made under LoadGen's "
                      "full rules (`infer.py --submission`): their user.conf or flags shorten them (see user.conf)."]
    lines += ["", "Each infer.py run writes its LoadGen logs and results.json; `python -m loadgen.submission` "
                  "copied them here."]
    return "\n".join(lines) + "\n"


def _scenario(run: Run, scenario: str, results_dir: Path, measurements_dir: Path, compliance_dir: Path,
              measurements: Mapping[str, Any], measurements_file: str) -> list[dict[str, Any]]:
    source = run.folder / scenario
    records = {mode: _results(source / mode) for mode in ("performance", "accuracy")
               if (source / mode).is_dir()}
    for mode in ("performance", "accuracy"):
        if mode not in records:
            raise SubmissionError(f"{source}: no {mode} run (infer.py --scenario {scenario}"
                                  f"{' --accuracy' if mode == 'accuracy' else ''} --output {run.folder})")
    _copy_logs(source / "performance", results_dir / "performance" / "run_1")
    _accuracy(source / "accuracy", results_dir / "accuracy")
    measurements_dir.mkdir(parents=True, exist_ok=True)
    conf = source / "performance" / "user.conf"
    (measurements_dir / "user.conf").write_text(
        conf.read_text() if conf.is_file() else "# No user.conf: the runs used LoadGen's built-in rules alone.\n")
    (measurements_dir / "README.md").write_text(_readme(scenario, run, records))
    (measurements_dir / measurements_file).write_text(json.dumps(dict(measurements), indent=2) + "\n")
    for test in ("TEST01", "TEST04"):
        if (source / test).is_dir():
            records[test] = _results(source / test)
            _compliance(source / test, compliance_dir / test, test)
    return list(records.values())


def default_measurements(run: Run) -> dict[str, Any]:
    """measurements.json for a model of this suite: fp32 throughout, and the exported file it ran."""
    model_files = set()
    for path in run.folder.glob("*/*/results.json"):
        model_file = (json.loads(path.read_text()).get("harness") or {}).get("model")
        if model_file:
            model_files.add(Path(model_file).name)
    return {"input_data_types": "fp32", "retraining": "yes: trained by this suite's train.py",
            "starting_weights_filename": ", ".join(sorted(model_files)) or "unknown",
            "weight_data_types": "fp32", "weight_transformations": "none: exported by this suite's export.py"}


def build(runs: Sequence[Run], output: str | Path, *, org: str, system_name: str, division: str,
          version: str = "v6.0", system_type: str = "datacenter,edge",
          system_overrides: Mapping[str, Any] | None = None,
          measurements: Mapping[str, Mapping[str, Any]] | None = None,
          source_root: str | Path | None = None) -> dict[str, Any]:
    """Write the tree for ``runs`` under ``output``; return what was written and the scenarios each model lacks.

    Raises SubmissionError for a run folder that lacks what the layout needs, or ValueError for bad settings.
    """
    from loadgen.submission import system as system_desc

    if version not in VERSIONS:
        raise ValueError(f"unknown checker version {version!r} (choose from {', '.join(VERSIONS)})")
    if division not in ("closed", "open"):
        raise ValueError(f"division must be closed or open, got {division!r}")
    for label, value in (("org", org), ("system name", system_name)):
        if not value or "/" in value or value.startswith("."):
            raise ValueError(f"{label} {value!r} cannot be a folder name")
    names = [run.name for run in runs]
    if len(set(names)) != len(names):
        raise ValueError(f"two runs have the same model name in the tree: {', '.join(names)}")
    if division == "closed":
        renamed = [run.name for run in runs if run.checker_model is None or run.name != run.checker_model]
        if renamed:
            raise ValueError(f"the closed division takes the checker's model names ({', '.join(CHECKER_MODEL.values())}"
                             f") only: {', '.join(renamed)}")

    root = Path(output) / division / org
    if root.exists():
        raise ValueError(f"{root} exists already: give a new --output or remove it")
    records: list[dict[str, Any]] = []
    missing: dict[str, list[str]] = {}
    mapping = {}
    for run in runs:
        scenarios = [s for s in SCENARIOS if (run.folder / s).is_dir()]
        if not scenarios:
            raise SubmissionError(f"{run.folder}: no scenario folders")
        for scenario in scenarios:
            results_dir = root / "results" / system_name / run.name / scenario
            if version == "v5.1":
                measurements_dir = root / "measurements" / system_name / run.name / scenario
                compliance_dir = root / "compliance" / system_name / run.name / scenario
                measurements_file = f"{system_name}_{run.name}_{scenario}.json"
            else:
                measurements_dir = compliance_dir = results_dir
                measurements_file = "measurements.json"
            fields = dict(default_measurements(run), **dict((measurements or {}).get(run.name, {})))
            records += _scenario(run, scenario, results_dir, measurements_dir, compliance_dir, fields,
                                 measurements_file)
        required = REQUIRED_SCENARIOS[version].get(run.checker_model or "", {}).get(system_type)
        if run.checker_model is not None and required is None:
            raise ValueError(f"checker {version} does not take {run.checker_model} for system type {system_type!r}")
        lacking = [s for s in required or () if s not in scenarios]
        if lacking:
            missing[run.name] = lacking
        if run.checker_model is not None and run.name != run.checker_model:
            mapping[run.name] = run.checker_model
    if mapping:
        (root / "model_mapping.json").write_text(json.dumps(mapping, indent=2) + "\n")

    description = system_desc.describe(division=division, submitter=org, system_name=system_name,
                                       system_type=system_type, runs=records, results_path=output,
                                       overrides=system_overrides)
    (root / "systems").mkdir(parents=True, exist_ok=True)
    (root / "systems" / f"{system_name}.json").write_text(json.dumps(description, indent=2) + "\n")
    _source(root / ("code" if version == "v5.1" else "src"), runs, source_root)
    return {"root": str(root), "models": names, "missing_scenarios": missing,
            "unknown_system_fields": system_desc.unknown_fields(description), "model_mapping": mapping}


def _source(target: Path, runs: Sequence[Run], source_root: str | Path | None) -> None:
    """src/: a README pointing at the revision the runs were made with, and a copy of the code they ran: the
    tracked files of ``loadgen/`` and of each benchmark folder (git ls-files), where the source is a checkout."""
    target.mkdir(parents=True, exist_ok=True)
    revisions = set()
    for run in runs:
        for path in run.folder.glob("*/*/results.json"):
            revisions.add((json.loads(path.read_text()).get("environment") or {}).get("git_revision") or "unknown")
    copied = 0
    if source_root is not None:
        copied = copy_tracked(source_root, ["loadgen", *sorted(_benchmark_folders(runs, Path(source_root)))], target)
    lines = ["# The code behind these results", "",
             f"The runs were made with this suite at revision {', '.join(sorted(revisions))}.",
             "Every run's command is in its scenario's README.md."]
    if copied:
        lines += ["", f"The {copied} files below are a copy of that code: the shared `loadgen/` package and "
                      "the benchmark folders."]
    (target / "README.md").write_text("\n".join(lines) + "\n")


def _benchmark_folders(runs: Sequence[Run], root: Path) -> set[str]:
    """The benchmark folders of the runs' commands (``python -m <folder>.infer``), where they exist in ``root``."""
    folders = set()
    for run in runs:
        for path in run.folder.glob("*/*/results.json"):
            command = (json.loads(path.read_text()).get("environment") or {}).get("command") or []
            for word in command:
                head = Path(str(word)).parts[-2] if str(word).endswith("infer.py") else str(word).split(".")[0]
                if head and (root / head / "infer.py").is_file():
                    folders.add(head)
    return folders
