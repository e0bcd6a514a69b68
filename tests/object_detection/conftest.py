from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def mini_root(tmp_path_factory) -> Path:
    """A small mini set from the shared real-pixel builder: 10 train images (crowd regions among them) and 4 val
    images, with masks."""
    from object_detection import mini

    return mini.build(tmp_path_factory.mktemp("od") / "mini", train_images=10, val_images=4, progress=False)
