"""Where trial state checkpoints live: any fsspec filesystem named by a URI.

A local directory by default (`HPO_CHECKPOINT_URI`, under the data dir); a shared
path or an object store (`s3://bucket/prefix` with s3fs installed) on a cluster,
so that a trial resumes on any node. One file per unfinished trial,
`study-<id>/trial-<n>.state`, replaced in place: the store holds at most one
checkpoint per trial that may still resume. A write goes to a temporary name and
is renamed, so a reader never sees half of one (object stores write whole objects).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import fsspec


@dataclass(frozen=True)
class CheckpointPolicy:
    """When a slot saves a trial's state, and where.

    `every_epochs` None is the default rule: save once the training since the last save
    took at least `1 / max_overhead` times as long as a save takes (the last one timed;
    the first save, after epoch 1, measures it). Saves then cost at most `max_overhead`
    of training, and a lost worker costs at most one epoch or `1 / max_overhead` saves'
    time, whichever is longer: every epoch for epochs of a second or more, every few
    for the millisecond epochs of a small MLP (see README, "Checkpoints and resume").
    """

    uri: str
    key: str
    every_epochs: int | None = None
    max_overhead: float = 0.02

    def due(self, epochs_since: int, seconds_since: float, save_s: float | None) -> bool:
        """Whether to save now; `save_s` is how long the last save took (None: none yet)."""
        if self.every_epochs is not None:
            return epochs_since >= self.every_epochs
        if save_s is None:
            return epochs_since >= 1
        return seconds_since * self.max_overhead >= save_s


def trial_key(study_id: int, number: int) -> str:
    return f"study-{study_id}/trial-{number}.state"


class TrialCheckpoints:
    """Save, load and delete trial checkpoints under one URI."""

    def __init__(self, uri: str):
        self.uri = uri.rstrip("/")
        self._fs: Any
        self._fs, self._root = fsspec.core.url_to_fs(self.uri)

    def _path(self, key: str) -> str:
        return f"{self._root}/{key}"

    def save(self, key: str, data: bytes) -> None:
        """Replace `key` with `data` whole; raises OSError when the store refuses."""
        path = self._path(key)
        self._fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        partial = f"{path}.{uuid.uuid4().hex[:8]}.partial"
        with self._fs.open(partial, "wb") as out:
            out.write(data)
        try:
            self._fs.mv(partial, path)
        except Exception:
            self._fs.rm(partial)
            raise

    def load(self, key: str) -> bytes | None:
        """The checkpoint's bytes, or None when there is none."""
        try:
            with self._fs.open(self._path(key), "rb") as source:
                data: bytes = source.read()
                return data
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        if self._fs.exists(self._path(key)):
            self._fs.rm(self._path(key))

    def delete_study(self, study_id: int) -> None:
        folder = self._path(f"study-{study_id}")
        if self._fs.exists(folder):
            self._fs.rm(folder, recursive=True)

    def study_bytes(self, study_id: int) -> int:
        """Bytes the study's checkpoints take in the store now."""
        folder = self._path(f"study-{study_id}")
        if not self._fs.exists(folder):
            return 0
        return int(self._fs.du(folder, total=True))
