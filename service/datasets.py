"""Where a study's data comes from: builtin sets, or files under the configured data roots.

A `path` source is resolved against the roots (relative paths against the
first) and refused when it leads outside them, so a spec cannot read arbitrary
files of the service's machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from service.errors import InvalidRequest
from service.spec import StudySpec
from workers.data import PreparedData, load_prepared
from workers.spec import METRICS, PathDataset


@dataclass(frozen=True)
class DataRoots:
    """Folders whose files studies may read; the first is where relative paths start."""

    roots: tuple[Path, ...]

    def resolve(self, dataset: PathDataset) -> Path:
        """The file a path source names; InvalidRequest when outside the roots or missing."""
        given = Path(dataset.path).expanduser()
        candidate = (given if given.is_absolute() else self.roots[0] / given).resolve()
        if not any(candidate.is_relative_to(root.resolve()) for root in self.roots):
            roots = [str(r) for r in self.roots]
            raise InvalidRequest(
                f"dataset.path '{dataset.path}' is outside the data roots {roots}",
                field="dataset.path",
            )
        if not candidate.is_file():
            raise InvalidRequest(
                f"dataset.path '{dataset.path}' is not a file", field="dataset.path"
            )
        return candidate


def check_data_source(spec: StudySpec, roots: DataRoots) -> None:
    """Refuse at submission what can be known without reading the data."""
    if isinstance(spec.dataset, PathDataset):
        roots.resolve(spec.dataset)


def prepare_data(spec: StudySpec, roots: DataRoots) -> PreparedData:
    """Load and split the study's data; ValueError (DataError) says what is wrong with it."""
    path = roots.resolve(spec.dataset) if isinstance(spec.dataset, PathDataset) else None
    data = load_prepared(spec.dataset, spec.split, path=path)
    allowed = [f"val_{m}" for m in METRICS[data.task]]
    for objective in spec.objectives:
        if objective.metric.startswith("val_") and objective.metric not in allowed:
            raise ValueError(
                f"objective {objective.metric} does not fit this {data.task} data; "
                f"use one of {allowed}"
            )
    if spec.model.kind == "cnn" and len(data.sample_shape) != 3:
        raise ValueError(
            f"model cnn needs image samples (C, H, W); this data has shape {data.sample_shape}"
        )
    return data
