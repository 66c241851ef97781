"""Reading user files (CSV, Parquet, NPZ) into checked feature and target arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from workers.data_error import DataError


def read_table(path: Path, file_format: str, target: str) -> tuple[np.ndarray, np.ndarray]:
    """Features and target from a file; every problem is a DataError naming its place."""
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    if file_format == "npz":
        return _read_npz(path, target)
    return _read_frame(path, file_format, target)


def column_names(path: Path, file_format: str) -> list[str]:
    """The columns (or npz arrays) a file holds, from its header alone: a CSV's first line,
    a Parquet footer's schema, an npz archive's index. DataError when it cannot be read."""
    try:
        if file_format == "npz":
            with np.load(path, allow_pickle=False) as arrays:
                return list(arrays.files)
        if file_format == "parquet":
            import pyarrow.parquet as pq

            names = pq.read_schema(path).names
            return [n for n in names if not n.startswith("__index_level_")]  # pandas' index
        import pandas as pd

        return [str(c) for c in pd.read_csv(path, nrows=0).columns]
    except Exception as exc:  # noqa: BLE001 - any parser failure is the file's fault
        raise DataError(f"cannot read {path.name} as {file_format}: {type(exc).__name__}") from exc


def _read_frame(path: Path, file_format: str, target: str) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd

    try:
        frame = pd.read_csv(path) if file_format == "csv" else pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - any parser failure is the file's fault
        raise DataError(f"cannot read {path.name} as {file_format}: {exc}") from exc
    if target not in frame.columns:
        raise DataError(
            f"target column '{target}' not in {path.name}; columns: {list(frame.columns)}"
        )
    features = frame.drop(columns=[target])
    if features.shape[1] == 0:
        raise DataError(f"{path.name} has no feature columns besides '{target}'")
    for name in features.columns:
        column = features[name]
        if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            raise DataError(f"feature column '{name}' is not numeric (dtype {column.dtype})")
    _check_complete(frame, path.name)
    return features.to_numpy(dtype=np.float64), frame[target].to_numpy()


def _check_complete(frame: object, name: str) -> None:
    missing = frame.isna().sum()  # type: ignore[attr-defined]
    holes = {str(column): int(count) for column, count in missing.items() if count}
    if holes:
        raise DataError(f"{name} has missing values (column: count): {holes}")
    numeric = frame.select_dtypes("number").to_numpy(dtype=np.float64)  # type: ignore[attr-defined]
    if not np.isfinite(numeric).all():
        raise DataError(f"{name} has infinite values")


def _read_npz(path: Path, target: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        arrays = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - any parser failure is the file's fault
        raise DataError(f"cannot read {path.name} as npz: {exc}") from exc
    with arrays:
        if target not in arrays.files:
            raise DataError(f"target array '{target}' not in {path.name}; arrays: {arrays.files}")
        feature_keys = [k for k in arrays.files if k != target]
        if len(feature_keys) != 1:
            raise DataError(
                f"{path.name} must hold one feature array besides '{target}', has {feature_keys}"
            )
        x, y = arrays[feature_keys[0]], arrays[target]
    if x.dtype.kind not in "biuf":
        raise DataError(f"feature array '{feature_keys[0]}' is not numeric (dtype {x.dtype})")
    if len(x) != len(y):
        raise DataError(f"features have {len(x)} rows but target '{target}' has {len(y)}")
    if not np.isfinite(x.astype(np.float64)).all():
        raise DataError(f"feature array '{feature_keys[0]}' has NaN or infinite values")
    return x, y
