"""The `hpo` CLI as a user runs it: a real process talking real HTTP to a live service."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from api.cli.output import fmt
from service.settings import Settings
from tests.conftest import FAST_SPEC, LiveService, running_service, wait_for_study

pytestmark = pytest.mark.ray
DOWN = "http://127.0.0.1:9"  # the discard port: nothing listens there
NARROW = {"COLUMNS": "80"}
LONG_NAMED_PARAM = {"label_smoothing": {"type": "float", "low": 0.01, "high": 0.2}}


def hpo(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", **(env or {})},
    )


def spec_file(
    directory: Path, name: str, *, space: dict[str, Any] | None = None, **budget: Any
) -> Path:
    """A study file from the suite's fast spec, with 1-2 epochs a trial."""
    spec = copy.deepcopy(FAST_SPEC)
    spec["name"] = name
    spec["space"].update(space or {})
    spec["budget"].update({"max_trials": 3, "max_epochs": 2, **budget})
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def http(shared_service: LiveService) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_service.url) as client:
        yield client


@pytest.fixture(scope="module")
def waited(
    shared_service: LiveService, tmp_path_factory: pytest.TempPathFactory
) -> tuple[subprocess.CompletedProcess[str], int]:
    """One `hpo submit --wait` of a 3-trial study, shared by the read commands' tests; it
    searches a long-named param too, for the tables at 80 columns."""
    path = spec_file(tmp_path_factory.mktemp("cli"), "cli-study", space=LONG_NAMED_PARAM)
    result = hpo("submit", str(path), "--wait", "--url", shared_service.url)
    found = re.search(r"study (\d+) 'cli-study' submitted", result.stdout)
    assert found, (result.stdout, result.stderr)
    return result, int(found.group(1))


def test_submit_wait_prints_progress_lines_and_the_best_trial(
    waited: tuple[subprocess.CompletedProcess[str], int], http: httpx.Client
) -> None:
    result, study_id = waited
    assert result.returncode == 0, result.stderr
    progress = re.findall(
        rf"study {study_id} \w+: (\d+)/3 trials, \d+ running, best \S+, eta", result.stdout
    )
    assert len(progress) >= 2 and progress[-1] == "3", result.stdout
    assert [int(n) for n in progress] == sorted(int(n) for n in progress)
    assert f"study {study_id} completed (max_trials)" in result.stdout
    best = http.get(f"/api/v1/studies/{study_id}/best").json()["items"][0]
    assert re.search(rf"^│ {best['number']} +│ {best['value']:.4g} ", result.stdout, re.M)


def test_read_commands_print_with_json_what_the_http_api_answers(
    waited: tuple[subprocess.CompletedProcess[str], int],
    shared_service: LiveService,
    http: httpx.Client,
) -> None:
    _, study_id = waited
    base = f"/api/v1/studies/{study_id}"
    env = {"HPO_URL": shared_service.url}  # the address may come from the environment
    answers = {
        ("studies", "--state", "completed"): http.get("/api/v1/studies?state=completed").json()[
            "items"
        ],
        ("show", str(study_id)): http.get(base).json(),
        ("trials", str(study_id)): http.get(f"{base}/trials").json()["items"],
        ("best", str(study_id), "--k", "2"): http.get(f"{base}/best?k=2").json()["items"],
    }
    for args, answer in answers.items():
        result = hpo(*args, "--json", env=env)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == answer, args
    best = json.loads(hpo("best", str(study_id), "--json", env=env).stdout)[0]
    assert best["params"] == http.get(f"{base}/best").json()["items"][0]["params"]


def test_trials_filter_by_state_and_give_the_top_k(
    waited: tuple[subprocess.CompletedProcess[str], int],
    shared_service: LiveService,
    http: httpx.Client,
) -> None:
    _, study_id = waited
    url = ("--url", shared_service.url)

    def trials(*args: str) -> list[dict[str, Any]]:
        result = hpo("trials", str(study_id), *args, "--json", *url)
        assert result.returncode == 0, result.stderr
        items: list[dict[str, Any]] = json.loads(result.stdout)
        return items

    assert [t["number"] for t in trials("--limit", "0")] == [0, 1, 2]
    assert len(trials("--limit", "1")) == 1
    assert trials("--state", "pruned") == []
    complete = trials("--state", "complete")
    assert complete and all(t["state"] == "complete" for t in complete)
    best_two = http.get(f"/api/v1/studies/{study_id}/best?k=2").json()["items"]
    assert [t["number"] for t in trials("--top", "2")] == [t["number"] for t in best_two]
    table = hpo("trials", str(study_id), "--top", "1", *url)
    assert table.returncode == 0 and f"│ {best_two[0]['number']} " in table.stdout
    # Where each trial trained, on a wide console: this suite's slots have no GPU.
    assert best_two[0]["device"] == "cpu" and "┃ device " in table.stdout
    assert "│ cpu " in table.stdout


def test_show_and_studies_print_a_study_for_people(
    waited: tuple[subprocess.CompletedProcess[str], int],
    shared_service: LiveService,
    http: httpx.Client,
) -> None:
    _, study_id = waited
    study = http.get(f"/api/v1/studies/{study_id}").json()
    shown = hpo("show", str(study_id), "--url", shared_service.url)
    assert shown.returncode == 0, shown.stderr
    for text in (
        "'cli-study'",
        "completed (max_trials)",
        study["optuna_study_name"],
        "3/3 trials",
        f"trial {study['best']['number']}:",
        "val_accuracy (maximize)",
        "duration",
    ):
        assert text in shown.stdout, (text, shown.stdout)
    listed = hpo("studies", "--url", shared_service.url)
    assert listed.returncode == 0 and "cli-study" in listed.stdout and "3/3" in listed.stdout


def assert_fits_80_columns(result: subprocess.CompletedProcess[str], *words: str) -> None:
    """Every line fits, nothing is cut short with an ellipsis, and each of `words` (which
    has no space) is printed whole on one line."""
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert max(len(line) for line in out.splitlines()) <= 80, out
    assert "…" not in out, out
    for word in words:
        assert word in out, (word, out)


def test_tables_at_80_columns_never_split_a_word(
    waited: tuple[subprocess.CompletedProcess[str], int],
    shared_service: LiveService,
    http: httpx.Client,
) -> None:
    _, study_id = waited
    url = ("--url", shared_service.url)
    trials = http.get(f"/api/v1/studies/{study_id}/trials").json()["items"]
    best = http.get(f"/api/v1/studies/{study_id}/best", params={"k": 2}).json()["items"]
    assert all("label_smoothing" in t["params"] for t in trials)

    listed = hpo("trials", str(study_id), *url, env=NARROW)
    assert_fits_80_columns(
        listed,
        *(pair for t in trials for pair in param_pairs(t)),
        *(t["stop_reason"] for t in trials),
    )
    assert_fits_80_columns(
        hpo("best", str(study_id), "--k", "2", *url, env=NARROW),
        *(pair for t in best for pair in param_pairs(t)),
        "val_accuracy",
    )
    assert_fits_80_columns(hpo("studies", *url, env=NARROW), "cli-study", "completed")
    shown = hpo("show", str(study_id), *url, env=NARROW)
    study = http.get(f"/api/v1/studies/{study_id}").json()
    assert_fits_80_columns(shown, "'cli-study'", study["optuna_study_name"], "label_smoothing=")


def param_pairs(trial: dict[str, Any]) -> list[str]:
    """`name=value` as the CLI prints each of the trial's params."""
    return [f"{k}={fmt(v)}" for k, v in trial["params"].items()]


def test_stop_then_resume_with_more_trials_ends_at_the_new_count(
    shared_service: LiveService, http: httpx.Client, tmp_path: Path
) -> None:
    url = ("--url", shared_service.url)
    path = spec_file(tmp_path, "cli-stop", max_trials=50, parallelism=1)
    submitted = hpo("submit", str(path), "--json", *url)
    assert submitted.returncode == 0, submitted.stderr
    study_id = json.loads(submitted.stdout)["id"]
    stopped = hpo("stop", str(study_id), *url)
    assert stopped.returncode == 0 and f"study {study_id} stopping" in stopped.stdout
    study = wait_for_study(http, study_id)
    assert study["state"] == "stopped"
    assert "only queued, running or paused stop" in one_error_line(hpo("stop", str(study_id), *url))

    n_trials = sum(study["counts"][s] for s in ("complete", "pruned", "failed")) + 2
    resumed = hpo("resume", str(study_id), "--max-trials", str(n_trials), "--wait", *url)
    assert resumed.returncode == 0, resumed.stderr
    assert f"budget {n_trials} trials" in resumed.stdout
    assert f"{n_trials}/{n_trials} trials" in resumed.stdout
    study = http.get(f"/api/v1/studies/{study_id}").json()
    assert (study["state"], study["state_reason"]) == ("completed", "max_trials")
    assert sum(study["counts"][s] for s in ("complete", "pruned", "failed")) == n_trials


def test_a_study_that_fails_exits_non_zero_with_one_line(shared_service: LiveService) -> None:
    # Its header passes at submission (the target is there); its text column fails the start.
    (shared_service.data_root / "words.csv").write_text("a,word,target\n" + "1,w,0\n" * 20)
    spec = copy.deepcopy(FAST_SPEC) | {
        "name": "cli-fails",
        "dataset": {"source": "path", "path": "words.csv"},
    }
    path = shared_service.data_dir / "fails.json"
    path.write_text(json.dumps(spec))
    result = hpo("submit", str(path), "--wait", "--url", shared_service.url)
    assert re.search(r"^error: study \d+ failed \(error\): .*not numeric", one_error_line(result))
    assert "no complete trials" in result.stdout


def test_upload_a_csv_prints_its_id_and_how_to_use_it(
    shared_service: LiveService, http: httpx.Client, tmp_path: Path
) -> None:
    path = tmp_path / "table.csv"
    path.write_text("x1,x2,y\n" + "".join(f"{i},{i % 7},{i % 2}\n" for i in range(40)))
    url = ("--url", shared_service.url)
    uploaded = hpo("upload", str(path), "--target", "y", "--json", *url)
    assert uploaded.returncode == 0, uploaded.stderr
    record = json.loads(uploaded.stdout)
    assert record == http.get(f"/api/v1/datasets/{record['id']}").json()
    assert (record["n_rows"], record["n_features"], record["target"]) == (40, 2, "y")
    shown = hpo("upload", str(path), "--target", "y", *url)
    assert shown.returncode == 0 and "40 rows, 2 features" in shown.stdout
    assert "source: uploaded" in shown.stdout
    assert "target column 'nope'" in one_error_line(
        hpo("upload", str(path), "--target", "nope", *url)
    )


def test_bad_files_give_one_clear_line(shared_service: LiveService, tmp_path: Path) -> None:
    url = ("--url", shared_service.url)
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    (tmp_path / "bad.yaml").write_text("name: bad\nbudget: {max_trials: 0}\n")
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00")
    assert "budget.max_trials" in one_error_line(hpo("submit", str(tmp_path / "bad.yaml"), *url))
    assert "invalid YAML" in one_error_line(hpo("submit", str(tmp_path / "broken.yaml"), *url))
    assert "not UTF-8" in one_error_line(hpo("submit", str(tmp_path / "binary.yaml"), *url))
    assert "Is a directory" in one_error_line(hpo("submit", str(tmp_path), *url))
    missing = one_error_line(hpo("upload", "/nonexistent/data.csv", *url))
    assert "cannot read /nonexistent/data.csv" in missing


def test_an_unknown_study_gives_the_services_message(shared_service: LiveService) -> None:
    for command in ("show", "trials", "best", "stop", "resume"):
        line = one_error_line(hpo(command, "987654", "--url", shared_service.url))
        assert "HTTP 404" in line and "study 987654 does not exist" in line, command


def test_a_missing_file_exits_non_zero_with_one_line() -> None:
    line = one_error_line(hpo("submit", "/nonexistent/study.yaml", "--url", DOWN))
    assert "cannot read /nonexistent/study.yaml" in line


@pytest.mark.parametrize(
    "args", [("best", "1"), ("studies",), ("show", "1"), ("stop", "1"), ("cluster",)]
)
def test_a_service_that_is_down_gives_one_clear_line(args: tuple[str, ...]) -> None:
    line = one_error_line(hpo(*args, "--url", DOWN))
    assert f"cannot reach the service at {DOWN}" in line


def test_the_token_comes_from_an_option_or_the_environment(
    ray_cluster: Any, tmp_path: Path
) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'hpo.db'}",
        data_dir=tmp_path / "data",
        api_tokens="team:secret",
    )
    with running_service(settings) as url:
        assert "HTTP 401" in one_error_line(hpo("studies", "--url", url))
        by_option = hpo("studies", "--json", "--url", url, "--token", "secret")
        by_env = hpo("studies", "--json", env={"HPO_URL": url, "HPO_TOKEN": "secret"})
    assert json.loads(by_option.stdout) == json.loads(by_env.stdout) == []


# Trials that never end here (no divergence, no early stop): their slots stay busy.
ENDLESS = {
    "space": {"lr": {"type": "float", "low": 0.01, "high": 0.05}},
    "params": {"hidden_units": 32, "optimizer": "sgd", "batch_size": 64},
    "pruner": {"type": "none"},
    "early_stopping": {"patience": 10_000},
}


def submit_spec(http: httpx.Client, name: str, **sections: Any) -> int:
    created = http.post("/api/v1/studies", json={**FAST_SPEC, "name": name, **sections})
    assert created.status_code == 201, created.text
    study_id: int = created.json()["id"]
    return study_id


@pytest.fixture(scope="module")
def crowded(http: httpx.Client) -> Iterator[tuple[int, int]]:
    """A study holding 4 of the cluster's 5 CPUs with endless 1-CPU trials, and one whose
    2-CPU trials fit nowhere meanwhile: it stays queued, first in line.

    Shared by the last tests of this module: nothing trains here after them."""
    budget = {"max_trials": 20_000, "max_epochs": 10_000, "parallelism": 4}
    hog = submit_spec(http, "hog", budget=budget, **ENDLESS)
    big = 0
    try:
        deadline = time.monotonic() + 60
        while not _training_on_all(http.get(f"/api/v1/studies/{hog}").json(), 4):
            assert time.monotonic() < deadline, "the hog got no 4 slots within 60 s"
            time.sleep(0.1)
        big = submit_spec(
            http, "needs-a-node", resources={"cpus_per_trial": 2}, priority=2, **ENDLESS
        )
        yield hog, big
    finally:
        for study_id in (hog, big):
            if study_id:
                http.post(f"/api/v1/studies/{study_id}/stop")


def _training_on_all(study: dict[str, Any], n_slots: int) -> bool:
    return study["state"] == "running" and study["slots_held"] == n_slots


def test_cluster_prints_nodes_slots_tenants_and_the_queue(
    crowded: tuple[int, int], shared_service: LiveService, http: httpx.Client
) -> None:
    hog, big = crowded
    url = ("--url", shared_service.url)
    answer = http.get("/api/v1/cluster").json()
    as_json = hpo("cluster", "--json", *url)
    assert as_json.returncode == 0, as_json.stderr
    printed = json.loads(as_json.stdout)
    assert printed.keys() == answer.keys()
    assert (printed["nodes"], printed["queue"]) == (answer["nodes"], answer["queue"])

    shown = hpo("cluster", *url)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    for node in answer["nodes"]:  # a node another test removed is listed as not alive
        alive = "yes" if node["alive"] else "no"
        assert re.search(rf"│ {node['node_id'][:12]}[^│]* │ {alive} +│", out), (node, out)
    assert re.search(rf"│ 1 CPU +│ 4 +│ \d +│ #{hog} x4 +│", out), out
    assert re.search(r"│ default +│ 1 +│ 100% +│ 80% +│ 4 CPUs +│ 4 +│ 1 +│ - +│", out), out
    assert re.search(
        rf"│ 1 +│ {big} 'needs-a-node' +│ default +│ 2 +│ 20\S+ \S+ \(\d+ s ago\) +│ 0/2 +│ 2 CPUs +│",
        out,
    ), out
    assert_fits_80_columns(
        hpo("cluster", *url, env=NARROW),
        "needs-a-node",
        "default",
        "dominant",
        "4 CPUs",
        *(node["node_id"][:12] for node in answer["nodes"]),
    )


def test_show_and_studies_print_a_queued_studys_place(
    crowded: tuple[int, int], shared_service: LiveService
) -> None:
    hog, big = crowded
    url = ("--url", shared_service.url)
    shown = hpo("show", str(big), *url)
    assert shown.returncode == 0, shown.stderr
    for line in (
        r"state +queued #1",
        r"priority +2",
        r"slots +0 held of parallelism 2",
        r"queue +#1",
        r"waiting since +20\d\d-\d\d-\d\d \d\d:\d\d:\d\d \(\d+ s ago\)",
    ):
        assert re.search(rf"^{line}\s*$", shown.stdout, re.M), (line, shown.stdout)
    listed = hpo("studies", *url)
    assert listed.returncode == 0, listed.stderr
    assert re.search(rf"│ {big} +│ needs-a-node +│ queued #1 +│ 0/2 +│", listed.stdout)
    assert re.search(rf"│ {hog} +│ hog +│ running +│ 4/4 +│", listed.stdout), listed.stdout
