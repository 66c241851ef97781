"""Data sets: builtins, user files, the checks that refuse bad files, splits and folds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workers.data import infer_task, load_prepared
from workers.data_error import DataError
from workers.spec import BuiltinDataset, PathDataset, SplitSpec


def frame(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    return pd.DataFrame(
        {"a": x[:, 0] * 5 + 3, "b": x[:, 1], "c": x[:, 2], "label": (x[:, 0] > 0).astype(int)}
    )


def load(path: Path, fmt: str | None = None, target: str = "label", **split: object):
    spec = PathDataset(source="path", path=str(path), format=fmt, target=target)  # type: ignore[arg-type]
    return load_prepared(spec, SplitSpec(**split), path=path)  # type: ignore[arg-type]


def test_digits_are_images_split_stratified_and_standardized_on_train() -> None:
    data = load_prepared(BuiltinDataset(source="builtin", name="digits"), SplitSpec())
    fold = data.folds[0]
    assert data.task == "classification" and data.n_outputs == 10 and data.sample_shape == (1, 8, 8)
    assert len(fold.y_train) + len(fold.y_val) + len(fold.y_test) == 1797
    assert len(fold.y_val) == pytest.approx(360, abs=2) and len(fold.y_test) == pytest.approx(
        360, abs=2
    )
    assert np.bincount(fold.y_val).min() >= 30
    assert np.allclose(fold.x_train.mean(axis=0), 0, atol=1e-5)
    assert not np.allclose(fold.x_val.mean(axis=0), 0, atol=1e-5)


def test_synthetic_sets_are_seeded() -> None:
    def first(seed: int) -> np.ndarray:
        spec = BuiltinDataset(source="builtin", name="synthetic-regression", seed=seed)
        return load_prepared(spec, SplitSpec()).folds[0].x_train[:3]

    assert np.array_equal(first(1), first(1)) and not np.array_equal(first(1), first(2))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_tables_load_with_their_target(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"data.{fmt}"
    df = frame()
    df.to_csv(path, index=False) if fmt == "csv" else df.to_parquet(path)
    data = load(path)
    assert data.task == "classification" and data.n_outputs == 2 and data.sample_shape == (3,)


def test_npz_images_keep_their_shape(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "images.npz"
    np.savez(path, x=rng.normal(size=(60, 1, 4, 4)), y=np.arange(60) % 3)
    data = load(path, target="y")
    assert data.sample_shape == (1, 4, 4) and data.n_outputs == 3


def test_a_float_target_is_regression_and_scaled_on_train(tmp_path: Path) -> None:
    df = frame().assign(label=lambda d: d["a"] * 100.0 + 7)
    path = tmp_path / "reg.csv"
    df.to_csv(path, index=False)
    data = load(path)
    fold = data.folds[0]
    assert data.task == "regression" and data.n_outputs == 1
    assert abs(float(fold.y_train.mean())) < 1e-5 and fold.y_scale > 100


def test_text_labels_are_encoded() -> None:
    assert infer_task(np.array(["cat", "dog", "cat"])) == "classification"
    assert infer_task(np.array([0.5, 1.5, 2.25])) == "regression"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda df: df.drop(columns=["label"]), "target column 'label' not in"),
        (lambda df: df.assign(b=["x"] * len(df)), "feature column 'b' is not numeric"),
        (lambda df: df.assign(c=[np.nan] + [1.0] * (len(df) - 1)), "missing values"),
        (lambda df: df.assign(c=[np.inf] + [1.0] * (len(df) - 1)), "infinite values"),
    ],
)
def test_bad_tables_say_what_is_wrong(tmp_path: Path, mutate, message: str) -> None:
    path = tmp_path / "bad.csv"
    mutate(frame()).to_csv(path, index=False)
    with pytest.raises(DataError, match=message):
        load(path)


def test_a_missing_file_and_an_unparsable_file_are_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="data file not found"):
        load(tmp_path / "nope.csv")
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="cannot read garbage.parquet as parquet"):
        load(garbage)


def test_npz_needs_one_feature_array_and_its_target(tmp_path: Path) -> None:
    path = tmp_path / "two.npz"
    np.savez(path, x=np.zeros((10, 2)), z=np.zeros((10, 2)), y=np.arange(10) % 2)
    with pytest.raises(DataError, match="one feature array"):
        load(path, target="y")
    with pytest.raises(DataError, match="target array 'label' not in"):
        load(path)


def test_folds_partition_the_non_test_rows() -> None:
    data = load_prepared(
        BuiltinDataset(source="builtin", name="digits"), SplitSpec(folds=4, test=0.2)
    )
    assert len(data.folds) == 4
    sizes = [len(f.y_val) for f in data.folds]
    assert sum(sizes) == len(data.folds[0].y_train) + sizes[0]
    assert all(len(f.y_test) == len(data.folds[0].y_test) for f in data.folds)


def _feature_buffers(fold: object) -> dict[int, int]:
    """The distinct float buffers (base arrays) under a fold's arrays, by address."""
    buffers = {}
    for array in vars(fold).values():
        if isinstance(array, np.ndarray) and array.dtype.kind == "f" and array.ndim == 2:
            base = array if array.base is None else array.base
            buffers[base.__array_interface__["data"][0]] = base.nbytes
    return buffers


def test_folds_are_index_views_of_one_copy_of_the_features() -> None:
    data = load_prepared(
        BuiltinDataset(source="builtin", name="digits"), SplitSpec(folds=5, test=0.2)
    )
    buffers: dict[int, int] = {}
    for fold in data.folds:
        buffers.update(_feature_buffers(fold))
    assert len(buffers) == 1 and sum(buffers.values()) <= 1797 * data.n_features * 4
    for fold in data.folds:  # each fold still reads as standardized on its own training rows
        assert np.allclose(fold.x_train.mean(axis=0), 0, atol=1e-5)
        assert len(fold.x_train) == len(fold.y_train) and len(fold.x_val) == len(fold.y_val)
