"""``python -m translation.data``: see :mod:`translation.data.cli`."""

from translation.data.cli import get_args_parser, main

if __name__ == "__main__":
    raise SystemExit(main(get_args_parser().parse_args()))
