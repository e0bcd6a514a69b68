"""``python -m loadgen.data``: see :mod:`loadgen.data.cli`."""

from loadgen.data.cli import get_args_parser, main

if __name__ == "__main__":
    raise SystemExit(main(get_args_parser().parse_args()))
