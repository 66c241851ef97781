"""Uploads: checked on arrival, tenant-scoped, usable by studies, refused when too big."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from service.settings import Settings
from tests.conftest import running_service, wait_for_study

pytestmark = [pytest.mark.ray, pytest.mark.slow]
LIMIT = 2_000_000
ALICE, BOB = {"Authorization": "Bearer a"}, {"Authorization": "Bearer b"}


@pytest.fixture(scope="module")
def service(
    ray_cluster: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """The data roots are `datasets` (relative paths start there) and `root` itself, a parent
    of the service's own folders: its SQLite file, uploads and artifacts in `data`, and the
    trial checkpoints in `trial-checkpoints`, none of which a path source may read."""
    root = tmp_path_factory.mktemp("uploads")
    (root / "datasets").mkdir()
    settings = Settings(
        data_dir=root / "data",
        checkpoint_uri=str(root / "trial-checkpoints"),
        data_roots=f"{root / 'datasets'},{root}",
        max_upload_bytes=LIMIT,
        api_tokens="alice:a,bob:b",
    )
    with running_service(settings) as url:
        yield url, settings.data_dir


@pytest.fixture
def http(service: tuple[str, Path]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service[0], headers=ALICE, timeout=60) as client:
        yield client


def table(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3))
    return pd.DataFrame(
        {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "label": (x[:, 0] > 0).astype(int)}
    )


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def upload(
    http: httpx.Client, content: bytes, name: str = "data.csv", **form: str
) -> httpx.Response:
    return http.post(
        "/api/v1/datasets", files={"file": (name, content)}, data={"target": "label", **form}
    )


def files_under(data_dir: Path) -> list[Path]:
    return (
        [p for p in (data_dir / "uploads").rglob("*") if p.is_file()]
        if (data_dir / "uploads").exists()
        else []
    )


def test_an_upload_is_checked_listed_used_by_a_study_and_deleted(
    http: httpx.Client, service: tuple[str, Path], make_spec: Callable[..., dict[str, Any]]
) -> None:
    created = upload(http, csv_bytes(table()))
    assert created.status_code == 201, created.text
    dataset = created.json()
    assert (dataset["n_rows"], dataset["n_features"], dataset["task"], dataset["format"]) == (
        300,
        3,
        "classification",
        "csv",
    )
    assert dataset["id"] in [d["id"] for d in http.get("/api/v1/datasets").json()["items"]]

    spec = make_spec(
        name="on-upload",
        dataset={"source": "uploaded", "id": dataset["id"]},
        budget={"max_trials": 2, "max_epochs": 3},
    )
    study = http.post("/api/v1/studies", json=spec).json()
    refused = http.delete(f"/api/v1/datasets/{dataset['id']}")
    assert (
        refused.status_code == 409
        and "used by running studies" in refused.json()["error"]["message"]
    )
    done = wait_for_study(http, study["id"])
    assert done["state"] == "completed" and done["best"]["value"] > 0.8

    assert http.delete(f"/api/v1/datasets/{dataset['id']}").status_code == 204
    assert http.get(f"/api/v1/datasets/{dataset['id']}").status_code == 404
    assert not (service[1] / "uploads" / dataset["id"]).exists()


def test_another_tenant_cannot_see_or_use_an_upload(
    http: httpx.Client, service: tuple[str, Path], make_spec: Callable[..., dict[str, Any]]
) -> None:
    dataset = upload(http, csv_bytes(table())).json()
    with httpx.Client(base_url=service[0], headers=BOB, timeout=30) as bob:
        assert bob.get(f"/api/v1/datasets/{dataset['id']}").status_code == 404
        assert bob.delete(f"/api/v1/datasets/{dataset['id']}").status_code == 404
        assert dataset["id"] not in [d["id"] for d in bob.get("/api/v1/datasets").json()["items"]]
        spec = make_spec(dataset={"source": "uploaded", "id": dataset["id"]})
        refused = bob.post("/api/v1/studies", json=spec)
        assert (
            refused.status_code == 422
            and refused.json()["error"]["details"][0]["loc"] == "dataset.id"
        )


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda f: f.assign(b=["x"] * len(f)), "feature column 'b' is not numeric"),
        (lambda f: f.drop(columns=["label"]), "target column 'label' not in"),
        (lambda f: f.assign(c=[np.nan] + [0.0] * (len(f) - 1)), "missing values"),
    ],
)
def test_a_bad_file_is_422_naming_the_column_and_leaves_nothing(
    http: httpx.Client,
    service: tuple[str, Path],
    mutate: Callable[[pd.DataFrame], pd.DataFrame],
    words: str,
) -> None:
    before = files_under(service[1])
    response = upload(http, csv_bytes(mutate(table())))
    assert response.status_code == 422 and words in response.json()["error"]["message"]
    assert files_under(service[1]) == before


def test_an_upload_over_the_limit_is_413_and_leaves_nothing(
    http: httpx.Client, service: tuple[str, Path]
) -> None:
    before = files_under(service[1])
    big = io.BytesIO(b"a,b,c,label\n" + b"1.0,2.0,3.0,1\n" * (LIMIT // 10))
    response = http.post(
        "/api/v1/datasets", files={"file": ("big.csv", big)}, data={"target": "label"}
    )
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"
    assert files_under(service[1]) == before


def test_parquet_and_npz_uploads_are_accepted(http: httpx.Client) -> None:
    buffer = io.BytesIO()
    table().to_parquet(buffer)
    assert upload(http, buffer.getvalue(), name="t.parquet").json()["format"] == "parquet"
    arrays = io.BytesIO()
    np.savez(arrays, x=np.random.default_rng(0).normal(size=(50, 1, 4, 4)), label=np.arange(50) % 2)
    assert upload(http, arrays.getvalue(), name="images.npz").json()["n_features"] == 16


def test_path_sources_cannot_escape_the_data_roots(
    http: httpx.Client, service: tuple[str, Path], make_spec: Callable[..., dict[str, Any]]
) -> None:
    for path in ("../../etc/passwd", "/etc/passwd", "uploads/../../../etc/hosts"):
        spec = make_spec(dataset={"source": "path", "path": path, "format": "csv"})
        response = http.post("/api/v1/studies", json=spec)
        message = response.json()["error"]["message"]
        assert response.status_code == 422 and "outside the data roots" in message
        assert "relative to 'datasets'" in message
        # The roots are named, never located: no absolute path of the server shows.
        assert str(service[1]) not in message and str(service[1].parent) not in message


def submit_path(http: httpx.Client, path: str, spec: dict[str, Any]) -> httpx.Response:
    dataset = {"source": "path", "path": path, "format": "csv", "target": "label"}
    return http.post("/api/v1/studies", json=spec | {"dataset": dataset})


def test_a_path_source_reads_files_under_the_data_roots(
    http: httpx.Client, service: tuple[str, Path], make_spec: Callable[..., dict[str, Any]]
) -> None:
    root = service[1].parent
    table().to_csv(root / "datasets" / "shared.csv", index=False)
    (root / "team").mkdir(exist_ok=True)
    table().to_csv(root / "team" / "own.csv", index=False)
    spec = make_spec(budget={"max_trials": 1, "max_epochs": 1})
    for path in ("shared.csv", str(root / "team" / "own.csv"), "../team/own.csv"):
        response = submit_path(http, path, spec | {"name": path})
        assert response.status_code == 201, (path, response.text)
        http.post(f"/api/v1/studies/{response.json()['id']}/stop")
    missing = submit_path(http, "nope.csv", spec).json()["error"]["message"]
    assert "dataset.path 'nope.csv' is not a file" in missing  # the roots' own files are open


def test_the_services_own_folders_are_refused_alike_whether_or_not_a_file_is_there(
    http: httpx.Client, service: tuple[str, Path], make_spec: Callable[..., dict[str, Any]]
) -> None:
    """Another tenant's upload, a checkpoint, the database: refused with one answer, byte
    for byte, so that no answer tells what exists in the service's folders."""
    data_dir, root = service[1], service[1].parent
    with httpx.Client(base_url=service[0], headers=BOB, timeout=30) as bob:
        theirs = upload(bob, csv_bytes(table()), name="theirs.csv").json()["id"]
    upload_dir = data_dir / "uploads" / theirs
    assert (upload_dir / "theirs.csv").is_file() and (data_dir / "hpo.db").is_file()
    checkpoints = root / "trial-checkpoints"
    checkpoints.mkdir(exist_ok=True)
    table().to_csv(checkpoints / "trial.csv", index=False)
    (root / "datasets" / "db.csv").symlink_to(data_dir / "hpo.db")
    (root / "datasets" / "service").symlink_to(data_dir, target_is_directory=True)
    refused = [
        str(upload_dir / "theirs.csv"),
        str(upload_dir),
        str(upload_dir / "missing.csv"),
        f"../data/uploads/{theirs}/theirs.csv",
        f"../data/uploads/{theirs}/missing.csv",
        f"service/uploads/{theirs}/theirs.csv",
        "service/uploads",
        "service/nothing-here",
        str(data_dir / "hpo.db"),
        str(data_dir / "missing.db"),
        "db.csv",
        str(checkpoints / "trial.csv"),
        str(checkpoints / "missing.csv"),
        str(checkpoints),
        str(data_dir / "artifacts"),
        str(data_dir),
        "../..",
        "../../etc/passwd",
        "/etc/passwd",
        "/no/such/file.csv",
        f"shared.csv/../../data/uploads/{theirs}/theirs.csv",
    ]
    spec = make_spec(name="probe")
    answers = {path: submit_path(http, path, spec) for path in refused}
    first = answers[refused[0]]
    assert first.status_code == 422 and "outside the data roots" in first.text
    assert str(root) not in first.text
    for path, answer in answers.items():
        assert (answer.status_code, answer.content) == (422, first.content), path
    assert not [s for s in http.get("/api/v1/studies").json()["items"] if s["name"] == "probe"]


def test_the_python_client_uploads_a_file(service: tuple[str, Path], tmp_path: Path) -> None:
    from api.client import ClientError, HpoClient

    path = tmp_path / "table.csv"
    table().to_csv(path, index=False)
    with HpoClient(service[0], token="a") as client:
        dataset = client.upload(path, target="label")
        assert dataset["filename"] == "table.csv" and dataset["n_rows"] == 300
        with pytest.raises(ClientError, match="target column 'nope' not in"):
            client.upload(path, target="nope")
