"""docker-compose.yml and the README's cluster commands agree with the code.

No Docker engine runs here; these checks read the files the way compose would.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_compose_has_postgres_head_and_a_scalable_gpu_worker() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "head", "worker"}
    postgres = services["postgres"]
    assert postgres["healthcheck"]["test"] and any(
        "/var/lib/postgresql/data" in v for v in postgres["volumes"]
    )
    head = services["head"]
    assert "8000:8000" in head["ports"]
    assert head["depends_on"]["postgres"]["condition"] == "service_healthy"
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker  # so --scale worker=N works
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]


def test_the_head_runs_the_hpo_serve_the_readme_documents() -> None:
    head_command = compose()["services"]["head"]["command"]
    serve = re.search(r"hpo serve [^\"\n]*", head_command)
    assert serve is not None
    readme = (ROOT / "README.md").read_text()
    assert serve.group(0).strip() in readme
    assert "ray start --head --port=6379" in head_command


def test_the_worker_joins_the_heads_ray_address() -> None:
    services = compose()["services"]
    worker = services["worker"]
    address = worker["environment"]["RAY_HEAD_ADDRESS"]
    assert address == "head:6379"
    assert "ray start --address=$${RAY_HEAD_ADDRESS}" in worker["command"]
    assert "--port=6379" in services["head"]["command"]


def test_environment_names_are_settings_fields() -> None:
    fields = {f"HPO_{name.upper()}" for name in Settings.model_fields}
    for name, service in compose()["services"].items():
        hpo_names = {key for key in service.get("environment", {}) if key.startswith("HPO_")}
        assert hpo_names <= fields, (name, hpo_names - fields)
    assert {"HPO_DATABASE_URL", "HPO_RAY_ADDRESS"} <= set(
        compose()["services"]["head"]["environment"]
    )


def test_the_readme_documents_both_cluster_ways() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "docker compose up --build --scale worker=" in readme and "HPO_API_TOKENS=" in readme
    assert "ray start --head" in readme and "ray start --address" in readme


def test_the_head_and_every_worker_share_the_checkpoint_store() -> None:
    services = compose()["services"]
    uri = services["head"]["environment"]["HPO_CHECKPOINT_URI"]
    for name in ("head", "worker"):
        mounts = {m.split(":")[1]: m.split(":")[0] for m in services[name]["volumes"]}
        assert mounts.get(uri) == "checkpoints", (name, services[name]["volumes"])
