from __future__ import annotations

from pathlib import Path

import pytest

TEST_SENTENCES = 24  # test sentences the inference tests translate


@pytest.fixture(scope="session")
def mini_root() -> Path:
    """The whole mini set (about 5 s to build, once; later sessions find it built)."""
    from translation import mini

    return mini.ensure()


@pytest.fixture(scope="session")
def gnmt_checkpoint(tmp_path_factory, mini_root) -> Path:
    """The mini GNMT trained for 60 steps through train.py (a --max-steps run, seconds), as a checkpoint: the tests
    check plumbing (export, parity, LoadGen), not translations."""
    from translation import train

    out = tmp_path_factory.mktemp("gnmt")
    argv = [
        "--config",
        "gnmt-mini",
        "--data-dir",
        str(mini_root),
        "--output",
        str(out),
        "--max-steps",
        "60",
        "--eval-sentences",
        "8",
        "--threads",
        "2",
        "--quiet",
    ]
    assert train.main(train.get_args_parser().parse_args(argv)) == 0
    return out


@pytest.fixture(scope="session")
def gnmt_export(gnmt_checkpoint, mini_root) -> Path:
    """The tiny GNMT exported (TorchScript and ONNX) through export.py's parity check on the test sentences."""
    from translation import export

    argv = ["--checkpoint", str(gnmt_checkpoint), "--parity-sentences", str(TEST_SENTENCES)]
    assert export.main(export.get_args_parser().parse_args(argv)) == 0
    return gnmt_checkpoint / "export"
