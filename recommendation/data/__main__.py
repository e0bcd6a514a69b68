"""``python -m recommendation.data``: see :mod:`recommendation.data.cli`."""

from recommendation.data.cli import get_args_parser, main

if __name__ == "__main__":
    raise SystemExit(main(get_args_parser().parse_args()))
