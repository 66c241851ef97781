"""Data sets as in-memory arrays, split and standardized once per study."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

from workers.spec import BuiltinDataset, SplitSpec


@dataclass(frozen=True)
class DataSplits:
    """Train/validation/test arrays: float32 features, int64 class labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.data.astype(np.float32), bunch.target.astype(np.int64)


BUILTIN_DATASETS: dict[str, Callable[[], tuple[np.ndarray, np.ndarray]]] = {"digits": _digits}


def load_splits(dataset: BuiltinDataset, split: SplitSpec) -> DataSplits:
    """Load a data set, split it stratified and standardize on the training part only."""
    x, y = BUILTIN_DATASETS[dataset.name]()
    return split_arrays(x, y, split)


def split_arrays(x: np.ndarray, y: np.ndarray, split: SplitSpec) -> DataSplits:
    if split.validation + split.test >= 1:
        raise ValueError(f"validation + test must be < 1, got {split.validation} + {split.test}")
    x_rest, x_test, y_rest, y_test = _hold_out(x, y, split.test, split.seed)
    val_share = split.validation / (1 - split.test)
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=val_share, random_state=split.seed, stratify=y_rest
    )
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std[std == 0] = 1.0

    def scale(a: np.ndarray) -> np.ndarray:
        return ((a - mean) / std).astype(np.float32)

    return DataSplits(
        x_train=scale(x_train), y_train=y_train, x_val=scale(x_val), y_val=y_val,
        x_test=scale(x_test), y_test=y_test, n_classes=int(y.max()) + 1,
    )  # fmt: skip


def _hold_out(
    x: np.ndarray, y: np.ndarray, share: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if share == 0:
        return x, x[:0], y, y[:0]
    parts = train_test_split(x, y, test_size=share, random_state=seed, stratify=y)
    return parts[0], parts[1], parts[2], parts[3]
