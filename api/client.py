"""A small synchronous Python client of the HTTP API; the CLI talks through it alone."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import connect_sse

TERMINAL_STATES = ("completed", "stopped", "failed")
IDLE_STATES = ("paused", *TERMINAL_STATES)  # a study in one trains nothing until resumed


class ClientError(Exception):
    """The service refused the request or could not be reached; the message says which."""


class HpoClient:
    def __init__(
        self,
        url: str = "http://127.0.0.1:8000",
        *,
        token: str | None = None,
        timeout_s: float = 30.0,
    ):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HpoClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ClientError(f"cannot reach the service at {self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise ClientError(_error_message(response))
        return response.json() if response.content else None

    def submit(self, spec: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._request("POST", "/api/v1/studies", json=spec)
        return result

    def submit_file(self, path: Path) -> dict[str, Any]:
        """Submit a study file (YAML or JSON) as it is; the service validates it."""
        try:
            text = path.read_text()
        except OSError as exc:
            raise ClientError(f"cannot read {path}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise ClientError(f"cannot read {path}: not UTF-8 text ({exc.reason})") from exc
        media = "application/json" if path.suffix == ".json" else "application/yaml"
        result: dict[str, Any] = self._request(
            "POST", "/api/v1/studies", content=text.encode(), headers={"Content-Type": media}
        )
        return result

    def get(self, study_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", f"/api/v1/studies/{study_id}")
        return result

    def studies(self, *, state: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        params = {"limit": limit, **({"state": state} if state else {})}
        items: list[dict[str, Any]] = self._request("GET", "/api/v1/studies", params=params)[
            "items"
        ]
        return items

    def trials(
        self, study_id: int, *, order: str = "number", limit: int = 50
    ) -> list[dict[str, Any]]:
        params = {"order": order, "limit": limit}
        page = self._request("GET", f"/api/v1/studies/{study_id}/trials", params=params)
        items: list[dict[str, Any]] = page["items"]
        return items

    def iter_studies(
        self, *, state: str | None = None, page_size: int = 100
    ) -> Iterator[dict[str, Any]]:
        """Every study, newest first, following the cursor one page at a time."""
        return self._pages("/api/v1/studies", {"state": state}, page_size)

    def iter_trials(
        self,
        study_id: int,
        *,
        state: str | None = None,
        order: str = "number",
        page_size: int = 100,
    ) -> Iterator[dict[str, Any]]:
        """A study's trials by number (or `order="best"`), following the cursor page by page."""
        path = f"/api/v1/studies/{study_id}/trials"
        return self._pages(path, {"state": state, "order": order}, page_size)

    def _pages(self, path: str, params: dict[str, Any], page_size: int) -> Iterator[dict[str, Any]]:
        query = {k: v for k, v in params.items() if v is not None} | {"limit": page_size}
        while True:
            page = self._request("GET", path, params=query)
            yield from page["items"]
            if not page["next_cursor"]:
                return
            query["cursor"] = page["next_cursor"]

    def cluster(self) -> dict[str, Any]:
        """Nodes, slots, per-tenant usage against share and quota, and the queue, as the
        caller's tenant may see them (others' studies unnamed)."""
        result: dict[str, Any] = self._request("GET", "/api/v1/cluster")
        return result

    def trial(self, study_id: int, number: int) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", f"/api/v1/studies/{study_id}/trials/{number}")
        return result

    def best(self, study_id: int, *, k: int = 1) -> list[dict[str, Any]]:
        page = self._request("GET", f"/api/v1/studies/{study_id}/best", params={"k": k})
        items: list[dict[str, Any]] = page["items"]
        return items

    def stop(self, study_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self._request("POST", f"/api/v1/studies/{study_id}/stop")
        return result

    def pause(self, study_id: int) -> dict[str, Any]:
        """Pause a study: its trials stop at their next epoch with a checkpoint."""
        result: dict[str, Any] = self._request("POST", f"/api/v1/studies/{study_id}/pause")
        return result

    def upload(self, path: Path, *, target: str = "target") -> dict[str, Any]:
        """Upload a CSV, Parquet or NPZ file; studies then name it {source: uploaded, id}."""
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise ClientError(f"cannot read {path}: {exc.strerror}") from exc
        result: dict[str, Any] = self._request(
            "POST",
            "/api/v1/datasets",
            files={"file": (path.name, content)},
            data={"target": target},
        )
        return result

    def resume(self, study_id: int, **budget: Any) -> dict[str, Any]:
        """Continue a paused study, or run a finished one further; `budget` fields (e.g.
        max_trials=80) replace old ones."""
        body = {"budget": budget} if budget else None
        result: dict[str, Any] = self._request(
            "POST", f"/api/v1/studies/{study_id}/resume", json=body
        )
        return result

    def delete(self, study_id: int) -> None:
        self._request("DELETE", f"/api/v1/studies/{study_id}")

    def best_spec(self, study_id: int) -> dict[str, Any]:
        """A PBT study's best member as a plain spec that trains its schedule again."""
        result: dict[str, Any] = self._request("GET", f"/api/v1/studies/{study_id}/best/spec")
        return result

    def best_checkpoint(self, study_id: int, path: Path) -> int:
        """Save the best trial's checkpoint (weights and model description) to `path`;
        its trial number. Written to a temporary file first, so a failure leaves no half file."""
        partial = path.with_name(path.name + ".partial")
        url = f"/api/v1/studies/{study_id}/best/checkpoint"
        try:
            with self._http.stream("GET", url) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ClientError(_error_message(response))
                with partial.open("wb") as out:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
                number = int(response.headers.get("X-Trial-Number", "-1"))
        except httpx.TransportError as exc:
            partial.unlink(missing_ok=True)
            raise ClientError(f"cannot reach the service at {self.url}: {exc}") from exc
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise ClientError(f"cannot write {path}: {exc.strerror}") from exc
        partial.replace(path)
        return number

    def datasets(self) -> list[dict[str, Any]]:
        """The caller's uploaded data sets."""
        page = self._request("GET", "/api/v1/datasets")
        items: list[dict[str, Any]] = page["items"]
        return items

    def delete_dataset(self, dataset_id: str) -> None:
        self._request("DELETE", f"/api/v1/datasets/{dataset_id}")

    def tasks(self) -> list[dict[str, Any]]:
        """Plug-in training tasks installed on the service."""
        page = self._request("GET", "/api/v1/tasks")
        items: list[dict[str, Any]] = page["items"]
        return items

    def events(
        self, study_id: int, *, last_event_id: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """The study's events as {id, event, data} until the study ends (SSE, resumable)."""
        headers = {} if last_event_id is None else {"Last-Event-ID": str(last_event_id)}
        path = f"/api/v1/studies/{study_id}/events"
        try:
            with connect_sse(self._http, "GET", path, headers=headers, timeout=None) as source:
                if source.response.status_code >= 400:
                    source.response.read()
                    raise ClientError(_error_message(source.response))
                for sse in source.iter_sse():
                    yield {"id": int(sse.id), "event": sse.event, "data": sse.json()}
        except httpx.TransportError as exc:
            raise ClientError(f"cannot reach the service at {self.url}: {exc}") from exc

    def wait(
        self,
        study_id: int,
        *,
        poll_s: float = 0.5,
        timeout_s: float | None = None,
        on_update: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the study ends or is paused; `on_update` sees every polled state."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            study = self.get(study_id)
            if on_update is not None:
                on_update(study)
            if study["state"] in IDLE_STATES:
                return study
            if deadline is not None and time.monotonic() > deadline:
                raise ClientError(f"study {study_id} still {study['state']} after {timeout_s}s")
            time.sleep(poll_s)

    def healthy(self) -> bool:
        try:
            return self._http.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False


def _error_message(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:200]}"
    details = error.get("details", [])
    if not details:
        return f"HTTP {response.status_code}: {error.get('message', '')}"
    fields = "; ".join(f"{d['loc']}: {d['msg']}" for d in details)
    return f"HTTP {response.status_code}: {error.get('code', 'error')}: {fields}"
