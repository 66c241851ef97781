"""docker-compose.yml and the README's cluster commands agree with the code.

No Docker engine runs here; these checks read the files the way compose would.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
# What compose refuses to start without (README: both come from the uncommitted .env).
DEMANDED = {"HPO_API_TOKENS": "team:token", "POSTGRES_PASSWORD": "pw-from-dot-env"}
RAY_PORTS = {6379, 8265, 10001}  # GCS, dashboard (its Jobs API runs any code), Ray client
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def compose(environment: dict[str, str] | None = None) -> dict[str, Any]:
    """The compose file as compose reads it: `${VAR:-default}`, `${VAR:?error}` and `$$`
    interpolated from `environment` (by default only the variables compose demands)."""
    values = DEMANDED if environment is None else environment

    def interpolate(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, kind, fallback = match.group(1), match.group(2), match.group(3) or ""
        if name in values:
            return values[name]
        assert kind == ":-", f"compose would refuse to start without {name}: {fallback}"
        return fallback

    text = re.sub(
        r"\$\$|\$\{(\w+)(?:(:-|:\?)([^}]*))?\}",
        interpolate,
        (ROOT / "docker-compose.yml").read_text(),
    )
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def dockerfile_args() -> dict[str, str]:
    text = (ROOT / "Dockerfile").read_text()
    return dict(re.findall(r"^ARG (\w+)=(\S+)$", text, flags=re.MULTILINE))


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
    assert "ray start --address=${RAY_HEAD_ADDRESS}" in worker["command"]  # $$ reads as $
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


def test_the_head_is_built_with_cpu_torch_and_the_workers_with_cuda_torch() -> None:
    services = compose()["services"]
    head, worker = services["head"], services["worker"]
    assert head["build"]["args"]["TORCH_VARIANT"] == "cpu"
    assert worker["build"]["args"]["TORCH_VARIANT"] == "cu128"  # the default CUDA build
    assert head["image"] != worker["image"]  # one tag each, so neither build overwrites the other
    assert head["build"]["context"] == worker["build"]["context"] == "."
    chosen = compose({**DEMANDED, "TORCH_CUDA": "cu126"})["services"]["worker"]
    assert chosen["build"]["args"]["TORCH_VARIANT"] == "cu126" and "cu126" in chosen["image"]
    assert "utility" in worker["environment"]["NVIDIA_DRIVER_CAPABILITIES"]  # Ray counts GPUs


def test_the_dockerfile_installs_torch_from_the_variants_index_and_checks_the_build() -> None:
    args = dockerfile_args()
    assert args["TORCH_VARIANT"] == "cpu"
    assert args["TORCH_INDEX"] == "https://download.pytorch.org/whl/${TORCH_VARIANT}"
    assert args["TORCH_VERSION"] in (ROOT / "Makefile").read_text()  # the version tests ran
    text = (ROOT / "Dockerfile").read_text()
    assert 'pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}"' in text
    assert "torch.version.cuda" in text  # a GPU image with CPU torch fails its build
    assert re.search(r"apt-get install [^\n]*\bgcc\b", text)  # torch.compile builds kernels


def test_the_readme_says_how_to_pick_the_cuda_version() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "TORCH_CUDA=cu126 docker compose" in readme and "nvidia-smi" in readme
    assert "--build-arg TORCH_VARIANT=" in readme


def test_compose_demands_the_api_tokens() -> None:
    with pytest.raises(AssertionError, match="HPO_API_TOKENS"):
        compose({"POSTGRES_PASSWORD": "pw"})


def published(service: dict[str, Any]) -> list[tuple[str, int]]:
    """(host address, container port) of each `ports:` entry, short or long syntax; an
    entry without an address is published on every interface of the host."""
    entries = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            entries.append((str(entry.get("host_ip", "0.0.0.0")), int(entry["target"])))
            continue
        *host, container = str(entry).split("/")[0].rsplit(":", 2)
        address = host[0] if len(host) == 2 else "0.0.0.0"
        entries.append((address.strip("[]"), int(container.split("-")[0])))
    return entries


def test_no_ray_port_is_published_beyond_the_hosts_loopback() -> None:
    for name, service in compose()["services"].items():
        for address, port in published(service):
            assert port not in RAY_PORTS or address in LOOPBACK, (name, address, port)
    head = compose()["services"]["head"]
    assert [port for _, port in published(head)] == [8000]  # the service's own port only


def test_the_ray_dashboard_does_not_listen_on_every_interface() -> None:
    for name, service in compose()["services"].items():
        command = str(service.get("command", ""))
        assert "0.0.0.0" not in re.findall(r"--dashboard-host[= ](\S+)", command), name
    assert "--dashboard-host=127.0.0.1" in compose()["services"]["head"]["command"]
    exposed = re.search(r"^EXPOSE (.+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert exposed is not None and exposed.group(1).split() == ["8000"]


def test_compose_takes_the_postgres_password_from_the_environment_file() -> None:
    with pytest.raises(AssertionError, match="POSTGRES_PASSWORD"):
        compose({"HPO_API_TOKENS": "t:k"})
    services = compose()["services"]
    secret = DEMANDED["POSTGRES_PASSWORD"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == secret
    head = services["head"]["environment"]
    # libpq reads PGPASSWORD: the URL holds no password to print or to URL-encode.
    assert head["PGPASSWORD"] == secret and secret not in head["HPO_DATABASE_URL"]


def test_no_committed_deployment_file_holds_a_password() -> None:
    for name in ("docker-compose.yml", "Dockerfile", ".env.example", "README.md"):
        text = (ROOT / name).read_text()
        for password in re.findall(r"://[^/\s:@'\"]+:([^@\s/'\"]+)@", text):
            assert password.startswith("$") or set(password) == {"*"}, (name, password)
        assignment = r"^[ \t-]*(?:POSTGRES_PASSWORD|PGPASSWORD)[ \t]*[:=][ \t]*(\S*)"
        for value in re.findall(assignment, text, flags=re.MULTILINE):
            assert value == "" or value.startswith(("$", "<", "`")), (name, value)


def test_the_environment_file_is_gitignored_and_its_example_committed_empty() -> None:
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert {".env", "/.env"} & set(ignored) and "!.env" not in ignored
    example = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert example == {"POSTGRES_PASSWORD": "", "HPO_API_TOKENS": ""}
