"""``python -m image_classification.data``: see :mod:`image_classification.data.cli`."""

from image_classification.data.cli import get_args_parser, main

if __name__ == "__main__":
    raise SystemExit(main(get_args_parser().parse_args()))
