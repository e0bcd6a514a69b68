"""``python -m loadgen.submission``: finished runs -> an MLPerf inference submission tree (see the package).

    python -m loadgen.submission --runs results/image_classification/resnet50-onnxruntime \\
        --runs retinanet-mini=results/object_detection/retinanet-onnxruntime \\
        --org MyOrg --system my-server --division open --system-info system.json --output submission
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from loadgen.cli import ArgumentParser, die, existing_file

PROG = "python -m loadgen.submission"


def run_spec(text: str) -> tuple[str | None, str]:
    """``[NAME=]FOLDER``: an infer.py --output folder, and the model's name in the tree."""
    name, sep, folder = text.rpartition("=")
    if sep and not name:
        raise argparse.ArgumentTypeError(f"{text!r}: a name before '=' is required")
    if not Path(folder).is_dir():
        raise argparse.ArgumentTypeError(f"no such folder: {folder}")
    return (name or None), folder


def folder_name(text: str) -> str:
    """An org or system name: it becomes a folder of the tree, so no path separators and no leading dot."""
    if not text or "/" in text or "\\" in text or text.startswith("."):
        raise argparse.ArgumentTypeError(f"{text!r} cannot be a folder name")
    return text


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    from loadgen.submission import VERSIONS
    from loadgen.submission.system import SYSTEM_TYPES

    parser = ArgumentParser(prog=PROG, description=__doc__, add_help=add_help,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=run_spec, action="append", required=True,
                        help="[NAME=]FOLDER: an infer.py --output folder (<Scenario>/<mode>/ runs of one model); "
                             "NAME is the model's folder in the tree, mapped to the checker's name in "
                             "model_mapping.json (default: required, repeat for each model)")
    parser.add_argument("--org", type=folder_name, required=True,
                        help="the submitter, as the tree's folder (default: required)")
    parser.add_argument("--system", type=folder_name, required=True,
                        help="the system's name in the tree (default: required)")
    parser.add_argument("--division", choices=["closed", "open"], default="open",
                        help="closed needs the checker's model names and full-rules runs (default: open)")
    parser.add_argument("--version", choices=list(VERSIONS), default="v6.0",
                        help="the submission checker version whose layout to write (default: v6.0)")
    parser.add_argument("--system-type", choices=list(SYSTEM_TYPES), default="datacenter,edge",
                        help="decides the scenarios each model needs (default: datacenter,edge, the only type "
                             "v6.0 takes retinanet for)")
    parser.add_argument("--system-info", type=existing_file, default=None,
                        help="JSON object of system description fields this machine cannot tell (cooling, "
                             "networking, status, ...), over the detected ones (default: None)")
    parser.add_argument("--measurements", type=existing_file, default=None,
                        help="JSON object {model name: measurements.json fields} over the defaults (default: None)")
    parser.add_argument("--source", default=".",
                        help="checkout whose loadgen/ and benchmark folders are copied into src/ (default: .)")
    parser.add_argument("--output", default="submission", help="where the tree goes (default: submission)")
    return parser


def main(args: argparse.Namespace) -> int:
    from loadgen.submission import SubmissionError, build, find_run
    from loadgen.submission.system import read_overrides

    try:
        runs = [find_run(folder, name) for name, folder in args.runs]
        overrides = read_overrides(args.system_info)
        measurements = json.loads(Path(args.measurements).read_text()) if args.measurements else None
        if measurements is not None and not isinstance(measurements, dict):
            raise ValueError(f"{args.measurements}: expected a JSON object of model name -> fields")
        written = build(runs, args.output, org=args.org, system_name=args.system, division=args.division,
                        version=args.version, system_type=args.system_type, system_overrides=overrides,
                        measurements=measurements, source_root=args.source)
    except SubmissionError as exc:
        die(PROG, str(exc), 1)
    except ValueError as exc:
        die(PROG, str(exc))
    print(f"submission tree ({args.version} layout, {args.division} division) in {written['root']}: "
          f"{', '.join(written['models'])}")
    for model, lacking in written["missing_scenarios"].items():
        print(f"  {model}: no {', '.join(lacking)} run, which a {args.system_type} system needs", file=sys.stderr)
    if written["unknown_system_fields"]:
        print(f"  systems/{args.system}.json: fill in {', '.join(written['unknown_system_fields'])} "
              "(--system-info)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
