"""Preprocessing caches keyed by their parameters and their sources."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from loadgen.data.atomic import partial_folder, reclaim_partials


class PreprocessCache:
    """Preprocessed data under ``root/<key>``, where key hashes the parameters and the source's manifest.

    Changing any parameter or source file gives a new key, so a stale cache is never read. An entry is built in
    a temporary folder and renamed into place: a crash leaves no half-built entry under a real key.
    """

    def __init__(self, root: str | os.PathLike, params: Mapping[str, Any], source_digest: str) -> None:
        self.root = Path(root)
        self.params = dict(params)
        blob = json.dumps({"params": self.params, "source": source_digest}, sort_keys=True, default=str)
        self.key = hashlib.sha256(blob.encode()).hexdigest()[:20]
        self.path = self.root / self.key

    def ready(self) -> bool:
        return (self.path / "cache.json").is_file()

    def get_or_build(self, build: Callable[[Path], None]) -> Path:
        """The entry's folder; ``build(tmp_folder)`` fills it the first time."""
        if self.ready():
            return self.path
        self.root.mkdir(parents=True, exist_ok=True)
        reclaim_partials(self.root)  # any key's leftovers: the whole folder is this cache's
        tmp = partial_folder(self.root, self.key)
        try:
            build(tmp)
            (tmp / "cache.json").write_text(json.dumps({"key": self.key, "params": self.params}, indent=1,
                                                       default=str) + "\n")
            try:
                os.replace(tmp, self.path)
            except OSError:
                if not self.ready():  # another process finished first: theirs is as good as ours
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return self.path
