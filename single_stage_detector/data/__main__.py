"""``python -m single_stage_detector.data``: see :mod:`single_stage_detector.data.cli`."""

from single_stage_detector.data.cli import get_args_parser, main

if __name__ == "__main__":
    raise SystemExit(main(get_args_parser().parse_args()))
