"""Where a study's data comes from: builtin sets, or files under the configured data roots.

A `path` source is resolved against the roots (relative paths against the
first), symlinks and `..` included, and refused when it leads outside them or
into the service's own folders (every tenant's uploads, checkpoints and the
database), so a spec cannot read arbitrary files of the service's machine nor
another tenant's. Every refusal is the same answer, so none tells what exists.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from service.data.uploads import Uploads
from service.errors import InvalidRequest, NotFound
from service.spec import StudySpec
from service.suggest import did_you_mean
from workers.data import PreparedData, load_prepared
from workers.data_error import DataError
from workers.files import column_names
from workers.spec import METRICS, PathDataset, UploadedDataset


@dataclass(frozen=True)
class DataRoots:
    """Folders whose files studies may read (the first is where relative paths start), the
    uploaded data sets, and the service's own folders, unreadable even under a root."""

    roots: tuple[Path, ...]
    uploads: Uploads | None = None
    own: tuple[Path, ...] = ()

    def resolve(self, dataset: PathDataset) -> Path:
        """The file a path source names; InvalidRequest when refused or not a file."""
        candidate = self._allowed(dataset.path)
        if candidate is None:
            raise InvalidRequest(self._refusal(), field="dataset.path")
        if not os.path.isfile(candidate):  # never raises: an unreadable path is no file either
            raise InvalidRequest(
                f"dataset.path '{dataset.path}' is not a file", field="dataset.path"
            )
        return candidate

    def _allowed(self, path: str) -> Path | None:
        if not self.roots:
            return None
        try:
            given = Path(path).expanduser()
            candidate = (given if given.is_absolute() else self.roots[0] / given).resolve()
            own = [folder.resolve() for folder in self.own]
            roots = [root.resolve() for root in self.roots]
        except (OSError, RuntimeError, ValueError):  # an unknown ~user, a NUL byte
            return None
        if any(candidate.is_relative_to(folder) for folder in own):
            return None
        return candidate if any(candidate.is_relative_to(r) for r in roots) else None

    def _refusal(self) -> str:
        """One message for every refused path: it names the roots, never where they are
        (the server's layout is not the caller's), and never echoes the path."""
        if not self.roots:
            return (
                "dataset.path is outside the data roots: this service has none "
                "(HPO_DATA_ROOTS); upload the file and use {source: uploaded, id} instead"
            )
        first, *others = [r.name for r in self.roots]
        also = f", or one under the roots {others}" if others else ""
        return f"dataset.path is outside the data roots; give a path relative to '{first}'{also}"


def check_data_source(spec: StudySpec, roots: DataRoots, *, tenant: str | None = None) -> None:
    """Refuse at submission what can be known without reading the data: a path outside
    the roots, an upload that is not the tenant's, a target column the file's header
    lacks (read alone: a CSV's first line, a Parquet schema). Blocking: call off the loop."""
    if isinstance(spec.dataset, PathDataset):
        _has_target(spec.dataset, roots.resolve(spec.dataset))
    elif isinstance(spec.dataset, UploadedDataset):
        _uploaded(spec.dataset, roots, tenant)


def _has_target(dataset: PathDataset, path: Path) -> None:
    """Only a path the roots allow reaches here: what its header says is the caller's to
    know. Other faults of the file (types, missing values) surface when the study starts."""
    fmt = dataset.file_format
    try:
        names = column_names(path, fmt)
    except DataError as exc:
        raise InvalidRequest(f"dataset.path '{dataset.path}': {exc}", field="dataset.path") from exc
    if dataset.target not in names:
        kind = "array" if fmt == "npz" else "column"
        raise InvalidRequest(
            f"dataset.target '{dataset.target}' is not a {kind} of '{dataset.path}'; its "
            f"{kind}s are {_listed(names)}{did_you_mean(dataset.target, names)}",
            field="dataset.target",
        )


def _listed(names: list[str], most: int = 50) -> str:
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return f"{names[:most]}{more}"


def _uploaded(dataset: UploadedDataset, roots: DataRoots, tenant: str | None) -> PathDataset:
    if roots.uploads is None:
        raise InvalidRequest("this service takes no uploaded data sets", field="dataset.id")
    try:
        record = roots.uploads.get(dataset.id, tenant=tenant)
    except NotFound as exc:
        raise InvalidRequest(str(exc), field="dataset.id") from exc
    path = roots.uploads.path_of(record)
    return PathDataset.model_validate(
        {
            "source": "path",
            "path": str(path),
            "format": record.format,
            "target": record.target,
            "task": record.task,
        }
    )


def prepare_data(spec: StudySpec, roots: DataRoots) -> PreparedData:
    """Load and split the study's data; ValueError (DataError) says what is wrong with it."""
    dataset = spec.dataset
    path = None
    if isinstance(dataset, UploadedDataset):
        dataset = _uploaded(dataset, roots, None)
        path = Path(dataset.path)
    elif isinstance(dataset, PathDataset):
        path = roots.resolve(dataset)
    data = load_prepared(dataset, spec.split, path=path)
    allowed = [f"val_{m}" for m in METRICS[data.task]]
    for objective in spec.objectives:
        if objective.metric.startswith("val_") and objective.metric not in allowed:
            raise ValueError(
                f"objective {objective.metric} does not fit this {data.task} data; use one of "
                f"{allowed}"
            )
    if spec.model.kind == "cnn" and len(data.sample_shape) != 3:  # plug-ins check their own
        raise ValueError(
            f"model cnn needs image samples (C, H, W); this data has shape {data.sample_shape}"
        )
    return data
