"""``python -m object_detection.data``: see :mod:`object_detection.data.cli`."""

from object_detection.data.cli import get_args_parser, main

if __name__ == "__main__":
    raise SystemExit(main(get_args_parser().parse_args()))
