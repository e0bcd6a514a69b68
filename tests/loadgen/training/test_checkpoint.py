"""Training checkpoints: a resume checkpoint is replaced whole or not at all."""

from __future__ import annotations

import pytest
import torch

from loadgen.training import checkpoint


def test_a_crash_while_saving_keeps_the_previous_resume_checkpoint(tmp_path, monkeypatch):
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(2, 3)).sum().backward()
    optimizer.step()
    checkpoint.save_training(tmp_path / "resume", model.state_dict(), optimizer.state_dict(), {"step": 1})

    real = checkpoint.save_state

    def weights_then_crash(state, meta, out):
        real(state, meta, out)
        raise OSError("disk full")  # after the weights and the JSON of the new checkpoint were written

    monkeypatch.setattr(checkpoint, "save_state", weights_then_crash)
    with pytest.raises(OSError):
        checkpoint.save_training(tmp_path / "resume", model.state_dict(), optimizer.state_dict(), {"step": 2})
    _, _, meta = checkpoint.load_training(tmp_path / "resume")
    assert meta["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resume"]  # no partial folder left behind
