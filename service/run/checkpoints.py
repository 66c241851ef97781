"""Best-trial weights on disk: <data dir>/artifacts/study-<id>/trial-<n>.pt.

Only the weights of the study's best complete trial (and any tie) are kept; a
file is written whole to a temporary name and renamed, so a reader never sees
half of one.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


class CheckpointStore:
    def __init__(self, root: Path):
        self.root = root

    def path(self, study_id: int, number: int) -> Path:
        return self.root / f"study-{study_id}" / f"trial-{number}.pt"

    def save(self, study_id: int, number: int, data: bytes, *, keep: set[int]) -> None:
        """Write trial `number`'s weights; delete the study's files not in `keep`."""
        target = self.path(study_id, number)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        partial.write_bytes(data)
        os.replace(partial, target)
        for old in target.parent.glob("trial-*.pt"):
            if int(old.stem.removeprefix("trial-")) not in keep | {number}:
                old.unlink(missing_ok=True)

    def delete_study(self, study_id: int) -> None:
        shutil.rmtree(self.root / f"study-{study_id}", ignore_errors=True)
