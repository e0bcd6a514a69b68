"""Fixtures: a small SYNTHETIC set in the day-file format, its preprocessed form, and an untrained exported DLRM."""

from __future__ import annotations

from pathlib import Path

import pytest

from recommendation import data, mini

MAX_IND_RANGE = 5000


@pytest.fixture(scope="session")
def raw(tmp_path_factory) -> Path:
    return mini.build(tmp_path_factory.mktemp("dlrm") / "raw", rows_per_day=400)


@pytest.fixture(scope="session")
def processed(raw, tmp_path_factory) -> Path:
    return data.preprocess(raw, tmp_path_factory.mktemp("processed"), data.Settings(max_ind_range=MAX_IND_RANGE),
                           workers=1, progress=False)


@pytest.fixture(scope="session")
def exported(processed, tmp_path_factory) -> Path:
    """dlrm.pt2, dlrm.onnx and export.json of an untrained mini DLRM sized for ``processed``."""
    import torch

    from loadgen.training.checkpoint import save_state
    from recommendation import export
    from recommendation.models import build

    torch.manual_seed(0)
    sizes = data.table_sizes(processed, MAX_IND_RANGE)
    ckpt = tmp_path_factory.mktemp("ckpt")
    save_state(build("mini", sizes).state_dict(), {"arch": "mini", "table_sizes": sizes,
                                                   "max_ind_range": MAX_IND_RANGE}, ckpt)
    assert export.main(export.get_args_parser().parse_args(["--checkpoint", str(ckpt)])) == 0
    return ckpt / "export"
