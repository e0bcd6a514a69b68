from __future__ import annotations

from pathlib import Path

import pytest

TEST_SENTENCES = 24  # test sentences the inference tests translate


@pytest.fixture(scope="session")
def mini_root() -> Path:
    """The whole mini set (about 5 s to build, once; later sessions find it built)."""
    from translation import mini

    return mini.ensure()


def trained_and_exported(out: Path, root: Path, model: str, steps: int) -> Path:
    """``<model>-mini`` trained for ``steps`` through train.py (a --max-steps run, seconds) and exported
    (TorchScript and ONNX) through export.py's parity check on the test sentences: the tests check plumbing
    (export, parity, LoadGen), not translations. The export folder."""
    from translation import export, train

    argv = ["--config", f"{model}-mini", "--data-dir", str(root), "--output", str(out), "--max-steps", str(steps),
            "--eval-sentences", "8", "--threads", "2", "--quiet"]
    assert train.main(train.get_args_parser().parse_args(argv)) == 0
    argv = ["--checkpoint", str(out), "--parity-sentences", str(TEST_SENTENCES)]
    assert export.main(export.get_args_parser().parse_args(argv)) == 0
    return out / "export"


@pytest.fixture(scope="session")
def gnmt_export(tmp_path_factory, mini_root) -> Path:
    return trained_and_exported(tmp_path_factory.mktemp("gnmt"), mini_root, "gnmt", 60)


@pytest.fixture(scope="session")
def transformer_export(tmp_path_factory, mini_root) -> Path:
    # 200 steps: it has learnt to end its sentences, so decoding stays cheap (the step keeps no cache)
    return trained_and_exported(tmp_path_factory.mktemp("transformer"), mini_root, "transformer", 200)
