"""A client that nobody here wrote: openapi-python-client generates one from the live
service's OpenAPI document, and submit, wait, trials, best, upload and delete work
through it.

The generator lives in its own virtual environment (`make install` builds
`.venv/tools`): it pins an older typer than the service's CLI needs.
"""

from __future__ import annotations

import importlib
import io
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import FAST_SPEC

pytestmark = [pytest.mark.ray, pytest.mark.slow]
GENERATOR = (
    Path(__file__).resolve().parents[2] / ".venv" / "tools" / "bin" / "openapi-python-client"
)


@pytest.fixture
def package(sqlite_service_url: str, tmp_path: Path) -> ModuleType:
    """The package generated from the document the live service serves."""
    if not GENERATOR.exists():
        pytest.fail(f"{GENERATOR} is missing: `make install` builds it")
    document = tmp_path / "openapi.json"
    document.write_bytes(httpx.get(f"{sqlite_service_url}/openapi.json").content)
    out = tmp_path / "hpo_generated"
    done = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(document),
            "--meta",
            "none",
            "--output-path",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # The YAML body of POST /studies is an extra content type the generator skips; nothing
    # else may be left out.
    assert "will not be generated" not in done.stdout, done.stdout
    assert "Failure to process schema" not in done.stdout, done.stdout
    sys.path.insert(0, str(tmp_path))
    try:
        return importlib.import_module("hpo_generated")
    finally:
        sys.path.remove(str(tmp_path))


def call(package: ModuleType, module: str, client: Any, **kwargs: Any) -> Any:
    """Run one generated operation (`studies.submit_study`), returning its parsed body."""
    group, name = module.split(".")
    operation = importlib.import_module(f"{package.__name__}.api.{group}.{name}")
    response = operation.sync_detailed(client=client, **kwargs)
    assert 200 <= int(response.status_code) < 300, (module, response.status_code, response.content)
    return response.parsed


def test_a_generated_client_runs_a_study_and_manages_a_data_set(
    package: ModuleType, sqlite_service_url: str, make_spec: Callable[..., dict[str, Any]]
) -> None:
    models = importlib.import_module(f"{package.__name__}.models")
    types = importlib.import_module(f"{package.__name__}.types")
    with package.Client(base_url=sqlite_service_url, timeout=httpx.Timeout(60)) as client:
        spec = models.StudySpec.from_dict(
            {**FAST_SPEC, "name": "generated", "budget": {"max_trials": 2, "max_epochs": 2}}
        )
        study = call(package, "studies.submit_study", client, body=spec)
        deadline = time.monotonic() + 180
        while (study := call(package, "studies.get_study", client, study_id=study.id)).state in (
            "queued",
            "running",
        ):
            assert time.monotonic() < deadline, "the study did not finish"
            time.sleep(0.3)
        assert study.state == "completed"
        trials = call(package, "studies.list_trials", client, study_id=study.id)
        assert len(trials.items) == 2 and all(
            t.state in ("complete", "pruned") for t in trials.items
        )
        best = call(package, "studies.best_trials", client, study_id=study.id, k=1)
        assert len(best.items) <= 1

        rows = np.random.default_rng(0).normal(size=(40, 3))
        text = "a,b,c,label\n" + "".join(f"{r[0]},{r[1]},{r[2]},{int(r[0] > 0)}\n" for r in rows)
        upload = models.BodyUploadDataset(
            file=types.File(payload=io.BytesIO(text.encode()), file_name="table.csv"),
            target="label",
        )
        dataset = call(package, "datasets.upload_dataset", client, body=upload)
        assert (dataset.n_rows, dataset.n_features) == (40, 3)
        call(package, "datasets.delete_dataset", client, dataset_id=dataset.id)
        call(package, "studies.delete_study", client, study_id=study.id)
        listed = call(package, "studies.list_studies", client)
        assert [s.id for s in listed.items] == []
