"""DLRM checkpoints: the reference's torch.save files load without running pickled code; export --convert-only."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from recommendation import models


class NotATensor:
    def __reduce__(self):
        return (print, ("this would run",))


def test_reference_checkpoint_loads_safely_and_code_is_refused(processed, tmp_path):
    from recommendation import data

    sizes = data.table_sizes(processed, 5000)
    model = models.build("mini", sizes)
    good = tmp_path / "tb_like.pt"
    torch.save({"epoch": 0, "iter": 10, "train_acc": np.float64(0.78), "test_acc": 0.79,
                "state_dict": model.state_dict(), "opt_state_dict": {"state": {}, "param_groups": []}}, good)
    loaded, meta = models.load(good)
    assert meta["arch"] == "mini" and loaded.table_sizes == sizes
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)
    bad = tmp_path / "evil.pt"
    torch.save({"state_dict": model.state_dict(), "extra": NotATensor()}, bad, pickle_module=pickle)
    with pytest.raises(models.CheckpointError, match="refused"):
        models.load(bad)
    from recommendation import export

    out = tmp_path / "converted"
    assert export.main(export.get_args_parser().parse_args(["--checkpoint", str(good), "--output", str(out),
                                                            "--convert-only"])) == 0
    converted, _ = models.load(out)
    torch.testing.assert_close(converted.state_dict()["emb_l.3.weight"], model.state_dict()["emb_l.3.weight"])
