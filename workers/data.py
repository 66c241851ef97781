"""Data sets as in-memory arrays: loaded, checked, split and standardized once per study.

Errors a user can fix (a missing file or column, text or missing values in the
features) raise `DataError` with a message that says what is wrong where.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workers.data_error import DataError
from workers.spec import BuiltinDataset, PathDataset, PluginDataset, SplitSpec, Task

MAX_CLASSES = 100


@dataclass(frozen=True)
class Fold:
    """One train/validation split with the test split, standardized on its training part.

    The fold holds row indices into the study's one copy of the features (`x`, shared by
    every fold) and its own standardization, applied when rows are read: k folds as k
    standardized copies would hold k times the data set at once. `x` is float32 and flat
    (N, D), centred once on all rows so that float32 keeps the digits of features with a
    large offset; `features(rows)` gives standardized rows. Labels are int64 for
    classification; regression targets are centred float32 too, and `targets(rows)`
    standardizes them on the training rows (`y_scale` turns errors back into units).
    """

    x: np.ndarray
    y: np.ndarray
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    shift: np.ndarray
    scale: np.ndarray
    y_shift: float = 0.0
    y_scale: float = 1.0

    def features(self, rows: np.ndarray) -> np.ndarray:
        return (self.x[rows] - self.shift) / self.scale

    def targets(self, rows: np.ndarray) -> np.ndarray:
        y = self.y[rows]
        return (y - self.y_shift) / self.y_scale if y.dtype.kind == "f" else y

    @property
    def x_train(self) -> np.ndarray:
        return self.features(self.train)

    @property
    def y_train(self) -> np.ndarray:
        return self.targets(self.train)

    @property
    def x_val(self) -> np.ndarray:
        return self.features(self.val)

    @property
    def y_val(self) -> np.ndarray:
        return self.targets(self.val)

    @property
    def x_test(self) -> np.ndarray:
        return self.features(self.test)

    @property
    def y_test(self) -> np.ndarray:
        return self.targets(self.test)


@dataclass(frozen=True)
class PreparedData:
    """What a trial trains on: the task, the sample shape and one or more folds."""

    task: Task
    n_outputs: int
    sample_shape: tuple[int, ...]
    folds: list[Fold]

    @property
    def n_features(self) -> int:
        return int(np.prod(self.sample_shape))


@dataclass(frozen=True)
class RawData:
    x: np.ndarray
    y: np.ndarray
    task: Task


def _digits(spec: BuiltinDataset) -> RawData:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return RawData(bunch.images[:, None].astype(np.float32), bunch.target, "classification")


def _synthetic_classification(spec: BuiltinDataset) -> RawData:
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=2000, n_features=20, n_informative=10, n_classes=3, random_state=spec.seed
    )
    return RawData(x, y, "classification")


def _synthetic_regression(spec: BuiltinDataset) -> RawData:
    from sklearn.datasets import make_regression

    x, y = make_regression(
        n_samples=2000, n_features=20, n_informative=10, noise=10.0, random_state=spec.seed
    )
    return RawData(x, y, "regression")


BUILTIN_LOADERS: dict[str, Callable[[BuiltinDataset], RawData]] = {
    "digits": _digits,
    "synthetic-classification": _synthetic_classification,
    "synthetic-regression": _synthetic_regression,
}


def load_raw(dataset: BuiltinDataset | PathDataset | Any, *, path: Path | None = None) -> RawData:
    """Load a data set; `path` is the checked location of a `path` source's file."""
    if isinstance(dataset, BuiltinDataset):
        return BUILTIN_LOADERS[dataset.name](dataset)
    if isinstance(dataset, PluginDataset):
        return _from_plugin(dataset)
    from workers.files import read_table

    if path is None:
        raise DataError("a path data set needs its resolved file path")
    x, y = read_table(path, dataset.file_format, dataset.target)
    return RawData(x, y, dataset.task or infer_task(y))


def _from_plugin(dataset: PluginDataset) -> RawData:
    from workers.tasks import load_task

    task = load_task(dataset.name)
    try:
        x, y = task.load_data(dataset.seed)
    except Exception as exc:
        raise DataError(f"task '{dataset.name}' failed to load its data: {exc}") from exc
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim < 2 or len(x) != len(y):
        raise DataError(
            f"task '{dataset.name}' gave features of shape {x.shape} and targets of shape "
            f"{y.shape}; expected one row per sample in both"
        )
    return RawData(x.astype(np.float32), y, task.task)


def infer_task(y: np.ndarray) -> Task:
    """Classification for integer, boolean or text targets with few values; else regression."""
    if y.dtype.kind in "biuUSO" and len(np.unique(y)) <= MAX_CLASSES:
        return "classification"
    return "regression"


def prepare(raw: RawData, split: SplitSpec) -> PreparedData:
    """Encode labels, hold out the test split, and build the folds (one without `folds`)."""
    x = raw.x.reshape(len(raw.x), -1).astype(np.float64)
    sample_shape = tuple(int(d) for d in raw.x.shape[1:]) or (1,)
    y, n_outputs = _encode_target(raw.y, raw.task)
    stratify = raw.task == "classification"
    rest, test = _hold_out(len(y), y if stratify else None, split.test, split.seed)
    shared = _Centred.of(x, y, raw.task)
    folds = [
        shared.fold(rest[train], rest[val], test)
        for train, val in _fold_indices(y[rest], stratify, split)
    ]
    return PreparedData(raw.task, n_outputs, sample_shape, folds)


def _encode_target(y: np.ndarray, task: Task) -> tuple[np.ndarray, int]:
    if task == "regression":
        try:
            return y.astype(np.float64), 1
        except ValueError as exc:
            raise DataError(f"a regression target must be numeric: {exc}") from exc
    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise DataError(f"classification needs at least 2 classes, the target has {len(classes)}")
    return codes.astype(np.int64), len(classes)


def _hold_out(
    n: int, y: np.ndarray | None, share: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    index = np.arange(n)
    if share == 0:
        return index, index[:0]
    try:
        rest, test = train_test_split(index, test_size=share, random_state=seed, stratify=y)
    except ValueError as exc:
        raise DataError(f"cannot split off the test set: {exc}") from exc
    return rest, test


def _fold_indices(
    y: np.ndarray, stratify: bool, split: SplitSpec
) -> list[tuple[np.ndarray, np.ndarray]]:
    # Imported here: a slot process imports this module for its types only, and sklearn
    # would add seconds to every slot's start.
    from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

    index = np.arange(len(y))
    try:
        if split.folds is None:
            train, val = train_test_split(
                index,
                test_size=split.validation / (1 - split.test),
                random_state=split.seed,
                stratify=y if stratify else None,
            )
            return [(train, val)]
        kind = StratifiedKFold if stratify else KFold
        splitter = kind(n_splits=split.folds, shuffle=True, random_state=split.seed)
        return list(splitter.split(index, y))
    except ValueError as exc:
        raise DataError(f"cannot split training and validation data: {exc}") from exc


@dataclass(frozen=True)
class _Centred:
    """The one float32 copy of features (and regression targets) that every fold indexes,
    with the float64 originals that the folds' statistics are computed from."""

    x64: np.ndarray
    y64: np.ndarray
    x: np.ndarray
    y: np.ndarray
    x_centre: np.ndarray
    y_centre: float | None

    @classmethod
    def of(cls, x: np.ndarray, y: np.ndarray, task: Task) -> _Centred:
        x_centre = x.mean(axis=0)
        if task == "classification":
            return cls(x, y, (x - x_centre).astype(np.float32), y, x_centre, None)
        y_centre = float(y.mean())
        y32 = (y - y_centre).astype(np.float32)
        return cls(x, y, (x - x_centre).astype(np.float32), y32, x_centre, y_centre)

    def fold(self, train: np.ndarray, val: np.ndarray, test: np.ndarray) -> Fold:
        train_x = self.x64[train]
        std = train_x.std(axis=0)
        std[std == 0] = 1.0
        shift = (train_x.mean(axis=0) - self.x_centre).astype(np.float32)
        y_shift, y_scale = 0.0, 1.0
        if self.y_centre is not None:
            y_shift = float(self.y64[train].mean()) - self.y_centre
            y_scale = float(self.y64[train].std() or 1.0)
        return Fold(
            self.x,
            self.y,
            train,
            val,
            test,
            shift,
            std.astype(np.float32),
            y_shift=y_shift,
            y_scale=y_scale,
        )


def load_prepared(
    dataset: BuiltinDataset | PathDataset | Any, split: SplitSpec, *, path: Path | None = None
) -> PreparedData:
    """The whole way from a data set spec to what a trial trains on."""
    return prepare(load_raw(dataset, path=path), split)
