"""Refusals a user can act on, over HTTP: each 422 points at the field the user wrote and
says what to send instead (the nearest valid name, the valid values, the content type),
nothing is stored, and the service logs a refusal as one line at most, never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from service.settings import Settings
from tests.conftest import LiveService, running_service, wait_for_study

pytestmark = pytest.mark.ray
YAML_SPEC = b"name: plain\nbudget:\n  max_trials: 2\n"


@pytest.fixture(scope="module")
def service(ray_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """A live service whose one data root is `datasets`, with no slots started."""
    root = tmp_path_factory.mktemp("hints")
    (root / "datasets").mkdir()
    # The database's folder is the service's own, unreadable by path sources: not `root`.
    settings = Settings(
        data_dir=root / "data", data_roots=str(root / "datasets"), prewarm_slots=False
    )
    with running_service(settings) as url:
        yield LiveService(url, settings.data_dir, root / "datasets")


@pytest.fixture
def http(service: LiveService) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, timeout=60) as client:
        yield client


def n_studies(http: httpx.Client) -> int:
    return len(http.get("/api/v1/studies", params={"limit": 1000}).json()["items"])


def refusal(http: httpx.Client, **request: Any) -> list[dict[str, str]]:
    """The details of a POST /studies that must be a 422 of the usual shape, whose message
    carries its details, and which stored nothing."""
    before = n_studies(http)
    response = http.post("/api/v1/studies", **request)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and error["details"], error
    assert all(d["msg"] in error["message"] for d in error["details"]), error
    assert "Input tag" not in response.text and "expected tags" not in response.text
    assert n_studies(http) == before
    found: list[dict[str, str]] = error["details"]
    return found


@pytest.mark.parametrize(
    ("override", "loc", "msg"),
    [
        (
            {"budget": {"max_trial": 10}},
            "budget.max_trial",
            "Extra inputs are not permitted; did you mean 'max_trials'?",
        ),
        ({"budget": {"zzzz": 10}}, "budget.zzzz", "Extra inputs are not permitted"),
        (
            {"budgit": {"max_trials": 10}},
            "budgit",
            "Extra inputs are not permitted; did you mean 'budget'?",
        ),
        (
            {"sampler": {"sed": 1}},
            "sampler.sed",
            "Extra inputs are not permitted; did you mean 'seed'?",
        ),
        (
            {"space": {"lr": {"type": "float", "low": 0.01, "high": 0.1, "lg": True}}},
            "space.lr.lg",
            "Extra inputs are not permitted; did you mean 'log'?",
        ),
        (
            {"objective": [{"metric": "val_accuracy", "directon": "maximize"}]},
            "objective.0.directon",
            "Extra inputs are not permitted; did you mean 'direction'?",
        ),
    ],
)
def test_an_unknown_field_is_refused_at_its_path_with_the_nearest_valid_one(
    http: httpx.Client,
    make_spec: Callable[..., dict[str, Any]],
    override: dict[str, Any],
    loc: str,
    msg: str,
) -> None:
    assert refusal(http, json=make_spec(**override)) == [{"loc": loc, "msg": msg}]


@pytest.mark.parametrize(
    ("override", "loc", "msg"),
    [
        (
            {"sampler": {"type": "tpee"}},
            "sampler.type",
            "type must be one of ['tpe', 'random', 'cmaes', 'gp', 'qmc', 'grid', 'nsga2'], "
            "got 'tpee'; did you mean 'tpe'?",
        ),
        (
            {"pruner": {"type": "ashaa"}},
            "pruner.type",
            "type must be one of ['none', 'median', 'percentile', 'asha', 'hyperband', "
            "'threshold', 'patient'], got 'ashaa'; did you mean 'asha'?",
        ),
        (
            {"pruner": {"type": "xyz"}},
            "pruner.type",
            "type must be one of ['none', 'median', 'percentile', 'asha', 'hyperband', "
            "'threshold', 'patient'], got 'xyz'",
        ),
        (
            {"dataset": {"source": "paht", "path": "a.csv"}},
            "dataset.source",
            "source must be one of ['builtin', 'path', 'uploaded', 'plugin'], got 'paht'; did you mean 'path'?",
        ),
        (
            {"dataset": {"name": "digits"}},
            "dataset.source",
            "source is required: one of ['builtin', 'path', 'uploaded', 'plugin']",
        ),
        (
            {"space": {"lr": {"type": "flaot", "low": 0.01, "high": 0.1}}},
            "space.lr.type",
            "type must be one of ['float', 'int', 'categorical'], got 'flaot'; did you mean 'float'?",
        ),
    ],
)
def test_a_mistyped_type_is_refused_at_its_own_field_with_the_valid_ones(
    http: httpx.Client,
    make_spec: Callable[..., dict[str, Any]],
    override: dict[str, Any],
    loc: str,
    msg: str,
) -> None:
    assert refusal(http, json=make_spec(**override)) == [{"loc": loc, "msg": msg}]


@pytest.mark.parametrize(
    ("objective", "loc"),
    [
        ({"metric": "val_accuracy", "direction": "minimise"}, "objective.direction"),
        ([{"metric": "val_accuracy", "direction": "minimise"}], "objective.0.direction"),
    ],
)
def test_a_mistyped_direction_is_one_error_with_the_nearest_value(
    http: httpx.Client, make_spec: Callable[..., dict[str, Any]], objective: Any, loc: str
) -> None:
    got = refusal(http, json=make_spec(objective=objective))
    assert got == [
        {
            "loc": loc,
            "msg": "Input should be 'maximize' or 'minimize', got 'minimise'; did you mean 'minimize'?",
        }
    ]


def test_a_value_every_member_of_a_union_refuses_is_one_error(
    http: httpx.Client, make_spec: Callable[..., dict[str, Any]]
) -> None:
    assert refusal(http, json=make_spec(objective="val_accuracy")) == [
        {"loc": "objective", "msg": "Input should be an object or a list"}
    ]
    assert refusal(http, json=make_spec(params={"hidden_units": [32]})) == [
        {
            "loc": "params.hidden_units",
            "msg": "Input should be a boolean, an integer, a number or a string",
        }
    ]


@pytest.mark.parametrize(
    ("objective", "loc"),
    [
        ({"metric": "val_rmse"}, "objective.metric"),
        ([{"metric": "val_accuracy"}, {"metric": "val_rmse"}], "objective.1.metric"),
    ],
)
def test_a_metric_the_data_cannot_give_is_refused_at_the_metric(
    http: httpx.Client, make_spec: Callable[..., dict[str, Any]], objective: Any, loc: str
) -> None:
    got = refusal(http, json=make_spec(objective=objective))
    assert got == [
        {
            "loc": loc,
            "msg": "val_rmse does not fit a classification task; use one of ['val_loss', 'val_accuracy', 'val_f1']",
        }
    ]


def test_an_unknown_metric_is_refused_at_the_metric_with_the_nearest_one(
    http: httpx.Client, make_spec: Callable[..., dict[str, Any]]
) -> None:
    [detail] = refusal(http, json=make_spec(objective={"metric": "val_acc"}))
    assert detail["loc"] == "objective.metric"
    assert detail["msg"].startswith("metric must be one of ['val_accuracy', ")
    assert detail["msg"].endswith(", got 'val_acc'; did you mean 'val_accuracy'?")


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/json"])
def test_yaml_sent_without_its_content_type_is_told_to_send_it(
    http: httpx.Client, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    [detail] = refusal(http, content=YAML_SPEC, headers=headers)
    assert detail["loc"] == "body"
    assert detail["msg"].endswith(
        "; the body reads as YAML: send it with Content-Type: application/yaml"
    ), detail


def test_a_body_that_reads_as_neither_json_nor_yaml_gets_no_yaml_hint(http: httpx.Client) -> None:
    headers = {"content-type": "application/json"}
    assert refusal(http, content=b"name: [unclosed", headers=headers) == [
        {"loc": "body", "msg": "invalid JSON at line 1, column 1 (character 0): Expecting value"}
    ]


def test_json_sent_as_text_is_told_its_content_type(http: httpx.Client) -> None:
    [detail] = refusal(http, content=b'{"name": "x"}', headers={"content-type": "text/plain"})
    assert detail["msg"].endswith(
        "; the body reads as JSON: send it with Content-Type: application/json"
    )


def test_json_syntax_errors_name_their_line_and_column(http: httpx.Client) -> None:
    body, headers = b'{"name": "x",\n  "budget": }', {"content-type": "application/json"}
    assert refusal(http, content=body, headers=headers) == [
        {"loc": "body", "msg": "invalid JSON at line 2, column 13 (character 26): Expecting value"}
    ]


@pytest.mark.parametrize(
    ("body", "msg"),
    [
        (
            b"name: x\nbudget:\n  max_trials: 10\n   parallelism: 2\n",
            "invalid YAML body at line 4, column 15: mapping values are not allowed here",
        ),
        (
            b"name: [unclosed",
            "invalid YAML body at line 1, column 16: expected ',' or ']', but got '<stream end>' "
            "(while parsing a flow sequence at line 1, column 7)",
        ),
    ],
)
def test_yaml_syntax_errors_keep_their_line_and_column(
    http: httpx.Client, body: bytes, msg: str
) -> None:
    headers = {"content-type": "application/yaml"}
    assert refusal(http, content=body, headers=headers) == [{"loc": "body", "msg": msg}]


def write_table(path: Path, frame: pd.DataFrame) -> None:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        np.savez(path, x=frame[["a", "b"]].to_numpy(), y=frame["y"].to_numpy())


@pytest.mark.parametrize("name", ["table.csv", "table.parquet", "table.npz"])
def test_a_path_data_set_without_its_target_is_refused_at_submission(
    http: httpx.Client, make_spec: Callable[..., dict[str, Any]], service: LiveService, name: str
) -> None:
    frame = pd.DataFrame({"a": [0.1, 0.2, 0.3, 0.4], "b": [1.0, 2.0, 3.0, 4.0], "y": [0, 1, 0, 1]})
    write_table(service.data_root / name, frame)
    spec = make_spec(dataset={"source": "path", "path": name, "target": "label"})
    kind, names = ("array", ["x", "y"]) if name.endswith("npz") else ("column", ["a", "b", "y"])
    assert refusal(http, json=spec) == [
        {
            "loc": "dataset.target",
            "msg": f"dataset.target 'label' is not a {kind} of '{name}'; its {kind}s are {names}",
        }
    ]


def test_a_target_close_to_a_column_gets_that_column_suggested(
    http: httpx.Client, make_spec: Callable[..., dict[str, Any]], service: LiveService
) -> None:
    (service.data_root / "labels.csv").write_text("a,b,label\n0.1,1,0\n0.2,2,1\n")
    spec = make_spec(dataset={"source": "path", "path": "labels.csv", "target": "lable"})
    [detail] = refusal(http, json=spec)
    assert detail == {
        "loc": "dataset.target",
        "msg": "dataset.target 'lable' is not a column "
        "of 'labels.csv'; its columns are ['a', 'b', 'label']; did you mean "
        "'label'?",
    }


def test_paths_outside_the_roots_get_one_answer_whether_or_not_they_exist(
    http: httpx.Client, make_spec: Callable[..., dict[str, Any]], service: LiveService
) -> None:
    outside = service.data_root.parent / "outside.csv"
    outside.write_text("a,y\n1,0\n")
    answers = []
    for path in (str(outside), str(service.data_root.parent / "absent.csv"), "../outside.csv"):
        spec = make_spec(dataset={"source": "path", "path": path, "target": "label"})
        answers.append(refusal(http, json=spec))
    assert answers[0] == answers[1] == answers[2]
    assert (
        answers[0][0]["loc"] == "dataset.path" and "outside the data roots" in answers[0][0]["msg"]
    )


def test_a_refused_submission_logs_at_most_one_line_and_no_traceback(
    http: httpx.Client,
    make_spec: Callable[..., dict[str, Any]],
    service: LiveService,
    caplog: pytest.LogCaptureFixture,
) -> None:
    (service.data_root / "few.csv").write_text("a,y\n1,0\n")
    refused = [
        make_spec(budget={"max_trial": 10}),
        make_spec(sampler={"type": "tpee"}),
        make_spec(dataset={"source": "path", "path": "few.csv", "target": "label"}),
        make_spec(dataset={"source": "path", "path": "/etc/hostname", "format": "csv"}),
    ]
    for spec in refused:
        caplog.clear()
        with caplog.at_level(logging.DEBUG):
            assert http.post("/api/v1/studies", json=spec).status_code == 422
        lines = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
        assert len(lines) <= 1 and "Traceback" not in caplog.text, caplog.text
        assert all(r.exc_info is None for r in lines)


@pytest.mark.slow
def test_a_study_whose_data_fails_at_start_logs_one_line_and_no_traceback(
    http: httpx.Client,
    make_spec: Callable[..., dict[str, Any]],
    service: LiveService,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A header that passes (the target is there) over rows that do not (a text feature):
    the study fails when its data is read, and that is the user's data, not a bug."""
    (service.data_root / "words.csv").write_text(
        "a,word,y\n" + "".join(f"{i},w{i},{i % 2}\n" for i in range(40))
    )
    spec = make_spec(
        dataset={"source": "path", "path": "words.csv", "target": "y"},
        budget={"max_trials": 1, "parallelism": 1},
    )
    with caplog.at_level(logging.WARNING):
        response = http.post("/api/v1/studies", json=spec)
        assert response.status_code == 201, response.text
        study = wait_for_study(http, response.json()["id"])
    assert study["state"] == "failed" and "feature column 'word' is not numeric" in study["error"]
    ours = [r for r in caplog.records if r.name.startswith("service")]
    assert [r.getMessage() for r in ours] == [f"study {study['id']} failed: {study['error']}"], (
        caplog.text
    )
    assert "Traceback" not in caplog.text and ours[0].exc_info is None
